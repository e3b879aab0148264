#include "index/detail/int8_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace m3vdb::index::detail {

float QuantizeInt8(const float* x, size_t dim, size_t padded_dim, int8_t* out) {
  std::fill(out, out + padded_dim, int8_t{0});
  float max = 0;
  bool finite = true;
  for (size_t i = 0; i < dim; ++i) {
    finite &= std::isfinite(x[i]);
    max = std::max(max, std::abs(x[i]));
  }
  if (!finite) return std::numeric_limits<float>::infinity();
  const float scale = max / 127.0f;
  if (!(scale >= std::numeric_limits<float>::min())) return 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    // x_i / scale is within 127 (1 + 2^-23) of zero; the clamp only catches that last ulp.
    const float v = std::nearbyint(x[i] / scale);
    out[i] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
  }
  return scale;
}

namespace {
// Byte offset of element i of row `row` in the blocked layout.
inline size_t At(size_t row, size_t i, size_t pd) {
  return row / kInt8Lanes * Int8BlockBytes(pd) + i / kInt8Group * (kInt8Lanes * kInt8Group) +
         row % kInt8Lanes * kInt8Group + i % kInt8Group;
}
}  // namespace

void StoreInt8Row(const int8_t* x8, size_t row, size_t padded_dim, uint8_t* blocks) {
  for (size_t i = 0; i < padded_dim; ++i) blocks[At(row, i, padded_dim)] = static_cast<uint8_t>(x8[i] + 128);
}

void LoadInt8Row(const uint8_t* blocks, size_t row, size_t padded_dim, int8_t* x8) {
  for (size_t i = 0; i < padded_dim; ++i) x8[i] = static_cast<int8_t>(blocks[At(row, i, padded_dim)] - 128);
}

void ClearInt8Row(size_t row, size_t padded_dim, uint8_t* blocks) {
  for (size_t i = 0; i < padded_dim; ++i) blocks[At(row, i, padded_dim)] = 128;
}

double Int8Gamma(size_t padded_dim) {
  const double nu = static_cast<double>(padded_dim + 128) * 0x1p-24;
  return nu / (1 - nu) * (1 + 0x1p-40);  // the double arithmetic's own rounding, upwards
}

double Float32PassUnderflow(size_t padded_dim) { return 2.0 * static_cast<double>(padded_dim + 128) * 0x1p-126; }

double Int8ApproxUnderflow(size_t padded_dim) {
  return (1.0001 * 127.0 * 127.0 * static_cast<double>(padded_dim) + 1) * 0x1p-126;
}

