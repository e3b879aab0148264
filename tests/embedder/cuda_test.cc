// The CUDA backend against the CPU backend; skipped without a GPU.
#include <gtest/gtest.h>

#include "common/gpu.h"
#include "tests/embedder/fixture.h"

namespace m3vdb::embedder {
namespace {

TEST(CudaEncoderTest, MatchesCpu) {
  if (!GpuAvailable()) GTEST_SKIP() << "no GPU: " << ProbeGpu().reason;
  Options cpu, cuda;
  cpu.device = Device::kCpu;
  cuda.device = Device::kCuda;
  auto a = testing::OpenFixture(cpu), b = testing::OpenFixture(cuda);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(b->backend(), "cuda");
  std::vector<std::string> texts;
  for (const auto& c : testing::Reference()["cases"]) texts.push_back(c["text"]);
  auto x = a->Encode(texts), y = b->Encode(texts);
  ASSERT_TRUE(x.ok() && y.ok()) << y.status().ToString();
  for (size_t i = 0; i < texts.size(); ++i) testing::ExpectNear((*x)[i], (*y)[i], 1e-4f, texts[i]);
}

TEST(CudaEncoderTest, ExplicitCudaWithoutGpuIsUnavailable) {
  if (GpuAvailable()) GTEST_SKIP() << "a GPU is present";
  Options cuda;
  cuda.device = Device::kCuda;
  auto r = Embedder::Open(testing::FixtureDir(), cuda);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace m3vdb::embedder
