// index: in-memory indexes over one collection's vectors. Sees FAISS and BLAS; nothing else in
// m3vdb does except quant/.
//
// `FlatDenseIndex` is the exact dense index: vectors kept contiguous (row-major, float32),
// searched by brute force. A batch of more than 8 queries is one BLAS GEMM per (query block x
// document block), so it costs matrix-multiply speed rather than one pass over memory per
// query. Up to 8 queries (a single search, or a few coalesced ones) are bound by the pass over
// the stored vectors instead, where GEMM's packing (a copy of every stored vector) would double
// the cost: they are scored by a kernel that reads each stored vector once for all of them,
// over as many threads as BLAS is set to use (openblas_set_num_threads).
// Small batches first scan an int8 copy of the stored vectors (a quarter of the bytes; one scale
// per vector; exact integer inner products, AVX512-VNNI `vpdpbusd` where the CPU has it) and
// rescore in float32 only the documents whose proven error bound lets them reach the top-k, so
// results are the same ids and the same float32 scores as the float32 pass (the proof is in
// flat_dense_index.cc); when too many documents would need the rescoring they take the float32
// pass. The copy costs 1 byte per dimension per vector (padded to a multiple of 4 dimensions)
// plus 12 bytes per vector, about a quarter more than the float32 data.
// Scores: inner product `<q,d>`, or for L2 `-||q-d||^2` (larger is better).
//
// Thread safety: const methods may run concurrently with each other; mutating methods need
// exclusive access (the engine holds its collection lock).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "index/scored.h"
#include "m3vdb/metric.h"

namespace m3vdb::index {

class FlatDenseIndex {
 public:
  FlatDenseIndex(uint32_t dim, Metric metric);

  uint32_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  size_t size() const { return ids_.size(); }
  size_t memory_bytes() const;

  // Room for `n` vectors in all, so that loading n vectors does not reallocate as it goes.
  void Reserve(size_t n);
  // Adds `vector` (size dim) under `id`, replacing any vector already stored for it.
  void Add(uint64_t id, std::span<const float> vector);
  // Removes `id`; false when absent. O(dim): the last vector moves into the hole.
  bool Remove(uint64_t id);
  bool Contains(uint64_t id) const { return slot_of_.count(id) != 0; }
  // The stored vector (size dim), or an empty span when absent.
  std::span<const float> Vector(uint64_t id) const;

  // Exact score of `query` (size dim) against the stored vector of `id`; false when absent.
  bool Score(std::span<const float> query, uint64_t id, float* score) const;
  // The same for many ids at once (the rerank of a query's candidates): out[i] is the score of
  // ids[i], or empty when absent. The query's norm is computed once.
  void Score(std::span<const float> query, std::span<const uint64_t> ids, std::optional<float>* out) const;

  // Top-k for each of `num_queries` queries (`queries` is size num_queries*dim), best first.
  std::vector<std::vector<ScoredId>> Search(std::span<const float> queries, size_t num_queries,
                                            size_t k) const;

  // How batches are searched. kAuto and kQuantizedFirst take groups of up to 8 queries through
  // the int8-first search; kFloat32 takes one float32 pass (batches of up to 8) or GEMMs (larger
  // ones). Up to 8 queries the results are identical either way; larger float32 batches use
  // BLAS's GEMM, whose float rounding may differ in the last bits of a score.
  enum class SmallBatchPath {
    kAuto,            // int8 first with float32 rescoring, or float32 when that would rescore too many
    kFloat32,         // the float32 pass
    kQuantizedFirst,  // int8 first whatever the number of candidates (for tests and benchmarks)
  };
  void set_small_batch_path(SmallBatchPath path) { small_batch_path_ = path; }
  // Documents rescored in float32 by the last int8-first search on this thread (a diagnostic for
  // tests and benchmarks; 0 when it took the float32 pass).
  static size_t last_rescored();

 private:
  void PushBlock(const float* ips, size_t nq, size_t d0, size_t nd, const float* query_norms, TopK* tops) const;
  void SearchSmallBatch(const float* queries, size_t nq, size_t k, const float* query_norms,
                        std::vector<std::vector<ScoredId>>* out) const;
  // The int8-first search; false (out untouched) when it decides the float32 pass is better.
  bool SearchQuantizedFirst(const float* queries, size_t nq, size_t k, const float* query_norms, bool force,
                            std::vector<std::vector<ScoredId>>* out) const;
  // Fills the int8 copy and bound terms of `slot` from its float32 vector and norm.
  void SetQuantized(size_t slot);
  // Threads for a pass over all documents of a small batch.
  size_t ScanThreads() const;

  uint32_t dim_;
  Metric metric_;
  std::vector<float> data_;    // size size()*dim, slot-major
  std::vector<float> norms_;   // squared norms per slot (used by L2)
  std::vector<uint64_t> ids_;  // id per slot
  // int8 copy (x^ = scale * codes) and error-bound terms (see flat_dense_index.cc), per slot.
  size_t padded_dim_;              // detail::Int8PaddedDim(dim)
  std::vector<uint8_t> codes_;     // whole blocks of detail::kInt8Lanes slots (int8_kernel.h's layout)
  std::vector<float> scale_;       // detail::QuantizeInt8's scale
  std::vector<float> err_term_;    // ||x - x^||_2 + gamma ||x^||_2, rounded up
  std::vector<float> norm_term_;   // ||x||_2, rounded up
  size_t unbounded_ = 0;           // slots whose terms are not finite (the int8 path is off then)
  SmallBatchPath small_batch_path_ = SmallBatchPath::kAuto;
  std::unordered_map<uint64_t, uint32_t> slot_of_;
};

}  // namespace m3vdb::index
