#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: install packages, build, then
#  1. export Fashion-MNIST (Debian's dataset-fashion-mnist) as train.npy (60,000 x 784) and
#     test.npy (10,000 x 784),
#  2. `m3vdb build` a database from train.npy with the learned index (IVF-PQ trained by
#     Distill-VQ), printing progress and its own recall check,
#  3. answer the 10,000 test queries through the library and through the HTTP server, and print
#     recall@10 against brute force and queries/s for both, beside FAISS's IVF-PQ with plain
#     k-means codebooks of the same size.
# Everything is written to a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
./build/m3vdb info
work="$(mktemp -d "${TMPDIR:-/tmp}/m3vdb-main.XXXXXX")"
trap 'rm -rf "$work"' EXIT
./build/m3vdb bench fashion-mnist --metric l2 --export-npy "$work"
./build/m3vdb build --input "$work/train.npy" --collection fashion_mnist --out "$work/db" --metric l2 \
  --nlist 256 --pq-m 16 --epochs 4 --nprobe 16
./build/m3vdb inspect "$work/db"
./build/m3vdb bench fashion-mnist --metric l2 --built "$work/db" --collection fashion_mnist
