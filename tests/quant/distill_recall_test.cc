// On a fixed clustered synthetic set where reconstruction and ranking disagree, Distill-VQ
// codebooks rank better than the k-means codebooks they start from.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "quant/distill_trainer.h"
#include "quant/faiss_bridge.h"
#include "synthetic.h"

namespace m3vdb::quant {
namespace {

// recall@10 of the IVF-PQ ranking (all lists probed) against the exact inner-product top-10.
double RecallAt10(const Codebooks& books, const testing::Dataset& ds) {
  std::vector<uint32_t> lists(ds.n);
  std::vector<uint8_t> codes(ds.n * books.params.m);
  books.Encode(ds.docs.data(), ds.n, lists.data(), codes.data());
  std::vector<float> recon(ds.n * ds.d);
  for (size_t i = 0; i < ds.n; ++i) books.Decode(lists[i], codes.data() + i * books.params.m, recon.data() + i * ds.d);
  double total = 0;
  std::vector<uint32_t> order(ds.n);
  for (size_t q = 0; q < ds.nq; ++q) {
    auto top10 = [&](const std::vector<float>& x) {
      std::vector<float> s(ds.n);
      for (size_t i = 0; i < ds.n; ++i) {
        double v = 0;
        for (size_t j = 0; j < ds.d; ++j) v += double{ds.queries[q * ds.d + j]} * x[i * ds.d + j];
        s[i] = static_cast<float>(v);
      }
      std::iota(order.begin(), order.end(), 0u);
      std::partial_sort(order.begin(), order.begin() + 10, order.end(), [&](uint32_t a, uint32_t b) { return s[a] > s[b]; });
      return std::set<uint32_t>(order.begin(), order.begin() + 10);
    };
    const auto truth = top10(ds.docs), found = top10(recon);
    for (uint32_t id : found) total += truth.count(id);
  }
  return total / (10.0 * ds.nq);
}

TEST(DistillRecallTest, BeatsKMeansWithTheSameParameters) {
  // 32 dims: 12 carry the clusters and the queries, 20 are loud noise the queries ignore.
  auto train = testing::MakeClustered(3000, 1000, 32, 12, 40, 3.0f, 21);
  testing::Dataset test = train;  // same documents, fresh queries for evaluation
  test.nq = 300;
  test.queries.assign(test.nq * test.d, 0.0f);
  {
    std::mt19937_64 rng(99);  // re-draw the evaluation queries near other documents
    std::normal_distribution<float> g;
    for (size_t i = 0; i < test.nq; ++i) {
      const size_t near = rng() % test.n;
      for (size_t j = 0; j < test.d; ++j)
        test.queries[i * test.d + j] = (j % 2 == 0 && j / 2 < 12) ? test.docs[near * test.d + j] + 0.3f * g(rng) : 0.0f;
    }
  }
  IvfPqParams params;
  params.dim = 32;
  params.metric = Metric::kInnerProduct;
  params.nlist = 8;
  params.m = 2;
  auto kmeans = TrainKMeans(train.docs.data(), train.n, params);
  ASSERT_TRUE(kmeans.ok()) << kmeans.status().ToString();
  Codebooks distilled = *kmeans;
  DistillOptions opt;
  opt.epochs = 8;
  opt.batch_queries = 64;
  opt.on_step = [](size_t step, size_t total, double pq, double ivf) {
    if (step % 20 == 0 || step == total) std::printf("step %zu/%zu PQ loss %.4f IVF loss %.4f\n", step, total, pq, ivf);
  };
  opt.seed = 5;
  auto report = DistillTrain(train.docs.data(), train.n, train.queries.data(), train.nq, &distilled, opt);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_LT(report->last_loss_pq, report->first_loss_pq);

  const double r_kmeans = RecallAt10(*kmeans, test), r_distill = RecallAt10(distilled, test);
  RecordProperty("recall_kmeans", std::to_string(r_kmeans));
  RecordProperty("recall_distill", std::to_string(r_distill));
  std::printf("recall@10 k-means %.4f, Distill-VQ %.4f\n", r_kmeans, r_distill);
  EXPECT_GT(r_distill, r_kmeans + 0.05);

  // Deterministic for a fixed seed.
  Codebooks again = *kmeans;
  ASSERT_TRUE(DistillTrain(train.docs.data(), train.n, train.queries.data(), train.nq, &again, opt).ok());
  EXPECT_EQ(again.pq, distilled.pq);
  EXPECT_EQ(again.centroids, distilled.centroids);
}

TEST(DistillTemperatureTest, AutoCodeTemperatureFollowsTheDataScale) {
  // The same problem in units 10x larger: squared distances, and so the automatic temperature of
  // the soft code assignment, grow 100x; a fixed temperature would not follow.
  auto ds = testing::MakeClustered(1500, 200, 16, 8, 20, 1.0f, 3);
  IvfPqParams params;
  params.dim = 16;
  params.metric = Metric::kL2;
  params.nlist = 4;
  params.m = 4;
  auto kmeans = TrainKMeans(ds.docs.data(), ds.n, params);
  ASSERT_TRUE(kmeans.ok()) << kmeans.status().ToString();
  Codebooks small = *kmeans, large = *kmeans;
  for (float& v : large.centroids) v *= 10;
  for (float& v : large.pq) v *= 10;
  std::vector<float> docs10 = ds.docs;
  for (float& v : docs10) v *= 10;
  DistillOptions opt;
  opt.epochs = 1;
  opt.max_queries = 64;
  opt.tau_code = 0;  // auto
  auto a = DistillTrain(ds.docs.data(), ds.n, nullptr, 0, &small, opt);
  auto b = DistillTrain(docs10.data(), ds.n, nullptr, 0, &large, opt);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(a->tau_code, 0.0f);
  EXPECT_NEAR(b->tau_code / a->tau_code, 100.0, 0.5);
  opt.tau_code = 0.25f;  // an explicit temperature is used as given
  auto c = DistillTrain(ds.docs.data(), ds.n, nullptr, 0, &small, opt);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tau_code, 0.25f);
  opt.tau_code = DistillOptions{}.tau_code;  // the default: LibVQ's 1 for codebooks not flagged unit_norm
  ASSERT_LT(opt.tau_code, 0.0f);
  Codebooks plain = *kmeans;
  auto d = DistillTrain(ds.docs.data(), ds.n, nullptr, 0, &plain, opt);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tau_code, 1.0f);
}

