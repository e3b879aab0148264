// The int8 quantization (round to nearest of x / scale, |x8| <= 127, error at most half a step),
// the blocked layout (rows stored, read back, moved and cleared), every int8 kernel this CPU has
// against the portable one and against an independent int64 reference on the int8 rows
// (bit-identical sums, at the extremes -127 / 127 too), and the bound of FlatDenseIndex's
// int8-first search: measured |int8 approximation - float32 kernel| never exceeds Int8Bound over
// many random pairs, with magnitudes from 1e-30 to 1e15, zeros and subnormal elements.
#include "index/detail/int8_kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "index/detail/dot_kernel.h"

namespace m3vdb::index::detail {
namespace {

constexpr Int8Isa kInt8Isas[] = {Int8Isa::kScalar, Int8Isa::kAvx2, Int8Isa::kAvx512Vnni};
constexpr DotIsa kDotIsas[] = {DotIsa::kScalar, DotIsa::kAvx2, DotIsa::kAvx512};

TEST(Int8Kernel, QuantizationRoundsToNearestWithinRange) {
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (size_t dim : {1, 3, 4, 50, 784}) {
    const size_t pd = Int8PaddedDim(dim);
    ASSERT_EQ(pd % kInt8Group, 0u);
    ASSERT_GE(pd, dim);
    for (float mag : {1e-30f, 1e-3f, 1.0f, 1e20f}) {
      std::vector<float> x(dim);
      for (float& v : x) v = g(rng) * mag;
      std::vector<int8_t> x8(pd, 99);
      const float s = QuantizeInt8(x.data(), dim, pd, x8.data());
      double max = 0;
      for (float v : x) max = std::max(max, std::abs(double{v}));
      EXPECT_NEAR(s, max / 127, max / 127 * 1e-6);
      int top = 0;
      for (size_t i = 0; i < dim; ++i) {
        ASSERT_GE(x8[i], -127);
        ASSERT_LE(x8[i], 127);
        top = std::max(top, std::abs(int{x8[i]}));
        // Nearest: no other integer code is closer.
        const double err = std::abs(double{x[i]} - double{s} * x8[i]);
        ASSERT_LE(err, 0.5 * s * (1 + 1e-6)) << dim << " " << mag;
      }
      EXPECT_EQ(top, 127);
      for (size_t i = dim; i < pd; ++i) ASSERT_EQ(x8[i], 0);
    }
  }
  std::vector<int8_t> x8(4);
  const float zeros[4] = {0, 0, -0.0f, 0};
  EXPECT_EQ(QuantizeInt8(zeros, 4, 4, x8.data()), 0.0f);
  const float tiny[4] = {0x1p-140f, 0, 0x1p-130f, 0};  // scale would be subnormal: zero
  EXPECT_EQ(QuantizeInt8(tiny, 4, 4, x8.data()), 0.0f);
  EXPECT_EQ(x8[0] | x8[1] | x8[2] | x8[3], 0);
  const float inf[4] = {1, INFINITY, 0, 2};
  EXPECT_EQ(QuantizeInt8(inf, 4, 4, x8.data()), INFINITY);
}

TEST(Int8Kernel, BlockedLayoutStoresLoadsAndClearsRows) {
  const size_t pd = 12, rows = 37;
  const size_t blocks = (rows + kInt8Lanes - 1) / kInt8Lanes;
  std::vector<uint8_t> mem(blocks * Int8BlockBytes(pd), 128);
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> code(-127, 127);
  std::vector<std::vector<int8_t>> want(rows, std::vector<int8_t>(pd));
  for (size_t r = 0; r < rows; ++r) {
    for (int8_t& v : want[r]) v = static_cast<int8_t>(code(rng));
    StoreInt8Row(want[r].data(), r, pd, mem.data());
  }
  std::vector<int8_t> got(pd);
  for (size_t r = 0; r < rows; ++r) {
    LoadInt8Row(mem.data(), r, pd, got.data());
    EXPECT_EQ(got, want[r]) << r;
  }
  ClearInt8Row(5, pd, mem.data());
  LoadInt8Row(mem.data(), 5, pd, got.data());
  EXPECT_EQ(got, std::vector<int8_t>(pd, 0));
  LoadInt8Row(mem.data(), 6, pd, got.data());
  EXPECT_EQ(got, want[6]);
  // Unused rows of the last block read as zero vectors.
  LoadInt8Row(mem.data(), blocks * kInt8Lanes - 1, pd, got.data());
  EXPECT_EQ(got, std::vector<int8_t>(pd, 0));
}

TEST(Int8Kernel, EveryIsaGivesTheExactIntegerSums) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> code(-127, 127);
  int isas_run = 0;
  for (Int8Isa isa : kInt8Isas) {
    bool supported = true;
    for (size_t dim : {1, 4, 7, 33, 100, 784}) {
      const size_t pd = Int8PaddedDim(dim);
      for (size_t nrows : {1, 15, 16, 17, 100}) {
        for (size_t nq = 1; nq <= 11 && supported; ++nq) {
          const size_t nblocks = (nrows + kInt8Lanes - 1) / kInt8Lanes;
          std::vector<std::vector<int8_t>> rows(nrows, std::vector<int8_t>(pd, 0));
          std::vector<uint8_t> mem(nblocks * Int8BlockBytes(pd), 128);
          for (size_t r = 0; r < nrows; ++r) {
            for (size_t i = 0; i < dim; ++i)
              rows[r][i] = static_cast<int8_t>(r % 7 == 3 ? (i % 2 ? 127 : -127) : code(rng));  // extremes too
            StoreInt8Row(rows[r].data(), r, pd, mem.data());
          }
          std::vector<int8_t> queries(nq * pd, 0);
          for (size_t q = 0; q < nq; ++q)
            for (size_t i = 0; i < dim; ++i)
              queries[q * pd + i] = static_cast<int8_t>(q % 5 == 2 ? (i % 3 ? -127 : 127) : code(rng));
          const size_t stride = nblocks * kInt8Lanes + 3;
          std::vector<int32_t> out(nq * stride, -1);
          supported = Int8DotBlockWith(isa, mem.data(), nblocks, pd, queries.data(), nq, out.data(), stride);
          if (!supported) break;
          for (size_t q = 0; q < nq; ++q) {
            for (size_t r = 0; r < nblocks * kInt8Lanes; ++r) {
              int64_t ref = 0;
              if (r < nrows)
                for (size_t i = 0; i < pd; ++i) ref += int64_t{rows[r][i]} * queries[q * pd + i];
              ASSERT_EQ(out[q * stride + r], ref)
                  << "isa " << static_cast<int>(isa) << " dim " << dim << " rows " << nrows << " nq " << nq;
            }
            ASSERT_EQ(out[q * stride + nblocks * kInt8Lanes], -1);  // nothing written past the rows
          }
        }
      }
    }
    isas_run += supported;
  }
  EXPECT_GE(isas_run, 2);  // the portable kernel and at least one vector kernel on x86-64 CPUs with AVX2
}

// Many random pairs at magnitudes from 1e-30 to 1e15 (products underflow at the low end), some
// with exact zeros, some with subnormal elements: for every pair of instruction sets,
// fl(approx -+ Int8Bound) brackets the float32 kernel's value.
TEST(Int8Kernel, BoundHoldsForFloat32KernelOverManyPairs) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  std::uniform_int_distribution<int> exp10(-30, 15);
  double worst_ratio = 0;  // largest |approx - exact| / bound seen
  size_t pairs = 0;
  for (size_t dim : {1, 3, 31, 64, 129, 784}) {
    const size_t pd = Int8PaddedDim(dim);
    for (int trial = 0; trial < 60; ++trial) {
      const float sq = std::pow(10.0f, static_cast<float>(exp10(rng)));
      const float sx = std::pow(10.0f, static_cast<float>(exp10(rng)));
      const size_t nd = 9;
      std::vector<float> q(dim), docs(nd * dim);
      for (float& v : q) v = g(rng) * sq;
      for (float& v : docs) v = g(rng) * sx;
      if (trial % 5 == 1) q[0] = 0x1p-140f;  // subnormal element
      if (trial % 5 == 2) docs[0] = -0x1p-135f;
      if (trial % 7 == 3) docs[dim / 2] = 0;
      if (trial % 11 == 4)
        for (size_t i = 0; i < dim; ++i) docs[dim + i] = 0;  // a zero vector
      if (trial % 3 == 0)
        for (float& v : docs) v = std::abs(v);  // all products one sign: no cancellation
      std::vector<int8_t> q8(pd), x8(nd * pd);
      const float qs = QuantizeInt8(q.data(), dim, pd, q8.data());
      std::vector<float> xs(nd);
      const size_t nblocks = (nd + kInt8Lanes - 1) / kInt8Lanes;
      std::vector<uint8_t> mem(nblocks * Int8BlockBytes(pd), 128);
      for (size_t r = 0; r < nd; ++r) {
        xs[r] = QuantizeInt8(&docs[r * dim], dim, pd, &x8[r * pd]);
        StoreInt8Row(&x8[r * pd], r, pd, mem.data());
      }
      const Int8QueryTerms qt = Int8QueryTermsOf(q.data(), q8.data(), qs, dim, pd);
      for (Int8Isa iisa : kInt8Isas) {
        std::vector<int32_t> sums(nblocks * kInt8Lanes);
        if (!Int8DotBlockWith(iisa, mem.data(), nblocks, pd, q8.data(), 1, sums.data(), sums.size())) continue;
        for (DotIsa disa : kDotIsas) {
          std::vector<float> exact(nd);
          if (!DotBlockWith(disa, docs.data(), nd, dim, q.data(), 1, exact.data())) continue;
          for (size_t r = 0; r < nd; ++r) {
            const Int8DocTerms dt = Int8DocTermsOf(&docs[r * dim], &x8[r * pd], xs[r], dim, pd);
            const float approx = Int8Approx(sums[r], qs * xs[r]);
            const float bound = Int8Bound(qt, dt.err, dt.norm);
            ASSERT_TRUE(std::isfinite(bound));
            ASSERT_LE(approx - bound, exact[r]) << "dim " << dim << " sq " << sq << " sx " << sx;
            ASSERT_GE(approx + bound, exact[r]) << "dim " << dim << " sq " << sq << " sx " << sx;
            worst_ratio = std::max(worst_ratio, std::abs(double{approx} - exact[r]) / bound);
            ++pairs;
          }
        }
      }
    }
  }
  EXPECT_GT(pairs, 10000u);
  EXPECT_LE(worst_ratio, 1.0);
  std::printf("worst |approx - exact| / bound over %zu pairs: %.3g\n", pairs, worst_ratio);
}

TEST(Int8Kernel, NonFiniteVectorsHaveInfiniteTerms) {
  const size_t dim = 4, pd = Int8PaddedDim(dim);
  std::vector<int8_t> b(pd);
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::max()}) {
    const float x[dim] = {1, bad, 0, 2};
    const float s = QuantizeInt8(x, dim, pd, b.data());
    const Int8DocTerms t = Int8DocTermsOf(x, b.data(), s, dim, pd);
    EXPECT_FALSE(std::isfinite(t.err) && std::isfinite(t.norm)) << bad;
  }
}

}  // namespace
}  // namespace m3vdb::index::detail
