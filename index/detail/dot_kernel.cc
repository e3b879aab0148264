#include "index/detail/dot_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace m3vdb::index::detail {
namespace {

// NQ queries x R rows per step, NQ*R independent accumulators (enough to hide FMA latency).
template <int NQ>
constexpr int RowsPerStep() {
  return NQ >= 4 ? 1 : 4 / NQ;
}

void DotScalar(const float* docs, size_t nd, size_t dim, const float* queries, size_t nq, float* out) {
  for (size_t r = 0; r < nd; ++r) {
    const float* row = docs + r * dim;
    for (size_t q = 0; q < nq; ++q) {
      const float* qv = queries + q * dim;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      size_t j = 0;
      for (; j + 4 <= dim; j += 4) {
        s0 += row[j] * qv[j];
        s1 += row[j + 1] * qv[j + 1];
        s2 += row[j + 2] * qv[j + 2];
        s3 += row[j + 3] * qv[j + 3];
      }
      for (; j < dim; ++j) s0 += row[j] * qv[j];
      out[q * nd + r] = (s0 + s1) + (s2 + s3);
    }
  }
}

// Rows per step of the AVX-512 kernel: the R x NQ accumulators, R row vectors and one query
// vector fit the 32 vector registers, and each step does R*NQ FMAs for R+NQ loads.
template <int NQ>
constexpr int Avx512Rows() {
  constexpr int rows[] = {0, 8, 8, 6, 5, 4, 4, 3, 3};
  return rows[NQ];
}

template <int NQ>
__attribute__((target("avx512f"))) void DotAvx512(const float* docs, size_t nd, size_t dim, const float* q,
                                                  float* out) {
  constexpr int R = Avx512Rows<NQ>();
  const size_t full = dim / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim - full)) - 1);
  size_t r = 0;
  for (; r + R <= nd; r += R) {
    __m512 acc[R][NQ];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
      for (int k = 0; k < NQ; ++k) acc[i][k] = _mm512_setzero_ps();
    for (size_t j = 0; j < dim; j += 16) {
      const __mmask16 mask = j < full ? static_cast<__mmask16>(0xffff) : tail;
      __m512 v[R];
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) v[i] = _mm512_maskz_loadu_ps(mask, docs + (r + i) * dim + j);
#pragma GCC unroll 8
      for (int k = 0; k < NQ; ++k) {
        const __m512 qk = _mm512_maskz_loadu_ps(mask, q + k * dim + j);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) acc[i][k] = _mm512_fmadd_ps(v[i], qk, acc[i][k]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
      for (int k = 0; k < NQ; ++k) out[k * nd + r + i] = _mm512_reduce_add_ps(acc[i][k]);
  }
  for (; r < nd; ++r) {  // fewer than R rows left
    for (int k = 0; k < NQ; ++k) {
      __m512 acc = _mm512_setzero_ps();
      for (size_t j = 0; j < dim; j += 16) {
        const __mmask16 mask = j < full ? static_cast<__mmask16>(0xffff) : tail;
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, docs + r * dim + j),
                              _mm512_maskz_loadu_ps(mask, q + k * dim + j), acc);
      }
      out[k * nd + r] = _mm512_reduce_add_ps(acc);
    }
  }
}

__attribute__((target("avx2,fma"))) float Sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Rows [r, r + R): per (row, query) the same operations whatever R is, so a pair's score does
// not depend on how the rows were grouped (FlatDenseIndex rescores single candidates and relies
// on getting the score a full pass gives).
template <int NQ, int R>
__attribute__((target("avx2,fma"))) void DotAvx2Rows(const float* docs, size_t r, size_t nd, size_t dim,
                                                     const float* q, float* out) {
  const size_t full = dim / 8 * 8;
  __m256 acc[R][NQ];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) acc[i][k] = _mm256_setzero_ps();
  for (size_t j = 0; j < full; j += 8) {
    __m256 qv[NQ];
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) qv[k] = _mm256_loadu_ps(q + k * dim + j);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m256 v = _mm256_loadu_ps(docs + (r + i) * dim + j);
#pragma GCC unroll 8
      for (int k = 0; k < NQ; ++k) acc[i][k] = _mm256_fmadd_ps(v, qv[k], acc[i][k]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    const float* row = docs + (r + i) * dim;
#pragma GCC unroll 8
    for (int k = 0; k < NQ; ++k) {
      float s = Sum8(acc[i][k]);
      for (size_t j = full; j < dim; ++j) s = std::fma(row[j], q[k * dim + j], s);
      out[k * nd + r + i] = s;
    }
  }
}

template <int NQ>
void DotAvx2(const float* docs, size_t nd, size_t dim, const float* q, float* out) {
  constexpr int R = RowsPerStep<NQ>();
  size_t r = 0;
  for (; r + R <= nd; r += R) DotAvx2Rows<NQ, R>(docs, r, nd, dim, q, out);
  for (; r < nd; ++r) DotAvx2Rows<NQ, 1>(docs, r, nd, dim, q, out);  // fewer than R rows left
}

using Kernel = void (*)(const float*, size_t, size_t, const float*, float*);

template <template <int> class Pick>
constexpr Kernel KernelFor(size_t nq) {
  switch (nq) {
    case 1:
      return Pick<1>::value;
    case 2:
      return Pick<2>::value;
    case 3:
      return Pick<3>::value;
    case 4:
      return Pick<4>::value;
    case 5:
      return Pick<5>::value;
    case 6:
      return Pick<6>::value;
    case 7:
      return Pick<7>::value;
    default:
      return Pick<8>::value;
  }
}

template <int NQ>
struct PickAvx512 {
  static constexpr Kernel value = &DotAvx512<NQ>;
};
template <int NQ>
struct PickAvx2 {
  static constexpr Kernel value = &DotAvx2<NQ>;
};

bool Supported(DotIsa isa) {
  switch (isa) {
    case DotIsa::kScalar:
      return true;
    case DotIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case DotIsa::kAvx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

DotIsa BestIsa() {
  static const DotIsa isa = Supported(DotIsa::kAvx512) ? DotIsa::kAvx512
                            : Supported(DotIsa::kAvx2) ? DotIsa::kAvx2
                                                       : DotIsa::kScalar;
  return isa;
}

}  // namespace

bool DotBlockWith(DotIsa isa, const float* docs, size_t nd, size_t dim, const float* queries, size_t nq, float* out) {
  static_assert(kDotGroup == 8, "KernelFor covers 1..8 queries");
  if (!Supported(isa)) return false;
  for (size_t q0 = 0; q0 < nq; q0 += kDotGroup) {
    const size_t g = std::min(kDotGroup, nq - q0);
    const float* q = queries + q0 * dim;
    float* o = out + q0 * nd;
    switch (isa) {
      case DotIsa::kAvx512:
        KernelFor<PickAvx512>(g)(docs, nd, dim, q, o);
        break;
      case DotIsa::kAvx2:
        KernelFor<PickAvx2>(g)(docs, nd, dim, q, o);
        break;
      case DotIsa::kScalar:
        DotScalar(docs, nd, dim, q, g, o);
        break;
    }
  }
  return true;
}

void DotBlock(const float* docs, size_t nd, size_t dim, const float* queries, size_t nq, float* out) {
  DotBlockWith(BestIsa(), docs, nd, dim, queries, nq, out);
}

}  // namespace m3vdb::index::detail
