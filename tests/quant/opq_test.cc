// m3vdb's OPQ rotation and product k-means against FAISS (OPQMatrix, ProductQuantizer) and
// brute force.
#include <faiss/VectorTransform.h>
#include <faiss/impl/ProductQuantizer.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "quant/detail/product_kmeans.h"
#include "quant/opq.h"

namespace m3vdb::quant {
namespace {

constexpr size_t kD = 16, kM = 4, kKsub = 16, kN = 4000;

// Vectors whose variance sits in a few directions spread over all coordinates by a random
// rotation: PQ on contiguous blocks of the raw coordinates wastes its codewords there.
std::vector<float> CorrelatedData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> mix(kD * kD);
  for (float& v : mix) v = g(rng) / std::sqrt(float{kD});
  std::vector<float> x(n * kD);
  for (size_t i = 0; i < n; ++i) {
    float z[kD];
    for (size_t k = 0; k < kD; ++k) z[k] = g(rng) * std::pow(0.7f, static_cast<float>(k));
    for (size_t j = 0; j < kD; ++j) {
      float s = 0;
      for (size_t k = 0; k < kD; ++k) s += mix[j * kD + k] * z[k];
      x[i * kD + j] = s;
    }
  }
  return x;
}

std::vector<float> Rotated(const std::vector<float>& x, const std::vector<float>& r) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size() / kD; ++i)
    for (size_t j = 0; j < kD; ++j) {
      double s = 0;
      for (size_t k = 0; k < kD; ++k) s += double{r[j * kD + k]} * x[i * kD + k];
      out[i * kD + j] = static_cast<float>(s);
    }
  return out;
}

// Mean squared error of FAISS's own PQ trained on x: the same yardstick for every rotation.
double FaissPqError(const std::vector<float>& x) {
  const size_t n = x.size() / kD;
  faiss::ProductQuantizer pq(kD, kM, 4);
  pq.cp.seed = 5;
  pq.train(static_cast<faiss::Index::idx_t>(n), x.data());
  std::vector<uint8_t> codes(n * pq.code_size);
  std::vector<float> rec(x.size());
  pq.compute_codes(x.data(), codes.data(), n);
  pq.decode(codes.data(), rec.data(), n);
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += double{x[i] - rec[i]} * (x[i] - rec[i]);
  return e / n;
}

TEST(OpqTest, RotationIsOrthonormalDeterministicAndBeatsIdentityLikeFaiss) {
  const std::vector<float> x = CorrelatedData(kN, 1);
  OpqOptions opt;
  opt.iterations = 20;  // the defaults otherwise
  std::vector<double> errors;
  opt.on_iteration = [&](int, int, double e) { errors.push_back(e); };
  auto r = TrainOpqRotation(x.data(), kN, kD, kM, kKsub, opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), kD * kD);
  ASSERT_EQ(errors.size(), static_cast<size_t>(opt.iterations));
  for (size_t i = 0; i < kD; ++i)
    for (size_t j = 0; j < kD; ++j) {
      double dot = 0;
      for (size_t k = 0; k < kD; ++k) dot += double{(*r)[i * kD + k]} * (*r)[j * kD + k];
      EXPECT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-4) << i << "," << j;
    }
  // Every k-means step and rotation update can only lower the PQ error.
  for (size_t i = 1; i < errors.size(); ++i) EXPECT_LE(errors[i], errors[i - 1] * (1 + 1e-4)) << "update " << i + 1;
  EXPECT_LT(errors.back(), errors.front());

  opt.on_iteration = nullptr;
  auto again = TrainOpqRotation(x.data(), kN, kD, kM, kKsub, opt);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);

  faiss::OPQMatrix faiss_opq(kD, kM);
  faiss_opq.niter = 10;  // 4 PQ k-means iterations each (ours: 2), so about our cost
  faiss::ProductQuantizer faiss_pq(kD, kM, 4);  // the same 16 codewords per subspace
  faiss_opq.pq = &faiss_pq;
  faiss_opq.train(static_cast<faiss::Index::idx_t>(kN), x.data());
  const double identity = FaissPqError(x), ours = FaissPqError(Rotated(x, *r)),
               theirs = FaissPqError(Rotated(x, faiss_opq.A));
  EXPECT_LT(ours, 0.8 * identity) << "identity " << identity << ", FAISS OPQ " << theirs;
  EXPECT_LT(ours, 1.05 * theirs) << "identity " << identity << ", FAISS OPQ " << theirs;
  std::printf("PQ error: identity %.4f, FAISS OPQ %.4f, m3vdb OPQ %.4f\n", identity, theirs, ours);
}

