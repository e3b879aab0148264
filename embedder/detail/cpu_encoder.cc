#include "embedder/detail/cpu_encoder.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/vector_math.h"
#include "embedder/detail/kernels.h"

namespace m3vdb::embedder {
namespace {

class CpuEncoder final : public EncoderBackend {
 public:
  explicit CpuEncoder(const ModelWeights& model) : model_(model) {}
  std::string_view name() const override { return "cpu"; }

  Status Run(float* x, std::span<const size_t> offsets, WorkerTeam& team) const override {
    const ModelConfig& c = model_.config;
    const size_t t = offsets.back(), h = static_cast<size_t>(c.hidden), f = static_cast<size_t>(c.ffn);
    std::vector<float> q(t * h), k(t * h), v(t * h), ctx(t * h), ffn(t * f);
    for (const LayerWeights& l : model_.layers) {
      LinearForward(x, t, l.q, q.data(), team);
      LinearForward(x, t, l.k, k.data(), team);
      LinearForward(x, t, l.v, v.data(), team);
      PackedAttention(q.data(), k.data(), v.data(), ctx.data(), offsets, c.hidden, c.heads, team);
      LinearForward(ctx.data(), t, l.attn_out, q.data(), team);
      AddLayerNorm(x, q.data(), t, h, l.attn_ln, c.eps, &team);
      LinearForward(x, t, l.ffn_in, ffn.data(), team);
      GeluInPlace(ffn.data(), t * f, team);
      LinearForward(ffn.data(), t, l.ffn_out, q.data(), team);
      AddLayerNorm(x, q.data(), t, h, l.ffn_ln, c.eps, &team);
    }
    return Status::OK();
  }

 private:
  const ModelWeights& model_;
};

}  // namespace

std::unique_ptr<EncoderBackend> CreateCpuEncoder(const ModelWeights& model) {
  return std::make_unique<CpuEncoder>(model);
}

void PackedAttention(const float* q, const float* k, const float* v, float* ctx, std::span<const size_t> offsets,
                     int hidden, int heads, WorkerTeam& team) {
  struct Item {
    size_t begin, len, row0, rows;
    int head;
  };
  const int hd = hidden / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<Item> items;
  size_t max_scores = 0;
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    size_t len = offsets[s + 1] - offsets[s];
    if (len == 0) continue;
    // Blocks of query rows keep the score buffer near 4 Mi floats (16 MiB) per thread.
    size_t block = std::clamp<size_t>((size_t{4} << 20) / len, 16, len);
    for (int hh = 0; hh < heads; ++hh)
      for (size_t r = 0; r < len; r += block) items.push_back({offsets[s], len, r, std::min(block, len - r), hh});
    max_scores = std::max(max_scores, block * len);
  }
  const int ld = hidden;
  std::vector<std::vector<float>> buffers(static_cast<size_t>(team.size()));
  team.ParallelFor(items.size(), [&](size_t i, int worker) {
    std::vector<float>& scores = buffers[static_cast<size_t>(worker)];
    if (scores.size() < max_scores) scores.resize(max_scores);
    {
      const Item& it = items[i];
      const size_t col = static_cast<size_t>(it.head) * hd;
      const float* qi = q + (it.begin + it.row0) * ld + col;
      const float* ki = k + it.begin * ld + col;
      const float* vi = v + it.begin * ld + col;
      float* out = ctx + (it.begin + it.row0) * ld + col;
      const int rows = static_cast<int>(it.rows), len = static_cast<int>(it.len);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, len, hd, scale, qi, ld, ki, ld, 0.0f,
                  scores.data(), len);
      SoftmaxRows(scores.data(), it.rows, it.len);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, len, 1.0f, scores.data(), len, vi, ld,
                  0.0f, out, ld);
    }
  });
}

}  // namespace m3vdb::embedder
