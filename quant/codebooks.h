// quant: IVF-PQ codebooks and how they are learned. Sees FAISS and BLAS; only index/ uses it.
//
// `Codebooks` is an IVF-PQ quantizer as plain data: an optional rotation R (OPQ), `nlist` IVF
// centroids and `m` PQ sub-codebooks of 2^nbits codewords over the residual x' - c. It is the
// same model as faiss::IndexIVFPQ (by_residual), so it can be exported to a FAISS file and
// gives the same codes:
//   x' = R x (identity without OPQ)
//   list(x) = argmin ||x' - c||^2, for both metrics (see below)
//   code_j(x) = argmin_k ||r_j - C_j[k]||^2 with r = x' - c_list (PQ always encodes by L2)
//   reconstruction x^ = c_list + concat_j C_j[code_j]; score = <q', x^> or -||q' - x^||^2.
//   lists probed: the nprobe best by CoarseScores, <q', c> (inner product) or -||q' - c||^2 (L2).
// For inner product a document still goes to its L2-nearest centroid: <q, x^> = <q, c> + <q, r^>
// holds whichever list x is in, and the nearest centroid leaves the smallest residual for PQ to
// encode. (Assigning by the largest <x, c>, as FAISS's METRIC_INNER_PRODUCT does, sends documents
// to large-norm centroids far from them: on L2-normalised Fashion-MNIST its residuals are larger
// and its recall@10 about half; docs/benchmarks.md.) The k-means that initialises the codebooks
// (quant/faiss_bridge.h) is L2 k-means for both metrics for the same reason.
//
// Unit-length inner product (`params.unit_norm`, set by TrainKMeans when every training vector
// has length 1, as BGE-M3's dense vectors do): the codebooks then work in L2 geometry
// (`geometry()`): lists probed by -||q_u - c||^2, documents scored by the L2 estimate
// s = <q, x^> + (1 - ||x^||^2) / 2 = ||q|| (2 - ||q_u - x^||^2) / 2 with q_u = q / ||q||, and
// Distill-VQ trains that estimate. Its error is <q - ||q|| x, x - x^>-sized, small for a query's
// near neighbours, where the plain <q, x^> errs by <q, x - x^>: on normalised Fashion-MNIST
// recall@10 0.62 against 0.27 at 28 bytes (docs/benchmarks.md). For inner product with vectors
// of any length the plain estimate stays (nothing per document is stored beyond the code). A
// vector added later that is not unit length is still indexed; its codes-only score is off by
// (||x||^2 - 1) ||q|| / 2, which the exact rerank of the top candidates removes.
// Values are immutable once built; const methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/metric.h"
#include "m3vdb/status.h"

namespace m3vdb::quant {

struct IvfPqParams {
  uint32_t dim = 0;
  Metric metric = Metric::kInnerProduct;
  uint32_t nlist = 256;
  uint32_t m = 16;      // PQ sub-quantizers; must divide dim
  uint32_t nbits = 8;   // bits per sub-code (only 8 is supported: one byte per sub-code)
  bool opq = false;     // learn an OPQ rotation at k-means initialisation (kept fixed afterwards)
  bool unit_norm = false;  // inner product on unit-length vectors, searched in L2 geometry (above)
  uint64_t seed = 1234;

  // The metric the codebooks compute in: L2 for L2 and for unit-length inner product.
  Metric geometry() const { return metric == Metric::kL2 || unit_norm ? Metric::kL2 : Metric::kInnerProduct; }
  uint32_t ksub() const { return 1u << nbits; }
  uint32_t dsub() const { return m ? dim / m : 0; }
  uint32_t code_size() const { return m; }
  Status Validate() const;
};

struct Codebooks {
  IvfPqParams params;
  std::vector<float> rotation;   // dim x dim row-major (x' = R x); empty = identity
  std::vector<float> centroids;  // nlist x dim, in the rotated space
  std::vector<float> pq;         // m x ksub x dsub, layout of faiss ProductQuantizer::centroids
  uint64_t generation = 0;       // increases with every retraining of a collection

  // Rotates n vectors (size n*dim) into `out` (size n*dim); a copy without rotation.
  void Rotate(const float* x, size_t n, float* out) const;
  // Coarse scores of n rotated vectors against every centroid (out: n x nlist), larger is better,
  // in geometry() (unit_norm: pass unit-length queries).
  // L2 needs the centroids' squared norms: pass them (CentroidNorms()) when calling often, or
  // leave `centroid_norms` null to have them computed for this call.
  void CoarseScores(const float* xr, size_t n, float* out, const float* centroid_norms = nullptr) const;
  // Squared norm of every centroid (size nlist).
  std::vector<float> CentroidNorms() const;
  // The list of each of n rotated vectors (lists: size n): its L2-nearest centroid, whatever the
  // metric (see above). `centroid_norms` as for CoarseScores.
  void Assign(const float* xr, size_t n, uint32_t* lists, const float* centroid_norms = nullptr) const;
  // Encodes n vectors: lists (size n) and codes (size n*code_size).
  void Encode(const float* x, size_t n, uint32_t* lists, uint8_t* codes) const;
  // Encodes n rotated vectors whose lists are given.
  void EncodeWithLists(const float* xr, size_t n, const uint32_t* lists, uint8_t* codes) const;
  // Reconstruction in the rotated space (out: size dim).
  void Decode(uint32_t list, const uint8_t* code, float* out) const;

  // Versioned binary form (docs/formats.md, "codebooks"); Parse checks every size.
  std::string Serialize() const;
  static Result<Codebooks> Parse(std::string_view bytes);
  Status Validate() const;
};

}  // namespace m3vdb::quant
