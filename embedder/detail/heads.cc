#include "embedder/detail/heads.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "embedder/detail/kernels.h"
#include "embedder/detail/tokenizer.h"

namespace m3vdb::embedder {

void EmbedTokens(const ModelWeights& m, std::span<const int32_t> ids, int stretch, float* x) {
  const size_t h = static_cast<size_t>(m.config.hidden);
  const int last_row = m.config.positions - 1;
  for (size_t i = 0; i < ids.size(); ++i) {
    float* row = x + i * h;
    const float* word = m.word + static_cast<size_t>(ids[i]) * h;
    double pos = 2.0 + static_cast<double>(i) / stretch;
    int lo = std::min(static_cast<int>(pos), last_row);
    int hi = std::min(lo + 1, last_row);
    float frac = static_cast<float>(pos - lo);
    const float* p0 = m.position + static_cast<size_t>(lo) * h;
    const float* p1 = m.position + static_cast<size_t>(hi) * h;
    for (size_t j = 0; j < h; ++j) {
      float p = frac == 0.0f ? p0[j] : (1.0f - frac) * p0[j] + frac * p1[j];
      row[j] = (word[j] + m.token_type[j]) + p;  // the order of the reference
    }
  }
  AddLayerNorm(x, nullptr, ids.size(), h, m.embed_ln, m.config.eps, nullptr);
}

SequenceHeads ApplyHeads(const ModelWeights& m, std::span<const int32_t> ids, const float* hidden) {
  const size_t n = ids.size(), h = static_cast<size_t>(m.config.hidden);
  const size_t cdim = static_cast<size_t>(m.colbert.out);
  SequenceHeads out;
  out.cls.assign(hidden, hidden + h);
  out.token_weight.resize(n);
  for (size_t i = 0; i < n; ++i) {
    float w = m.sparse.b[0];
    const float* row = hidden + i * h;
    for (size_t j = 0; j < h; ++j) w += row[j] * m.sparse.w[j];
    out.token_weight[i] = std::max(w, 0.0f);
  }
  if (n > 1) {
    out.colbert.resize((n - 1) * cdim);
    for (size_t r = 0; r + 1 < n; ++r) std::copy(m.colbert.b, m.colbert.b + cdim, &out.colbert[r * cdim]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n - 1), static_cast<int>(cdim),
                static_cast<int>(h), 1.0f, hidden + h, static_cast<int>(h), m.colbert.w, static_cast<int>(h), 1.0f,
                out.colbert.data(), static_cast<int>(cdim));
    for (size_t r = 0; r + 1 < n; ++r) NormalizeL2(&out.colbert[r * cdim], cdim);
  }
  return out;
}

void AccumulateSparse(std::span<const int32_t> ids, std::span<const float> weights,
                      std::vector<std::pair<int32_t, float>>& best) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] <= kUnk || !(weights[i] > 0.0f)) continue;
    best.emplace_back(ids[i], weights[i]);
  }
}

SparseWeights FinishSparse(std::vector<std::pair<int32_t, float>> best) {
  std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second > b.second;
  });
  SparseWeights out;
  for (const auto& [id, w] : best) {
    if (!out.ids.empty() && out.ids.back() == id) continue;  // first of a run is the max
    out.ids.push_back(id);
    out.weights.push_back(w);
  }
  return out;
}

}  // namespace m3vdb::embedder
