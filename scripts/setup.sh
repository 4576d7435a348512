#!/usr/bin/env bash
# Installs what edgetrack needs and is missing. Every step checks first, so a
# second run costs a few version checks. Usage: scripts/setup.sh [dev|test]
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' Cargo.toml)
WORKER_BUILD_VERSION=0.8.7
MODE=${1:-dev}

say() { printf '[setup] %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# No --locked: the registry copy here can lack a patch release a published
# lock file names.
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 7 minutes)"
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi

if ! worker-build --version 2>/dev/null | grep -qw "$WORKER_BUILD_VERSION"; then
  say "installing worker-build $WORKER_BUILD_VERSION (about 10 minutes)"
  cargo install worker-build --version "=$WORKER_BUILD_VERSION"
fi

# npm packages, pinned by package-lock.json; reinstalled only when it changes.
stamp=node_modules/.edgetrack-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm packages"
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

# Umami's browser tracker: the official script ships only inside the
# `umami` server package, whose 54 dependencies (Next.js, Prisma) a test
# does not need. So that one file is taken from the registry's tarball of a
# pinned version, checked against the registry's integrity, and kept in
# node_modules (tests/e2e/vendors serves it unchanged).
UMAMI_VERSION=2.10.0
UMAMI_INTEGRITY='sha512-+lmrnV0751R6U2rkIgVAlE1nWI7yZawlMlJDguW9tlFacCKhnGeCyc7tCMIhNNYIiGIQy4DEX5IzJhm4b3+dPA=='
umami_dir=node_modules/.umami-tracker
if [ "$MODE" = test ] && [ "$(cat "$umami_dir/version" 2>/dev/null)" != "$UMAMI_VERSION" ]; then
  say "fetching Umami's tracker script from umami@$UMAMI_VERSION"
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "umami@$UMAMI_VERSION" >/dev/null)
  tarball="$work/umami-$UMAMI_VERSION.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$got" != "$UMAMI_INTEGRITY" ]; then
    rm -rf "$work"
    echo "umami@$UMAMI_VERSION does not match its pinned integrity" >&2
    exit 1
  fi
  mkdir -p "$umami_dir"
  tar -xzf "$tarball" -C "$work" package/src/tracker/index.js
  cp "$work/package/src/tracker/index.js" "$umami_dir/script.js"
  echo "$UMAMI_VERSION" > "$umami_dir/version"
  rm -rf "$work"
fi

if [ "$MODE" = test ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing Debian chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  pystamp=.venv/.edgetrack-reqs
  if [ ! -f "$pystamp" ] || ! cmp -s tests/requirements.txt "$pystamp"; then
    say "installing the Python test clients"
    python3 -m venv .venv
    .venv/bin/pip install -q -r tests/requirements.txt
    cp tests/requirements.txt "$pystamp"
  fi
fi
