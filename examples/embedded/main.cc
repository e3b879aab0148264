// The embedded library in twenty lines: open a database, create a collection, upsert three
// documents with dense and sparse vectors, and run a hybrid query.
#include <m3vdb/m3vdb.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DB_DIR\n", argv[0]);
    return 2;
  }
  auto db = m3vdb::Database::Open(m3vdb::Options{}, argv[1]);
  if (!db.ok()) return std::fprintf(stderr, "%s\n", db.status().ToString().c_str()), 1;

  m3vdb::CollectionSchema schema;
  schema.dense_dim = 3;
  schema.sparse = true;
  auto coll = (*db)->CreateCollection("notes", schema);
  if (!coll.ok()) return std::fprintf(stderr, "%s\n", coll.status().ToString().c_str()), 1;

  std::vector<m3vdb::Document> docs(3);
  docs[0] = {"a", "red apple", R"({"kind":"fruit"})", {1, 0, 0}, {{10, 20}, {0.5f, 0.2f}}, {}};
  docs[1] = {"b", "green pear", R"({"kind":"fruit"})", {0, 1, 0}, {{30}, {0.4f}}, {}};
  docs[2] = {"c", "blue car", R"({"kind":"vehicle"})", {0, 0, 1}, {{10, 40}, {0.1f, 0.9f}}, {}};
  if (auto s = (*coll)->Upsert(docs); !s.ok()) return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;

  m3vdb::Query query;
  query.dense = {0.9f, 0.1f, 0.0f};
  query.sparse = {{10}, {1.0f}};
  auto hits = (*coll)->Search(query, m3vdb::SearchOptions{});
  if (!hits.ok()) return std::fprintf(stderr, "%s\n", hits.status().ToString().c_str()), 1;
  for (const auto& h : *hits)
    std::printf("%s %.4f dense=%.4f sparse=%.4f %s\n", h.id.c_str(), h.score, h.scores.dense.value_or(0),
                h.scores.sparse.value_or(0), h.metadata_json.c_str());
  return (*hits)[0].id == "a" ? 0 : 1;
}
