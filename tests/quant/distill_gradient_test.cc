// Distill-VQ gradients against central finite differences of an independent double-precision
// forward pass written here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "quant/detail/distill_step.h"

namespace m3vdb::quant {
namespace {

constexpr size_t kD = 4, kL = 2, kM = 2, kK = 256, kDs = kD / kM, kB = 3, kC = 5;

struct Problem {
  Codebooks books;
  std::vector<float> queries, docs;
  std::vector<uint32_t> lists;
  float tau = 0.7f, tau_code = 3.0f;
};

Problem MakeProblem(Metric metric, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  Problem p;
  p.books.params.dim = kD;
  p.books.params.metric = metric;
  p.books.params.nlist = kL;
  p.books.params.m = kM;
  p.books.centroids.resize(kL * kD);
  p.books.pq.resize(kM * kK * kDs);
  for (float& v : p.books.centroids) v = 0.5f * g(rng);
  for (float& v : p.books.pq) v = 0.6f * g(rng);
  p.queries.resize(kB * kD);
  p.docs.resize(kC * kD);
  for (float& v : p.queries) v = g(rng);
  for (float& v : p.docs) v = g(rng);
  p.lists = {0, 1, 0, 1, 1};
  return p;
}

double Softmax(const std::vector<double>& x, size_t i) {
  double mx = x[0], s = 0;
  for (double v : x) mx = std::max(mx, v);
  for (double v : x) s += std::exp(v - mx);
  return std::exp(x[i] - mx) / s;
}

double ListNetRef(const std::vector<double>& t, const std::vector<double>& s) {
  double mx = s[0], lse = 0;
  for (double v : s) mx = std::max(mx, v);
  for (double v : s) lse += std::exp(v - mx);
  lse = std::log(lse) + mx;
  double loss = 0;
  for (size_t j = 0; j < t.size(); ++j) loss -= Softmax(t, j) * (s[j] - lse);
  return loss;
}

double Score(Metric metric, const float* q, const double* x) {
  double s = 0;
  for (size_t k = 0; k < kD; ++k) s += metric == Metric::kL2 ? -(q[k] - x[k]) * (q[k] - x[k]) : q[k] * x[k];
  return s;
}

// Mean ListNet over the batch for student vectors `student` (kC x kD).
double BatchLoss(const Problem& p, const std::vector<double>& student) {
  double total = 0;
  for (size_t i = 0; i < kB; ++i) {
    std::vector<double> t(kC), s(kC);
    for (size_t j = 0; j < kC; ++j) {
      std::vector<double> x(p.docs.begin() + j * kD, p.docs.begin() + (j + 1) * kD);
      t[j] = Score(p.books.params.metric, &p.queries[i * kD], x.data()) / p.tau;
      s[j] = Score(p.books.params.metric, &p.queries[i * kD], &student[j * kD]) / p.tau;
    }
    total += ListNetRef(t, s);
  }
  return total / kB;
}

// The straight-through surrogate: x^ = c + sum_k (onehot_k - pbar_k + p_k(C)) C_k, with onehot and
// pbar frozen at the base codebooks. Its value equals the hard forward at the base point and its
// gradient is exactly the straight-through gradient.
double PqSurrogateLoss(const Problem& p, const Codebooks& base, const std::vector<float>& pq) {
  std::vector<double> student(kC * kD);
  for (size_t j = 0; j < kC; ++j) {
    for (size_t m = 0; m < kM; ++m) {
      auto probs = [&](const std::vector<float>& table, std::vector<double>* out, size_t* best) {
        std::vector<double> z(kK);
        for (size_t k = 0; k < kK; ++k) {
          double dist = 0;
          for (size_t t = 0; t < kDs; ++t) {
            const double r = p.docs[j * kD + m * kDs + t] - base.centroids[p.lists[j] * kD + m * kDs + t];
            const double diff = r - table[(m * kK + k) * kDs + t];
            dist += diff * diff;
          }
          z[k] = -dist / p.tau_code;
        }
        *best = 0;
        for (size_t k = 1; k < kK; ++k)
          if (z[k] > z[*best]) *best = k;
        out->resize(kK);
        for (size_t k = 0; k < kK; ++k) (*out)[k] = Softmax(z, k);
      };
      std::vector<double> pbar, pcur;
      size_t best, unused;
      probs(base.pq, &pbar, &best);
      probs(pq, &pcur, &unused);
      for (size_t t = 0; t < kDs; ++t) {
        double v = base.centroids[p.lists[j] * kD + m * kDs + t];
        for (size_t k = 0; k < kK; ++k)
          v += ((k == best ? 1.0 : 0.0) - pbar[k] + pcur[k]) * pq[(m * kK + k) * kDs + t];
        student[j * kD + m * kDs + t] = v;
      }
    }
  }
  return BatchLoss(p, student);
}

double IvfLoss(const Problem& p, const std::vector<float>& centroids) {
  std::vector<double> student(kC * kD);
  for (size_t j = 0; j < kC; ++j)
    for (size_t t = 0; t < kD; ++t) student[j * kD + t] = centroids[p.lists[j] * kD + t];
  return BatchLoss(p, student);
}

class DistillGradientTest : public ::testing::TestWithParam<Metric> {};

TEST_P(DistillGradientTest, MatchesFiniteDifferences) {
  Problem p = MakeProblem(GetParam(), 11);
  detail::StepInput in{p.queries.data(), kB, p.docs.data(), p.lists.data(), kC, p.tau, p.tau_code};
  detail::StepOutput out;
  detail::DistillStep(p.books, in, &out);

  // Losses agree with the independent forward pass.
  EXPECT_NEAR(out.loss_ivf, IvfLoss(p, p.books.centroids), 1e-4);
  EXPECT_NEAR(out.loss_pq, PqSurrogateLoss(p, p.books, p.books.pq), 1e-4);

  const double h = 1e-2;
  // Centroids (IVF loss).
  for (size_t i = 0; i < p.books.centroids.size(); ++i) {
    auto plus = p.books.centroids, minus = p.books.centroids;
    plus[i] += h;
    minus[i] -= h;
    const double fd = (IvfLoss(p, plus) - IvfLoss(p, minus)) / (2 * h);
    EXPECT_NEAR(out.grad_centroids_ivf[i], fd, 2e-3 + 2e-2 * std::abs(fd)) << "centroid " << i;
  }
  // PQ codebooks: the 40 parameters with the largest gradients, plus a sample of the rest.
  std::vector<size_t> order(p.books.pq.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 40, order.end(),
                    [&](size_t a, size_t b) { return std::abs(out.grad_pq[a]) > std::abs(out.grad_pq[b]); });
  for (size_t i = 40; i < order.size(); i += 97) order[40 + (i - 40) / 97] = order[i];
  order.resize(40 + (order.size() - 40) / 97);
  size_t checked = 0;
  for (size_t i : order) {
    auto plus = p.books.pq, minus = p.books.pq;
    plus[i] += h;
    minus[i] -= h;
    const double fd = (PqSurrogateLoss(p, p.books, plus) - PqSurrogateLoss(p, p.books, minus)) / (2 * h);
    EXPECT_NEAR(out.grad_pq[i], fd, 2e-3 + 3e-2 * std::abs(fd)) << "pq entry " << i;
    ++checked;
  }
  EXPECT_GT(checked, 20u);
}

INSTANTIATE_TEST_SUITE_P(Metrics, DistillGradientTest, ::testing::Values(Metric::kInnerProduct, Metric::kL2));

TEST(ListNetTest, GradientIsSoftmaxDifference) {
  std::vector<float> t = {1.0f, 0.2f, -0.5f, 2.0f}, s = {0.3f, 0.1f, 0.9f, -1.0f}, g(4);
  const double loss = detail::ListNet(t.data(), s.data(), 4, g.data());
  std::vector<double> td(t.begin(), t.end()), sd(s.begin(), s.end());
  EXPECT_NEAR(loss, ListNetRef(td, sd), 1e-6);
  for (size_t j = 0; j < 4; ++j) {
    auto plus = sd, minus = sd;
    plus[j] += 1e-4;
    minus[j] -= 1e-4;
    EXPECT_NEAR(g[j], (ListNetRef(td, plus) - ListNetRef(td, minus)) / 2e-4, 1e-5);
  }
}

}  // namespace
}  // namespace m3vdb::quant
