// int8 copies of vectors and the exact integer inner-product kernel over them, for the first
// (approximate) pass of exact small-batch search in FlatDenseIndex (see index/flat_dense_index.cc
// for how its error is bounded so that results stay exact).
//
// Quantization (QuantizeInt8), per vector: scale s = fl(max_i |x_i| / 127) and x8_i =
// round(x_i / s) clamped to [-127, 127], so the vector stands for x^ = s * x8. When s would be
// below FLT_MIN (or x is zero) s = 0 and x8 = 0; when x has non-finite elements s is +infinity and
// x8 = 0 (the caller's error terms are then infinite). Vectors are padded with zeros to a
// multiple of kInt8Group elements (Int8PaddedDim).
//
// Stored vectors live in blocks of kInt8Lanes (16) vectors, offset to unsigned bytes (x8 + 128,
// so the padding and unused rows hold 128) and interleaved by groups of 4 elements: element i of
// row l of a block is at byte (i / 4) * 64 + l * 4 + i % 4 of the block (16 * padded_dim bytes).
// One 64-byte load then holds the same 4 elements of 16 vectors, and AVX512-VNNI `vpdpbusd`
// (unsigned x signed bytes, four products per int32 lane) with the query's 4 elements broadcast
// adds them into 16 lanes, one per vector: no horizontal sums. The 128 offset comes back out as
// 128 * sum(q8) per query.
//
// `Int8DotBlock` computes <q8, x8> exactly as int32 (every partial sum is below 255 * 127 *
// padded_dim < 2^31 for padded_dim <= kInt8MaxPaddedDim), so every instruction set gives
// bit-identical sums. It dispatches at run time (no -march flags) to AVX512-VNNI, AVX2 (bytes
// widened to int16, `vpmaddwd`; `vpmaddubsw` would saturate), else portable code.
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3vdb::index::detail {

inline constexpr size_t kInt8Group = 4;   // elements per int32 lane of vpdpbusd
inline constexpr size_t kInt8Lanes = 16;  // stored vectors per block (int32 lanes of a 512-bit register)
// Largest padded dimension the kernels take (keeps every int32 sum, with the u8 offset, exact).
inline constexpr size_t kInt8MaxPaddedDim = size_t{1} << 16;

inline size_t Int8PaddedDim(size_t dim) { return (dim + kInt8Group - 1) / kInt8Group * kInt8Group; }
// Bytes of one block of kInt8Lanes stored vectors.
inline size_t Int8BlockBytes(size_t padded_dim) { return kInt8Lanes * padded_dim; }

// Writes x8 (out[0, dim), zeros up to padded_dim) and returns the scale s (see above).
float QuantizeInt8(const float* x, size_t dim, size_t padded_dim, int8_t* out);
// Writes x8 (padded_dim elements) as row `row` of the blocks starting at `blocks`, and reads it
// back; ClearInt8Row sets it to the padding value (all elements 0).
void StoreInt8Row(const int8_t* x8, size_t row, size_t padded_dim, uint8_t* blocks);
void LoadInt8Row(const uint8_t* blocks, size_t row, size_t padded_dim, int8_t* x8);
void ClearInt8Row(size_t row, size_t padded_dim, uint8_t* blocks);

// gamma_n = n u / (1 - n u) with u = 2^-24 and n = padded_dim + 128 (margin for the float32
// pass's padding and final reductions): the relative bound on float32 accumulation of n terms in any order (Higham,
// "Accuracy and Stability of Numerical Algorithms", 3.1), rounded up. Requires padded_dim < 2^20.
double Int8Gamma(size_t padded_dim);
// Absolute bound on what flush-to-zero / gradual underflow can add to the float32 pass's sum of
// n terms: each of at most 2n operations loses less than FLT_MIN = 2^-126.
double Float32PassUnderflow(size_t padded_dim);
// Absolute bound on what underflow can add to Int8Approx: 2^-126 (1.0001 * 127^2 * padded_dim + 1).
double Int8ApproxUnderflow(size_t padded_dim);

// The approximate inner product of q^ = s_q q8 and x^ = s_x x8 from the exact integer sum:
// fl(fl(s_q * s_x) * fl(sum)), `scales` = fl(s_q * s_x) computed by the caller.
inline float Int8Approx(int32_t sum, float scales) { return static_cast<float>(sum) * scales; }

// The error-bound terms of FlatDenseIndex's int8-first search (the proof is in
// index/flat_dense_index.cc): |Int8Approx(<q8,x8>, fl(s_q s_x)) - DotBlock(q, x)| <=
// Int8Bound(query, doc) for float32 vectors q, x and their quantized copies (QuantizeInt8), with
// any instruction set. Computed in double, rounded up to float.
struct Int8DocTerms {
  float err;   // a = ||x - x^||_2 + gamma ||x^||_2
  float norm;  // b = ||x||_2
};
struct Int8QueryTerms {
  float c;  // ||q^||_2
  float d;  // ||q - q^||_2 + gamma ||q||_2 + sqrt(n) 2^-126
  float a;  // Float32PassUnderflow + Int8ApproxUnderflow + 2^-126 ||q||_1
};
// `x` float32 of size dim, `x8` and `scale` its quantization (QuantizeInt8, padded_dim). Terms
// are +infinity when x has non-finite elements or a sum overflows.
Int8DocTerms Int8DocTermsOf(const float* x, const int8_t* x8, float scale, size_t dim, size_t padded_dim);
Int8QueryTerms Int8QueryTermsOf(const float* q, const int8_t* q8, float scale, size_t dim, size_t padded_dim);
// B' = (1 + 2^-5) (c a + d b + A) in float32: fl(approx - B') and fl(approx + B') bracket the
// float32 kernel's inner product (step 4 of the proof).
inline float Int8Bound(const Int8QueryTerms& q, float doc_err, float doc_norm) {
  return 1.03125f * (q.c * doc_err + q.d * doc_norm + q.a);
}

// out[q * stride + r] = <queries[q], x8 of row r> exactly, for q < nq and r < nblocks *
// kInt8Lanes (rows beyond those stored give 0). `blocks`: nblocks blocks in the layout above;
// `queries` nq x padded_dim int8 in [-127, 127], padding zero; padded_dim a multiple of
// kInt8Group, at most kInt8MaxPaddedDim; stride >= nblocks * kInt8Lanes.
void Int8DotBlock(const uint8_t* blocks, size_t nblocks, size_t padded_dim, const int8_t* queries, size_t nq,
                  int32_t* out, size_t stride);

// The same with a chosen instruction set (for tests); false, doing nothing, when this CPU lacks it.
enum class Int8Isa { kScalar, kAvx2, kAvx512Vnni };
bool Int8DotBlockWith(Int8Isa isa, const uint8_t* blocks, size_t nblocks, size_t padded_dim, const int8_t* queries,
                      size_t nq, int32_t* out, size_t stride);

}  // namespace m3vdb::index::detail
