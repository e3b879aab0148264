// The bf16 conversion against a double-precision nearest-even reference, every bf16 kernel this
// CPU has against double accumulation of the same bf16 values (within the documented bound), and
// the bound of FlatDenseIndex's bf16-first search: measured |bf16 kernel - float32 kernel| never
// exceeds Bf16Bound over many random pairs, with magnitudes from 1e-30 to 1e15.
#include "index/detail/bf16_kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "index/detail/dot_kernel.h"

namespace m3vdb::index::detail {
namespace {

constexpr Bf16Isa kBf16Isas[] = {Bf16Isa::kScalar, Bf16Isa::kAvx2, Bf16Isa::kAvx512, Bf16Isa::kAvx512Bf16};
constexpr DotIsa kDotIsas[] = {DotIsa::kScalar, DotIsa::kAvx2, DotIsa::kAvx512};

// The bf16 value nearest to x (ties to even significand), found by search over candidates in
// double, with the flush of results below FLT_MIN.
uint16_t ReferenceBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint16_t down = static_cast<uint16_t>(bits >> 16);  // truncation towards zero
  const uint16_t up = static_cast<uint16_t>(down + 1);      // next magnitude away from zero
  const double dd = Bf16ToFloat(down), du = Bf16ToFloat(up), dx = x;
  uint16_t best;
  if (std::abs(dx - dd) < std::abs(du - dx))
    best = down;
  else if (std::abs(dx - dd) > std::abs(du - dx))
    best = up;
  else
    best = (down & 1) ? up : down;
  if ((best & 0x7f80) == 0) best &= 0x8000;
  return best;
}

TEST(Bf16Kernel, ConversionIsRoundToNearestEven) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = bits(rng);
    if (i % 4 == 0) b = (b & 0xffff0000u) | 0x8000u;  // exact ties
    float x;
    std::memcpy(&x, &b, 4);
    if (!std::isfinite(x) || std::abs(x) >= 0x1.fep127f) continue;  // near overflow: checked below
    ASSERT_EQ(FloatToBf16(x), ReferenceBf16(x)) << x;
    const double err = std::abs(double{x} - Bf16ToFloat(FloatToBf16(x)));
    if (std::abs(x) >= 0x1p-126f) {
      ASSERT_LE(err, 0x1p-8 * std::abs(x)) << x;  // unit roundoff of 8 significand bits
    } else {                                      // flushed to zero, or rounded up to +-FLT_MIN
      const float b = std::abs(Bf16ToFloat(FloatToBf16(x)));
      ASSERT_TRUE(b == 0.0f || b == 0x1p-126f) << x;
      ASSERT_LE(err, 0x1p-126) << x;
    }
    ++checked;
  }
  EXPECT_GT(checked, 100000);
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to infinity
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(FloatToBf16(-0x1p-130f), 0x8000);
  std::vector<uint16_t> padded(40, 7);
  const float v[3] = {1, 2, 3};
  ToBf16(v, 3, 32, padded.data());
  for (size_t i = 3; i < 32; ++i) EXPECT_EQ(padded[i], 0);
  EXPECT_EQ(padded[32], 7);  // past padded_dim untouched
  EXPECT_EQ(Bf16PaddedDim(1), 32u);
  EXPECT_EQ(Bf16PaddedDim(784), 800u);
}

