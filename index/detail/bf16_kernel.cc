#include "index/detail/bf16_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

namespace m3vdb::index::detail {

uint16_t FloatToBf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);  // nearest even (carries into the exponent)
  uint16_t b = static_cast<uint16_t>(rounded >> 16);
  if ((b & 0x7f80u) == 0) b &= 0x8000u;  // subnormal (or zero) -> signed zero
  return b;
}

float Bf16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

void ToBf16(const float* in, size_t dim, size_t padded_dim, uint16_t* out) {
  for (size_t i = 0; i < dim; ++i) out[i] = FloatToBf16(in[i]);
  std::fill(out + dim, out + padded_dim, uint16_t{0});
}

double Bf16KernelGamma(size_t padded_dim) {
  const double nu = static_cast<double>(padded_dim + kBf16Block) * 0x1p-24;
  return nu / (1 - nu) * (1 + 0x1p-40);  // the double arithmetic's own rounding, upwards
}

double Bf16KernelUnderflow(size_t padded_dim) { return 2.0 * static_cast<double>(padded_dim + kBf16Block) * 0x1p-126; }

namespace {

// v as a float, rounded towards +infinity (v >= 0).
float RoundUp(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

// Margin for the double sums below (relative error < (n+1) 2^-53 < 2^-30 for n < 2^20).
constexpr double kDoubleMargin = 1 + 0x1p-30;

struct Norms {
  double err = 0;   // ||x - x^||_2
  double bf16 = 0;  // ||x^||_2
  double norm = 0;  // ||x||_2
  double l1 = 0;    // ||x||_1
};

Norms NormsOf(const float* x, const uint16_t* xb, size_t dim) {
  double e2 = 0, b2 = 0, n2 = 0, l1 = 0;
  for (size_t i = 0; i < dim; ++i) {
    const double v = x[i], b = Bf16ToFloat(xb[i]);
    e2 += (v - b) * (v - b);  // exact in double: b is v rounded to 8 bits, or 0 for |v| < 2^-126
    b2 += b * b;
    n2 += v * v;
    l1 += std::abs(v);
  }
  return {std::sqrt(e2) * kDoubleMargin, std::sqrt(b2) * kDoubleMargin, std::sqrt(n2) * kDoubleMargin,
          l1 * kDoubleMargin};
}

}  // namespace

Bf16DocTerms Bf16DocTermsOf(const float* x, const uint16_t* xb, size_t dim, size_t padded_dim) {
  const Norms n = NormsOf(x, xb, dim);
  return {RoundUp((n.err + Bf16KernelGamma(padded_dim) * n.bf16) * kDoubleMargin), RoundUp(n.norm)};
}

Bf16QueryTerms Bf16QueryTermsOf(const float* q, const uint16_t* qb, size_t dim, size_t padded_dim) {
  const Norms n = NormsOf(q, qb, dim);
  const double sqrt_n_tiny = std::sqrt(static_cast<double>(padded_dim + kBf16Block)) * 0x1p-126;
  return {RoundUp(n.bf16), RoundUp((n.err + Bf16KernelGamma(padded_dim) * n.norm + sqrt_n_tiny) * kDoubleMargin),
          RoundUp((2 * Bf16KernelUnderflow(padded_dim) + n.l1 * 0x1p-126) * kDoubleMargin)};
}

namespace {

void Bf16Scalar(const uint16_t* docs, size_t nd, size_t pd, const uint16_t* queries, size_t nq, float* out) {
  for (size_t r = 0; r < nd; ++r) {
    const uint16_t* row = docs + r * pd;
    for (size_t q = 0; q < nq; ++q) {
      const uint16_t* qv = queries + q * pd;
      float s[4] = {0, 0, 0, 0};
      for (size_t j = 0; j < pd; j += 4)
        for (int l = 0; l < 4; ++l) s[l] += Bf16ToFloat(row[j + l]) * Bf16ToFloat(qv[j + l]);
      out[q * nd + r] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  }
}

// Queries widened to float for the shift kernels, split per chunk of W bf16 elements (one
// register load of a stored vector) into the even then the odd elements, the order in which
// the kernels widen a loaded chunk: shifting each 32-bit lane left by 16 gives the even
// elements as floats, masking off its low half the odd ones.
const float* SplitQueries(const uint16_t* queries, size_t nq, size_t pd, size_t w) {
  thread_local std::vector<float> buf;
  buf.resize(nq * pd);
  for (size_t q = 0; q < nq; ++q)
    for (size_t c = 0; c < pd; c += w)
      for (size_t i = 0; i < w / 2; ++i) {
        buf[q * pd + c + i] = Bf16ToFloat(queries[q * pd + c + 2 * i]);
        buf[q * pd + c + w / 2 + i] = Bf16ToFloat(queries[q * pd + c + 2 * i + 1]);
      }
  return buf.data();
}

// Horizontal sum in a fixed order. The zero-masked shuffles avoid _mm512_reduce_add_ps, whose
// unmasked builtins draw a false -Wuninitialized from GCC 12 inside avx512bf16 functions.
__attribute__((target("avx512f"))) inline float Sum16(__m512 v) {
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xffff, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xffff, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  const __m128 t = _mm512_maskz_extractf32x4_ps(0xf, v, 0);
  const __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));
  return _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)));
}

