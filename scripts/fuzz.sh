#!/usr/bin/env bash
# Fuzzes every ingest-core target (ingest-core/fuzz) for a bounded time, one
# after another on one core: `scripts/fuzz.sh [seconds per target] [target…]`,
# 60 s each by default (`make fuzz`). Needs nightly Rust; installs cargo-fuzz
# when it is missing.
#
# Corpus: ingest-core/fuzz/corpus/<target>/ holds the committed seeds
# (seed-*), regressions (regression-*) and a set cover, by edge coverage, of
# every input found so far; the full working corpus lives in
# ingest-core/fuzz/target/scratch/ and is not committed.
# A crash, timeout or out-of-memory input is copied into the target's corpus
# folder as regression-<name>, so `cargo test -p ingest-core`
# (tests/corpus_replay.rs) fails on it until it is fixed; the script then
# exits 1. Logs: ingest-core/fuzz/target/logs/<target>.log.
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/ingest-core/fuzz"
cd "$fuzz"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Release with debug assertions (overflow checks) and AddressSanitizer.
build_flags=(-O -a)
echo "building ${#targets[@]} fuzz targets"
cargo +nightly fuzz build "${build_flags[@]}" >"$fuzz/target/build.log" 2>&1 \
  || { cat "$fuzz/target/build.log"; exit 1; }

# One input may take 10 s and 512 MB in one allocation (2 GB in all);
# inputs up to 4 KiB, so a minute explores many.
libfuzzer_flags=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=4096
  -dict="$fuzz/json.dict" -print_final_stats=1)

mkdir -p target/logs
status=0
failed=()
printf '%-16s %14s %8s  %s\n' target executions corpus result
for t in "${targets[@]}"; do
  work="target/scratch/$t"
  mkdir -p "$work" "corpus/$t" "artifacts/$t"
  log="target/logs/$t.log"
  before="$(ls "artifacts/$t" | sort)"
  result=ok
  # New inputs go to the working corpus (the first folder).
  if ! cargo +nightly fuzz run "${build_flags[@]}" "$t" "$work" "corpus/$t" -- \
      "${libfuzzer_flags[@]}" -max_total_time="$seconds" >"$log" 2>&1; then
    result="FAILED (see $log)"
    status=1
    failed+=("$t")
  fi
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)"
  # The committed corpus: the seeds and regressions, plus a set cover of
  # everything seen by edge coverage (so it stays small and does not grow
  # with every run).
  fresh="target/minimized/$t"
  rm -rf "$fresh" && mkdir -p "$fresh"
  find "corpus/$t" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'regression-*' \) -exec cp {} "$fresh/" \;
  if cargo +nightly fuzz run "${build_flags[@]}" "$t" "$fresh" "corpus/$t" "$work" -- \
      -set_cover_merge=1 -use_counters=0 -max_len=4096 -timeout=10 >>"$log" 2>&1 \
      && [ -n "$(ls -A "$fresh")" ]; then
    find "corpus/$t" -maxdepth 1 -type f -delete
    cp "$fresh"/* "corpus/$t/"
  fi
  for found in $(comm -13 <(echo "$before") <(ls "artifacts/$t" | sort)); do
    cp "artifacts/$t/$found" "corpus/$t/regression-$found"
    result="FAILED: corpus/$t/regression-$found (see $log)"
    status=1
    failed+=("$t")
  done
  printf '%-16s %14s %8s  %s\n' "$t" "${execs:-?}" "$(ls "corpus/$t" | wc -l)" "$result"
done
if [ "$status" -ne 0 ]; then
  echo "fuzzing found failures in: $(printf '%s\n' "${failed[@]}" | sort -u | tr '\n' ' ')"
  echo "reproduce in ingest-core/fuzz with 'cargo +nightly fuzz run <target> corpus/<target>/regression-…'," \
       "fix, and add a regression unit test in ingest-core"
fi
exit "$status"
