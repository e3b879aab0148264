// PQ code scan kernels: score[i] = base + sum_j lut[j * 256 + codes[i * m + j]] for n codes.
// `ScanCodes` dispatches at run time to AVX2 when the CPU has it (no -march flags needed).
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3vdb::index::detail {

void ScanCodesScalar(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out);
void ScanCodesAvx2(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out);
void ScanCodes(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out);
bool HaveAvx2();

}  // namespace m3vdb::index::detail
