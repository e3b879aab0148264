// FlatDenseIndex's int8-first small-batch search against its float32 pass on the same index:
// the same ids and bit-identical float32 scores, for both metrics, on random data, clustered
// data full of near-ties, duplicates, vectors that differ only below float32 or int8 precision
// (identical int8 copies: the bound must send them to the float32 rescoring), zero vectors and
// queries, large and tiny magnitudes, non-finite vectors, through Add / Remove / replace (slots
// move between the int8 copy's blocks), for k = 1, 10, 100 and k > size. The float32 pass
// itself is checked against double brute force by flat_dense_index_test.cc; here it is also
// checked loosely.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <span>

#include "index/dense_index.h"

namespace m3vdb::index {
namespace {

using Path = FlatDenseIndex::SmallBatchPath;

// Searches `queries` in batches of 1..8 with each path and expects identical answers; counts in
// `auto_int8` the searches that took the int8 path under kAuto.
void ExpectPathsAgree(FlatDenseIndex& index, const std::vector<float>& queries, size_t nq_total,
                      const std::vector<size_t>& ks, const std::map<uint64_t, std::vector<float>>* ref = nullptr,
                      size_t* auto_int8_out = nullptr, bool expect_int8 = true) {
  const size_t dim = index.dim();
  size_t auto_int8 = 0;
  for (size_t k : ks) {
    size_t first = 0;
    for (size_t batch = 1; first < nq_total; batch = batch % 8 + 1) {
      const size_t nq = std::min(batch, nq_total - first);
      const std::span<const float> qs(queries.data() + first * dim, nq * dim);
      index.set_small_batch_path(Path::kFloat32);
      const auto want = index.Search(qs, nq, k);
      index.set_small_batch_path(Path::kQuantizedFirst);
      const auto forced = index.Search(qs, nq, k);
      const bool forced_took_int8 = FlatDenseIndex::last_rescored() > 0;
      index.set_small_batch_path(Path::kAuto);
      const auto automatic = index.Search(qs, nq, k);
      auto_int8 += FlatDenseIndex::last_rescored() > 0;
      if (index.size() > 0) {
        EXPECT_EQ(forced_took_int8, expect_int8) << "forced int8 path (size " << index.size() << ")";
      }
      for (size_t q = 0; q < nq; ++q) {
        ASSERT_EQ(want[q].size(), std::min(k, index.size()));
        ASSERT_EQ(forced[q].size(), want[q].size());
        ASSERT_EQ(automatic[q].size(), want[q].size());
        for (size_t r = 0; r < want[q].size(); ++r) {
          ASSERT_EQ(forced[q][r].id, want[q][r].id) << "k " << k << " query " << first + q << " rank " << r;
          ASSERT_EQ(forced[q][r].score, want[q][r].score) << "k " << k << " query " << first + q << " rank " << r;
          ASSERT_EQ(automatic[q][r].id, want[q][r].id) << "k " << k << " query " << first + q << " rank " << r;
          ASSERT_EQ(automatic[q][r].score, want[q][r].score);
        }
        if (ref != nullptr && !want[q].empty()) {  // the float32 pass against double brute force
          const float* qv = qs.data() + q * dim;
          double best = -INFINITY;
          for (const auto& [id, v] : *ref) {
            double s = 0;
            for (size_t j = 0; j < dim; ++j)
              s += index.metric() == Metric::kL2 ? -(double{qv[j]} - v[j]) * (double{qv[j]} - v[j])
                                                 : double{qv[j]} * v[j];
            best = std::max(best, s);
          }
          EXPECT_NEAR(want[q][0].score, best, 1e-3 * (1 + std::abs(best)));
        }
      }
      first += nq;
    }
  }
  if (auto_int8_out != nullptr) *auto_int8_out = auto_int8;
}

std::vector<float> Flatten(const std::vector<std::vector<float>>& vs) {
  std::vector<float> out;
  for (const auto& v : vs) out.insert(out.end(), v.begin(), v.end());
  return out;
}

class QuantizedSearchTest : public ::testing::TestWithParam<Metric> {};

TEST_P(QuantizedSearchTest, RandomDataThroughAddsRemovesAndReplaces) {
  const uint32_t dim = 61;
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  auto random_vec = [&] {
    std::vector<float> v(dim);
    for (float& x : v) x = g(rng);
    return v;
  };
  FlatDenseIndex index(dim, GetParam());
  std::map<uint64_t, std::vector<float>> ref;
  std::vector<std::vector<float>> qs;
  for (int i = 0; i < 24; ++i) qs.push_back(random_vec());
  const auto queries = Flatten(qs);
  // k > size on an empty and on a tiny index.
  ExpectPathsAgree(index, queries, 8, {1, 10});
  for (uint64_t id = 0; id < 7; ++id) index.Add(id, ref[id] = random_vec());
  ExpectPathsAgree(index, queries, 8, {1, 10, 100}, &ref);
  for (uint64_t id = 7; id < 6000; ++id) index.Add(id * 5, ref[id * 5] = random_vec());
  size_t auto_int8 = 0;
  ExpectPathsAgree(index, queries, 24, {1, 10, 100}, &ref, &auto_int8);
  EXPECT_GT(auto_int8, 0u);  // kAuto takes the int8 path here
  for (uint64_t id = 7; id < 6000; id += 3) {
    ASSERT_TRUE(index.Remove(id * 5));
    ref.erase(id * 5);
  }
  for (uint64_t id = 8; id < 6000; id += 7)
    if (ref.count(id * 5)) index.Add(id * 5, ref[id * 5] = random_vec());
  ASSERT_EQ(index.size(), ref.size());
  ExpectPathsAgree(index, queries, 24, {1, 10, 100}, &ref);
  // Removing the best hits of the first query: the int8 copy must follow the moved slots.
  index.set_small_batch_path(Path::kFloat32);
  const auto best = index.Search({queries.data(), dim}, 1, 50);
  for (const ScoredId& s : best[0]) {
    ASSERT_TRUE(index.Remove(s.id));
    ref.erase(s.id);
  }
  ExpectPathsAgree(index, queries, 24, {1, 10, 100}, &ref);
  EXPECT_GT(index.memory_bytes(), index.size() * (dim * sizeof(float) + 64 * sizeof(int8_t) + 16));
}

// A batch larger than 8 goes through the int8-first search in groups of 8: every query's
// answer is bit for bit its answer when searched alone (the float32 pass of one query), and the
// same ids as the GEMM float32 pass of the whole batch, whose scores may differ in rounding.
TEST_P(QuantizedSearchTest, LargeBatchesInGroupsEqualSingleSearches) {
  const uint32_t dim = 40;
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  FlatDenseIndex index(dim, GetParam());
  for (uint64_t id = 0; id < 5000; ++id) {
    std::vector<float> v(dim);
    for (float& x : v) x = g(rng);
    index.Add(id, v);
  }
  const size_t nq = 37, k = 10;  // four groups of 8 and one of 5
  std::vector<float> queries(nq * dim);
  for (float& x : queries) x = g(rng);
  index.set_small_batch_path(Path::kAuto);
  const auto batch = index.Search(queries, nq, k);
  EXPECT_GT(FlatDenseIndex::last_rescored(), 0u);  // the groups took the int8 path
  index.set_small_batch_path(Path::kFloat32);
  const auto gemm = index.Search(queries, nq, k);
  ASSERT_EQ(batch.size(), nq);
  for (size_t q = 0; q < nq; ++q) {
    const auto alone = index.Search({queries.data() + q * dim, dim}, 1, k);
    ASSERT_EQ(batch[q].size(), k);
    ASSERT_EQ(gemm[q].size(), k);
    for (size_t r = 0; r < k; ++r) {
      EXPECT_EQ(batch[q][r].id, alone[0][r].id) << "query " << q << " rank " << r;
      EXPECT_EQ(batch[q][r].score, alone[0][r].score) << "query " << q << " rank " << r;
      EXPECT_EQ(batch[q][r].id, gemm[q][r].id) << "query " << q << " rank " << r;
      EXPECT_NEAR(batch[q][r].score, gemm[q][r].score, 1e-4f * (1 + std::abs(gemm[q][r].score)));
    }
  }
}

// A few centres with tiny noise: thousands of near-ties, many of them closer than the bound.
TEST_P(QuantizedSearchTest, ClusteredNearTies) {
  const uint32_t dim = 32;
  std::mt19937 rng(2);
  std::normal_distribution<float> g;
  std::vector<std::vector<float>> centres(4, std::vector<float>(dim));
  for (auto& c : centres)
    for (float& x : c) x = g(rng);
  FlatDenseIndex index(dim, GetParam());
  for (uint64_t id = 0; id < 8000; ++id) {
    std::vector<float> v = centres[id % 4];
    for (float& x : v) x += 1e-4f * g(rng);
    index.Add(id, v);
  }
  std::vector<std::vector<float>> qs;
  for (int i = 0; i < 16; ++i) {
    std::vector<float> q = centres[i % 4];
    for (float& x : q) x += 1e-3f * g(rng);
    qs.push_back(q);
  }
  ExpectPathsAgree(index, Flatten(qs), qs.size(), {1, 10, 100});
}

// Exact duplicates under different ids (ties go to the smaller id), and vectors equal to a base
// vector except for one-ulp float changes, so their int8 copies are identical: only the float32
// rescoring can order them.
TEST_P(QuantizedSearchTest, DuplicatesAndDifferencesBelowFloatPrecision) {
  const uint32_t dim = 50;
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  std::uniform_int_distribution<uint32_t> coord(0, dim - 1);
  std::vector<float> base(dim);
  for (float& x : base) x = g(rng);
  FlatDenseIndex index(dim, GetParam());
  uint64_t id = 1000;
  for (int i = 0; i < 300; ++i) index.Add(id++, base);  // duplicates
  for (int i = 0; i < 3000; ++i) {
    std::vector<float> v = base;
    for (int c = 0; c < 3; ++c) {
      float& x = v[coord(rng)];
      x = std::nextafter(x, (i + c) % 2 ? INFINITY : -INFINITY);
    }
    index.Add(id++, v);
  }
  for (int i = 0; i < 3000; ++i) {  // unrelated vectors, so the int8 pass has something to prune
    std::vector<float> v(dim);
    for (float& x : v) x = g(rng);
    index.Add(id++, v);
  }
  std::vector<std::vector<float>> qs = {base};
  for (int i = 0; i < 7; ++i) {
    std::vector<float> q(dim);
    for (size_t j = 0; j < dim; ++j) q[j] = base[j] + 0.01f * g(rng);
    qs.push_back(q);
  }
  ExpectPathsAgree(index, Flatten(qs), qs.size(), {1, 10, 100});
  // The near-copies all had to be rescored: their int8 scores cannot separate them.
  index.set_small_batch_path(Path::kQuantizedFirst);
  index.Search(base, 1, 10);
  EXPECT_GE(FlatDenseIndex::last_rescored(), 3300u);
  // Under kAuto that is more than 1/16 of the documents: the float32 pass answers instead, with
  // the same result.
  const auto forced = index.Search(base, 1, 10);
  index.set_small_batch_path(Path::kAuto);
  const auto automatic = index.Search(base, 1, 10);
  EXPECT_EQ(FlatDenseIndex::last_rescored(), 0u);
  ASSERT_EQ(automatic[0].size(), forced[0].size());
  for (size_t r = 0; r < forced[0].size(); ++r) {
    EXPECT_EQ(automatic[0][r].id, forced[0][r].id);
    EXPECT_EQ(automatic[0][r].score, forced[0][r].score);
  }
  // Remove half the duplicates (slots move) and search again.
  for (uint64_t i = 1000; i < 1300; i += 2) ASSERT_TRUE(index.Remove(i));
  ExpectPathsAgree(index, Flatten(qs), qs.size(), {1, 10, 100});
}

// Near-copies of a base vector whose int8 copies (codes and scale) are identical to the base's:
// the base is 2^-7 times integers in [-127, 127] (one element 127, never changed), and every
// other element moves by up to 0.45 * 2^-7, far above float32 precision but below half a
// quantization step. Only the float32 rescoring can order them.
TEST_P(QuantizedSearchTest, DifferencesBelowInt8Precision) {
  const uint32_t dim = 48;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(-127, 127);
  std::uniform_real_distribution<float> shift(-0.45f, 0.45f);
  std::normal_distribution<float> g;
  std::vector<float> base(dim);
  for (float& x : base) x = static_cast<float>(code(rng)) * 0x1p-7f;
  base[5] = 127 * 0x1p-7f;
  FlatDenseIndex index(dim, GetParam());
  uint64_t id = 0;
  for (int i = 0; i < 2500; ++i) {
    std::vector<float> v = base;
    for (size_t j = 0; j < dim; ++j)
      if (j != 5) v[j] += shift(rng) * 0x1p-7f;
    index.Add(id++, v);
  }
  for (int i = 0; i < 2500; ++i) {  // unrelated vectors
    std::vector<float> v(dim);
    for (float& x : v) x = g(rng);
    index.Add(id++, v);
  }
  std::vector<std::vector<float>> qs = {base};
  for (int i = 0; i < 7; ++i) {
    std::vector<float> q(dim);
    for (size_t j = 0; j < dim; ++j) q[j] = base[j] + 0.05f * g(rng);
    qs.push_back(q);
  }
  ExpectPathsAgree(index, Flatten(qs), qs.size(), {1, 10, 100});
  index.set_small_batch_path(Path::kQuantizedFirst);
  index.Search(base, 1, 10);
  EXPECT_GE(FlatDenseIndex::last_rescored(), 2500u);  // every near-copy
}

// Zero vectors (scale 0, all codes 0) among random ones, and zero queries (every inner product
// 0: ties everywhere, broken by id).
TEST_P(QuantizedSearchTest, ZeroVectorsAndQueries) {
  const uint32_t dim = 20;
  std::mt19937 rng(8);
  std::normal_distribution<float> g;
  FlatDenseIndex index(dim, GetParam());
  for (uint64_t id = 0; id < 3000; ++id) {
    std::vector<float> v(dim, 0.0f);
    if (id % 9 != 0)
      for (float& x : v) x = g(rng);
    index.Add(id, v);
  }
  std::vector<std::vector<float>> qs;
  for (int i = 0; i < 8; ++i) {
    std::vector<float> q(dim, 0.0f);
    if (i % 3 != 0)
      for (float& x : q) x = g(rng);
    qs.push_back(q);
  }
  ExpectPathsAgree(index, Flatten(qs), qs.size(), {1, 10, 100});
}

TEST_P(QuantizedSearchTest, LargeAndTinyMagnitudes) {
  const uint32_t dim = 40;
  std::mt19937 rng(4);
  std::normal_distribution<float> g;
  for (float scale : {1e-30f, 1e-18f, 1e12f, 1e17f}) {
    FlatDenseIndex index(dim, GetParam());
    std::vector<std::vector<float>> qs;
    for (uint64_t id = 0; id < 3000; ++id) {
      std::vector<float> v(dim);
      for (float& x : v) x = g(rng) * scale;
      if (id % 10 == 0) v[0] = 0x1p-140f;  // a subnormal element
      index.Add(id, v);
    }
    for (int i = 0; i < 8; ++i) {
      std::vector<float> q(dim);
      for (float& x : q) x = g(rng) * scale;
      qs.push_back(q);
    }
    // At 1e17, |<q,x>| ~ 1e35 and the bound exceeds 2^100: the float32 pass answers.
    ExpectPathsAgree(index, Flatten(qs), qs.size(), {1, 10, 100}, nullptr, nullptr, scale < 1e15f);
  }
}

// Stored vectors the bound cannot cover (infinite elements): the int8 path steps aside and the
// float32 pass answers; after removing them the int8 path is back.
TEST_P(QuantizedSearchTest, NonFiniteVectorsTurnTheInt8PathOff) {
  const uint32_t dim = 8;
  std::mt19937 rng(6);
  std::normal_distribution<float> g;
  FlatDenseIndex index(dim, GetParam());
  std::vector<float> v(dim);
  for (uint64_t id = 0; id < 500; ++id) {
    for (float& x : v) x = g(rng);
    index.Add(id, v);
  }
  v[3] = INFINITY;
  index.Add(7, v);  // replaces a finite vector
  for (float& x : v) x = g(rng);
  index.set_small_batch_path(Path::kQuantizedFirst);
  index.Search(v, 1, 5);
  EXPECT_EQ(FlatDenseIndex::last_rescored(), 0u);
  ASSERT_TRUE(index.Remove(7));
  index.Search(v, 1, 5);
  EXPECT_GT(FlatDenseIndex::last_rescored(), 0u);
  std::vector<float> finite(dim, 1.0f);
  index.Add(8, finite);
  finite[0] = INFINITY;
  index.Add(8, finite);  // replace finite -> infinite
  index.Search(v, 1, 5);
  EXPECT_EQ(FlatDenseIndex::last_rescored(), 0u);
  finite[0] = 1;
  index.Add(8, finite);  // and back
  index.Search(v, 1, 5);
  EXPECT_GT(FlatDenseIndex::last_rescored(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Metrics, QuantizedSearchTest, ::testing::Values(Metric::kInnerProduct, Metric::kL2),
                         [](const auto& info) { return info.param == Metric::kL2 ? "l2" : "ip"; });

}  // namespace
}  // namespace m3vdb::index
