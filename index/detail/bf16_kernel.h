// bfloat16 copies of vectors and the inner-product kernel over them, for the first (approximate)
// pass of exact small-batch search in FlatDenseIndex (see index/flat_dense_index.cc for how its
// error is bounded so that results stay exact).
//
// bfloat16 here: the upper 16 bits of a float32, rounded to nearest even, 8 significand bits
// (unit roundoff u = 2^-8). Results of magnitude below FLT_MIN (bf16 subnormals) are flushed to
// a signed zero by FloatToBf16, so the kernels never see subnormal inputs (AVX512_BF16's
// `vdpbf16ps` treats them as zero; flushing them first keeps the rounding error that the caller
// measures the one every kernel uses).
//
// Vectors are stored padded to a multiple of kBf16Block elements with zeros (Bf16PaddedDim).
// `Bf16DotBlock` dispatches at run time (no -march flags) to AVX512_BF16 (`vdpbf16ps`), AVX-512F
// or AVX2+FMA (bf16 widened to float by a 16-bit shift, products then exact in float32), else
// portable code. Every kernel sums the exact products q_i*x_i (a product of two bf16 values has at
// most 16 significand bits) in float32 in some order, so each result is within
// Bf16KernelGamma(padded_dim) * sum|q_i*x_i| + Bf16KernelUnderflow(padded_dim) of the exact
// inner product of the two bf16 vectors.
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3vdb::index::detail {

inline constexpr size_t kBf16Block = 32;  // elements per 512-bit register of bf16

inline size_t Bf16PaddedDim(size_t dim) { return (dim + kBf16Block - 1) / kBf16Block * kBf16Block; }

// Round to nearest even; NaN stays NaN, overflow gives infinity, |result| < FLT_MIN gives +-0.
uint16_t FloatToBf16(float x);
float Bf16ToFloat(uint16_t b);
// out[0, dim) = FloatToBf16(in[i]); out[dim, padded_dim) = 0.
void ToBf16(const float* in, size_t dim, size_t padded_dim, uint16_t* out);

// gamma_n = n u / (1 - n u) with u = 2^-24 and n = padded_dim + kBf16Block (margin for the final
// reductions): the relative bound on float32 accumulation of n terms in any order (Higham,
// "Accuracy and Stability of Numerical Algorithms", 3.1), rounded up. Requires padded_dim < 2^20.
double Bf16KernelGamma(size_t padded_dim);
// Absolute bound on what flush-to-zero / gradual underflow can add to one such sum: each of at
// most 2n operations (products and additions) loses less than FLT_MIN = 2^-126.
double Bf16KernelUnderflow(size_t padded_dim);

// The error-bound terms of FlatDenseIndex's bf16-first search (the proof is in
// index/flat_dense_index.cc): |Bf16DotBlock(q^, x^) - DotBlock(q, x)| <= Bf16Bound(query, doc)
// for float32 vectors q, x, their bf16 copies q^, x^ (ToBf16), and any instruction set of either
// kernel. Computed in double, rounded up to float.
struct Bf16DocTerms {
  float err;   // a = ||x - x^||_2 + gamma ||x^||_2
  float norm;  // b = ||x||_2
};
struct Bf16QueryTerms {
  float c;  // ||q^||_2
  float d;  // ||q - q^||_2 + gamma ||q||_2 + sqrt(n) 2^-126
  float a;  // 2 Bf16KernelUnderflow + 2^-126 ||q||_1
};
// `x` float32 of size dim, `xb` its bf16 copy (ToBf16, padded_dim). Terms are +infinity when x
// has non-finite elements or a sum overflows.
Bf16DocTerms Bf16DocTermsOf(const float* x, const uint16_t* xb, size_t dim, size_t padded_dim);
Bf16QueryTerms Bf16QueryTermsOf(const float* q, const uint16_t* qb, size_t dim, size_t padded_dim);
// B' = 1.125 (c a + d b + A) in float32: fl(approx - B') and fl(approx + B') bracket the float32
// kernel's inner product (step 4 of the proof).
inline float Bf16Bound(const Bf16QueryTerms& q, float doc_err, float doc_norm) {
  return 1.125f * (q.c * doc_err + q.d * doc_norm + q.a);
}

// out[q * nd + r] ~= <queries[q], docs[r]> for q < nq, r < nd, within the bound above. `docs` is
// nd x padded_dim bf16 row-major, `queries` nq x padded_dim; padded_dim is a multiple of
// kBf16Block and the padding is zero.
void Bf16DotBlock(const uint16_t* docs, size_t nd, size_t padded_dim, const uint16_t* queries, size_t nq, float* out);

// The same with a chosen instruction set (for tests); false, doing nothing, when this CPU lacks it.
enum class Bf16Isa { kScalar, kAvx2, kAvx512, kAvx512Bf16 };
bool Bf16DotBlockWith(Bf16Isa isa, const uint16_t* docs, size_t nd, size_t padded_dim, const uint16_t* queries,
                      size_t nq, float* out);

}  // namespace m3vdb::index::detail
