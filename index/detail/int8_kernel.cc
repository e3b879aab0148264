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

int32_t Int8Sum(const int8_t* x, size_t padded_dim) {
  int32_t s = 0;
  for (size_t i = 0; i < padded_dim; ++i) s += x[i];
  return s;
}

double Int8Gamma(size_t padded_dim) {
  const double nu = static_cast<double>(padded_dim + kInt8Block) * 0x1p-24;
  return nu / (1 - nu) * (1 + 0x1p-40);  // the double arithmetic's own rounding, upwards
}

double Float32PassUnderflow(size_t padded_dim) { return 2.0 * static_cast<double>(padded_dim + kInt8Block) * 0x1p-126; }

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
  const double sqrt_n_tiny = std::sqrt(static_cast<double>(padded_dim + kInt8Block)) * 0x1p-126;
  return {RoundUp(n.quant), RoundUp((n.err + Int8Gamma(padded_dim) * n.norm + sqrt_n_tiny) * kDoubleMargin),
          RoundUp((Float32PassUnderflow(padded_dim) + Int8ApproxUnderflow(padded_dim) + n.l1 * 0x1p-126) *
                  kDoubleMargin)};
}

namespace {

void Int8Scalar(const int8_t* docs, size_t nd, size_t pd, const int8_t* queries, size_t nq, int32_t* out) {
  for (size_t r = 0; r < nd; ++r) {
    const int8_t* row = docs + r * pd;
    for (size_t q = 0; q < nq; ++q) {
      const int8_t* qv = queries + q * pd;
      int32_t s = 0;
      for (size_t j = 0; j < pd; ++j) s += int32_t{row[j]} * qv[j];
      out[q * nd + r] = s;
    }
  }
}

// Rows per step for NQ queries with 32 vector registers (NQ x R accumulators, R rows, a query).
template <int NQ>
constexpr int VnniRows() {
  constexpr int rows[] = {0, 8, 8, 6, 5, 4, 4, 3, 3};
  return rows[NQ];
}
// With 16 registers (AVX2).
template <int NQ>
constexpr int Avx2Rows() {
  return NQ >= 4 ? 1 : 4 / NQ;
}

// Sum of the 16 int32 lanes (wrapping; the exact sum fits).
__attribute__((target("avx512f"))) inline int32_t Sum16(__m512i v) {
  const __m256i s = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xff, v, 0), _mm512_maskz_extracti64x4_epi64(0xff, v, 1));
  const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  const __m128i w = _mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(w, _mm_shuffle_epi32(w, _MM_SHUFFLE(2, 3, 0, 1))));
}

// AVX512-VNNI: `q` holds the queries offset to unsigned (q8 + 128); vpdpbusd adds four u8 x s8
// products per int32 lane (no saturation). Every lane sum is below 2^31 in magnitude.
template <int NQ, int R>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void VnniRows(const int8_t* docs, const int32_t* sums,
                                                                     size_t r, size_t nd, size_t pd,
                                                                     const uint8_t* q, int32_t* out) {
  __m512i acc[R][NQ];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) acc[i][k] = _mm512_setzero_si512();
  for (size_t j = 0; j < pd; j += 64) {
    __m512i v[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) v[i] = _mm512_loadu_si512(docs + (r + i) * pd + j);
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) {
      const __m512i qk = _mm512_loadu_si512(q + k * pd + j);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) acc[i][k] = _mm512_dpbusd_epi32(acc[i][k], qk, v[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    const uint32_t offset = 128u * static_cast<uint32_t>(sums[r + i]);
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k)
      out[k * nd + r + i] = static_cast<int32_t>(static_cast<uint32_t>(Sum16(acc[i][k])) - offset);
  }
}

template <int NQ>
void VnniKernel(const int8_t* docs, const int32_t* sums, size_t nd, size_t pd, const uint8_t* q, int32_t* out) {
  constexpr int R = VnniRows<NQ>();
  size_t r = 0;
  for (; r + R <= nd; r += R) VnniRows<NQ, R>(docs, sums, r, nd, pd, q, out);
  for (; r < nd; ++r) VnniRows<NQ, 1>(docs, sums, r, nd, pd, q, out);
}

__attribute__((target("avx2"))) inline int32_t Sum8(__m256i v) {
  const __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i w = _mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(w, _mm_shuffle_epi32(w, _MM_SHUFFLE(2, 3, 0, 1))));
}

