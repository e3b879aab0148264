// Recall of a set of codebooks on held-out queries, measured the way the index searches once
// training ends: every document re-assigned to its nearest centroid and re-encoded, each query
// probing its `nprobe` nearest lists and ranking their documents by the score against the PQ
// reconstruction. The Distill-VQ trainer uses it to keep the best epoch (quant/distill_trainer.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/codebooks.h"

namespace m3vdb::quant::detail {

// Recall@k: the fraction of `truth` (nq x k, each query's exact top-k) found in the quantized
// top-k. `xr` (n x dim) and `qr` (nq x dim) are rotated (and, for unit_norm codebooks,
// unit-length queries); `exclude` (size nq, or null) names one document per query to leave out
// of the quantized ranking, as it was left out of the truth (-1 for none). Memory beyond the
// codes is bounded (documents are decoded a block at a time); OpenMP and OpenBLAS threads are used.
double HeldOutRecall(const Codebooks& books, const float* xr, size_t n, const float* qr, size_t nq,
                     const int64_t* exclude, const uint32_t* truth, size_t k, size_t nprobe);

}  // namespace m3vdb::quant::detail
