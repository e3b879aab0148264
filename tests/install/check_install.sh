#!/usr/bin/env bash
# Installs m3vdb from a build directory into a temporary prefix, builds examples/embedded
# against it with find_package(m3vdb), and runs the example (with the fixture model, so the
# embedder inside libm3vdb.so is exercised too).
# Usage: check_install.sh <source dir> <build dir>
set -euo pipefail
src="$1"
build="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/examples/embedded" -B "$work/example" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/example" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib:$work/prefix/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}" \
  "$work/example/embedded_example" "$work/db" "$src/tests/embedder/fixtures/tiny"
