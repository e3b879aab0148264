// The FAISS side of quant: k-means initialisation of Codebooks (what FAISS, Milvus and LanceDB
// train: IVF k-means, PQ k-means on residuals, optionally OPQ) and export of Codebooks to a
// FAISS index file that stock FAISS (`faiss.read_index`) loads and searches. FAISS exceptions
// are caught here and returned as Status.
#pragma once

#include <memory>
#include <string>

#include "quant/codebooks.h"

namespace faiss {
struct Index;
}

namespace m3vdb::quant {

// Trains k-means codebooks on n vectors (size n*dim). With params.opq an OPQ rotation is
// learned first by FAISS's OPQMatrix (slow: about 20 minutes on 60k x 784 on 2 cores; m3vdb's
// own, quant/opq.h, is several times faster but measured lower recall, docs/benchmarks.md). Deterministic for a fixed params.seed. The IVF and
// PQ k-means are L2 for both metrics (quant/codebooks.h says why). For inner product on vectors
// that are all unit length (AllUnitLength) the result has params.unit_norm set.
Result<Codebooks> TrainKMeans(const float* x, size_t n, const IvfPqParams& params);

// Whether every one of n vectors (n*dim floats) has squared length within kUnitNormTolerance
// of 1 (false for n = 0 or any non-finite value).
inline constexpr double kUnitNormTolerance = 1e-3;
bool AllUnitLength(const float* x, size_t n, size_t dim);

// An in-memory FAISS index (IndexIVFPQ, or IndexPreTransform(OPQ) + IndexIVFPQ when the
// codebooks have a rotation) holding `books` and the n vectors x with ids 0..n-1 (x may be
// null when n == 0). The vectors go to Codebooks::Assign's lists (for inner product FAISS's own
// add would pick the largest <x, c> instead), encoded by FAISS as Codebooks::Encode encodes.
// Unit-length inner-product codebooks (params.unit_norm) give a METRIC_L2 index: FAISS then
// ranks by ||q - x^||^2, which for a unit-length query is m3vdb's ranking (its scores are
// distances d, and 1 - d / 2 the inner-product estimate m3vdb returns).
Result<std::unique_ptr<faiss::Index>> BuildFaissIndex(const Codebooks& books, const float* x, size_t n);

// Writes an IndexIVFPQ (IndexPreTransform(OPQ) + IndexIVFPQ when the codebooks have a
// rotation) holding `books` and the n vectors x (ids 0..n-1) to `path`.
Status ExportFaissIndex(const Codebooks& books, const float* x, size_t n, const std::string& path);

}  // namespace m3vdb::quant
