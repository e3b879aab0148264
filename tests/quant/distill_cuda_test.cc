// The CUDA Distill-VQ backend against the CPU backend (one step: losses and gradients; a short
// training run: loss trajectory and learned codebooks), skipped without a GPU; and the run-time
// choice of backend, checked on every machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/gpu.h"
#include "quant/distill_trainer.h"
#include "quant/faiss_bridge.h"
#include "synthetic.h"

namespace m3vdb::quant {
namespace {

// max |a - b| relative to max |a| (a is the CPU reference).
double RelMaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double{a[i]} - b[i]));
    scale = std::max(scale, std::abs(double{a[i]}));
  }
  return diff / std::max(scale, 1e-30);
}

// RMS of a - b relative to the RMS of a.
double RelRmsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    norm += double{a[i]} * a[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

TEST(DistillBackendChoiceTest, AutoUsesCudaOnlyWithAGpu) {
  auto cpu = CreateDistillBackend(DistillDevice::kCpu);
  ASSERT_TRUE(cpu.ok());
  EXPECT_STREQ((*cpu)->name(), "cpu");
  auto chosen = CreateDistillBackend(DistillDevice::kAuto);
  ASSERT_TRUE(chosen.ok()) << chosen.status().ToString();
  EXPECT_STREQ((*chosen)->name(), GpuAvailable() ? "cuda" : "cpu") << "GPU probe: " << ProbeGpu().reason;
  auto cuda = CreateDistillBackend(DistillDevice::kCuda);
  if (GpuAvailable()) {
    ASSERT_TRUE(cuda.ok()) << cuda.status().ToString();
    EXPECT_STREQ((*cuda)->name(), "cuda");
  } else {
    ASSERT_FALSE(cuda.ok());  // never a silent fallback when CUDA is asked for
    EXPECT_EQ(cuda.status().code(), StatusCode::kUnavailable);
  }
}

TEST(DistillBackendChoiceTest, ExplicitCudaWithoutGpuFailsTraining) {
  if (GpuAvailable()) GTEST_SKIP() << "a GPU is present";
  auto ds = testing::MakeClustered(400, 50, 8, 4, 5, 1.0f, 3);
  IvfPqParams params;
  params.dim = 8;
  params.nlist = 2;
  params.m = 2;
  auto books = TrainKMeans(ds.docs.data(), ds.n, params);
  ASSERT_TRUE(books.ok()) << books.status().ToString();
  DistillOptions opt;
  opt.device = DistillDevice::kCuda;
  auto report = DistillTrain(ds.docs.data(), ds.n, ds.queries.data(), ds.nq, &*books, opt);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kUnavailable);
}

class CudaDistillTest : public ::testing::TestWithParam<Metric> {
 protected:
  void SetUp() override {
    if (!GpuAvailable()) GTEST_SKIP() << "no GPU: " << ProbeGpu().reason;
  }
};

TEST_P(CudaDistillTest, OneStepMatchesCpu) {
  constexpr size_t d = 32, L = 4, M = 4, K = 256, ds = d / M, b = 16, c = 300;
  std::mt19937_64 rng(17);
  std::normal_distribution<float> g;
  Codebooks books;
  books.params.dim = d;
  books.params.metric = GetParam();
  books.params.nlist = L;
  books.params.m = M;
  books.centroids.resize(L * d);
  books.pq.resize(M * K * ds);
  for (float& v : books.centroids) v = 0.5f * g(rng);
  for (float& v : books.pq) v = 0.6f * g(rng);
  ASSERT_TRUE(books.Validate().ok());
  std::vector<float> queries(b * d), docs(c * d);
  std::vector<uint32_t> lists(c);
  for (float& v : queries) v = g(rng);
  for (float& v : docs) v = g(rng);
  for (uint32_t& l : lists) l = static_cast<uint32_t>(rng() % L);
  const DistillBackend::Batch batch{queries.data(), b, docs.data(), lists.data(), c, 2.0f, 1.5f};

  auto cpu = CreateDistillBackend(DistillDevice::kCpu);
  auto cuda = CreateDistillBackend(DistillDevice::kCuda);
  ASSERT_TRUE(cpu.ok() && cuda.ok()) << cuda.status().ToString();
  DistillBackend::Gradients want, got, again;
  ASSERT_TRUE((*cpu)->Step(books, batch, &want).ok());
  ASSERT_TRUE((*cuda)->Step(books, batch, &got).ok());
  EXPECT_NEAR(got.loss_pq, want.loss_pq, 1e-4 * std::abs(want.loss_pq));
  EXPECT_NEAR(got.loss_ivf, want.loss_ivf, 1e-4 * std::abs(want.loss_ivf));
  ASSERT_EQ(got.grad_pq.size(), want.grad_pq.size());
  ASSERT_EQ(got.grad_centroids_ivf.size(), want.grad_centroids_ivf.size());
  EXPECT_LT(RelMaxDiff(want.grad_pq, got.grad_pq), 1e-3);
  EXPECT_LT(RelMaxDiff(want.grad_centroids_ivf, got.grad_centroids_ivf), 1e-3);

  // A second step on the same (now warm) backend is bit-identical: no atomics, fixed orders.
  ASSERT_TRUE((*cuda)->Step(books, batch, &again).ok());
  EXPECT_EQ(again.grad_pq, got.grad_pq);
  EXPECT_EQ(again.grad_centroids_ivf, got.grad_centroids_ivf);
  EXPECT_EQ(again.loss_pq, got.loss_pq);

  // Bad input is an error, not a device fault.
  std::vector<uint32_t> bad = lists;
  bad[7] = L;
  const DistillBackend::Batch bad_batch{queries.data(), b, docs.data(), bad.data(), c, 2.0f, 1.5f};
  EXPECT_EQ((*cuda)->Step(books, bad_batch, &again).code(), StatusCode::kInvalidArgument);
}