TEST(Bf16Kernel, EveryIsaWithinBoundOfDoubleAccumulation) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  int isas_run = 0;
  for (Bf16Isa isa : kBf16Isas) {
    bool supported = true;
    for (size_t dim : {1, 7, 32, 33, 100, 784}) {
      const size_t pd = Bf16PaddedDim(dim);
      for (size_t nd : {1, 2, 5, 13}) {
        for (size_t nq = 1; nq <= 11 && supported; ++nq) {
          std::vector<float> docs(nd * dim), queries(nq * dim);
          for (float& x : docs) x = u(rng);
          for (float& x : queries) x = u(rng);
          std::vector<uint16_t> db(nd * pd), qb(nq * pd);
          for (size_t r = 0; r < nd; ++r) ToBf16(&docs[r * dim], dim, pd, &db[r * pd]);
          for (size_t q = 0; q < nq; ++q) ToBf16(&queries[q * dim], dim, pd, &qb[q * pd]);
          std::vector<float> out(nq * nd, -1);
          supported = Bf16DotBlockWith(isa, db.data(), nd, pd, qb.data(), nq, out.data());
          if (!supported) break;
          for (size_t q = 0; q < nq; ++q)
            for (size_t r = 0; r < nd; ++r) {
              double ref = 0, abs_sum = 0;
              for (size_t j = 0; j < pd; ++j) {
                const double p = double{Bf16ToFloat(db[r * pd + j])} * Bf16ToFloat(qb[q * pd + j]);
                ref += p;
                abs_sum += std::abs(p);
              }
              const double bound = Bf16KernelGamma(pd) * abs_sum + Bf16KernelUnderflow(pd);
              ASSERT_LE(std::abs(out[q * nd + r] - ref), bound)
                  << "isa " << static_cast<int>(isa) << " dim " << dim << " nd " << nd << " nq " << nq;
            }
        }
      }
    }
    isas_run += supported;
  }
  EXPECT_GE(isas_run, 1);
}

// Many random pairs at magnitudes from 1e-30 to 1e15 (products underflow at the low end), some
// with exact zeros, some with subnormal elements: for every pair of instruction sets,
// fl(approx -+ Bf16Bound) brackets the float32 kernel's value.
TEST(Bf16Kernel, BoundHoldsForFloat32KernelOverManyPairs) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  std::uniform_int_distribution<int> exp10(-30, 15);
  double worst_ratio = 0;  // largest |approx - exact| / bound seen
  size_t pairs = 0;
  for (size_t dim : {1, 3, 31, 64, 129, 784}) {
    const size_t pd = Bf16PaddedDim(dim);
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
      if (trial % 3 == 0)
        for (float& v : docs) v = std::abs(v);  // all products one sign: no cancellation
      std::vector<uint16_t> qb(pd), db(nd * pd);
      ToBf16(q.data(), dim, pd, qb.data());
      for (size_t r = 0; r < nd; ++r) ToBf16(&docs[r * dim], dim, pd, &db[r * pd]);
      const Bf16QueryTerms qt = Bf16QueryTermsOf(q.data(), qb.data(), dim, pd);
      for (Bf16Isa bisa : kBf16Isas) {
        std::vector<float> approx(nd);
        if (!Bf16DotBlockWith(bisa, db.data(), nd, pd, qb.data(), 1, approx.data())) continue;
        for (DotIsa disa : kDotIsas) {
          std::vector<float> exact(nd);
          if (!DotBlockWith(disa, docs.data(), nd, dim, q.data(), 1, exact.data())) continue;
          for (size_t r = 0; r < nd; ++r) {
            const Bf16DocTerms dt = Bf16DocTermsOf(&docs[r * dim], &db[r * pd], dim, pd);
            const float bound = Bf16Bound(qt, dt.err, dt.norm);
            ASSERT_TRUE(std::isfinite(bound));
            ASSERT_LE(approx[r] - bound, exact[r]) << "dim " << dim << " sq " << sq << " sx " << sx;
            ASSERT_GE(approx[r] + bound, exact[r]) << "dim " << dim << " sq " << sq << " sx " << sx;
            worst_ratio = std::max(worst_ratio, std::abs(double{approx[r]} - exact[r]) / bound);
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

TEST(Bf16Kernel, NonFiniteVectorsHaveInfiniteTerms) {
  const size_t dim = 4, pd = Bf16PaddedDim(dim);
  std::vector<uint16_t> b(pd);
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::max()}) {
    const float x[dim] = {1, bad, 0, 2};
    ToBf16(x, dim, pd, b.data());
    EXPECT_FALSE(std::isfinite(Bf16DocTermsOf(x, b.data(), dim, pd).err)) << bad;
  }
}

}  // namespace
}  // namespace m3vdb::index::detail
