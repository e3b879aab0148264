// IvfPqIndex: the quantized dense index over one generation of learned codebooks
// (quant::Codebooks, trained by Distill-VQ). Inverted lists hold (id, PQ code); a query probes
// its `nprobe` best lists and scores every code there with per-query lookup tables:
//   ip:  <q', c_l> + sum_j T_j[code_j],            T_j[k] = <q'_j, C_j[k]>
//   l2:  -||q' - c_l||^2 + sum_j U_lj[code_j],      U_lj[k] = 2<q'_j, C_j[k]> - (||C_j[k]||^2 + 2<c_lj, C_j[k]>)
// (the bracket is precomputed per list). Unit-length inner-product codebooks
// (Codebooks::params.unit_norm) search q' / ||q'|| by the l2 formula and return the
// inner-product estimate ||q|| (2 + l2 score) / 2 (quant/codebooks.h says why). Scores are
// approximate: callers rerank with exact vectors. The code scan is index/detail/pq_scan (eight codes side by side, no gathers).
//
// Thread safety: const methods may run concurrently; Add/Remove need exclusive access. The
// codebooks are shared and immutable, so a new generation is built on the side and swapped.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "index/scored.h"
#include "quant/codebooks.h"

namespace m3vdb::index {

class IvfPqIndex {
 public:
  explicit IvfPqIndex(std::shared_ptr<const quant::Codebooks> books);

  const quant::Codebooks& codebooks() const { return *books_; }
  std::shared_ptr<const quant::Codebooks> shared_codebooks() const { return books_; }
  size_t size() const { return where_.size(); }
  size_t memory_bytes() const;

  // Adds an encoded entry (list < nlist, code of size m), replacing any entry of `id`.
  void Add(uint64_t id, uint32_t list, const uint8_t* code);
  bool Remove(uint64_t id);
  bool Contains(uint64_t id) const { return where_.count(id) != 0; }

  // Approximate top-k for each of num_queries queries (size num_queries*dim), best first.
  std::vector<std::vector<ScoredId>> Search(std::span<const float> queries, size_t num_queries, size_t k,
                                            size_t nprobe) const;

 private:
  struct List {
    std::vector<uint64_t> ids;
    std::vector<uint8_t> codes;  // ids.size() * m
  };
  std::shared_ptr<const quant::Codebooks> books_;
  std::vector<List> lists_;
  std::vector<float> list_terms_;  // l2: nlist x m x ksub precomputed ||C||^2 + 2<c_l, C>
  std::vector<float> centroid_norms_;  // l2: ||c_l||^2, so a search need not recompute them
  std::unordered_map<uint64_t, std::pair<uint32_t, uint32_t>> where_;  // id -> (list, position)
};

}  // namespace m3vdb::index