TEST(OpqTest, SamplesLargeInputs) {
  const std::vector<float> x = CorrelatedData(kN, 2);
  OpqOptions opt;
  opt.iterations = 3;
  opt.max_train_points = 1000;
  auto r = TrainOpqRotation(x.data(), kN, kD, kM, kKsub, opt);
  ASSERT_TRUE(r.ok());
  opt.max_train_points = kN;
  auto all = TrainOpqRotation(x.data(), kN, kD, kM, kKsub, opt);
  ASSERT_TRUE(all.ok());
  EXPECT_NE(*r, *all);  // the sample is what it trained on
}

TEST(OpqTest, BadInputsAreRefused) {
  const std::vector<float> x = CorrelatedData(100, 3);
  auto bad_m = TrainOpqRotation(x.data(), 100, kD, 5, kKsub);
  ASSERT_FALSE(bad_m.ok());
  EXPECT_NE(bad_m.status().ToString().find("do not divide dimension 16"), std::string::npos);
  auto few = TrainOpqRotation(x.data(), 10, kD, kM, kKsub);
  ASSERT_FALSE(few.ok());
  EXPECT_NE(few.status().ToString().find("at least 16 vectors"), std::string::npos);
  OpqOptions zero;
  zero.iterations = 0;
  EXPECT_FALSE(TrainOpqRotation(x.data(), 100, kD, kM, kKsub, zero).ok());
}

// Product k-means: the error it reports is the brute-force nearest-codeword error of the
// centroids it returns, Lloyd iterations never raise it, and the thread count changes nothing.
TEST(ProductKMeansTest, ErrorMatchesBruteForceAndFallsWithIterations) {
  const std::vector<float> x = CorrelatedData(kN, 4);
  const detail::ProductLayout layout{kD, kM, kKsub};
  const size_t ds = layout.dsub();
  std::vector<float> c(kM * kKsub * ds);
  double last = detail::ProductKMeans(x.data(), kN, layout, 1, true, 9, c.data());
  for (int it = 0; it < 5; ++it) {
    const double e = detail::ProductKMeans(x.data(), kN, layout, 1, false, 9, c.data());
    EXPECT_LE(e, last * (1 + 1e-6)) << "iteration " << it;
    last = e;
  }
  std::vector<float> rec(x.size());
  const double reported = detail::ProductReconstruct(x.data(), kN, layout, c.data(), rec.data());
  double brute = 0, rec_err = 0;
  for (size_t i = 0; i < kN; ++i)
    for (size_t s = 0; s < kM; ++s) {
      double best = INFINITY;
      for (size_t k = 0; k < kKsub; ++k) {
        double dist = 0;
        for (size_t t = 0; t < ds; ++t) {
          const double diff = double{x[i * kD + s * ds + t]} - c[(s * kKsub + k) * ds + t];
          dist += diff * diff;
        }
        best = std::min(best, dist);
      }
      brute += best;
      for (size_t t = 0; t < ds; ++t) {
        const double diff = double{x[i * kD + s * ds + t]} - rec[i * kD + s * ds + t];
        rec_err += diff * diff;
      }
    }
  EXPECT_NEAR(reported, brute / kN, 1e-4 * brute / kN);
  EXPECT_NEAR(rec_err / kN, brute / kN, 1e-4 * brute / kN);

  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> cc(c.size());
    detail::ProductKMeans(x.data(), kN, layout, 3, true, 11, cc.data());
    runs.push_back(cc);
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(ProductKMeansTest, EmptyClustersAreSplitFromTheLargest) {
  // 300 rows on 3 distinct points, 16 centroids: most clusters empty after the first step.
  std::vector<float> x(300 * kD);
  for (size_t i = 0; i < 300; ++i)
    for (size_t j = 0; j < kD; ++j) x[i * kD + j] = static_cast<float>(i % 3) + 1.0f;
  const detail::ProductLayout layout{kD, kM, kKsub};
  std::vector<float> c(kM * kKsub * layout.dsub());
  const double e = detail::ProductKMeans(x.data(), 300, layout, 4, true, 1, c.data());
  EXPECT_NEAR(e, 0.0, 1e-6);
  for (float v : c) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace m3vdb::quant
