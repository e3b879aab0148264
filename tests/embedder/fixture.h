// Access to the committed fixture model (tests/embedder/fixtures/tiny) and its PyTorch
// reference outputs (reference.json), both written by scripts/make_fixture_model.py.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "embedder/embedder.h"

namespace m3vdb::embedder::testing {

inline std::string FixtureDir() { return std::string(M3VDB_EMBEDDER_FIXTURES) + "/tiny"; }

inline const nlohmann::json& Reference() {
  static const nlohmann::json ref = [] {
    std::ifstream in(std::string(M3VDB_EMBEDDER_FIXTURES) + "/reference.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return ref;
}

inline std::unique_ptr<Embedder> OpenFixture(Options options = {}) {
  options.threads = options.threads == 0 ? 2 : options.threads;
  auto e = Embedder::Open(FixtureDir(), options);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

inline float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Asserts two embeddings agree: equal tokens and sparse ids, values within `tol`.
inline void ExpectNear(const Embedding& a, const Embedding& b, float tol, const std::string& what) {
  EXPECT_EQ(a.tokens, b.tokens) << what;
  EXPECT_LE(MaxAbsDiff(a.dense, b.dense), tol) << what;
  EXPECT_EQ(a.sparse.ids, b.sparse.ids) << what;
  EXPECT_LE(MaxAbsDiff(a.sparse.weights, b.sparse.weights), tol) << what;
  EXPECT_EQ(a.colbert_rows, b.colbert_rows) << what;
  EXPECT_LE(MaxAbsDiff(a.colbert, b.colbert), tol) << what;
}

}  // namespace m3vdb::embedder::testing
