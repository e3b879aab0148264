#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "index/dense_index.h"
#include "index/detail/dot_kernel.h"

namespace m3vdb::index {
namespace {

constexpr size_t kQueryBlock = 256;
constexpr size_t kDocBlock = 4096;
// Small batches: stored vectors per DotBlock call (its scores stay in L1/L2), and the fewest
// stored vectors worth a thread of their own.
constexpr size_t kSmallDocBlock = 512;
constexpr size_t kMinDocsPerThread = 16384;

float SquaredNorm(const float* v, size_t dim) {
  return cblas_sdot(static_cast<int>(dim), v, 1, v, 1);
}

}  // namespace

FlatDenseIndex::FlatDenseIndex(uint32_t dim, Metric metric) : dim_(dim), metric_(metric) {}

size_t FlatDenseIndex::memory_bytes() const {
  return data_.capacity() * sizeof(float) + norms_.capacity() * sizeof(float) +
         ids_.capacity() * sizeof(uint64_t) + slot_of_.size() * (sizeof(uint64_t) + sizeof(uint32_t) + 16);
}

void FlatDenseIndex::Add(uint64_t id, std::span<const float> vector) {
  auto it = slot_of_.find(id);
  size_t slot;
  if (it != slot_of_.end()) {
    slot = it->second;
  } else {
    slot = ids_.size();
    ids_.push_back(id);
    norms_.push_back(0);
    data_.resize(data_.size() + dim_);
    slot_of_.emplace(id, static_cast<uint32_t>(slot));
  }
  std::memcpy(data_.data() + slot * dim_, vector.data(), dim_ * sizeof(float));
  norms_[slot] = SquaredNorm(vector.data(), dim_);
}

bool FlatDenseIndex::Remove(uint64_t id) {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  const size_t slot = it->second;
  const size_t last = ids_.size() - 1;
  slot_of_.erase(it);
  if (slot != last) {
    std::memcpy(data_.data() + slot * dim_, data_.data() + last * dim_, dim_ * sizeof(float));
    norms_[slot] = norms_[last];
    ids_[slot] = ids_[last];
    slot_of_[ids_[slot]] = static_cast<uint32_t>(slot);
  }
  ids_.pop_back();
  norms_.pop_back();
  data_.resize(last * dim_);
  return true;
}

std::span<const float> FlatDenseIndex::Vector(uint64_t id) const {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return {};
  return {data_.data() + size_t{it->second} * dim_, dim_};
}

bool FlatDenseIndex::Score(std::span<const float> query, uint64_t id, float* score) const {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  const float* d = data_.data() + size_t{it->second} * dim_;
  const float ip = cblas_sdot(static_cast<int>(dim_), query.data(), 1, d, 1);
  if (metric_ == Metric::kInnerProduct) {
    *score = ip;
  } else {
    *score = 2 * ip - norms_[it->second] - SquaredNorm(query.data(), dim_);
  }
  return true;
}

// Pushes one block of scores (`ips` holds <q, d> for queries [0, nq) x docs [d0, d0+nd), row
// q at ips + q*nd) into the selectors.
void FlatDenseIndex::PushBlock(const float* ips, size_t nq, size_t d0, size_t nd, const float* query_norms,
                               TopK* tops) const {
  for (size_t qi = 0; qi < nq; ++qi) {
    const float* row = ips + qi * nd;
    TopK& top = tops[qi];
    if (metric_ == Metric::kInnerProduct) {
      for (size_t j = 0; j < nd; ++j)
        if (row[j] >= top.threshold()) top.Push(ids_[d0 + j], row[j]);
    } else {
      const float qn = query_norms[qi];
      for (size_t j = 0; j < nd; ++j) {
        const float s = 2 * row[j] - norms_[d0 + j] - qn;
        if (s >= top.threshold()) top.Push(ids_[d0 + j], s);
      }
    }
  }
}

std::vector<std::vector<ScoredId>> FlatDenseIndex::Search(std::span<const float> queries,
                                                          size_t num_queries, size_t k) const {
  std::vector<std::vector<ScoredId>> out(num_queries);
  const size_t n = ids_.size();
  if (n == 0 || k == 0) return out;
  std::vector<float> query_norms(num_queries, 0.0f);
  if (metric_ == Metric::kL2)
    for (size_t q = 0; q < num_queries; ++q) query_norms[q] = SquaredNorm(queries.data() + q * dim_, dim_);
  if (num_queries <= detail::kDotGroup) {
    SearchSmallBatch(queries.data(), num_queries, k, query_norms.data(), &out);
    return out;
  }

  std::vector<float> block(std::min(kQueryBlock, num_queries) * std::min(kDocBlock, n));
  for (size_t q0 = 0; q0 < num_queries; q0 += kQueryBlock) {
    const size_t nq = std::min(kQueryBlock, num_queries - q0);
    std::vector<TopK> tops(nq, TopK(k));
    for (size_t d0 = 0; d0 < n; d0 += kDocBlock) {
      const size_t nd = std::min(kDocBlock, n - d0);
      // block[nq x nd] = Q[q0:q0+nq] * D[d0:d0+nd]^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(nd),
                  static_cast<int>(dim_), 1.0f, queries.data() + q0 * dim_, static_cast<int>(dim_),
                  data_.data() + d0 * dim_, static_cast<int>(dim_), 0.0f, block.data(), static_cast<int>(nd));
      PushBlock(block.data(), nq, d0, nd, query_norms.data() + q0, tops.data());
    }
    for (size_t qi = 0; qi < nq; ++qi) out[q0 + qi] = tops[qi].Take();
  }
  return out;
}

// A few queries: one pass over the stored vectors computes every query's scores (DotBlock),
// split into contiguous ranges over as many threads as BLAS may use; each range keeps its own
// selectors, merged at the end. The result is the same top-k as one pass (ties go to the
// smaller id either way).
void FlatDenseIndex::SearchSmallBatch(const float* queries, size_t nq, size_t k, const float* query_norms,
                                      std::vector<std::vector<ScoredId>>* out) const {
  const size_t n = ids_.size();
  const size_t threads = std::clamp<size_t>(n / kMinDocsPerThread, 1, std::max(1, openblas_get_num_threads()));
  std::vector<std::vector<TopK>> tops(threads, std::vector<TopK>(nq, TopK(k)));
  auto scan = [&](size_t part) {
    const size_t begin = n * part / threads, end = n * (part + 1) / threads;
    std::vector<float> ips(nq * kSmallDocBlock);
    for (size_t d0 = begin; d0 < end; d0 += kSmallDocBlock) {
      const size_t nd = std::min(kSmallDocBlock, end - d0);
      detail::DotBlock(data_.data() + d0 * dim_, nd, dim_, queries, nq, ips.data());
      PushBlock(ips.data(), nq, d0, nd, query_norms, tops[part].data());
    }
  };
  std::vector<std::thread> helpers;
  for (size_t part = 1; part < threads; ++part) helpers.emplace_back(scan, part);
  scan(0);
  for (std::thread& t : helpers) t.join();
  for (size_t qi = 0; qi < nq; ++qi) {
    TopK merged(k);
    for (size_t part = 0; part < threads; ++part)
      for (const ScoredId& s : tops[part][qi].Take()) merged.Push(s.id, s.score);
    (*out)[qi] = merged.Take();
  }
}

}  // namespace m3vdb::index
