#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan) and runs each one for a
# bounded time, starting from its committed corpus (tests/fuzz/corpus/<target>/). New inputs
# the fuzzer finds go to build-fuzz/corpus/<target>/ (not committed); a crash stops the script
# with the crashing input saved as build-fuzz/crash-<target>-*.
# Usage: scripts/run-fuzz.sh [seconds per target, default 30] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_http fuzz_json fuzz_config fuzz_safetensors fuzz_torch fuzz_records fuzz_codebooks)

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${JOBS:-$(nproc)}"

export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"   # leaks: the targets keep one database open
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
summary=()
for t in "${targets[@]}"; do
  work="build-fuzz/corpus/$t"
  mkdir -p "$work"
  log="build-fuzz/$t.log"
  echo "== fuzz $t for ${seconds}s =="
  if ! "build-fuzz/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$t-" \
        "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz $t: FAILED (input saved as build-fuzz/crash-$t-*)"
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')"
  summary+=("$t: $runs executions in ${seconds}s, coverage $cov edges, no crash")
  echo "${summary[-1]}"
done
echo "== fuzz summary =="
printf '%s\n' "${summary[@]}"
