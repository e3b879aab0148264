#include "embedder/detail/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/detail/vector_clones.h"
#include "common/vector_math.h"

namespace m3vdb::embedder {
namespace {

// erf(z) = sign(z) (1 - poly(t) exp(-z^2)), t = 1 / (1 + p |z|). Two passes over a small block
// (exp first): GCC does not if-convert the fused loop, and the split one vectorizes.
M3VDB_VECTOR_CLONES void GeluSpan(float* x, size_t n) {
  constexpr size_t kBlock = 256;
  float e[kBlock];
  for (size_t i0 = 0; i0 < n; i0 += kBlock) {
    const size_t m = std::min(kBlock, n - i0);
    float* v = x + i0;
    for (size_t i = 0; i < m; ++i) e[i] = -0.5f * v[i] * v[i];
    ExpInPlace(e, m);
    for (size_t i = 0; i < m; ++i) {
      float z = v[i] * 0.70710678118654752f;
      float a = __builtin_fabsf(z);  // builtins: std:: wrappers are not inlined into target clones
      float t = 1.0f / (1.0f + 0.3275911f * a);
      float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
                    0.254829592f) * t;
      float erf = __builtin_copysignf(1.0f - poly * e[i], z);
      v[i] = 0.5f * v[i] * (1.0f + erf);
    }
  }
}

M3VDB_VECTOR_CLONES void LayerNormRow(float* x, const float* add, size_t n, const float* g, const float* b,
                                      float eps) {
  double mean = 0;
  if (add != nullptr)
    for (size_t i = 0; i < n; ++i) x[i] += add[i];
  for (size_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = x[i] - mean;
    var += d * d;
  }
  var /= static_cast<double>(n);
  float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  float mu = static_cast<float>(mean);
  for (size_t i = 0; i < n; ++i) x[i] = (x[i] - mu) * inv * g[i] + b[i];
}

}  // namespace

void LinearForward(const float* x, size_t m, const Linear& l, float* y, WorkerTeam& team) {
  const size_t out = static_cast<size_t>(l.out), in = static_cast<size_t>(l.in);
  // Split the output columns: each thread streams its own slice of W once.
  size_t parts = std::max<size_t>(1, std::min<size_t>(team.size(), out / 64));
  size_t step = (out + parts - 1) / parts;
  step = (step + 15) / 16 * 16;
  team.ParallelFor(parts, [&](size_t p, int) {
    size_t n0 = p * step, n1 = std::min(out, n0 + step);
    if (n0 >= n1) return;
    for (size_t r = 0; r < m; ++r) std::copy(l.b + n0, l.b + n1, y + r * out + n0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n1 - n0),
                static_cast<int>(in), 1.0f, x, static_cast<int>(in), l.w + n0 * in, static_cast<int>(in), 1.0f,
                y + n0, static_cast<int>(out));
  });
}

void AddLayerNorm(float* x, const float* add, size_t rows, size_t n, const LayerNormWeights& ln, float eps,
                  WorkerTeam* team) {
  constexpr size_t kRows = 16;
  auto block = [&](size_t b, int) {
    for (size_t r = b * kRows; r < std::min(rows, (b + 1) * kRows); ++r)
      LayerNormRow(x + r * n, add ? add + r * n : nullptr, n, ln.gamma, ln.beta, eps);
  };
  size_t blocks = (rows + kRows - 1) / kRows;
  if (team == nullptr) {
    for (size_t b = 0; b < blocks; ++b) block(b, 0);
  } else {
    team->ParallelFor(blocks, block);
  }
}

void GeluInPlace(float* x, size_t n, WorkerTeam& team) {
  constexpr size_t kBlock = 16384;
  size_t blocks = (n + kBlock - 1) / kBlock;
  team.ParallelFor(blocks, [&](size_t b, int) { GeluSpan(x + b * kBlock, std::min(kBlock, n - b * kBlock)); });
}

void NormalizeL2(float* v, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(v[i]) * v[i];
  float inv = static_cast<float>(1.0 / std::max(std::sqrt(sum), 1e-12));
  for (size_t i = 0; i < n; ++i) v[i] *= inv;
}

}  // namespace m3vdb::embedder
