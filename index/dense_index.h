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
// Scores: inner product `<q,d>`, or for L2 `-||q-d||^2` (larger is better).
//
// Thread safety: const methods may run concurrently with each other; mutating methods need
// exclusive access (the engine holds its collection lock).
#pragma once

#include <cstdint>
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

  // Adds `vector` (size dim) under `id`, replacing any vector already stored for it.
  void Add(uint64_t id, std::span<const float> vector);
  // Removes `id`; false when absent. O(dim): the last vector moves into the hole.
  bool Remove(uint64_t id);
  bool Contains(uint64_t id) const { return slot_of_.count(id) != 0; }
  // The stored vector (size dim), or an empty span when absent.
  std::span<const float> Vector(uint64_t id) const;

  // Exact score of `query` (size dim) against the stored vector of `id`; false when absent.
  bool Score(std::span<const float> query, uint64_t id, float* score) const;

  // Top-k for each of `num_queries` queries (`queries` is size num_queries*dim), best first.
  std::vector<std::vector<ScoredId>> Search(std::span<const float> queries, size_t num_queries,
                                            size_t k) const;

 private:
  void PushBlock(const float* ips, size_t nq, size_t d0, size_t nd, const float* query_norms, TopK* tops) const;
  void SearchSmallBatch(const float* queries, size_t nq, size_t k, const float* query_norms,
                        std::vector<std::vector<ScoredId>>* out) const;

  uint32_t dim_;
  Metric metric_;
  std::vector<float> data_;    // size size()*dim, slot-major
  std::vector<float> norms_;   // squared norms per slot (used by L2)
  std::vector<uint64_t> ids_;  // id per slot
  std::unordered_map<uint64_t, uint32_t> slot_of_;
};

}  // namespace m3vdb::index
