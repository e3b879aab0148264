#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: install packages, build, run every ctest
# test; then the same suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
# M3VDB_SKIP_SANITIZERS=1 runs only the plain build.
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
fi
echo "all tests passed"
