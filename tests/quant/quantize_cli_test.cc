// `m3vdb quantize` end to end: vector files in (.fvecs and .npy), a FAISS index file out that
// stock FAISS loads and searches; bad input gives a clear error and a non-zero exit.
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "tools/vector_io.h"

namespace m3vdb {
namespace {

namespace fs = std::filesystem;

class QuantizeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("m3vdb-quantize-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::mt19937 rng(3);
    std::normal_distribution<float> g;
    base_.rows = 2000;
    base_.cols = 16;
    base_.data.resize(base_.rows * base_.cols);
    for (float& v : base_.data) v = g(rng);
  }
  void TearDown() override { fs::remove_all(dir_); }
  int Run(const std::string& args) {
    const std::string cmd = std::string(M3VDB_BINARY) + " quantize " + args + " > " + (dir_ / "out.txt").string() + " 2>&1";
    return std::system(cmd.c_str());
  }
  std::string Output() {
    std::ifstream in(dir_ / "out.txt");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  fs::path dir_;
  tools::Matrix base_;
};

TEST_F(QuantizeCliTest, WritesAFaissIndexFromFvecsAndNpy) {
  for (const char* ext : {".fvecs", ".npy"}) {
    const std::string in = (dir_ / (std::string("base") + ext)).string(), out = (dir_ / "index.faiss").string();
    ASSERT_TRUE(tools::WriteVectors(in, base_).ok());
    auto back = tools::ReadVectors(in);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->data, base_.data);
    for (const char* mode : {"--baseline", "--epochs 1"}) {
      ASSERT_EQ(Run("--base " + in + " --metric l2 --nlist 8 --m 4 " + mode + " --out " + out), 0) << Output();
      std::unique_ptr<faiss::Index> index(faiss::read_index(out.c_str()));
      auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(index.get());
      ASSERT_NE(ivfpq, nullptr);
      EXPECT_EQ(ivfpq->ntotal, 2000);
      EXPECT_EQ(ivfpq->pq.M, 4u);
      ivfpq->nprobe = 8;
      std::vector<float> dist(5);
      std::vector<faiss::Index::idx_t> ids(5);
      index->search(1, base_.data.data() + 7 * 16, 5, dist.data(), ids.data());
      EXPECT_GE(ids[0], 0);
    }
  }
}

// With --opq the file is an IndexPreTransform (the rotation) over the IVF-PQ, and the vector that
// was added as id 7 is its own nearest neighbour.
TEST_F(QuantizeCliTest, OpqWritesARotationFaissApplies) {
  const std::string in = (dir_ / "base.npy").string(), out = (dir_ / "opq.faiss").string();
  ASSERT_TRUE(tools::WriteVectors(in, base_).ok());
  ASSERT_EQ(Run("--base " + in + " --metric l2 --nlist 8 --m 4 --opq --epochs 1 --out " + out), 0) << Output();
  std::unique_ptr<faiss::Index> index(faiss::read_index(out.c_str()));
  auto* pre = dynamic_cast<faiss::IndexPreTransform*>(index.get());
  ASSERT_NE(pre, nullptr);
  auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(pre->index);
  ASSERT_NE(ivfpq, nullptr);
  EXPECT_EQ(index->ntotal, 2000);
  ivfpq->nprobe = 8;
  std::vector<float> dist(5);
  std::vector<faiss::Index::idx_t> ids(5);
  index->search(1, base_.data.data() + 7 * 16, 5, dist.data(), ids.data());
  EXPECT_EQ(ids[0], 7);
}

TEST_F(QuantizeCliTest, BadInputIsAClearError) {
  const std::string in = (dir_ / "base.npy").string();
  ASSERT_TRUE(tools::WriteVectors(in, base_).ok());
  EXPECT_NE(Run("--base " + in + " --m 5 --out " + (dir_ / "x.faiss").string()), 0);  // 5 does not divide 16
  EXPECT_NE(Output().find("must divide"), std::string::npos) << Output();
  { std::ofstream(dir_ / "bad.npy") << "not numpy"; }
  EXPECT_NE(Run("--base " + (dir_ / "bad.npy").string() + " --m 4 --out " + (dir_ / "x.faiss").string()), 0);
  EXPECT_NE(Output().find("bad.npy"), std::string::npos) << Output();
  EXPECT_FALSE(fs::exists(dir_ / "x.faiss"));
}

}  // namespace
}  // namespace m3vdb
