#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: install packages, build, run every ctest
# test (including the fuzz corpus replays and fault-injection tests); then the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer; then the concurrency tests under
# ThreadSanitizer; then every libFuzzer target for a bounded time (docs/reliability.md).
# M3VDB_SKIP_SANITIZERS=1 runs only the plain build. M3VDB_FUZZ_SECONDS sets the time per fuzz
# target (default 30; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs="$(nproc)"

echo "== build (RelWithDebInfo) and test =="
scripts/build.sh default
ctest --preset default -j "$jobs"

if [ "${M3VDB_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build with ASan+UBSan and test =="
  scripts/build.sh asan
  ctest --preset asan -j "$jobs"

  echo "== build with TSan and run the concurrency tests =="
  cmake --preset tsan
  cmake --build --preset tsan -j "$jobs" --target engine_tests net_tests
  ctest --preset tsan -j "$jobs"

  if [ "${M3VDB_FUZZ_SECONDS:-30}" != "0" ]; then
    echo "== libFuzzer targets (clang, ASan+UBSan), ${M3VDB_FUZZ_SECONDS:-30}s each =="
    scripts/run-fuzz.sh "${M3VDB_FUZZ_SECONDS:-30}"
  fi
fi
echo "all tests passed"
