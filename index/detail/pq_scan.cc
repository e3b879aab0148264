#include "index/detail/pq_scan.h"

namespace m3vdb::index::detail {
namespace {

constexpr size_t kRows = 8;

// One code at a time; the tail of a list (fewer than kRows codes left).
void ScanRows(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * m;
    float s0 = 0, s1 = 0;
    size_t j = 0;
    for (; j + 2 <= m; j += 2) {
      s0 += lut[j * 256 + c[j]];
      s1 += lut[(j + 1) * 256 + c[j + 1]];
    }
    if (j < m) s0 += lut[j * 256 + c[j]];
    out[i] = base + (s0 + s1);
  }
}

}  // namespace

void ScanCodes(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out) {
  size_t i = 0;
  // Written out by hand: eight named accumulators stay in registers (an array indexed in an
  // inner loop was kept in memory by GCC and ran 1.7x slower).
  for (; i + kRows <= n; i += kRows) {
    const uint8_t* c0 = codes + i * m;
    const uint8_t *c1 = c0 + m, *c2 = c1 + m, *c3 = c2 + m, *c4 = c3 + m, *c5 = c4 + m, *c6 = c5 + m, *c7 = c6 + m;
    float s0 = base, s1 = base, s2 = base, s3 = base, s4 = base, s5 = base, s6 = base, s7 = base;
    for (size_t j = 0; j < m; ++j) {
      const float* table = lut + j * 256;
      s0 += table[c0[j]];
      s1 += table[c1[j]];
      s2 += table[c2[j]];
      s3 += table[c3[j]];
      s4 += table[c4[j]];
      s5 += table[c5[j]];
      s6 += table[c6[j]];
      s7 += table[c7[j]];
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
    out[i + 4] = s4;
    out[i + 5] = s5;
    out[i + 6] = s6;
    out[i + 7] = s7;
  }
  ScanRows(codes + i * m, n - i, m, lut, base, out + i);
}

}  // namespace m3vdb::index::detail
