#include "index/colbert.h"

#include <gtest/gtest.h>

#include <random>

namespace m3vdb::index {
namespace {

TEST(ColbertTest, MaxSimMatchesDefinition) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  std::vector<float> scratch;
  for (int t = 0; t < 20; ++t) {
    const uint32_t nq = 1 + rng() % 12, nd = 1 + rng() % 40, w = 1 + rng() % 64;
    std::vector<float> q(nq * w), d(nd * w);
    for (float& x : q) x = g(rng);
    for (float& x : d) x = g(rng);
    double ref = 0;
    for (uint32_t i = 0; i < nq; ++i) {
      double best = -1e300;
      for (uint32_t j = 0; j < nd; ++j) {
        double s = 0;
        for (uint32_t k = 0; k < w; ++k) s += double{q[i * w + k]} * d[j * w + k];
        best = std::max(best, s);
      }
      ref += best;
    }
    ref /= nq;
    EXPECT_NEAR(MaxSim(q, nq, d, nd, w, &scratch), ref, 1e-4 * (1 + std::abs(ref)));
  }
  EXPECT_EQ(MaxSim({}, 0, std::vector<float>{1.0f}, 1, 1, &scratch), 0.0f);
}

}  // namespace
}  // namespace m3vdb::index
