#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "index/dense_index.h"

namespace m3vdb::index {
namespace {

constexpr size_t kQueryBlock = 256;
constexpr size_t kDocBlock = 4096;

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

std::vector<std::vector<ScoredId>> FlatDenseIndex::Search(std::span<const float> queries,
                                                          size_t num_queries, size_t k) const {
  std::vector<std::vector<ScoredId>> out(num_queries);
  const size_t n = ids_.size();
  if (n == 0 || k == 0) return out;
  std::vector<float> block(std::min(kQueryBlock, num_queries) * std::min(kDocBlock, n));
  std::vector<float> query_norms(num_queries, 0.0f);
  if (metric_ == Metric::kL2)
    for (size_t q = 0; q < num_queries; ++q) query_norms[q] = SquaredNorm(queries.data() + q * dim_, dim_);

  for (size_t q0 = 0; q0 < num_queries; q0 += kQueryBlock) {
    const size_t nq = std::min(kQueryBlock, num_queries - q0);
    std::vector<TopK> tops(nq, TopK(k));
    for (size_t d0 = 0; d0 < n; d0 += kDocBlock) {
      const size_t nd = std::min(kDocBlock, n - d0);
      // block[nq x nd] = Q[q0:q0+nq] * D[d0:d0+nd]^T
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq), static_cast<int>(nd),
                  static_cast<int>(dim_), 1.0f, queries.data() + q0 * dim_, static_cast<int>(dim_),
                  data_.data() + d0 * dim_, static_cast<int>(dim_), 0.0f, block.data(), static_cast<int>(nd));
      for (size_t qi = 0; qi < nq; ++qi) {
        const float* row = block.data() + qi * nd;
        TopK& top = tops[qi];
        if (metric_ == Metric::kInnerProduct) {
          for (size_t j = 0; j < nd; ++j)
            if (row[j] >= top.threshold()) top.Push(ids_[d0 + j], row[j]);
        } else {
          const float qn = query_norms[q0 + qi];
          for (size_t j = 0; j < nd; ++j) {
            const float s = 2 * row[j] - norms_[d0 + j] - qn;
            if (s >= top.threshold()) top.Push(ids_[d0 + j], s);
          }
        }
      }
    }
    for (size_t qi = 0; qi < nq; ++qi) out[q0 + qi] = tops[qi].Take();
  }
  return out;
}

}  // namespace m3vdb::index
