#!/usr/bin/env bash
# make bench: measures edgetrack beside the trackers and parsers it competes
# with, in one run, and writes BENCHMARKS.md (figures in bench/results/).
#   1 tracker bytes        bench/size.mjs     4 worker throughput  bench/worker.mjs
#   2 tracker page cost    bench/page.mjs     5 cost by batch size bench/worker.mjs
#   3 decode + validate    bench/decode.mjs   (criterion + callgrind in ingest-core/benches)
#   6 stats API, D1 bytes  bench/readmodel.mjs 7 consumer, read model on/off  bench/consumer.mjs
#   8 cost per event       bench/cost.mjs     9 opt-level per crate bench/profiles.mjs
#   10 worker size (deploy dry run) bench/deploy.mjs
# BENCH_SCALE=10m adds 10 M events to section 6 (about half an hour more).
# Usage: scripts/bench.sh [--smoke] [--only STEP,STEP]
#   --smoke: one tiny iteration of each, results in target/bench-smoke/,
#   BENCHMARKS.md untouched; exits non-zero when any step fails.
#   --only size,page: measure only those sections (then write the report);
#   the others keep their last full run's results, and the report says so.
# Needs the built tracker and worker (`make site worker`). Everything it
# starts listens on loopback, and every loop is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) MODE=smoke ;;
    --only) ONLY="${2:-}"; shift ;;
    *) echo "usage: scripts/bench.sh [--smoke] [--only STEP,STEP]" >&2; exit 2 ;;
  esac
  shift
done
# A hung step is stopped and counted as failed (seconds).
if [ "$MODE" = smoke ]; then STEP_LIMIT=240; else STEP_LIMIT=900; fi
# 10 M events take about half an hour to fill and measure.
if [ "${BENCH_SCALE:-}" = 10m ] && [ "$MODE" != smoke ]; then STEP_LIMIT=3600; fi

say() { printf '[bench] %s\n' "$*"; }

for f in node_modules/.bin/wrangler node_modules/.bin/esbuild node_modules/playwright-core/package.json; do
  if [ ! -e "$f" ]; then
    echo "bench: $f is missing; run 'make setup' first" >&2
    exit 2
  fi
done
for f in edge-worker/build/index.js edge-worker/public/t.js edge-worker/public/t.wasm; do
  if [ ! -f "$f" ]; then
    echo "bench: $f is missing; run 'make site worker' first" >&2
    exit 2
  fi
done

# Debian packages, installed only when missing.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The trackers we compare against, pinned by bench/package-lock.json, kept in
# bench/node_modules apart from the project's own; reinstalled only when the
# lock changes. None needs an install script.
stamp=bench/node_modules/.edgetrack-lock
if [ ! -f "$stamp" ] || ! cmp -s bench/package-lock.json "$stamp"; then
  say "installing the trackers to compare against (bench/package.json)"
  npm ci --prefix bench --no-audit --no-fund --ignore-scripts --loglevel=error
  cp bench/package-lock.json "$stamp"
fi

# The tracker and worker as they are now: other people's rebuilds during the
# run must not reload wrangler dev or change the tracker between sections.
snapshot=target/bench-work/edge-worker
rm -rf "$snapshot"
mkdir -p "$snapshot"
cp -Rp edge-worker/migrations edge-worker/build edge-worker/public "$snapshot/"
# Without the build command: the snapshot's build/ is what runs.
sed '/^  "build": /d' edge-worker/wrangler.jsonc >"$snapshot/wrangler.jsonc"
export BENCH_WORKER_DIR="$PWD/$snapshot"

export WRANGLER_SEND_METRICS=false
args=()
if [ "$MODE" = smoke ]; then
  args=(--smoke)
  export BENCH_OUT="$PWD/target/bench-smoke"
  rm -rf "$BENCH_OUT"
fi

# When and on what the run started, for the report's header.
out=${BENCH_OUT:-bench/results}
mkdir -p "$out"
dirty=false
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=true
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$ONLY" ]; then
  # A partial run keeps the last whole run's stamp for the other sections.
  previous="$(node -e 'const r = require(process.argv[1]); process.stdout.write(JSON.stringify(r.previous ?? r))' \
    "$PWD/$out/run.json" 2>/dev/null || echo null)"
  only_json="$(printf '%s' "$ONLY" | node -e 'process.stdout.write(JSON.stringify(require("fs").readFileSync(0, "utf8").split(",")))')"
  printf '{"started": "%s", "commit": "%s", "dirty": %s, "only": %s, "previous": %s}\n' "$started" "$commit" "$dirty" \
    "$only_json" "$previous" >"$out/run.json"
else
  printf '{"started": "%s", "commit": "%s", "dirty": %s}\n' "$started" "$commit" "$dirty" >"$out/run.json"
fi

passed=0
failed=0
failures=()
for step in size page decode worker readmodel consumer cost profiles deploy report; do
  if [ -n "$ONLY" ] && [ "$step" != report ] && ! [[ ",$ONLY," == *",$step,"* ]]; then continue; fi
  say "$step"
  started=$SECONDS
  if timeout --kill-after=10 "$STEP_LIMIT" node "bench/$step.mjs" "${args[@]}"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$step")
  fi
  say "$step took $((SECONDS - started)) s"
done

[ "$failed" -gt 0 ] && echo "bench: failed: ${failures[*]}" >&2
if [ "$MODE" = smoke ]; then
  echo "bench smoke: $passed passed, $failed failed"
else
  echo "bench: $passed passed, $failed failed (BENCHMARKS.md, bench/results/)"
fi
[ "$failed" -eq 0 ]
