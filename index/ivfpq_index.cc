#include "index/ivfpq_index.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "index/detail/pq_scan.h"

namespace m3vdb::index {

IvfPqIndex::IvfPqIndex(std::shared_ptr<const quant::Codebooks> books)
    : books_(std::move(books)), lists_(books_->params.nlist) {
  const auto& p = books_->params;
  if (p.geometry() != Metric::kL2) return;
  centroid_norms_ = books_->CentroidNorms();
  // U_l[j][k] = ||C_j[k]||^2 + 2 <c_l,j , C_j[k]>
  const size_t M = p.m, K = p.ksub(), ds = p.dsub(), d = p.dim;
  list_terms_.resize(size_t{p.nlist} * M * K);
  for (size_t l = 0; l < p.nlist; ++l)
    for (size_t j = 0; j < M; ++j) {
      const float* c = books_->centroids.data() + l * d + j * ds;
      for (size_t k = 0; k < K; ++k) {
        const float* C = books_->pq.data() + (j * K + k) * ds;
        list_terms_[(l * M + j) * K + k] =
            cblas_sdot(static_cast<int>(ds), C, 1, C, 1) + 2 * cblas_sdot(static_cast<int>(ds), c, 1, C, 1);
      }
    }
}

size_t IvfPqIndex::memory_bytes() const {
  size_t bytes = (list_terms_.capacity() + centroid_norms_.capacity()) * sizeof(float) + where_.size() * 32;
  for (const auto& l : lists_) bytes += l.ids.capacity() * 8 + l.codes.capacity();
  return bytes;
}

void IvfPqIndex::Add(uint64_t id, uint32_t list, const uint8_t* code) {
  Remove(id);
  const size_t m = books_->params.m;
  List& l = lists_[list];
  l.codes.insert(l.codes.end(), code, code + m);
  where_[id] = {list, static_cast<uint32_t>(l.ids.size())};
  l.ids.push_back(id);
}

bool IvfPqIndex::Remove(uint64_t id) {
  auto it = where_.find(id);
  if (it == where_.end()) return false;
  const auto [list, pos] = it->second;
  where_.erase(it);
  const size_t m = books_->params.m;
  List& l = lists_[list];
  const size_t last = l.ids.size() - 1;
  if (pos != last) {
    l.ids[pos] = l.ids[last];
    std::memcpy(l.codes.data() + pos * m, l.codes.data() + last * m, m);
    where_[l.ids[pos]] = {list, pos};
  }
  l.ids.pop_back();
  l.codes.resize(last * m);
  return true;
}

std::vector<std::vector<ScoredId>> IvfPqIndex::Search(std::span<const float> queries, size_t nq, size_t k,
                                                      size_t nprobe) const {
  const auto& p = books_->params;
  const size_t d = p.dim, M = p.m, K = p.ksub(), ds = p.dsub(), L = p.nlist;
  nprobe = std::clamp<size_t>(nprobe, 1, L);
  std::vector<std::vector<ScoredId>> out(nq);
  if (nq == 0 || k == 0 || where_.empty()) return out;

  // Queries go in blocks: the tables <q_j, C_j[k]> of a block come from one GEMM per
  // sub-quantizer (M tiny GEMVs per query cost more in OpenBLAS's thread hand-offs than in
  // arithmetic), and a block's tables stay small (kBlock x M x K floats).
  constexpr size_t kBlock = 16;
  std::vector<float> qr(kBlock * d), coarse(kBlock * L), qlut(kBlock * M * K), lut(M * K), scores;
  std::vector<uint32_t> probe(L);
  const bool l2 = p.geometry() == Metric::kL2;
  float lengths[kBlock];  // unit_norm: the queries' lengths; they are searched as q / ||q||
  for (size_t b0 = 0; b0 < nq; b0 += kBlock) {
    const size_t nb = std::min(kBlock, nq - b0);
    books_->Rotate(queries.data() + b0 * d, nb, qr.data());
    if (p.unit_norm)
      for (size_t qi = 0; qi < nb; ++qi) {
        float* q = qr.data() + qi * d;
        lengths[qi] = std::sqrt(cblas_sdot(static_cast<int>(d), q, 1, q, 1));
        if (lengths[qi] > 0) cblas_sscal(static_cast<int>(d), 1.0f / lengths[qi], q, 1);
      }
    books_->CoarseScores(qr.data(), nb, coarse.data(), centroid_norms_.empty() ? nullptr : centroid_norms_.data());
    for (size_t j = 0; j < M; ++j)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nb), static_cast<int>(K),
                  static_cast<int>(ds), 1.0f, qr.data() + j * ds, static_cast<int>(d), books_->pq.data() + j * K * ds,
                  static_cast<int>(ds), 0.0f, qlut.data() + j * K, static_cast<int>(M * K));
    for (size_t qi = 0; qi < nb; ++qi) {
      const float* q = qr.data() + qi * d;
      const float* qtab = qlut.data() + qi * M * K;
      const float qn = l2 ? cblas_sdot(static_cast<int>(d), q, 1, q, 1) : 0.0f;
      const float* cs = coarse.data() + qi * L;
      std::iota(probe.begin(), probe.end(), 0u);
      std::partial_sort(probe.begin(), probe.begin() + static_cast<std::ptrdiff_t>(nprobe), probe.end(),
                        [cs](uint32_t a, uint32_t b) { return cs[a] > cs[b] || (cs[a] == cs[b] && a < b); });
      TopK top(k);
      for (size_t pi = 0; pi < nprobe; ++pi) {
        const uint32_t l = probe[pi];
        const List& list = lists_[l];
        if (list.ids.empty()) continue;
        float base;
        const float* table;
        if (l2) {
          // CoarseScores gave 2<q,c> - ||c||^2, so -||q - c||^2 = that - ||q||^2.
          base = cs[l] - qn;
          const float* terms = list_terms_.data() + size_t{l} * M * K;
          for (size_t i = 0; i < M * K; ++i) lut[i] = 2 * qtab[i] - terms[i];
          table = lut.data();
        } else {
          base = cs[l];
          table = qtab;
        }
        scores.resize(list.ids.size());
        detail::ScanCodes(list.codes.data(), list.ids.size(), M, table, base, scores.data());
        for (size_t i = 0; i < list.ids.size(); ++i)
          if (scores[i] >= top.threshold()) top.Push(list.ids[i], scores[i]);
      }
      out[b0 + qi] = top.Take();
      if (p.unit_norm)  // -||q_u - x^||^2 to the inner-product estimate ||q|| (2 - ||q_u - x^||^2) / 2
        for (ScoredId& hit : out[b0 + qi]) hit.score = lengths[qi] * (2 + hit.score) / 2;
    }
  }
  return out;
}

}  // namespace m3vdb::index
