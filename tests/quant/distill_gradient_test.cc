// Distill-VQ gradients against central finite differences of an independent double-precision
// forward pass written here.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "quant/detail/distill_step.h"

namespace m3vdb::quant {
namespace {

constexpr size_t kK = 256;

struct Problem {
  Codebooks books;
  size_t b = 0, c = 0;
  std::vector<float> queries, docs;
  std::vector<uint32_t> lists;
  float tau = 0.7f, tau_code = 3.0f;
  size_t d() const { return books.params.dim; }
  size_t m() const { return books.params.m; }
  size_t ds() const { return books.params.dsub(); }
  detail::StepInput Input() const { return {queries.data(), b, docs.data(), lists.data(), c, tau, tau_code}; }
};

// b queries and c documents of dimension d, documents spread over nlist lists round-robin.
Problem MakeProblem(Metric metric, uint64_t seed, size_t d = 4, size_t nlist = 2, size_t m = 2, size_t b = 3,
                    size_t c = 5) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  Problem p;
  p.books.params.dim = static_cast<uint32_t>(d);
  p.books.params.metric = metric;
  p.books.params.nlist = static_cast<uint32_t>(nlist);
  p.books.params.m = static_cast<uint32_t>(m);
  p.books.centroids.resize(nlist * d);
  p.books.pq.resize(m * kK * (d / m));
  for (float& v : p.books.centroids) v = 0.5f * g(rng);
  for (float& v : p.books.pq) v = 0.6f * g(rng);
  p.b = b;
  p.c = c;
  p.queries.resize(b * d);
  p.docs.resize(c * d);
  for (float& v : p.queries) v = g(rng);
  for (float& v : p.docs) v = g(rng);
  p.lists = {0, 1, 0, 1, 1};
  p.lists.resize(c);
  for (size_t j = 5; j < c; ++j) p.lists[j] = static_cast<uint32_t>((j * 7) % nlist);
  return p;
}

std::vector<double> SoftmaxAll(const std::vector<double>& x) {
  double mx = x[0], s = 0;
  for (double v : x) mx = std::max(mx, v);
  for (double v : x) s += std::exp(v - mx);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = std::exp(x[i] - mx) / s;
  return out;
}

double ListNetRef(const std::vector<double>& t, const std::vector<double>& s) {
  double mx = s[0], lse = 0;
  for (double v : s) mx = std::max(mx, v);
  for (double v : s) lse += std::exp(v - mx);
  lse = std::log(lse) + mx;
  const std::vector<double> pt = SoftmaxAll(t);
  double loss = 0;
  for (size_t j = 0; j < t.size(); ++j) loss -= pt[j] * (s[j] - lse);
  return loss;
}

double Score(Metric metric, const float* q, const double* x, size_t d) {
  double s = 0;
  for (size_t k = 0; k < d; ++k) s += metric == Metric::kL2 ? -(q[k] - x[k]) * (q[k] - x[k]) : q[k] * x[k];
  return s;
}

// Mean ListNet over the batch for student vectors `student` (c x d).
double BatchLoss(const Problem& p, const std::vector<double>& student) {
  const size_t d = p.d();
  double total = 0;
  for (size_t i = 0; i < p.b; ++i) {
    std::vector<double> t(p.c), s(p.c);
    for (size_t j = 0; j < p.c; ++j) {
      std::vector<double> x(p.docs.begin() + j * d, p.docs.begin() + (j + 1) * d);
      t[j] = Score(p.books.params.metric, &p.queries[i * d], x.data(), d) / p.tau;
      s[j] = Score(p.books.params.metric, &p.queries[i * d], &student[j * d], d) / p.tau;
    }
    total += ListNetRef(t, s);
  }
  return total / p.b;
}

// The straight-through surrogate: x^ = c + sum_k (onehot_k - pbar_k + p_k(C)) C_k, with onehot and
// pbar frozen at the base codebooks. Its value equals the hard forward at the base point and its
// gradient is exactly the straight-through gradient.
double PqSurrogateLoss(const Problem& p, const Codebooks& base, const std::vector<float>& pq) {
  const size_t d = p.d(), ds = p.ds();
  std::vector<double> student(p.c * d);
  for (size_t j = 0; j < p.c; ++j) {
    for (size_t m = 0; m < p.m(); ++m) {
      auto probs = [&](const std::vector<float>& table, std::vector<double>* out, size_t* best) {
        std::vector<double> z(kK);
        for (size_t k = 0; k < kK; ++k) {
          double dist = 0;
          for (size_t t = 0; t < ds; ++t) {
            const double r = p.docs[j * d + m * ds + t] - base.centroids[p.lists[j] * d + m * ds + t];
            const double diff = r - table[(m * kK + k) * ds + t];
            dist += diff * diff;
          }
          z[k] = -dist / p.tau_code;
        }
        *best = 0;
        for (size_t k = 1; k < kK; ++k)
          if (z[k] > z[*best]) *best = k;
        *out = SoftmaxAll(z);
      };
      std::vector<double> pbar, pcur;
      size_t best, unused;
      probs(base.pq, &pbar, &best);
      probs(pq, &pcur, &unused);
      for (size_t t = 0; t < ds; ++t) {
        double v = base.centroids[p.lists[j] * d + m * ds + t];
        for (size_t k = 0; k < kK; ++k)
          v += ((k == best ? 1.0 : 0.0) - pbar[k] + pcur[k]) * pq[(m * kK + k) * ds + t];
        student[j * d + m * ds + t] = v;
      }
    }
  }
  return BatchLoss(p, student);
}

double IvfLoss(const Problem& p, const std::vector<float>& centroids) {
  const size_t d = p.d();
  std::vector<double> student(p.c * d);
  for (size_t j = 0; j < p.c; ++j)
    for (size_t t = 0; t < d; ++t) student[j * d + t] = centroids[p.lists[j] * d + t];
  return BatchLoss(p, student);
}

class DistillGradientTest : public ::testing::TestWithParam<Metric> {};

TEST_P(DistillGradientTest, MatchesFiniteDifferences) {
  Problem p = MakeProblem(GetParam(), 11);
  detail::StepOutput out;
  detail::DistillStep(p.books, p.Input(), &out);

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

// The step splits the candidates into blocks of 512 and the subspaces over the OpenMP threads.
// With three blocks and more subspaces than threads: the losses match the independent forward
// pass, directional derivatives match its finite differences, and the result is bit for bit the
// same with 1, 2 and 3 threads.
TEST_P(DistillGradientTest, ManyCandidatesMatchReferenceWithAnyThreadCount) {
  Problem p = MakeProblem(GetParam(), 12, /*d=*/16, /*nlist=*/8, /*m=*/4, /*b=*/5, /*c=*/1200);
  p.tau = 4.0f;
  const int saved_threads = omp_get_max_threads();
  std::vector<detail::StepOutput> outs(3);
  for (int threads = 1; threads <= 3; ++threads) {
    omp_set_num_threads(threads);
    detail::DistillStep(p.books, p.Input(), &outs[static_cast<size_t>(threads - 1)]);
  }
  omp_set_num_threads(saved_threads);
  const detail::StepOutput& out = outs[0];
  for (size_t t = 1; t < outs.size(); ++t) {
    EXPECT_EQ(outs[t].loss_pq, out.loss_pq) << t + 1 << " threads";
    EXPECT_EQ(outs[t].loss_ivf, out.loss_ivf) << t + 1 << " threads";
    EXPECT_EQ(outs[t].grad_pq, out.grad_pq) << t + 1 << " threads";
    EXPECT_EQ(outs[t].grad_centroids_ivf, out.grad_centroids_ivf) << t + 1 << " threads";
  }

  const double loss_ivf = IvfLoss(p, p.books.centroids), loss_pq = PqSurrogateLoss(p, p.books, p.books.pq);
  EXPECT_NEAR(out.loss_ivf, loss_ivf, 1e-4 * std::max(1.0, loss_ivf));
  EXPECT_NEAR(out.loss_pq, loss_pq, 1e-4 * std::max(1.0, loss_pq));
  ASSERT_GT(std::abs(loss_pq - loss_ivf), 1e-3);  // the codes matter: the two students differ

  std::mt19937_64 rng(5);
  std::normal_distribution<float> g;
  const double h = 1e-3;
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<float> vc(p.books.centroids.size()), vpq(p.books.pq.size());
    for (float& v : vc) v = g(rng);
    for (float& v : vpq) v = g(rng);
    auto along = [&](const std::vector<float>& x, const std::vector<float>& v, double step) {
      std::vector<float> y(x);
      for (size_t i = 0; i < y.size(); ++i) y[i] += static_cast<float>(step) * v[i];
      return y;
    };
    const double fd_c = (IvfLoss(p, along(p.books.centroids, vc, h)) - IvfLoss(p, along(p.books.centroids, vc, -h))) / (2 * h);
    const double fd_pq = (PqSurrogateLoss(p, p.books, along(p.books.pq, vpq, h)) -
                          PqSurrogateLoss(p, p.books, along(p.books.pq, vpq, -h))) / (2 * h);
    double dc = 0, dpq = 0;
    for (size_t i = 0; i < vc.size(); ++i) dc += double{out.grad_centroids_ivf[i]} * vc[i];
    for (size_t i = 0; i < vpq.size(); ++i) dpq += double{out.grad_pq[i]} * vpq[i];
    EXPECT_NEAR(dc, fd_c, 1e-3 + 1e-2 * std::abs(fd_c)) << "centroid direction " << trial;
    EXPECT_NEAR(dpq, fd_pq, 1e-3 + 1e-2 * std::abs(fd_pq)) << "codebook direction " << trial;
    EXPECT_GT(std::abs(fd_pq), 1e-3) << "codebook direction " << trial;  // not a vanishing direction
  }
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
