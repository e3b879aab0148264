#include "index/detail/pq_scan.h"

#include <immintrin.h>

namespace m3vdb::index::detail {

void ScanCodesScalar(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * m;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t j = 0;
    for (; j + 4 <= m; j += 4) {
      s0 += lut[(j + 0) * 256 + c[j + 0]];
      s1 += lut[(j + 1) * 256 + c[j + 1]];
      s2 += lut[(j + 2) * 256 + c[j + 2]];
      s3 += lut[(j + 3) * 256 + c[j + 3]];
    }
    for (; j < m; ++j) s0 += lut[j * 256 + c[j]];
    out[i] = base + ((s0 + s1) + (s2 + s3));
  }
}

// Eight codes at a time: for every sub-quantizer j, gather the eight table entries with one
// AVX2 gather (index = j*256 + code) and add them to eight running sums.
__attribute__((target("avx2"))) void ScanCodesAvx2(const uint8_t* codes, size_t n, size_t m, const float* lut,
                                                   float base, float* out) {
  size_t i = 0;
  const __m256i stride = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i row_step = _mm256_mullo_epi32(stride, _mm256_set1_epi32(static_cast<int>(m)));
  for (; i + 8 <= n; i += 8) {
    const uint8_t* block = codes + i * m;
    __m256 acc = _mm256_set1_ps(base);
    for (size_t j = 0; j < m; ++j) {
      // codes of the 8 entries for sub-quantizer j sit m bytes apart
      const __m256i offs = _mm256_add_epi32(row_step, _mm256_set1_epi32(static_cast<int>(j)));
      const __m256i bytes = _mm256_i32gather_epi32(reinterpret_cast<const int*>(block), offs, 1);
      const __m256i idx = _mm256_add_epi32(_mm256_and_si256(bytes, _mm256_set1_epi32(0xff)),
                                           _mm256_set1_epi32(static_cast<int>(j * 256)));
      acc = _mm256_add_ps(acc, _mm256_i32gather_ps(lut, idx, 4));
    }
    _mm256_storeu_ps(out + i, acc);
  }
  if (i < n) ScanCodesScalar(codes + i * m, n - i, m, lut, base, out + i);
}

bool HaveAvx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have;
}

void ScanCodes(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out) {
  if (HaveAvx2()) {
    ScanCodesAvx2(codes, n, m, lut, base, out);
  } else {
    ScanCodesScalar(codes, n, m, lut, base, out);
  }
}

}  // namespace m3vdb::index::detail