// AVX2: 16 bytes of a stored vector sign-extended to int16 (vpmovsxbw), multiplied by the
// query's int16 copy and adjacent pairs added into int32 (vpmaddwd: |pair| <= 2 * 127^2, exact;
// vpmaddubsw would saturate at int16).
template <int NQ, int R>
__attribute__((target("avx2"))) void Avx2Rows(const int8_t* docs, size_t r, size_t nd, size_t pd, const int16_t* q,
                                              int32_t* out) {
  __m256i acc[R][NQ];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) acc[i][k] = _mm256_setzero_si256();
  for (size_t j = 0; j < pd; j += 16) {
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m256i v =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(docs + (r + i) * pd + j)));
#pragma GCC unroll 8
      for (int k = 0; k < NQ; ++k)
        acc[i][k] = _mm256_add_epi32(
            acc[i][k],
            _mm256_madd_epi16(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k * pd + j))));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) out[k * nd + r + i] = Sum8(acc[i][k]);
}

template <int NQ>
void Avx2Kernel(const int8_t* docs, size_t nd, size_t pd, const int16_t* q, int32_t* out) {
  constexpr int R = Avx2Rows<NQ>();
  size_t r = 0;
  for (; r + R <= nd; r += R) Avx2Rows<NQ, R>(docs, r, nd, pd, q, out);
  for (; r < nd; ++r) Avx2Rows<NQ, 1>(docs, r, nd, pd, q, out);
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
  static void Run(const int8_t* d, const int32_t* s, size_t nd, size_t pd, const uint8_t* q, int32_t* o) {
    VnniKernel<NQ>(d, s, nd, pd, q, o);
  }
};
template <int NQ>
struct RunAvx2 {
  static void Run(const int8_t* d, size_t nd, size_t pd, const int16_t* q, int32_t* o) {
    Avx2Kernel<NQ>(d, nd, pd, q, o);
  }
};

bool Supported(Int8Isa isa) {
  switch (isa) {
    case Int8Isa::kScalar:
      return true;
    case Int8Isa::kAvx2:
      return __builtin_cpu_supports("avx2");
    case Int8Isa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Int8Isa BestIsa() {
  static const Int8Isa isa = Supported(Int8Isa::kAvx512Vnni) ? Int8Isa::kAvx512Vnni
                             : Supported(Int8Isa::kAvx2)      ? Int8Isa::kAvx2
                                                              : Int8Isa::kScalar;
  return isa;
}

constexpr size_t kGroup = 8;  // queries per kernel pass

// The queries offset to unsigned bytes (q8 + 128) for vpdpbusd.
const uint8_t* OffsetQueries(const int8_t* queries, size_t nq, size_t pd) {
  thread_local std::vector<uint8_t> buf;
  buf.resize(nq * pd);
  for (size_t i = 0; i < nq * pd; ++i) buf[i] = static_cast<uint8_t>(queries[i] + 128);
  return buf.data();
}

// The queries widened to int16 for vpmaddwd.
const int16_t* WidenQueries(const int8_t* queries, size_t nq, size_t pd) {
  thread_local std::vector<int16_t> buf;
  buf.resize(nq * pd);
  for (size_t i = 0; i < nq * pd; ++i) buf[i] = queries[i];
  return buf.data();
}

}  // namespace

bool Int8DotBlockWith(Int8Isa isa, const int8_t* docs, const int32_t* doc_sums, size_t nd, size_t padded_dim,
                      const int8_t* queries, size_t nq, int32_t* out) {
  if (!Supported(isa)) return false;
  for (size_t q0 = 0; q0 < nq; q0 += kGroup) {
    const size_t g = std::min(kGroup, nq - q0);
    const int8_t* q = queries + q0 * padded_dim;
    int32_t* o = out + q0 * nd;
    switch (isa) {
      case Int8Isa::kAvx512Vnni:
        ForQueries<RunVnni>(g, docs, doc_sums, nd, padded_dim, OffsetQueries(q, g, padded_dim), o);
        break;
      case Int8Isa::kAvx2:
        ForQueries<RunAvx2>(g, docs, nd, padded_dim, WidenQueries(q, g, padded_dim), o);
        break;
      case Int8Isa::kScalar:
        Int8Scalar(docs, nd, padded_dim, q, g, o);
        break;
    }
  }
  return true;
}

void Int8DotBlock(const int8_t* docs, const int32_t* doc_sums, size_t nd, size_t padded_dim, const int8_t* queries,
                  size_t nq, int32_t* out) {
  Int8DotBlockWith(BestIsa(), docs, doc_sums, nd, padded_dim, queries, nq, out);
}

}  // namespace m3vdb::index::detail
