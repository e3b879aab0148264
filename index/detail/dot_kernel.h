// Inner products of a few queries against a block of stored vectors, reading each stored vector
// once for all the queries. Exact search of a small batch is bound by the pass over the stored
// vectors (memory bandwidth), which BLAS GEMM with a tiny M does poorly: it first packs (copies)
// every stored vector. `DotBlock` dispatches at run time to AVX-512 or AVX2+FMA kernels when the
// CPU has them (no -march flags needed), else to portable code.
#pragma once

#include <cstddef>

namespace m3vdb::index::detail {

// Most queries one kernel pass keeps in registers; DotBlock takes any number, in groups of it.
inline constexpr size_t kDotGroup = 8;

// out[q * nd + r] = <queries[q], docs[r]> for q < nq, r < nd. `docs` is nd x dim row-major
// (size nd*dim), `queries` nq x dim (size nq*dim), `out` size nq*nd. For a given instruction set
// the value for one (query, row) pair does not depend on nd, nq or the pair's position in the
// block (the same operations in the same order), so rescoring one row alone gives the score a
// full pass gives.
void DotBlock(const float* docs, size_t nd, size_t dim, const float* queries, size_t nq, float* out);

// The same with a chosen instruction set (for tests); false, doing nothing, when this CPU lacks it.
enum class DotIsa { kScalar, kAvx2, kAvx512 };
bool DotBlockWith(DotIsa isa, const float* docs, size_t nd, size_t dim, const float* queries, size_t nq, float* out);

}  // namespace m3vdb::index::detail
