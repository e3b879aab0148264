#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: install packages, build, then ingest
# Fashion-MNIST (60,000 x 784) into a new database in a temporary directory, answer the 10,000
# test queries, and print recall@10 against brute force and queries/s.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
./build/m3vdb info
./build/m3vdb bench fashion-mnist --metric l2
