// Text over HTTP with a model configured (the committed fixture checkpoint): POST /embed
// against the library's Embedder on the same checkpoint, model collections ("model": true),
// documents with only text and text searches, the embedder metrics, /embed limits; then the
// same ingest and search through the real server on a loopback port.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "embedder/embedder.h"
#include "net/client.h"
#include "net/server.h"
#include "net/service.h"
#include "tests/embedder/fixture.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb::net {
namespace {

using embedder::testing::FixtureDir;
using nlohmann::json;
using namespace std::chrono_literals;

const std::vector<std::string> kTexts = {
    "What is BGE M3? It is an embedding model for dense, sparse and multi-vector retrieval.",
    "The quick brown fox jumps over the lazy dog.",
    "Vector databases store embeddings and answer nearest neighbour queries.",
    "RocksDB keeps the documents; the index lives in memory.",
};

std::unique_ptr<Database> OpenWithModel(const test::TempDir& dir) {
  Options options;
  options.sync = false;
  options.model_dir = FixtureDir();
  options.encoder.threads = 2;
  options.encoder.device = EncoderDevice::kCpu;
  auto db = Database::Open(options, dir.Sub("db"));
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(*db) : nullptr;
}

class TextApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = OpenWithModel(dir_);
    ASSERT_NE(db_, nullptr);
    ServiceOptions options;
    options.max_embed_texts = 8;
    options.max_embed_text_bytes = 1000;
    service_ = std::make_unique<Service>(*db_, options);
  }

  Response Call(const std::string& method, const std::string& target, const json& body = nullptr) {
    const std::string text = body.is_null() ? "" : body.dump();
    return service_->Handle(Request{method, target, text.empty() ? "" : "application/json", "", text});
  }

  test::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Service> service_;
};

