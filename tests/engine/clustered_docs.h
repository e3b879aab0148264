// Documents for the IVF-PQ engine tests: ids "doc-<i>" for i in [begin, end), dense vectors of
// dimension `dim` around 12 random centres (uniform noise of width 2), metadata {"i": i}. The
// vectors depend only on (i, seed), so a range drawn alone equals the same range of a longer one.
#pragma once

#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "seeded_random.h"

namespace m3vdb::test {

inline std::vector<Document> MakeClusteredDocs(size_t begin, size_t end, uint64_t seed, uint32_t dim) {
  SeededRandom rng(seed);
  std::vector<float> centers(12 * dim);
  for (float& c : centers) c = static_cast<float>(rng.Uniform(-3, 3));
  std::vector<Document> docs;
  for (size_t i = 0; i < end; ++i) {
    Document d;
    d.dense.resize(dim);
    for (uint32_t j = 0; j < dim; ++j) d.dense[j] = centers[(i % 12) * dim + j] + static_cast<float>(rng.Uniform(-1, 1));
    if (i < begin) continue;
    d.id = "doc-" + std::to_string(i);
    d.metadata_json = "{\"i\":" + std::to_string(i) + "}";
    docs.push_back(std::move(d));
  }
  return docs;
}

// A small IVF-PQ schema for those documents: nlist 8, m 4, default nprobe 2.
inline CollectionSchema SmallIvfPqSchema(uint32_t dim, Metric metric, int epochs) {
  CollectionSchema s;
  s.dense_dim = dim;
  s.metric = metric;
  s.index.nlist = 8;
  s.index.m = 4;
  s.index.epochs = epochs;
  s.index.nprobe = 2;
  return s;
}

}  // namespace m3vdb::test
