// Synthetic clustered data for quantizer tests: documents in Gaussian clusters, queries near
// documents. Deterministic for a seed.
#pragma once

#include <random>
#include <vector>

namespace m3vdb::quant::testing {

struct Dataset {
  size_t n = 0, nq = 0, d = 0;
  std::vector<float> docs, queries;
};

// `relevant` of the d dimensions carry the cluster structure and the queries; the others are
// large-variance noise that queries ignore (they are 0 in every query). In every PQ sub-space
// both kinds are interleaved, so reconstruction-driven k-means spends its codewords on the
// noise while a ranking-driven quantizer can spend them where queries look.
inline Dataset MakeClustered(size_t n, size_t nq, size_t d, size_t relevant, int clusters, float noise_scale,
                             uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  Dataset ds{n, nq, d, std::vector<float>(n * d), std::vector<float>(nq * d, 0.0f)};
  std::vector<float> centers(static_cast<size_t>(clusters) * d);
  for (float& c : centers) c = g(rng);
  auto is_relevant = [&](size_t j) { return (j % 2 == 0) && (j / 2) < relevant; };
  for (size_t i = 0; i < n; ++i) {
    const size_t c = rng() % static_cast<size_t>(clusters);
    for (size_t j = 0; j < d; ++j)
      ds.docs[i * d + j] = is_relevant(j) ? centers[c * d + j] + 0.5f * g(rng) : noise_scale * g(rng);
  }
  for (size_t i = 0; i < nq; ++i) {
    const size_t near = rng() % n;
    for (size_t j = 0; j < d; ++j)
      if (is_relevant(j)) ds.queries[i * d + j] = ds.docs[near * d + j] + 0.3f * g(rng);
  }
  return ds;
}

}  // namespace m3vdb::quant::testing