TEST_F(TextApiTest, EmbedMatchesTheLibrary) {
  embedder::Options o;
  o.threads = 2;
  o.device = embedder::Device::kCpu;
  auto reference = embedder::Embedder::Open(FixtureDir(), o);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  auto want = (*reference)->Encode(kTexts);
  ASSERT_TRUE(want.ok());

  Response r = Call("POST", "/embed", json{{"texts", kTexts}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = json::parse(r.body);
  ASSERT_EQ(body["embeddings"].size(), kTexts.size());
  for (size_t i = 0; i < kTexts.size(); ++i) {
    const json& got = body["embeddings"][i];
    const embedder::Embedding& w = (*want)[i];
    EXPECT_EQ(got["tokens"].get<std::vector<int32_t>>(), w.tokens);
    EXPECT_LE(embedder::testing::MaxAbsDiff(got["dense"].get<std::vector<float>>(), w.dense), 1e-6f);
    ASSERT_EQ(got["sparse"].size(), w.sparse.ids.size());
    for (size_t k = 0; k < w.sparse.ids.size(); ++k)
      EXPECT_NEAR(got["sparse"][std::to_string(w.sparse.ids[k])].get<float>(), w.sparse.weights[k], 1e-6f);
    ASSERT_EQ(got["colbert"].size(), w.colbert_rows);
    std::vector<float> colbert;
    for (const json& row : got["colbert"]) {
      ASSERT_EQ(row.size(), (*reference)->colbert_dim());
      for (const json& v : row) colbert.push_back(v.get<float>());
    }
    EXPECT_LE(embedder::testing::MaxAbsDiff(colbert, w.colbert), 1e-6f);
  }

  // Only the parts asked for.
  r = Call("POST", "/embed", json{{"texts", {kTexts[0]}}, {"include", {"dense", "tokens"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json one = json::parse(r.body)["embeddings"][0];
  EXPECT_TRUE(one.contains("dense") && one.contains("tokens"));
  EXPECT_FALSE(one.contains("sparse") || one.contains("colbert"));

  // The metrics count what was encoded.
  const std::string metrics = Call("GET", "/metrics").body;
  size_t tokens = 0;
  for (const auto& e : *want) tokens += e.tokens.size();
  tokens += (*want)[0].tokens.size();
  EXPECT_NE(metrics.find("m3vdb_embedder_tokens_total " + std::to_string(tokens) + "\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("m3vdb_embedder_texts_total 5\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("# TYPE m3vdb_embedder_encode_seconds_total counter"), std::string::npos);
}

TEST_F(TextApiTest, EmbedErrors) {
  auto expect = [&](const json& body, int status, const std::string& needle) {
    Response r = Call("POST", "/embed", body);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.body.find(needle), std::string::npos) << r.body;
  };
  expect(json{{"text", "x"}}, 400, "unknown field 'text'");
  expect(json::object(), 400, "texts is required");
  expect(json{{"texts", "x"}}, 400, "texts must be an array of strings");
  expect(json{{"texts", {"a", 3}}}, 400, "texts[1] must be a string");
  expect(json{{"texts", {"a"}}, {"include", {"vectors"}}}, 400, "include[0]");
  expect(json{{"texts", std::vector<std::string>(9, "a")}}, 413, "texts has 9 entries, limit is 8");
  expect(json{{"texts", {"a", std::string(1001, 'b')}}}, 413, "texts[1] is 1001 bytes, limit is 1000");
  Response r = service_->Handle(Request{"POST", "/embed", "text/plain", "", "{\"texts\":[]}"});
  EXPECT_EQ(r.status, 415);
  r = Call("POST", "/embed", json{{"texts", json::array()}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["embeddings"].size(), 0u);
}

TEST_F(TextApiTest, TextCollectionsIngestAndSearchText) {
  Response r = Call("PUT", "/collections/docs", json{{"model", true}, {"sparse", true}, {"colbert", true}});
  ASSERT_EQ(r.status, 201) << r.body;
  json info = json::parse(r.body);
  EXPECT_EQ(info["model"], true);
  EXPECT_EQ(info["dense_dim"], db_->GetModelInfo()->dim);
  EXPECT_EQ(info["colbert_dim"], db_->GetModelInfo()->colbert_dim);
  r = Call("PUT", "/collections/wrong", json{{"model", true}, {"dense_dim", 1024}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("does not match the model's hidden size"), std::string::npos) << r.body;

  json docs = json::array();
  for (size_t i = 0; i < kTexts.size(); ++i)
    docs.push_back({{"id", "d" + std::to_string(i)}, {"text", kTexts[i]}, {"metadata", {{"n", i}}}});
  r = Call("POST", "/collections/docs/documents", json{{"documents", docs}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["written"], kTexts.size());

  r = Call("GET", "/collections/docs/documents/d1");
  ASSERT_EQ(r.status, 200) << r.body;
  const json d1 = json::parse(r.body);
  EXPECT_EQ(d1["dense"].size(), db_->GetModelInfo()->dim);
  EXPECT_FALSE(d1["sparse"]["indices"].empty());
  EXPECT_FALSE(d1["colbert"].empty());

  for (size_t i = 0; i < kTexts.size(); ++i) {
    // Dense and ColBERT self-scores are maximal (normalized vectors); the fixture's random sparse
    // weights are not, so sparse is computed but not weighted.
    r = Call("POST", "/collections/docs/search",
             json{{"text", kTexts[i]}, {"top_k", 2}, {"include", {"text", "scores"}},
                  {"weights", {{"dense", 1}, {"sparse", 0}, {"colbert", 1}}}});
    ASSERT_EQ(r.status, 200) << r.body;
    const json results = json::parse(r.body)["results"];
    ASSERT_FALSE(results.empty());
    EXPECT_EQ(results[0]["id"], "d" + std::to_string(i));
    EXPECT_EQ(results[0]["text"], kTexts[i]);
    EXPECT_TRUE(results[0]["scores"].contains("sparse") && results[0]["scores"].contains("colbert"));
  }
  r = Call("GET", "/collections/docs");
  EXPECT_EQ(json::parse(r.body)["model"], true);
}

// The same through sockets: the real server, a model collection, text in and text queries.
TEST(TextServerTest, TextIngestAndSearchOverHttp) {
  test::TempDir dir;
  auto db = OpenWithModel(dir);
  ASSERT_NE(db, nullptr);
  ServerOptions options;
  options.port = 0;
  options.compute_threads = 2;
  auto server = Server::Start(*db, options);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto client = HttpClient::Connect("127.0.0.1", (*server)->port(), 10s);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto send = [&](const std::string& method, const std::string& target, const json& body) {
    auto reply = (*client)->Send(method, target, body.dump());
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() ? std::move(*reply) : HttpReply{};
  };
  HttpReply r = send("PUT", "/collections/t", json{{"model", true}, {"sparse", true}});
  ASSERT_EQ(r.status, 201) << r.body;
  json docs = json::array();
  for (size_t i = 0; i < kTexts.size(); ++i) docs.push_back({{"id", "d" + std::to_string(i)}, {"text", kTexts[i]}});
  r = send("POST", "/collections/t/documents", json{{"documents", docs}});
  ASSERT_EQ(r.status, 200) << r.body;
  r = send("POST", "/collections/t/search",
           json{{"text", kTexts[2]}, {"top_k", 1}, {"weights", {{"dense", 1}, {"sparse", 0}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["results"][0]["id"], "d2");
  r = send("POST", "/embed", json{{"texts", {kTexts[0]}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["embeddings"][0]["dense"].size(), db->GetModelInfo()->dim);
}

}  // namespace
}  // namespace m3vdb::net
