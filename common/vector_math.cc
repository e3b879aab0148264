#include "common/vector_math.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>

#include "common/detail/vector_clones.h"

namespace m3vdb {
namespace {

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

M3VDB_VECTOR_CLONES void ExpSpan(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = PolyExp(x[i]);
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

}  // namespace

void ExpInPlace(float* x, size_t n) { ExpSpan(x, n); }

void SoftmaxRows(float* s, size_t rows, size_t n) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = s + r * n;
    float inv = 1.0f / ExpShiftSum(row, n, RowMax(row, n));
    Scale(row, n, inv);
  }
}

}  // namespace m3vdb