namespace {

// v as a float, rounded towards +infinity (v >= 0).
float RoundUp(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

// Margin for the double sums below: each term has relative error < 3 * 2^-53 (a rounded
// difference, squared), the sums < (n+1) 2^-53, so the total stays below 2^-30 for n < 2^20.
constexpr double kDoubleMargin = 1 + 0x1p-30;

struct Norms {
  double err = 0;    // ||x - x^||_2
  double quant = 0;  // ||x^||_2
  double norm = 0;   // ||x||_2
  double l1 = 0;     // ||x||_1
};

Norms NormsOf(const float* x, const int8_t* x8, float scale, size_t dim) {
  double e2 = 0, b2 = 0, n2 = 0, l1 = 0;
  for (size_t i = 0; i < dim; ++i) {
    const double v = x[i];
    const double b = static_cast<double>(scale) * x8[i];  // exact: 24 x 8 significand bits
    e2 += (v - b) * (v - b);
    b2 += b * b;
    n2 += v * v;
    l1 += std::abs(v);
  }
  if (!std::isfinite(scale)) e2 = std::numeric_limits<double>::infinity();
  return {std::sqrt(e2) * kDoubleMargin, std::sqrt(b2) * kDoubleMargin, std::sqrt(n2) * kDoubleMargin,
          l1 * kDoubleMargin};
}

}  // namespace

Int8DocTerms Int8DocTermsOf(const float* x, const int8_t* x8, float scale, size_t dim, size_t padded_dim) {
  const Norms n = NormsOf(x, x8, scale, dim);
  return {RoundUp((n.err + Int8Gamma(padded_dim) * n.quant) * kDoubleMargin), RoundUp(n.norm)};
}

Int8QueryTerms Int8QueryTermsOf(const float* q, const int8_t* q8, float scale, size_t dim, size_t padded_dim) {
  const Norms n = NormsOf(q, q8, scale, dim);
  const double sqrt_n_tiny = std::sqrt(static_cast<double>(padded_dim + 128)) * 0x1p-126;
  return {
      RoundUp(n.quant), RoundUp((n.err + Int8Gamma(padded_dim) * n.norm + sqrt_n_tiny) * kDoubleMargin),
      RoundUp((Float32PassUnderflow(padded_dim) + Int8ApproxUnderflow(padded_dim) + n.l1 * 0x1p-126) * kDoubleMargin)};
}

namespace {

// 128 * sum(q8): what the unsigned offset of the stored bytes adds to <x8 + 128, q8>.
inline uint32_t Offset(const int8_t* q, size_t pd) {
  int32_t s = 0;
  for (size_t i = 0; i < pd; ++i) s += q[i];
  return 128u * static_cast<uint32_t>(s);
}

void Int8Scalar(const uint8_t* blocks, size_t nblocks, size_t pd, const int8_t* queries, size_t nq, int32_t* out,
                size_t stride) {
  for (size_t q = 0; q < nq; ++q) {
    const int8_t* qv = queries + q * pd;
    const uint32_t offset = Offset(qv, pd);
    for (size_t r = 0; r < nblocks * kInt8Lanes; ++r) {
      uint32_t s = 0;  // wrapping; the final value is exact
      for (size_t i = 0; i < pd; ++i)
        s += static_cast<uint32_t>(blocks[At(r, i, pd)]) * static_cast<uint32_t>(static_cast<int32_t>(qv[i]));
      out[q * stride + r] = static_cast<int32_t>(s - offset);
    }
  }
}

// Blocks per step for NQ queries: enough independent accumulators (NQ x B) to cover vpdpbusd's
// latency.
template <int NQ>
constexpr int VnniBlocks() {
  return NQ >= 4 ? 1 : NQ >= 2 ? 2 : 4;
}

// AVX512-VNNI over B blocks: per group of 4 elements one 64-byte load per block and one
// vpdpbusd per (block, query) with the query's 4 bytes broadcast.
template <int NQ, int B>
__attribute__((target("avx512f,avx512vnni"))) void VnniBlocksRun(const uint8_t* blocks, size_t b0, size_t pd,
                                                                 const int8_t* q, const uint32_t* offsets, int32_t* out,
                                                                 size_t stride) {
  const size_t bytes = Int8BlockBytes(pd);
  __m512i acc[B][NQ];
#pragma GCC unroll 8
  for (int b = 0; b < B; ++b)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) acc[b][k] = _mm512_setzero_si512();
  const uint8_t* base = blocks + b0 * bytes;
  for (size_t g = 0; g < pd / kInt8Group; ++g) {
    __m512i v[B];
#pragma GCC unroll 8
    for (int b = 0; b < B; ++b) v[b] = _mm512_loadu_si512(base + b * bytes + g * 64);
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) {
      int32_t q4;
      __builtin_memcpy(&q4, q + k * pd + g * kInt8Group, sizeof(q4));
      const __m512i qk = _mm512_set1_epi32(q4);
#pragma GCC unroll 8
      for (int b = 0; b < B; ++b) acc[b][k] = _mm512_dpbusd_epi32(acc[b][k], v[b], qk);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < NQ; ++k) {
    const __m512i off = _mm512_set1_epi32(static_cast<int32_t>(offsets[k]));
#pragma GCC unroll 8
    for (int b = 0; b < B; ++b)
      _mm512_storeu_si512(out + k * stride + (b0 + b) * kInt8Lanes, _mm512_sub_epi32(acc[b][k], off));
  }
}

template <int NQ>
void VnniKernel(const uint8_t* blocks, size_t nblocks, size_t pd, const int8_t* q, const uint32_t* offsets,
                int32_t* out, size_t stride) {
  constexpr int B = VnniBlocks<NQ>();
  size_t b = 0;
  for (; b + B <= nblocks; b += B) VnniBlocksRun<NQ, B>(blocks, b, pd, q, offsets, out, stride);
  for (; b < nblocks; ++b) VnniBlocksRun<NQ, 1>(blocks, b, pd, q, offsets, out, stride);
}

// AVX2, one block at a time: 16 bytes (4 elements of 4 rows) widened to int16 (vpmovzxbw) and
// multiplied by the query's 4 elements as int16 (vpmaddwd: adjacent pairs into int32, exact),
// so each row gets two int32 lanes; four such registers cover the 16 rows, and a final hadd +
// permute gives one lane per row.
template <int NQ>
__attribute__((target("avx2"))) void Avx2Block(const uint8_t* blocks, size_t b0, size_t pd, const int8_t* q,
                                               const uint32_t* offsets, int32_t* out, size_t stride) {
  const uint8_t* base = blocks + b0 * Int8BlockBytes(pd);
  __m256i acc[NQ][4];
#pragma GCC unroll 8
  for (int k = 0; k < NQ; ++k)
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) acc[k][c] = _mm256_setzero_si256();
  for (size_t g = 0; g < pd / kInt8Group; ++g) {
    __m256i v[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c)
      v[c] = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + g * 64 + c * 16)));
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) {
      const int8_t* qg = q + k * pd + g * kInt8Group;
      const __m256i qk =
          _mm256_set1_epi64x(static_cast<int64_t>((static_cast<uint64_t>(static_cast<uint16_t>(qg[0]))) |
                                                  (static_cast<uint64_t>(static_cast<uint16_t>(qg[1])) << 16) |
                                                  (static_cast<uint64_t>(static_cast<uint16_t>(qg[2])) << 32) |
                                                  (static_cast<uint64_t>(static_cast<uint16_t>(qg[3])) << 48)));
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) acc[k][c] = _mm256_add_epi32(acc[k][c], _mm256_madd_epi16(v[c], qk));
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < NQ; ++k) {
    const __m256i off = _mm256_set1_epi32(static_cast<int32_t>(offsets[k]));
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      // acc[k][2h] holds rows 8h..8h+3 (two lanes each), acc[k][2h+1] rows 8h+4..8h+7.
      const __m256i s = _mm256_hadd_epi32(acc[k][2 * h], acc[k][2 * h + 1]);  // rows 0 1 4 5 | 2 3 6 7
      const __m256i rows = _mm256_permute4x64_epi64(s, _MM_SHUFFLE(3, 1, 2, 0));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k * stride + b0 * kInt8Lanes + 8 * h),
                          _mm256_sub_epi32(rows, off));
    }
  }
}

