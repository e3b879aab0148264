// PQ code scan kernel: out[i] = base + sum_j lut[j * 256 + codes[i * m + j]] for n codes of m
// bytes each. Portable C++: eight codes are scored side by side, so eight independent chains of
// table loads keep the load ports busy. AVX2/AVX-512 gathers were measured slower on this
// project's machines (bench/pq_scan_bench: 4-6x slower than this on AMD EPYC), so there is no
// SIMD variant to dispatch to.
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3vdb::index::detail {

void ScanCodes(const uint8_t* codes, size_t n, size_t m, const float* lut, float base, float* out);

}  // namespace m3vdb::index::detail