TEST(DistillTemperatureTest, DefaultCodeTemperatureIsAutoForUnitLengthVectors) {
  auto ds = testing::MakeClustered(1500, 0, 16, 8, 20, 1.0f, 4);
  for (size_t i = 0; i < ds.n; ++i) {
    double s = 0;
    for (size_t j = 0; j < ds.d; ++j) s += double{ds.docs[i * ds.d + j]} * ds.docs[i * ds.d + j];
    for (size_t j = 0; j < ds.d; ++j) ds.docs[i * ds.d + j] = static_cast<float>(ds.docs[i * ds.d + j] / std::sqrt(s));
  }
  IvfPqParams params;
  params.dim = 16;
  params.metric = Metric::kInnerProduct;
  params.nlist = 4;
  params.m = 4;
  auto kmeans = TrainKMeans(ds.docs.data(), ds.n, params);
  ASSERT_TRUE(kmeans.ok()) << kmeans.status().ToString();
  ASSERT_TRUE(kmeans->params.unit_norm);
  DistillOptions opt;
  opt.epochs = 1;
  opt.max_queries = 64;
  Codebooks by_default = *kmeans, by_auto = *kmeans;
  auto a = DistillTrain(ds.docs.data(), ds.n, nullptr, 0, &by_default, opt);
  opt.tau_code = 0;
  auto b = DistillTrain(ds.docs.data(), ds.n, nullptr, 0, &by_auto, opt);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tau_code, b->tau_code);
  EXPECT_LT(a->tau_code, 0.1f);  // squared gaps between unit-vector codewords: far below LibVQ's 1
  EXPECT_EQ(by_default.Serialize(), by_auto.Serialize());
}

}  // namespace
}  // namespace m3vdb::quant
