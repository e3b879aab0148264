// IvfPqIndex against two independent twins: brute force over the decoded reconstructions, and
// FAISS's IndexIVFPQ holding the same codebooks (the exported-index contract).
#include <faiss/IndexIVF.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "index/detail/pq_scan.h"
#include "index/ivfpq_index.h"
#include "quant/faiss_bridge.h"

namespace m3vdb::index {
namespace {

constexpr size_t kN = 4000, kD = 32, kNq = 25, kK = 20;

struct Fixture {
  std::vector<float> docs, queries;
  std::shared_ptr<const quant::Codebooks> books;
  std::unique_ptr<IvfPqIndex> index;
  std::vector<uint32_t> lists;
  std::vector<uint8_t> codes;
};

// A metric, and for inner product whether the documents are unit length (then TrainKMeans sets
// unit_norm and the index searches in L2 geometry, quant/codebooks.h).
struct Case {
  Metric metric;
  bool unit = false;
};
std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  return info.param.metric == Metric::kL2 ? "L2" : info.param.unit ? "UnitInnerProduct" : "InnerProduct";
}

void Normalize(float* v) {
  double s = 0;
  for (size_t j = 0; j < kD; ++j) s += double{v[j]} * v[j];
  for (size_t j = 0; j < kD; ++j) v[j] = static_cast<float>(v[j] / std::sqrt(s));
}

Fixture Make(Case c, uint64_t seed) {
  const Metric metric = c.metric;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  Fixture f;
  std::vector<float> centers(20 * kD);
  for (float& c : centers) c = 2 * g(rng);
  f.docs.resize(kN * kD);
  for (size_t i = 0; i < kN; ++i)
    for (size_t j = 0; j < kD; ++j) f.docs[i * kD + j] = centers[(i % 20) * kD + j] + g(rng);
  if (c.unit)
    for (size_t i = 0; i < kN; ++i) Normalize(f.docs.data() + i * kD);
  f.queries.resize(kNq * kD);
  for (float& q : f.queries) q = g(rng);  // not unit length: the index normalises them
  quant::IvfPqParams p;
  p.dim = kD;
  p.metric = metric;
  p.nlist = 16;
  p.m = 8;
  auto books = quant::TrainKMeans(f.docs.data(), kN, p);
  EXPECT_TRUE(books.ok()) << books.status().ToString();
  EXPECT_EQ(books->params.unit_norm, c.unit);
  f.books = std::make_shared<const quant::Codebooks>(std::move(*books));
  f.index = std::make_unique<IvfPqIndex>(f.books);
  f.lists.resize(kN);
  f.codes.resize(kN * 8);
  f.books->Encode(f.docs.data(), kN, f.lists.data(), f.codes.data());
  for (size_t i = 0; i < kN; ++i) f.index->Add(i, f.lists[i], f.codes.data() + i * 8);
  return f;
}

class IvfPqIndexTest : public ::testing::TestWithParam<Case> {};

// The score the index estimates for query q and reconstruction r, in double.
double Reference(const Case& c, const float* q, const float* r) {
  double s = 0, len = 0;
  for (size_t j = 0; j < kD; ++j) len += double{q[j]} * q[j];
  len = std::sqrt(len);
  for (size_t j = 0; j < kD; ++j) {
    const double a = q[j], b = r[j];
    if (c.metric == Metric::kL2)
      s -= (a - b) * (a - b);
    else if (c.unit)
      s -= (a / len - b) * (a / len - b);
    else
      s += a * b;
  }
  return c.unit ? len * (2 + s) / 2 : s;
}

TEST_P(IvfPqIndexTest, AllListsEqualBruteForceOverReconstructions) {
  Fixture f = Make(GetParam(), 1);
  auto got = f.index->Search(f.queries, kNq, kK, /*nprobe=*/16);
  std::vector<float> recon(kD);
  for (size_t q = 0; q < kNq; ++q) {
    std::vector<std::pair<double, uint64_t>> ref;
    for (size_t i = 0; i < kN; ++i) {
      f.books->Decode(f.lists[i], f.codes.data() + i * 8, recon.data());
      ref.push_back({Reference(GetParam(), f.queries.data() + q * kD, recon.data()), i});
    }
    std::sort(ref.begin(), ref.end(), [](auto& a, auto& b) { return a.first > b.first; });
    ASSERT_EQ(got[q].size(), kK);
    for (size_t r = 0; r < kK; ++r) {
      const double tol = 1e-3 * (1 + std::abs(ref[r].first));
      EXPECT_NEAR(got[q][r].score, ref[r].first, tol);
      const bool tie = (r > 0 && ref[r - 1].first - ref[r].first < tol) || ref[r].first - ref[r + 1].first < tol;
      if (!tie) {
        EXPECT_EQ(got[q][r].id, ref[r].second) << "query " << q << " rank " << r;
      }
    }
  }
}

// The exported FAISS file, loaded by stock FAISS, returns the same results as our search (for
// unit-length inner product a METRIC_L2 file, searched with the unit-length queries; its
// distances d are then the estimate ||q|| (2 - d) / 2).
TEST_P(IvfPqIndexTest, ExportedFaissFileGivesTheSameResults) {
  Fixture f = Make(GetParam(), 2);
  const std::string path =
      std::filesystem::temp_directory_path() / ("m3vdb-ivfpq-" + std::to_string(getpid()) + ".faiss");
  ASSERT_TRUE(quant::ExportFaissIndex(*f.books, f.docs.data(), kN, path).ok());
  std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
  std::filesystem::remove(path);
  for (size_t nprobe : {1, 4}) {
    dynamic_cast<faiss::IndexIVF*>(loaded.get())->nprobe = nprobe;
    std::vector<float> dist(kNq * kK);
    std::vector<faiss::Index::idx_t> labels(kNq * kK);
    std::vector<float> faiss_queries = f.queries, lengths(kNq, 1.0f);
    if (GetParam().unit)
      for (size_t q = 0; q < kNq; ++q) {
        double s = 0;
        for (size_t j = 0; j < kD; ++j) s += double{f.queries[q * kD + j]} * f.queries[q * kD + j];
        lengths[q] = static_cast<float>(std::sqrt(s));
        Normalize(faiss_queries.data() + q * kD);
      }
    loaded->search(kNq, faiss_queries.data(), kK, dist.data(), labels.data());
    auto ours = f.index->Search(f.queries, kNq, kK, nprobe);
    for (size_t q = 0; q < kNq; ++q) {
      size_t valid = 0;
      for (size_t r = 0; r < kK; ++r) valid += labels[q * kK + r] >= 0;
      ASSERT_EQ(ours[q].size(), valid);
      for (size_t r = 0; r < valid; ++r) {
        const float faiss_score = GetParam().metric == Metric::kL2 ? -dist[q * kK + r]
                                  : GetParam().unit ? lengths[q] * (2 - dist[q * kK + r]) / 2
                                                    : dist[q * kK + r];
        const float tol = 1e-3f * (1 + std::abs(faiss_score));
        EXPECT_NEAR(ours[q][r].score, faiss_score, tol);
        const bool tie = (r > 0 && std::abs(dist[q * kK + r - 1] - dist[q * kK + r]) < tol) ||
                         (r + 1 < valid && std::abs(dist[q * kK + r + 1] - dist[q * kK + r]) < tol);
        if (!tie) {
          EXPECT_EQ(ours[q][r].id, static_cast<uint64_t>(labels[q * kK + r])) << "nprobe " << nprobe;
        }
      }
    }
  }
}

TEST_P(IvfPqIndexTest, RemovedAndReplacedEntries) {
  Fixture f = Make(GetParam(), 3);
  std::set<uint64_t> removed;
  for (uint64_t id = 0; id < kN; id += 3) {
    ASSERT_TRUE(f.index->Remove(id));
    removed.insert(id);
  }
  EXPECT_FALSE(f.index->Remove(0));
  EXPECT_EQ(f.index->size(), kN - removed.size());
  // Re-add one removed id under another list: it is found again, once.
  f.index->Add(3, f.lists[4], f.codes.data() + 4 * 8);
  removed.erase(3);
  auto got = f.index->Search(f.queries, kNq, kN, 16);
  for (const auto& row : got) {
    std::set<uint64_t> seen;
    EXPECT_EQ(row.size(), f.index->size());
    for (const auto& s : row) {
      EXPECT_FALSE(removed.count(s.id)) << s.id;
      EXPECT_TRUE(seen.insert(s.id).second);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, IvfPqIndexTest,
                         ::testing::Values(Case{Metric::kInnerProduct}, Case{Metric::kL2},
                                           Case{Metric::kInnerProduct, true}),
                         CaseName);

// The scan kernel against the definition, summed in double, for list lengths around its
// eight-code blocks and sub-quantizer counts with and without an odd tail.
TEST(PqScanTest, KernelEqualsDefinition) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-1, 1);
  for (size_t m : {1, 7, 8, 28}) {
    for (size_t n : {0, 5, 8, 9, 61}) {
      std::vector<uint8_t> codes(n * m);
      for (auto& c : codes) c = static_cast<uint8_t>(rng());
      std::vector<float> lut(m * 256), out(n);
      for (float& v : lut) v = u(rng);
      detail::ScanCodes(codes.data(), n, m, lut.data(), 0.5f, out.data());
      for (size_t i = 0; i < n; ++i) {
        double want = 0.5;
        for (size_t j = 0; j < m; ++j) want += lut[j * 256 + codes[i * m + j]];
        EXPECT_NEAR(out[i], want, 1e-4) << "m " << m << " n " << n << " code " << i;
      }
    }
  }
}

}  // namespace
}  // namespace m3vdb::index