template <int NQ>
void Avx2Kernel(const uint8_t* blocks, size_t nblocks, size_t pd, const int8_t* q, const uint32_t* offsets,
                int32_t* out, size_t stride) {
  for (size_t b = 0; b < nblocks; ++b) Avx2Block<NQ>(blocks, b, pd, q, offsets, out, stride);
}

// Calls F<NQ>::Run for NQ = nq in 1..8.
template <template <int> class F, typename... Args>
void ForQueries(size_t nq, Args... args) {
  switch (nq) {
    case 1:
      F<1>::Run(args...);
      break;
    case 2:
      F<2>::Run(args...);
      break;
    case 3:
      F<3>::Run(args...);
      break;
    case 4:
      F<4>::Run(args...);
      break;
    case 5:
      F<5>::Run(args...);
      break;
    case 6:
      F<6>::Run(args...);
      break;
    case 7:
      F<7>::Run(args...);
      break;
    default:
      F<8>::Run(args...);
      break;
  }
}
template <int NQ>
struct RunVnni {
  static void Run(const uint8_t* d, size_t nb, size_t pd, const int8_t* q, const uint32_t* off, int32_t* o,
                  size_t stride) {
    VnniKernel<NQ>(d, nb, pd, q, off, o, stride);
  }
};
template <int NQ>
struct RunAvx2 {
  static void Run(const uint8_t* d, size_t nb, size_t pd, const int8_t* q, const uint32_t* off, int32_t* o,
                  size_t stride) {
    Avx2Kernel<NQ>(d, nb, pd, q, off, o, stride);
  }
};

bool Supported(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kScalar:
      return true;
    case Int8Isa::kAvx2:
      return __builtin_cpu_supports("avx2");
    case Int8Isa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Int8Isa BestIsa() {
  static const Int8Isa isa = Supported(Int8Isa::kAvx512Vnni) ? Int8Isa::kAvx512Vnni
                             : Supported(Int8Isa::kAvx2)     ? Int8Isa::kAvx2
                                                             : Int8Isa::kScalar;
  return isa;
}

constexpr size_t kGroup = 8;  // queries per kernel pass

}  // namespace

bool Int8DotBlockWith(Int8Isa isa, const uint8_t* blocks, size_t nblocks, size_t padded_dim, const int8_t* queries,
                      size_t nq, int32_t* out, size_t stride) {
  if (!Supported(isa)) return false;
  for (size_t q0 = 0; q0 < nq; q0 += kGroup) {
    const size_t g = std::min(kGroup, nq - q0);
    const int8_t* q = queries + q0 * padded_dim;
    int32_t* o = out + q0 * stride;
    uint32_t offsets[kGroup];
    for (size_t k = 0; k < g; ++k) offsets[k] = Offset(q + k * padded_dim, padded_dim);
    switch (isa) {
      case Int8Isa::kAvx512Vnni:
        ForQueries<RunVnni>(g, blocks, nblocks, padded_dim, q, offsets, o, stride);
        break;
      case Int8Isa::kAvx2:
        ForQueries<RunAvx2>(g, blocks, nblocks, padded_dim, q, offsets, o, stride);
        break;
      case Int8Isa::kScalar:
        Int8Scalar(blocks, nblocks, padded_dim, q, g, o, stride);
        break;
    }
  }
  return true;
}

void Int8DotBlock(const uint8_t* blocks, size_t nblocks, size_t padded_dim, const int8_t* queries, size_t nq,
                  int32_t* out, size_t stride) {
  Int8DotBlockWith(BestIsa(), blocks, nblocks, padded_dim, queries, nq, out, stride);
}

}  // namespace m3vdb::index::detail
