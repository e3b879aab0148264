// The embedded library in twenty lines: open a database, create a collection, upsert three
// documents with dense and sparse vectors, and run a hybrid query. With a BGE-M3 model
// directory as second argument, also a text collection: documents and a query as text only.
#include <m3vdb/m3vdb.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s DB_DIR [MODEL_DIR]\n", argv[0]);
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
  if ((*hits)[0].id != "a") return 1;
  if (argc == 2) return 0;

  // Text: the database embeds documents and queries with the model.
  m3vdb::Options options;
  options.model_dir = argv[2];
  auto text_db = m3vdb::Database::Open(options, std::string(argv[1]) + "-text");
  if (!text_db.ok()) return std::fprintf(stderr, "%s\n", text_db.status().ToString().c_str()), 1;
  m3vdb::CollectionSchema text_schema;
  text_schema.model = true;  // dimensions from the model; dense only
  auto kb = (*text_db)->CreateCollection("kb", text_schema);
  if (!kb.ok()) return std::fprintf(stderr, "%s\n", kb.status().ToString().c_str()), 1;
  std::vector<m3vdb::Document> texts(2);
  texts[0].id = "fox";
  texts[0].text = "The quick brown fox jumps over the lazy dog.";
  texts[1].id = "db";
  texts[1].text = "Vector databases answer nearest neighbour queries.";
  if (auto s = (*kb)->Upsert(texts); !s.ok()) return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
  m3vdb::Query text_query;
  text_query.text = texts[1].text;
  auto text_hits = (*kb)->Search(text_query, m3vdb::SearchOptions{});
  if (!text_hits.ok()) return std::fprintf(stderr, "%s\n", text_hits.status().ToString().c_str()), 1;
  std::printf("text query: %s %.4f\n", (*text_hits)[0].id.c_str(), (*text_hits)[0].score);
  return (*text_hits)[0].id == "db" ? 0 : 1;
}
