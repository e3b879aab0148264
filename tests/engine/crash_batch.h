// The documents of crash-test batch `n`, derived from n alone so that the writer process and the
// test that checks what survived agree on them: kBatchDocs documents "b<n>-<i>", a dense vector
// from a seeded generator, sparse weights, metadata {"batch":n,"i":i}.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "tests/engine/seeded_random.h"

namespace m3vdb::test {

inline constexpr char kCrashCollection[] = "crash";
inline constexpr uint32_t kCrashDim = 16;
inline constexpr int kBatchDocs = 50;

inline CollectionSchema CrashSchema() {
  CollectionSchema schema;
  schema.dense_dim = kCrashDim;
  schema.metric = Metric::kInnerProduct;
  schema.sparse = true;
  return schema;
}

inline std::string CrashDocId(int64_t batch, int i) { return "b" + std::to_string(batch) + "-" + std::to_string(i); }

inline Document CrashDoc(int64_t batch, int i) {
  SeededRandom rng(static_cast<uint64_t>(batch) * 1000 + static_cast<uint64_t>(i));
  Document doc;
  doc.id = CrashDocId(batch, i);
  doc.metadata_json = "{\"batch\":" + std::to_string(batch) + ",\"i\":" + std::to_string(i) + "}";
  for (uint32_t j = 0; j < kCrashDim; ++j) doc.dense.push_back(static_cast<float>(rng.Uniform(-1, 1)));
  // Token i is shared with the same position of every batch, token 1000+n with the batch.
  doc.sparse.indices = {i, 1000 + static_cast<int32_t>(batch)};
  doc.sparse.values = {static_cast<float>(rng.Uniform(0.1, 1.0)), 1.0f};
  return doc;
}

inline std::vector<Document> CrashBatch(int64_t batch) {
  std::vector<Document> docs;
  for (int i = 0; i < kBatchDocs; ++i) docs.push_back(CrashDoc(batch, i));
  return docs;
}

}  // namespace m3vdb::test
