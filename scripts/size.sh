#!/usr/bin/env bash
# The tracker's download size: the bundled loader and glue (t.js) and the
# module it loads (t.<hash>.wasm, the same bytes as t.wasm) that `make
# tracker` writes (the default script; the variant t.full.* is reported
# after the budget line), raw, gzip -9 and, when the `brotli` binary is
# installed, brotli -q 11; then the total against the budget. gzip runs
# with -n: a server's gzip stream carries no file name, so neither does the
# count. Exits 1 when the gzip total is over the hard budget, or when t.js
# names a module that is not t.wasm.
# Usage: scripts/size.sh [DIR]   (DIR defaults to edge-worker/public)
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${1:-edge-worker/public}
if [ ! -f "$DIR/t.js" ]; then
  echo "size: $DIR/t.js is missing; run 'make tracker' first" >&2
  exit 2
fi
# The content-hashed name t.js loads (Makefile: hashed_wasm).
module=$(grep -o '"t\.[0-9a-f]\{10\}\.wasm"' "$DIR/t.js" | tr -d '"' | head -n1 || true)
if [ -z "$module" ] || ! cmp -s "$DIR/$module" "$DIR/t.wasm"; then
  echo "size: t.js must load t.<hash>.wasm, a copy of t.wasm; it names '${module:-nothing}'" >&2
  exit 1
fi
FILES=(t.js "$module")
# Budgets for the gzip total, in bytes (1 KB = 1024 bytes).
HARD_BUDGET=$((8 * 1024))
TARGET=$((5 * 1024))

for f in "${FILES[@]}"; do
  if [ ! -f "$DIR/$f" ]; then
    echo "size: $DIR/$f is missing; run 'make tracker' first" >&2
    exit 2
  fi
done

have_brotli=false
if command -v brotli >/dev/null; then have_brotli=true; fi

kb() { awk -v b="$1" 'BEGIN { printf "%.2f KB", b / 1024 }'; }

printf '%-18s %10s %10s' file raw gzip
$have_brotli && printf ' %10s' brotli
printf '\n'

total_raw=0 total_gz=0 total_br=0
for f in "${FILES[@]}"; do
  raw=$(wc -c <"$DIR/$f")
  gz=$(gzip -9 -n -c "$DIR/$f" | wc -c)
  total_raw=$((total_raw + raw))
  total_gz=$((total_gz + gz))
  printf '%-18s %10d %10d' "$f" "$raw" "$gz"
  if $have_brotli; then
    br=$(brotli -q 11 -c "$DIR/$f" | wc -c)
    total_br=$((total_br + br))
    printf ' %10d' "$br"
  fi
  printf '\n'
done
printf '%-18s %10d %10d' total "$total_raw" "$total_gz"
$have_brotli && printf ' %10d' "$total_br"
printf '\n'

echo "gzip total $(kb "$total_gz"): budget $(kb "$HARD_BUDGET") (hard), target $(kb "$TARGET")"
# The variant with every option (tracker-wasm/README.md): reported, no budget.
if [ -f "$DIR/t.full.js" ] && [ -f "$DIR/t.full.wasm" ]; then
  full=$(( $(gzip -9 -n -c "$DIR/t.full.js" | wc -c) + $(gzip -9 -n -c "$DIR/t.full.wasm" | wc -c) ))
  echo "t.full.js + t.full.wasm (every option): $full B gzip ($(kb "$full")), outside the budget"
fi
if [ "$total_gz" -gt "$HARD_BUDGET" ]; then
  echo "size: over the hard budget by $((total_gz - HARD_BUDGET)) bytes" >&2
  exit 1
fi
