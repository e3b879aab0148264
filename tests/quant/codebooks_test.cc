#include "quant/codebooks.h"

#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "quant/faiss_bridge.h"
#include "synthetic.h"

namespace m3vdb::quant {
namespace {

IvfPqParams Params(Metric metric) {
  IvfPqParams p;
  p.dim = 32;
  p.metric = metric;
  p.nlist = 16;
  p.m = 8;
  return p;
}

TEST(CodebooksTest, SerializeRoundTripAndCorruption) {
  auto data = testing::MakeClustered(3000, 0, 32, 12, 10, 2.0f, 1);
  auto books = TrainKMeans(data.docs.data(), data.n, Params(Metric::kL2));
  ASSERT_TRUE(books.ok()) << books.status().ToString();
  books->generation = 7;
  const std::string bytes = books->Serialize();
  auto back = Codebooks::Parse(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->generation, 7u);
  EXPECT_EQ(back->centroids, books->centroids);
  EXPECT_EQ(back->pq, books->pq);
  EXPECT_EQ(Codebooks::Parse(bytes.substr(0, bytes.size() - 1)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(Codebooks::Parse("").status().code(), StatusCode::kCorruption);
  std::string bad = bytes;
  bad[0] = 42;
  EXPECT_EQ(Codebooks::Parse(bad).status().code(), StatusCode::kCorruption);
}

// Inner product on unit-length vectors is flagged (and kept through serialization); L2, or
// vectors of other lengths, are not; the flag is refused on L2 codebooks.
TEST(CodebooksTest, UnitNormIsDetectedAndSerialized) {
  auto data = testing::MakeClustered(3000, 0, 32, 12, 10, 2.0f, 6);
  std::vector<float> unit = data.docs;
  for (size_t i = 0; i < data.n; ++i) {
    double s = 0;
    for (size_t j = 0; j < 32; ++j) s += double{unit[i * 32 + j]} * unit[i * 32 + j];
    for (size_t j = 0; j < 32; ++j) unit[i * 32 + j] = static_cast<float>(unit[i * 32 + j] / std::sqrt(s));
  }
  EXPECT_TRUE(AllUnitLength(unit.data(), data.n, 32));
  EXPECT_FALSE(AllUnitLength(data.docs.data(), data.n, 32));
  EXPECT_FALSE(AllUnitLength(unit.data(), 0, 32));
  auto ip_unit = TrainKMeans(unit.data(), data.n, Params(Metric::kInnerProduct));
  auto ip_raw = TrainKMeans(data.docs.data(), data.n, Params(Metric::kInnerProduct));
  auto l2_unit = TrainKMeans(unit.data(), data.n, Params(Metric::kL2));
  ASSERT_TRUE(ip_unit.ok() && ip_raw.ok() && l2_unit.ok());
  EXPECT_TRUE(ip_unit->params.unit_norm);
  EXPECT_EQ(ip_unit->params.geometry(), Metric::kL2);
  EXPECT_FALSE(ip_raw->params.unit_norm);
  EXPECT_EQ(ip_raw->params.geometry(), Metric::kInnerProduct);
  EXPECT_FALSE(l2_unit->params.unit_norm);
  // Same k-means either way (L2 k-means for both metrics).
  EXPECT_EQ(ip_unit->centroids, l2_unit->centroids);
  const std::string bytes = ip_unit->Serialize();
  auto back = Codebooks::Parse(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->params.unit_norm);
  EXPECT_FALSE(back->params.opq);
  auto raw_back = Codebooks::Parse(ip_raw->Serialize());
  ASSERT_TRUE(raw_back.ok());
  EXPECT_FALSE(raw_back->params.unit_norm);
  std::string bad = l2_unit->Serialize();
  bad[1 + 8 + 4 + 1 + 4 + 4 + 4] = 2;  // the flags byte of an L2 record with unit_norm set
  EXPECT_EQ(Codebooks::Parse(bad).status().code(), StatusCode::kCorruption);
  bad[1 + 8 + 4 + 1 + 4 + 4 + 4] = 4;  // an unknown flag
  EXPECT_EQ(Codebooks::Parse(bad).status().code(), StatusCode::kCorruption);
}

TEST(CodebooksTest, InvalidParams) {
  IvfPqParams p = Params(Metric::kL2);
  p.m = 5;  // does not divide 32
  EXPECT_EQ(p.Validate().code(), StatusCode::kInvalidArgument);
  auto data = testing::MakeClustered(100, 0, 32, 12, 4, 1.0f, 2);
  EXPECT_EQ(TrainKMeans(data.docs.data(), data.n, Params(Metric::kL2)).status().code(),
            StatusCode::kInvalidArgument);  // fewer vectors than 256 codewords
}

// Our encoder gives exactly the lists and codes FAISS gives for the same codebooks.
TEST(CodebooksTest, EncodeMatchesFaiss) {
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
    auto data = testing::MakeClustered(3000, 0, 32, 12, 10, 2.0f, 3);
    auto books = TrainKMeans(data.docs.data(), data.n, Params(metric));
    ASSERT_TRUE(books.ok());
    std::vector<uint32_t> lists(data.n);
    std::vector<uint8_t> codes(data.n * 8);
    books->Encode(data.docs.data(), data.n, lists.data(), codes.data());
    auto index = BuildFaissIndex(*books, data.docs.data(), data.n);
    ASSERT_TRUE(index.ok());
    auto* ivf = dynamic_cast<faiss::IndexIVFPQ*>(index->get());
    ASSERT_NE(ivf, nullptr);
    size_t matched = 0;
    for (size_t l = 0; l < 16; ++l) {
      const size_t sz = ivf->invlists->list_size(l);
      const auto* ids = ivf->invlists->get_ids(l);
      const uint8_t* c = ivf->invlists->get_codes(l);
      for (size_t i = 0; i < sz; ++i) {
        const size_t id = static_cast<size_t>(ids[i]);
        EXPECT_EQ(lists[id], l) << "vector " << id;
        EXPECT_EQ(0, std::memcmp(c + i * 8, codes.data() + id * 8, 8)) << "vector " << id;
        ++matched;
      }
    }
    EXPECT_EQ(matched, data.n);
  }
}

// Both metrics put a vector in the list of its L2-nearest centroid (checked in double against
// every centroid), not, for inner product, the one with the largest <x, c>: on these clusters of
// unequal norm the two differ for many vectors, and the nearest leaves the smaller residual.
TEST(CodebooksTest, AssignIsTheNearestCentroidForBothMetrics) {
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
    auto data = testing::MakeClustered(3000, 0, 32, 12, 10, 2.0f, 5);
    for (size_t i = 0; i < data.n; ++i)  // unequal norms, so that argmax <x, c> is not the nearest
      for (size_t j = 0; j < 32; ++j) data.docs[i * 32 + j] *= 0.5f + static_cast<float>(i % 7) * 0.25f;
    auto books = TrainKMeans(data.docs.data(), data.n, Params(metric));
    ASSERT_TRUE(books.ok());
    std::vector<uint32_t> lists(data.n), encoded(data.n);
    std::vector<uint8_t> codes(data.n * 8);
    books->Assign(data.docs.data(), data.n, lists.data());
    books->Encode(data.docs.data(), data.n, encoded.data(), codes.data());
    EXPECT_EQ(lists, encoded);
    size_t differs_from_max_ip = 0;
    for (size_t i = 0; i < data.n; ++i) {
      const float* x = data.docs.data() + i * 32;
      double best = 1e300, best_ip = -1e300;
      size_t nearest = 0, max_ip = 0;
      for (size_t l = 0; l < 16; ++l) {
        const float* c = books->centroids.data() + l * 32;
        double dist = 0, ip = 0;
        for (size_t j = 0; j < 32; ++j) {
          dist += (double{x[j]} - c[j]) * (double{x[j]} - c[j]);
          ip += double{x[j]} * c[j];
        }
        if (dist < best) best = dist, nearest = l;
        if (ip > best_ip) best_ip = ip, max_ip = l;
      }
      EXPECT_EQ(lists[i], nearest) << "vector " << i;
      differs_from_max_ip += nearest != max_ip;
    }
    EXPECT_GT(differs_from_max_ip, data.n / 20);  // the test data tells the two rules apart
  }
}

TEST(CodebooksTest, ExportedFileLoadsInFaiss) {
  auto data = testing::MakeClustered(3000, 20, 32, 12, 10, 2.0f, 4);
  auto books = TrainKMeans(data.docs.data(), data.n, Params(Metric::kInnerProduct));
  ASSERT_TRUE(books.ok());
  const std::string path = std::filesystem::temp_directory_path() / ("m3vdb-export-" + std::to_string(getpid()) + ".faiss");
  ASSERT_TRUE(ExportFaissIndex(*books, data.docs.data(), data.n, path).ok());
  std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
  std::filesystem::remove(path);
  EXPECT_EQ(loaded->ntotal, static_cast<faiss::Index::idx_t>(data.n));
  EXPECT_EQ(loaded->d, 32);
  EXPECT_EQ(ExportFaissIndex(*books, data.docs.data(), data.n, "/nonexistent-dir/x.faiss").code(),
            StatusCode::kIOError);
}

// With `opq` the codebooks carry an OPQ rotation (orthonormal), and the exported FAISS index
// (IndexPreTransform + IndexIVFPQ), probing every list, returns exactly the top-10 of a
// double-precision scan of the codebooks' own reconstructions against the rotated query.
TEST(CodebooksTest, OpqCodebooksSearchTheSameInFaiss) {
  auto data = testing::MakeClustered(3000, 30, 32, 12, 10, 2.0f, 6);
  IvfPqParams params = Params(Metric::kL2);
  params.opq = true;
  auto books = TrainKMeans(data.docs.data(), data.n, params);
  ASSERT_TRUE(books.ok()) << books.status().ToString();
  ASSERT_TRUE(books->params.opq);
  ASSERT_EQ(books->rotation.size(), 32u * 32u);
  for (size_t i = 0; i < 32; ++i) {
    double norm = 0;
    for (size_t k = 0; k < 32; ++k) norm += double{books->rotation[i * 32 + k]} * books->rotation[i * 32 + k];
    EXPECT_NEAR(norm, 1.0, 1e-4) << "row " << i;
  }
  const std::string path =
      std::filesystem::temp_directory_path() / ("m3vdb-export-opq-" + std::to_string(getpid()) + ".faiss");
  ASSERT_TRUE(ExportFaissIndex(*books, data.docs.data(), data.n, path).ok());
  std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
  std::filesystem::remove(path);
  auto* pre = dynamic_cast<faiss::IndexPreTransform*>(loaded.get());
  ASSERT_NE(pre, nullptr);
  auto* ivf = dynamic_cast<faiss::IndexIVFPQ*>(pre->index);
  ASSERT_NE(ivf, nullptr);
  ivf->nprobe = 16;

  std::vector<uint32_t> lists(data.n);
  std::vector<uint8_t> codes(data.n * 8);
  books->Encode(data.docs.data(), data.n, lists.data(), codes.data());
  std::vector<float> recon(data.n * 32), qr(data.nq * 32);
  for (size_t i = 0; i < data.n; ++i) books->Decode(lists[i], codes.data() + i * 8, recon.data() + i * 32);
  books->Rotate(data.queries.data(), data.nq, qr.data());
  std::vector<float> dist(data.nq * 10);
  std::vector<faiss::Index::idx_t> ids(data.nq * 10);
  loaded->search(static_cast<faiss::Index::idx_t>(data.nq), data.queries.data(), 10, dist.data(), ids.data());
  size_t agree = 0;
  for (size_t q = 0; q < data.nq; ++q) {
    std::vector<std::pair<double, size_t>> scan(data.n);
    for (size_t i = 0; i < data.n; ++i) {
      double s = 0;
      for (size_t j = 0; j < 32; ++j) s += (double{qr[q * 32 + j]} - recon[i * 32 + j]) * (qr[q * 32 + j] - recon[i * 32 + j]);
      scan[i] = {s, i};
    }
    std::partial_sort(scan.begin(), scan.begin() + 10, scan.end());
    for (size_t r = 0; r < 10; ++r) agree += static_cast<size_t>(ids[q * 10 + r]) == scan[r].second;
  }
  EXPECT_GE(agree, data.nq * 10 - 3);  // float vs double: a near-tie may swap two neighbours
}

}  // namespace
}  // namespace m3vdb::quant
