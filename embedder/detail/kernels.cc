#include "embedder/detail/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace m3vdb::embedder {
namespace {

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define M3VDB_VECTOR_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define M3VDB_VECTOR_CLONES
#endif

// Cephes expf: exp(x) = 2^n * exp(r), |r| <= ln2/2, relative error ~1e-7.
inline float PolyExp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return e * std::bit_cast<float>(bits);
}

M3VDB_VECTOR_CLONES void GeluSpan(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    float v = x[i];
    float z = v * 0.70710678118654752f;
    float a = std::fabs(z);
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
                  0.254829592f) * t;
    float erf_abs = 1.0f - poly * PolyExp(-a * a);
    float erf = z < 0 ? -erf_abs : erf_abs;
    x[i] = 0.5f * v * (1.0f + erf);
  }
}

M3VDB_VECTOR_CLONES float ExpShiftSum(float* s, size_t n, float max) {
  float sum = 0;
  for (size_t i = 0; i < n; ++i) {
    s[i] = PolyExp(s[i] - max);
    sum += s[i];
  }
  return sum;
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
    float max = *std::max_element(row, row + n);
    float inv = 1.0f / ExpShiftSum(row, n, max);
    for (size_t i = 0; i < n; ++i) row[i] *= inv;
  }
}

void NormalizeL2(float* v, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(v[i]) * v[i];
  float inv = static_cast<float>(1.0 / std::max(std::sqrt(sum), 1e-12));
  for (size_t i = 0; i < n; ++i) v[i] *= inv;
}

}  // namespace m3vdb::embedder
