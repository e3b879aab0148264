// The small-batch dot-product kernels (every instruction set this CPU has) against double
// accumulation, for every query count 1..8 (and more, in groups), row counts that leave partial
// steps, and dimensions that are no multiple of the SIMD width.
#include "index/detail/dot_kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace m3vdb::index::detail {
namespace {

TEST(DotKernel, EveryIsaMatchesDoubleAccumulation) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  int isas_run = 0;
  for (DotIsa isa : {DotIsa::kScalar, DotIsa::kAvx2, DotIsa::kAvx512}) {
    bool supported = true;
    for (size_t dim : {1, 7, 16, 19, 33, 784}) {
      for (size_t nd : {1, 2, 5, 13}) {
        for (size_t nq = 1; nq <= 11 && supported; ++nq) {
          std::vector<float> docs(nd * dim), queries(nq * dim), out(nq * nd, -1);
          for (float& x : docs) x = u(rng);
          for (float& x : queries) x = u(rng);
          supported = DotBlockWith(isa, docs.data(), nd, dim, queries.data(), nq, out.data());
          if (!supported) break;
          for (size_t q = 0; q < nq; ++q)
            for (size_t r = 0; r < nd; ++r) {
              double ref = 0;
              for (size_t j = 0; j < dim; ++j) ref += double{docs[r * dim + j]} * queries[q * dim + j];
              ASSERT_NEAR(out[q * nd + r], ref, 1e-5 * (1 + dim))
                  << "isa " << static_cast<int>(isa) << " dim " << dim << " nd " << nd << " nq " << nq << " q " << q
                  << " r " << r;
            }
        }
      }
    }
    isas_run += supported;
  }
  EXPECT_GE(isas_run, 1);
}

}  // namespace
}  // namespace m3vdb::index::detail

namespace m3vdb::index::detail {
namespace {

// FlatDenseIndex rescores candidates one at a time and relies on getting bit for bit the score
// a full pass gives: for every instruction set, a pair's value does not depend on the block.
TEST(DotKernel, PairValueDoesNotDependOnTheBlock) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  for (DotIsa isa : {DotIsa::kScalar, DotIsa::kAvx2, DotIsa::kAvx512}) {
    for (size_t dim : {5, 19, 784}) {
      const size_t nd = 23, nq = 8;
      std::vector<float> docs(nd * dim), queries(nq * dim), out(nq * nd);
      for (float& x : docs) x = g(rng);
      for (float& x : queries) x = g(rng);
      if (!DotBlockWith(isa, docs.data(), nd, dim, queries.data(), nq, out.data())) break;
      for (size_t q = 0; q < nq; ++q)
        for (size_t r = 0; r < nd; ++r) {
          float one;
          ASSERT_TRUE(DotBlockWith(isa, &docs[r * dim], 1, dim, &queries[q * dim], 1, &one));
          ASSERT_EQ(one, out[q * nd + r]) << "isa " << static_cast<int>(isa) << " dim " << dim;
        }
    }
  }
}

}  // namespace
}  // namespace m3vdb::index::detail
