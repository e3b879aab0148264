#include "embedder/detail/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace m3vdb::embedder {
namespace {

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define M3VDB_VECTOR_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define M3VDB_VECTOR_CLONES
#endif

// Cephes expf: exp(x) = 2^n * exp(r), |r| <= ln2/2, relative error ~1e-7. n is rounded with
// the 1.5 * 2^23 trick (no floor, so the loops vectorize on any SSE level).
__attribute__((always_inline)) inline float PolyExp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  float shifted = x * 1.44269504088896341f + kRound;
  int32_t ni = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  float n = shifted - kRound;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  int32_t bits = (ni + 127) << 23;
  return e * std::bit_cast<float>(bits);
}

M3VDB_VECTOR_CLONES void ExpInPlace(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = PolyExp(x[i]);
}

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

// Reductions in 16 independent lanes, so that they vectorize without -ffast-math.
constexpr size_t kLanes = 16;

M3VDB_VECTOR_CLONES float RowMax(const float* s, size_t n) {
  float lanes[kLanes];
  for (size_t j = 0; j < kLanes; ++j) lanes[j] = -std::numeric_limits<float>::infinity();
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; ++j) lanes[j] = lanes[j] > s[i + j] ? lanes[j] : s[i + j];
  float m = -std::numeric_limits<float>::infinity();
  for (; i < n; ++i) m = std::max(m, s[i]);
  for (size_t j = 0; j < kLanes; ++j) m = std::max(m, lanes[j]);
  return m;
}

M3VDB_VECTOR_CLONES float ExpShiftSum(float* s, size_t n, float max) {
  for (size_t i = 0; i < n; ++i) s[i] = PolyExp(s[i] - max);
  float lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t j = 0; j < kLanes; ++j) lanes[j] += s[i + j];
  float sum = 0;
  for (; i < n; ++i) sum += s[i];
  for (size_t j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

M3VDB_VECTOR_CLONES void Scale(float* s, size_t n, float f) {
  for (size_t i = 0; i < n; ++i) s[i] *= f;
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

void SoftmaxRows(float* s, size_t rows, size_t n) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    float inv = 1.0f / ExpShiftSum(row, n, RowMax(row, n));
    Scale(row, n, inv);
  }
}

void NormalizeL2(float* v, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(v[i]) * v[i];
  float inv = static_cast<float>(1.0 / std::max(std::sqrt(sum), 1e-12));
  for (size_t i = 0; i < n; ++i) v[i] *= inv;
}

}  // namespace m3vdb::embedder
