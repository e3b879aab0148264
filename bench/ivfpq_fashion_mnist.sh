#!/usr/bin/env bash
# The learned IVF-PQ benchmark on Fashion-MNIST (docs/benchmarks.md, "Learned IVF-PQ"): runs
# build/bench/ivfpq_bench for both metrics (L2 on raw vectors, inner product on L2-normalized
# ones), sharing a k-means cache so that Distill-VQ starts from the very codebooks the FAISS
# baseline rows use, and appends everything to a log.
# Usage: bench/ivfpq_fashion_mnist.sh [log]   (env: M, NLIST, NPROBE, METHODS, QUERIES, DEVICE, NICE)
set -euo pipefail
cd "$(dirname "$0")/.."
log="${1:-ivfpq-fashion-mnist.log}"
cache="${CACHE:-build/ivfpq-cache}"
mkdir -p "$cache"
for metric in l2 ip; do
  echo "=== metric $metric, started $(date -u +%FT%TZ)" | tee -a "$log"
  nice -n "${NICE:-10}" build/bench/ivfpq_bench --metric "$metric" --m "${M:-16,28,56}" --nlist "${NLIST:-256,1024}" \
    --nprobe "${NPROBE:-1,4,16,64}" --methods "${METHODS:-ivfpq,opq,distill}" --queries "${QUERIES:-10000}" \
    --device "${DEVICE:-auto}" --init-cache "$cache" 2>&1 | tee -a "$log"
done
