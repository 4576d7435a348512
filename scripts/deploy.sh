#!/usr/bin/env bash
# make deploy: ships the production environment of edge-worker/wrangler.jsonc
# to the Cloudflare account wrangler is logged in to (`npx wrangler login`, or
# CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID in the environment).
# Every step checks first, so a second run only deploys what changed:
#   1. the two queues exist (created when missing);
#   2. the PROJECTS secret is set (the script stops and says how, if not);
#   3. D1 migrations are applied (when the database exists already);
#   4. `wrangler deploy --env production`: builds what changed (the config's
#      build command), creates the KV namespace, D1 database and R2 bucket
#      on the first deploy and writes their ids into wrangler.jsonc;
#   5. D1 migrations again (the first deploy has just created the database).
# Usage: scripts/deploy.sh [--dry-run]
#   --dry-run: build and bundle exactly what would ship, into
#   target/deploy-dry-run, and check the configuration; no account needed.
set -euo pipefail
cd "$(dirname "$0")/.."

WRANGLER="$PWD/node_modules/.bin/wrangler"
ENV=production
QUEUES=(edgetrack-events edgetrack-dead-letters)
export WRANGLER_SEND_METRICS=false

say() { printf '[deploy] %s\n' "$*"; }
wr() { (cd edge-worker && "$WRANGLER" "$@"); }

if [ ! -x "$WRANGLER" ]; then
  echo "deploy: wrangler is missing; run 'make setup' first" >&2
  exit 2
fi

if [ "${1:-}" = --dry-run ]; then
  out="$PWD/target/deploy-dry-run"
  rm -rf "$out"
  wr deploy --dry-run --env "$ENV" --outdir "$out" >"$PWD/target/deploy-dry-run.log" 2>&1 \
    || { cat "$PWD/target/deploy-dry-run.log"; exit 1; }
  # wrangler's own size line: "Total Upload: X KiB / gzip: Y KiB".
  grep -m1 'Total Upload' "$PWD/target/deploy-dry-run.log" | sed 's/^ *//' || true
  echo "deploy dry run: the production bundle and wrangler.jsonc are deployable"
  exit 0
fi

if ! wr whoami >/dev/null 2>&1; then
  echo "deploy: wrangler is not logged in: run 'npx wrangler login' (or set CLOUDFLARE_API_TOKEN)" >&2
  exit 1
fi

for queue in "${QUEUES[@]}"; do
  if wr queues info "$queue" >/dev/null 2>&1; then
    say "queue $queue exists"
  else
    say "creating queue $queue"
    wr queues create "$queue"
  fi
done

# `secret list` fails before the first deploy (no Worker yet); the secret
# can be put before it all the same.
if ! wr secret list --env "$ENV" 2>/dev/null | grep -q '"PROJECTS"'; then
  cat >&2 <<'EOF'
deploy: the PROJECTS secret is not set. Set it once (it is never written to a file):
  cd edge-worker && npx wrangler secret put PROJECTS --env production
with the projects' JSON, e.g. {"mysite":{"token":"…","secret":"…","viewer":"…"}} (README: Configuration).
EOF
  exit 1
fi

migrate() { wr d1 migrations apply DB --remote --env "$ENV"; }
if wr d1 info edgetrack --env "$ENV" >/dev/null 2>&1; then
  say "applying D1 migrations"
  CI=true migrate
fi
say "deploying"
wr deploy --env "$ENV"
say "applying D1 migrations (a first deploy has just created the database)"
CI=true migrate
say "done: wrangler printed the Worker's address above"