TEST_P(CudaDistillTest, TrainingMatchesCpu) {
  auto ds = testing::MakeClustered(3000, 600, 32, 12, 40, 3.0f, 21);
  IvfPqParams params;
  params.dim = 32;
  params.metric = GetParam();
  params.nlist = 8;
  params.m = 4;
  auto kmeans = TrainKMeans(ds.docs.data(), ds.n, params);
  ASSERT_TRUE(kmeans.ok()) << kmeans.status().ToString();

  auto train = [&](DistillDevice device, Codebooks* books, std::vector<double>* losses) {
    DistillOptions opt;
    opt.epochs = 2;
    opt.batch_queries = 64;
    opt.seed = 5;
    opt.device = device;
    opt.on_step = [losses](size_t, size_t, double pq, double ivf) {
      losses->push_back(pq);
      losses->push_back(ivf);
    };
    *books = *kmeans;
    return DistillTrain(ds.docs.data(), ds.n, ds.queries.data(), ds.nq, books, opt);
  };
  Codebooks on_cpu, on_gpu, on_gpu_again;
  std::vector<double> cpu_losses, gpu_losses, unused;
  auto a = train(DistillDevice::kCpu, &on_cpu, &cpu_losses);
  auto b = train(DistillDevice::kCuda, &on_gpu, &gpu_losses);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_STREQ(a->backend, "cpu");
  EXPECT_STREQ(b->backend, "cuda");
  EXPECT_EQ(a->tau, b->tau);  // chosen on the host from the same teacher scores
  ASSERT_EQ(a->steps, 20u);  // 600 queries in batches of 64, two epochs
  ASSERT_EQ(cpu_losses.size(), 2 * a->steps);
  ASSERT_EQ(gpu_losses.size(), cpu_losses.size());
  for (size_t i = 0; i < cpu_losses.size(); ++i)
    EXPECT_NEAR(gpu_losses[i], cpu_losses[i], 1e-2 * std::abs(cpu_losses[i]) + 1e-4) << "loss " << i;
  EXPECT_LT(b->last_loss_pq, b->first_loss_pq);
  // AdamW moves a parameter by about the learning rate whatever its gradient's size, so a
  // rounding-level difference can move the odd rarely used codeword apart: compare in RMS.
  EXPECT_LT(RelRmsDiff(on_cpu.pq, on_gpu.pq), 5e-2);
  EXPECT_LT(RelRmsDiff(on_cpu.centroids, on_gpu.centroids), 2e-2);

  // Deterministic on the GPU for a fixed seed.
  ASSERT_TRUE(train(DistillDevice::kCuda, &on_gpu_again, &unused).ok());
  EXPECT_EQ(on_gpu_again.pq, on_gpu.pq);
  EXPECT_EQ(on_gpu_again.centroids, on_gpu.centroids);
}

INSTANTIATE_TEST_SUITE_P(Metrics, CudaDistillTest, ::testing::Values(Metric::kInnerProduct, Metric::kL2),
                         [](const ::testing::TestParamInfo<Metric>& info) {
                           return std::string(info.param == Metric::kL2 ? "L2" : "InnerProduct");
                         });

}  // namespace
}  // namespace m3vdb::quant
