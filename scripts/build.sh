#!/usr/bin/env bash
# Configures and builds one CMake preset (CMakePresets.json): default, release, asan, tsan.
# Usage: scripts/build.sh [preset] [extra cmake -D args...]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
shift || true
cmake --preset "$preset" "$@"
cmake --build --preset "$preset" -j "${JOBS:-$(nproc)}"