// Rows per step for NQ queries with 32 vector registers (as in dot_kernel.cc).
template <int NQ>
constexpr int Avx512Rows() {
  constexpr int rows[] = {0, 8, 8, 6, 5, 4, 4, 3, 3};
  return rows[NQ];
}
template <int NQ>
constexpr int Avx2Rows() {
  return NQ >= 4 ? 1 : 4 / NQ;
}

template <int NQ, int R>
__attribute__((target("avx512f,avx512bf16"))) void DpRows(const uint16_t* docs, size_t r, size_t nd, size_t pd,
                                                          const uint16_t* q, float* out) {
  __m512 acc[R][NQ];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) acc[i][k] = _mm512_setzero_ps();
  for (size_t j = 0; j < pd; j += 32) {
    __m512i v[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) v[i] = _mm512_loadu_si512(docs + (r + i) * pd + j);
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) {
      const __m512i qk = _mm512_loadu_si512(q + k * pd + j);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) acc[i][k] = _mm512_dpbf16_ps(acc[i][k], (__m512bh)v[i], (__m512bh)qk);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) out[k * nd + r + i] = Sum16(acc[i][k]);
}

template <int NQ>
void DpKernel(const uint16_t* docs, size_t nd, size_t pd, const uint16_t* q, float* out) {
  constexpr int R = Avx512Rows<NQ>();
  size_t r = 0;
  for (; r + R <= nd; r += R) DpRows<NQ, R>(docs, r, nd, pd, q, out);
  for (; r < nd; ++r) DpRows<NQ, 1>(docs, r, nd, pd, q, out);
}

// 16 lanes of uint32 (GCC vector extension; _mm512_slli_epi32 draws a false GCC 12 warning).
typedef uint32_t U32x16 __attribute__((vector_size(64)));

// AVX-512F without BF16: each 32-element chunk widened by shift/mask into even and odd floats.
template <int NQ, int R>
__attribute__((target("avx512f"))) void Widen512Rows(const uint16_t* docs, size_t r, size_t nd, size_t pd,
                                                     const float* q, float* out) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  __m512 acc[R][NQ];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) acc[i][k] = _mm512_setzero_ps();
  for (size_t j = 0; j < pd; j += 32) {
    __m512 even[R], odd[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512i v = _mm512_loadu_si512(docs + (r + i) * pd + j);
      even[i] = _mm512_castsi512_ps(reinterpret_cast<__m512i>(reinterpret_cast<U32x16>(v) << 16));
      odd[i] = _mm512_castsi512_ps(_mm512_and_si512(v, high));
    }
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) {
      const __m512 qe = _mm512_loadu_ps(q + k * pd + j), qo = _mm512_loadu_ps(q + k * pd + j + 16);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) acc[i][k] = _mm512_fmadd_ps(odd[i], qo, _mm512_fmadd_ps(even[i], qe, acc[i][k]));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) out[k * nd + r + i] = Sum16(acc[i][k]);
}

template <int NQ>
void Widen512Kernel(const uint16_t* docs, size_t nd, size_t pd, const float* q, float* out) {
  constexpr int R = Avx512Rows<NQ>() > 4 ? 4 : Avx512Rows<NQ>();  // two widened registers per row
  size_t r = 0;
  for (; r + R <= nd; r += R) Widen512Rows<NQ, R>(docs, r, nd, pd, q, out);
  for (; r < nd; ++r) Widen512Rows<NQ, 1>(docs, r, nd, pd, q, out);
}

__attribute__((target("avx2,fma"))) float Sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// AVX2: 16-element chunks (one 256-bit load) widened like the AVX-512F kernel.
template <int NQ, int R>
__attribute__((target("avx2,fma"))) void Widen256Rows(const uint16_t* docs, size_t r, size_t nd, size_t pd,
                                                      const float* q, float* out) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  __m256 acc[R][NQ];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) acc[i][k] = _mm256_setzero_ps();
  for (size_t j = 0; j < pd; j += 16) {
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(docs + (r + i) * pd + j));
      const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      const __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(v, high));
#pragma GCC unroll 8
      for (int k = 0; k < NQ; ++k)
        acc[i][k] = _mm256_fmadd_ps(odd, _mm256_loadu_ps(q + k * pd + j + 8),
                                    _mm256_fmadd_ps(even, _mm256_loadu_ps(q + k * pd + j), acc[i][k]));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) out[k * nd + r + i] = Sum8(acc[i][k]);
}

template <int NQ>
void Widen256Kernel(const uint16_t* docs, size_t nd, size_t pd, const float* q, float* out) {
  constexpr int R = Avx2Rows<NQ>();
  size_t r = 0;
  for (; r + R <= nd; r += R) Widen256Rows<NQ, R>(docs, r, nd, pd, q, out);
  for (; r < nd; ++r) Widen256Rows<NQ, 1>(docs, r, nd, pd, q, out);
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
struct RunDp {
  static void Run(const uint16_t* d, size_t nd, size_t pd, const uint16_t* q, float* o) {
    DpKernel<NQ>(d, nd, pd, q, o);
  }
};
template <int NQ>
struct RunWiden512 {
  static void Run(const uint16_t* d, size_t nd, size_t pd, const float* q, float* o) {
    Widen512Kernel<NQ>(d, nd, pd, q, o);
  }
};
template <int NQ>
struct RunWiden256 {
  static void Run(const uint16_t* d, size_t nd, size_t pd, const float* q, float* o) {
    Widen256Kernel<NQ>(d, nd, pd, q, o);
  }
};

bool Supported(Bf16Isa isa) {
  switch (isa) {
    case Bf16Isa::kScalar:
      return true;
    case Bf16Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Bf16Isa::kAvx512:
      return __builtin_cpu_supports("avx512f");
    case Bf16Isa::kAvx512Bf16:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  }
  return false;
}

Bf16Isa BestIsa() {
  static const Bf16Isa isa = Supported(Bf16Isa::kAvx512Bf16) ? Bf16Isa::kAvx512Bf16
                             : Supported(Bf16Isa::kAvx512)   ? Bf16Isa::kAvx512
                             : Supported(Bf16Isa::kAvx2)     ? Bf16Isa::kAvx2
                                                             : Bf16Isa::kScalar;
  return isa;
}

constexpr size_t kGroup = 8;  // queries per kernel pass

}  // namespace

bool Bf16DotBlockWith(Bf16Isa isa, const uint16_t* docs, size_t nd, size_t padded_dim, const uint16_t* queries,
                      size_t nq, float* out) {
  if (!Supported(isa)) return false;
  for (size_t q0 = 0; q0 < nq; q0 += kGroup) {
    const size_t g = std::min(kGroup, nq - q0);
    const uint16_t* q = queries + q0 * padded_dim;
    float* o = out + q0 * nd;
    switch (isa) {
      case Bf16Isa::kAvx512Bf16:
        ForQueries<RunDp>(g, docs, nd, padded_dim, q, o);
        break;
      case Bf16Isa::kAvx512:
        ForQueries<RunWiden512>(g, docs, nd, padded_dim, SplitQueries(q, g, padded_dim, 32), o);
        break;
      case Bf16Isa::kAvx2:
        ForQueries<RunWiden256>(g, docs, nd, padded_dim, SplitQueries(q, g, padded_dim, 16), o);
        break;
      case Bf16Isa::kScalar:
        Bf16Scalar(docs, nd, padded_dim, q, g, o);
        break;
    }
  }
  return true;
}

void Bf16DotBlock(const uint16_t* docs, size_t nd, size_t padded_dim, const uint16_t* queries, size_t nq, float* out) {
  Bf16DotBlockWith(BestIsa(), docs, nd, padded_dim, queries, nq, out);
}

}  // namespace m3vdb::index::detail
