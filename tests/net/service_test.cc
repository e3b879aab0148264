// The HTTP API without sockets: every route and every error case through Service::Handle, on
// a real database in a temporary directory.
#include "net/service.h"

#include <gtest/gtest.h>

#include <future>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "net/client.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb::net {
namespace {

using nlohmann::json;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Open({}); }

  void Open(std::vector<std::string> api_keys) {
    service_.reset();
    db_.reset();
    Options options;
    options.sync = false;
    auto db = Database::Open(options, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    service_ = std::make_unique<Service>(*db_, ServiceOptions{std::move(api_keys)});
  }

  Response Call(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& content_type = "application/json", const std::string& authorization = "") {
    return service_->Handle(Request{method, target, body.empty() ? "" : content_type, authorization, body});
  }
  Response Call(const std::string& method, const std::string& target, const json& body) {
    return Call(method, target, body.dump());
  }

  // Expects `response` to be the JSON error `code` with HTTP `status` and a message containing `needle`.
  static void ExpectError(const Response& response, int status, const std::string& code, const std::string& needle = "") {
    EXPECT_EQ(response.status, status) << response.body;
    const json body = json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.contains("error")) << response.body;
    EXPECT_EQ(body["error"]["code"], code) << response.body;
    EXPECT_NE(body["error"]["message"].get<std::string>().find(needle), std::string::npos)
        << "message lacks '" << needle << "': " << response.body;
  }

  void CreateCollection(const std::string& name, const json& spec) {
    const Response r = Call("PUT", "/collections/" + name, spec);
    ASSERT_EQ(r.status, 201) << r.body;
  }

  test::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Service> service_;
};

json Parse(const Response& r) { return json::parse(r.body); }

TEST_F(ServiceTest, HealthzUnknownRouteAndWrongMethod) {
  Response r = Call("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Parse(r)["status"], "ok");
  ExpectError(Call("GET", "/nope"), 404, "not_found", "/nope");
  ExpectError(Call("GET", "/collections/a/b/c/d"), 404, "not_found");
  r = Call("PATCH", "/collections/x");
  ExpectError(r, 405, "method_not_allowed");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(r.headers[0].second, "PUT, GET, DELETE");
  ExpectError(Call("GET", "/collections/a/search"), 405, "method_not_allowed", "POST");
  ExpectError(Call("GET", "/collections/a%zz"), 400, "invalid_argument", "percent");
}

TEST_F(ServiceTest, CollectionLifecycle) {
  Response r = Call("PUT", "/collections/docs", json{{"dense_dim", 4}, {"metric", "l2"}, {"sparse", true}});
  ASSERT_EQ(r.status, 201) << r.body;
  json body = Parse(r);
  EXPECT_EQ(body["name"], "docs");
  EXPECT_EQ(body["dense_dim"], 4);
  EXPECT_EQ(body["metric"], "l2");
  EXPECT_EQ(body["sparse"], true);
  EXPECT_EQ(body["colbert"], false);
  EXPECT_EQ(body["count"], 0);
  ExpectError(Call("PUT", "/collections/docs", json{{"dense_dim", 4}}), 409, "already_exists", "docs");

  CreateCollection("other", {{"dense_dim", 2}, {"colbert", true}, {"colbert_dim", 3}});
  r = Call("GET", "/collections/other");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Parse(r)["colbert_dim"], 3);
  EXPECT_EQ(Parse(r)["metric"], "ip");
  r = Call("GET", "/collections");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Parse(r)["collections"].size(), 2u);

  r = Call("DELETE", "/collections/docs");
  EXPECT_EQ(r.status, 200) << r.body;
  ExpectError(Call("GET", "/collections/docs"), 404, "not_found", "docs");
  ExpectError(Call("DELETE", "/collections/docs"), 404, "not_found");
  EXPECT_EQ(Parse(Call("GET", "/collections"))["collections"].size(), 1u);
}

// Index settings go in with PUT; GET reports them with the index state, flat until trained.
TEST_F(ServiceTest, IndexSettingsAndState) {
  Response r = Call("PUT", "/collections/c",
                    json{{"dense_dim", 8},
                         {"metric", "l2"},
                         {"index", {{"nlist", 4}, {"m", 2}, {"distill", false}, {"nprobe", 2}, {"epochs", 1}}}});
  ASSERT_EQ(r.status, 201) << r.body;
  json index = Parse(r)["index"];
  EXPECT_EQ(index["nlist"], 4);
  EXPECT_EQ(index["m"], 2);
  EXPECT_EQ(index["distill"], false);
  EXPECT_EQ(index["opq"], false);
  EXPECT_EQ(index["nprobe"], 2);
  EXPECT_EQ(index["train_threshold"], 0);
  EXPECT_EQ(index["kind"], "flat");
  EXPECT_EQ(index["generation"], 0);
  EXPECT_EQ(index["bytes_per_vector"], 32);
  EXPECT_EQ(index["training"], false);

  json docs = json::array();
  for (int i = 0; i < 400; ++i) {
    std::vector<float> v(8);
    for (int d = 0; d < 8; ++d) v[d] = float((i * 7 + d * 13) % 17) - float(i % 5);
    docs.push_back({{"id", std::to_string(i)}, {"dense", v}});
  }
  ASSERT_EQ(Call("POST", "/collections/c/documents", json{{"documents", docs}}).status, 200);
  auto collection = db_->GetCollection("c");
  ASSERT_TRUE(collection.ok());
  auto trained = (*collection)->Train(TrainOptions{});
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  index = Parse(Call("GET", "/collections/c"))["index"];
  EXPECT_EQ(index["kind"], "ivfpq");
  EXPECT_EQ(index["generation"], trained->generation);
  EXPECT_EQ(index["bytes_per_vector"], 2);
  EXPECT_EQ(Parse(Call("GET", "/collections"))["collections"][0]["index"]["kind"], "ivfpq");
  r = Call("POST", "/collections/c/search", json{{"dense", docs[5]["dense"]}, {"nprobe", 4}, {"top_k", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r)["results"][0]["id"], "5");

  ExpectError(Call("PUT", "/collections/d", json{{"dense_dim", 8}, {"index", {{"nlist", "4"}}}}), 400,
              "invalid_argument", "index.nlist must be an integer");
  ExpectError(Call("PUT", "/collections/d", json{{"dense_dim", 8}, {"index", {{"lists", 4}}}}), 400,
              "invalid_argument", "index: unknown field 'lists'");
  ExpectError(Call("PUT", "/collections/d", json{{"dense_dim", 8}, {"index", {{"opq", "yes"}}}}), 400,
              "invalid_argument", "index.opq must be true or false");
}

TEST_F(ServiceTest, PutCollectionRejectsBadBodies) {
  ExpectError(Call("PUT", "/collections/c", std::string("{\"dense_dim\": 4")), 400, "invalid_argument", "not valid JSON");
  ExpectError(Call("PUT", "/collections/c", std::string("[1, 2]")), 400, "invalid_argument", "JSON object");
  ExpectError(Call("PUT", "/collections/c", json{{"metric", "ip"}}), 400, "invalid_argument", "dense_dim is required");
  ExpectError(Call("PUT", "/collections/c", json{{"dense_dim", "8"}}), 400, "invalid_argument", "dense_dim must be an integer");
  ExpectError(Call("PUT", "/collections/c", json{{"dense_dim", 0}}), 400, "invalid_argument", "dense_dim");
  ExpectError(Call("PUT", "/collections/c", json{{"dense_dim", 4}, {"metric", "cos"}}), 400, "invalid_argument", "cos");
  ExpectError(Call("PUT", "/collections/c", json{{"dense_dim", 4}, {"sparse", 1}}), 400, "invalid_argument",
              "sparse must be true or false");
  ExpectError(Call("PUT", "/collections/c", json{{"dense_dim", 4}, {"dims", 4}}), 400, "invalid_argument",
              "unknown field 'dims'");
  ExpectError(Call("PUT", "/collections/a%20b", json{{"dense_dim", 4}}), 400, "invalid_argument", "collection name");
  ExpectError(Call("PUT", "/collections/c", json{{"dense_dim", 1 << 30}}), 413, "resource_exhausted", "dense_dim");
  ExpectError(Call("PUT", "/collections/c", json{{"dense_dim", 4}, {"model", true}}), 422, "failed_precondition",
              "collection 'c' asks for a model, but the database was opened without one");
  EXPECT_TRUE(Parse(Call("GET", "/collections"))["collections"].empty());
}

TEST_F(ServiceTest, DocumentsRoundTripInEveryEncoding) {
  CreateCollection("c", {{"dense_dim", 3}, {"sparse", true}, {"colbert", true}, {"colbert_dim", 2}});
  const std::vector<float> b_dense = {0.25f, -1.5f, 3.0f};
  json batch = {{"documents",
                 {{{"id", "a"},
                   {"dense", {0.1, 0.2, 0.3}},
                   {"text", "first"},
                   {"metadata", {{"lang", "en"}, {"n", 7}}},
                   {"sparse", {{"indices", {3, 17}}, {"values", {0.5, 0.25}}}},
                   {"colbert", {{1.0, 0.0}, {0.5, 0.5}}}},
                  {{"id", "b/slash and space"}, {"dense_b64", EncodeDenseBase64(b_dense)}}}}};
  Response r = Call("POST", "/collections/c/documents", batch);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r)["written"], 2);

  r = Call("GET", "/collections/c/documents/a");
  ASSERT_EQ(r.status, 200) << r.body;
  json a = Parse(r);
  EXPECT_EQ(a["id"], "a");
  EXPECT_EQ(a["text"], "first");
  EXPECT_EQ(a["metadata"], json({{"lang", "en"}, {"n", 7}}));
  EXPECT_EQ(a["dense"], json({0.1, 0.2, 0.3}));  // floats are written in their shortest form
  EXPECT_EQ(a["sparse"]["indices"], json({3, 17}));
  EXPECT_EQ(a["sparse"]["values"], json({0.5, 0.25}));
  EXPECT_EQ(a["colbert"], json({{1.0, 0.0}, {0.5, 0.5}}));

  r = Call("GET", "/collections/c/documents/b%2Fslash%20and%20space");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r)["dense"], json({0.25, -1.5, 3.0}));
  EXPECT_FALSE(Parse(r).contains("metadata"));
  EXPECT_EQ(Parse(Call("GET", "/collections/c"))["count"], 2);

  // Upsert replaces.
  r = Call("POST", "/collections/c/documents", json{{"documents", {{{"id", "a"}, {"dense", {1, 1, 1}}}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  a = Parse(Call("GET", "/collections/c/documents/a"));
  EXPECT_EQ(a["dense"], json({1.0, 1.0, 1.0}));
  EXPECT_FALSE(a.contains("sparse"));

  r = Call("DELETE", "/collections/c/documents/a");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r)["deleted"], 1);
  ExpectError(Call("DELETE", "/collections/c/documents/a"), 404, "not_found", "'a'");
  ExpectError(Call("GET", "/collections/c/documents/a"), 404, "not_found");
  EXPECT_EQ(Parse(Call("GET", "/collections/c"))["count"], 1);
}

TEST_F(ServiceTest, RejectedBatchLeavesTheCollectionUnchanged) {
  CreateCollection("c", {{"dense_dim", 2}});
  ASSERT_EQ(Call("POST", "/collections/c/documents", json{{"documents", {{{"id", "a"}, {"dense", {1, 2}}}}}}).status, 200);
  // "a" would be replaced and "b" added, but the third document has the wrong dimension.
  json batch = {{"documents",
                 {{{"id", "a"}, {"dense", {9, 9}}}, {{"id", "b"}, {"dense", {3, 4}}}, {{"id", "c"}, {"dense", {5}}}}}};
  ExpectError(Call("POST", "/collections/c/documents", batch), 400, "invalid_argument",
              "dense has 1 values, collection expects 2");
  EXPECT_EQ(Parse(Call("GET", "/collections/c"))["count"], 1);
  EXPECT_EQ(Parse(Call("GET", "/collections/c/documents/a"))["dense"], json({1.0, 2.0}));
  ExpectError(Call("GET", "/collections/c/documents/b"), 404, "not_found");
  // A decoding error in the last document also writes nothing.
  batch["documents"][2] = {{"id", "c"}, {"dense", {5, "six"}}};
  ExpectError(Call("POST", "/collections/c/documents", batch), 400, "invalid_argument", "documents[2].dense[1]");
  EXPECT_EQ(Parse(Call("GET", "/collections/c"))["count"], 1);
}

TEST_F(ServiceTest, DocumentErrorsNameTheField) {
  CreateCollection("c", {{"dense_dim", 2}});
  const std::string target = "/collections/c/documents";
  auto post_one = [&](const json& doc) { return Call("POST", target, json{{"documents", {doc}}}); };
  ExpectError(Call("POST", "/collections/missing/documents", json{{"documents", json::array()}}), 404, "not_found",
              "missing");
  ExpectError(Call("POST", target, std::string("{\"documents\": [")), 400, "invalid_argument", "not valid JSON");
  ExpectError(Call("POST", target, json{{"docs", json::array()}}), 400, "invalid_argument", "unknown field 'docs'");
  ExpectError(Call("POST", target, json{{"documents", json::array({"a"})}}), 400, "invalid_argument",
              "documents[0] must be an object");
  ExpectError(Call("POST", target, json{{"documents", 5}}), 400, "invalid_argument", "documents must be an array");
  ExpectError(post_one({{"id", 7}, {"dense", {1, 2}}}), 400, "invalid_argument", "documents[0].id must be a string");
  ExpectError(post_one({{"dense", {1, 2}}}), 400, "invalid_argument", "documents[0] has no \"id\"");
  ExpectError(post_one({{"id", "a"}, {"dense", "1,2"}}), 400, "invalid_argument", "documents[0].dense must be an array");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, true}}}), 400, "invalid_argument", "documents[0].dense[1]");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, 2}}, {"dense_b64", "AAAA"}}), 400, "invalid_argument", "both");
  ExpectError(post_one({{"id", "a"}, {"dense_b64", "AAA*AAAA"}}), 400, "invalid_argument", "dense_b64");
  ExpectError(post_one({{"id", "a"}, {"dense_b64", "AAAA"}}), 400, "invalid_argument", "multiple of 4");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, 2}}, {"metadata", "x"}}), 400, "invalid_argument",
              "metadata must be an object");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, 2}}, {"vector", {1, 2}}}), 400, "invalid_argument",
              "unknown field 'vector'");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, 2}}, {"sparse", {{"indices", {1}}, {"values", {1}}}}}), 400,
              "invalid_argument", "does not store sparse");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, 2}}, {"sparse", {{"indices", {1}}}}}), 400, "invalid_argument",
              "both \"indices\" and \"values\"");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, 2}}, {"sparse", {{"indices", {-1}}, {"values", {1}}}}}), 400,
              "invalid_argument", "sparse.indices[0]");
  ExpectError(post_one({{"id", "a"}, {"dense", {1, 2}}, {"colbert", {{1, 2}, {3}}}}), 400, "invalid_argument",
              "colbert[1] has 1 values but row 0 has 2");
  ExpectError(post_one({{"id", "a"}, {"dense", {1e39, 2}}}), 400, "invalid_argument", "non-finite");
  ExpectError(post_one({{"id", "a"}, {"text", "embed me"}}), 400, "invalid_argument",
              "document 0 (id 'a') has text but no dense vector, and the collection does not embed text");
  ExpectError(post_one({{"id", std::string(600, 'x')}, {"dense", {1, 2}}}), 413, "resource_exhausted", "id");
  std::string deep = "{\"documents\":[{\"id\":\"a\",\"dense\":[1,2],\"metadata\":" + std::string(100, '[') +
                     std::string(100, ']') + "}]}";
  ExpectError(Call("POST", target, deep), 400, "invalid_argument", "deeper than 64");
  EXPECT_EQ(Parse(Call("GET", "/collections/c"))["count"], 0);
  ExpectError(Call("GET", "/collections/missing/documents/a"), 404, "not_found", "missing");
  ExpectError(Call("DELETE", "/collections/missing/documents/a"), 404, "not_found", "missing");
}

TEST_F(ServiceTest, SearchEveryModeAndOption) {
  CreateCollection("c", {{"dense_dim", 2}, {"sparse", true}, {"colbert", true}});
  json docs = {{"documents",
                {{{"id", "x"}, {"dense", {1, 0}}, {"text", "ex"}, {"metadata", {{"k", 1}}},
                  {"sparse", {{"indices", {1}}, {"values", {1.0}}}}, {"colbert", {{1, 0}}}},
                 {{"id", "y"}, {"dense", {0, 1}}, {"sparse", {{"indices", {2}}, {"values", {2.0}}}},
                  {"colbert", {{0, 1}}}}}}};
  ASSERT_EQ(Call("POST", "/collections/c/documents", docs).status, 200);
  const std::string target = "/collections/c/search";

  Response r = Call("POST", target, json{{"dense", {0.9, 0.1}}, {"top_k", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  json body = Parse(r);
  ASSERT_EQ(body["results"].size(), 2u);
  EXPECT_EQ(body["results"][0]["id"], "x");
  EXPECT_FLOAT_EQ(body["results"][0]["score"].get<float>(), 0.9f);
  EXPECT_FLOAT_EQ(body["results"][0]["scores"]["dense"].get<float>(), 0.9f);
  EXPECT_EQ(body["results"][0]["metadata"], json({{"k", 1}}));  // default include: metadata, scores
  EXPECT_FALSE(body["results"][0].contains("text"));
  EXPECT_TRUE(body["took_ms"].is_number());

  r = Call("POST", target, json{{"dense_b64", EncodeDenseBase64(std::vector<float>{0, 1})}, {"top_k", 1},
                               {"include", {"text"}}});
  body = Parse(r);
  ASSERT_EQ(body["results"].size(), 1u) << r.body;
  EXPECT_EQ(body["results"][0]["id"], "y");
  EXPECT_EQ(body["results"][0]["text"], "");
  EXPECT_FALSE(body["results"][0].contains("scores"));
  EXPECT_FALSE(body["results"][0].contains("metadata"));

  r = Call("POST", target, json{{"sparse", {{"indices", {2}}, {"values", {1.0}}}}, {"include", json::array()}});
  body = Parse(r);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body["results"][0]["id"], "y");
  EXPECT_EQ(body["results"][0].size(), 2u);  // id and score only

  r = Call("POST", target, json{{"colbert", {{1, 0}}}, {"include", {"scores"}}});
  body = Parse(r);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body["results"][0]["id"], "x");
  EXPECT_TRUE(body["results"][0]["scores"].contains("colbert"));

  // Weights move the ranking: sparse heavily weighted puts "y" first for a dense query near "x".
  json hybrid = {{"dense", {0.9, 0.1}}, {"sparse", {{"indices", {2}}, {"values", {1.0}}}},
                 {"weights", {{"dense", 1.0}, {"sparse", 10.0}}}, {"fusion", "weighted"}, {"rerank_k", 10},
                 {"nprobe", 4}};
  body = Parse(Call("POST", target, hybrid));
  EXPECT_EQ(body["results"][0]["id"], "y") << body;
  hybrid["fusion"] = "rrf";
  r = Call("POST", target, hybrid);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ServiceTest, SearchErrors) {
  CreateCollection("c", {{"dense_dim", 2}});
  const std::string target = "/collections/c/search";
  ExpectError(Call("POST", "/collections/none/search", json{{"dense", {1, 0}}}), 404, "not_found", "none");
  ExpectError(Call("POST", target, std::string("{")), 400, "invalid_argument", "not valid JSON");
  ExpectError(Call("POST", target, json::object()), 400, "invalid_argument", "no dense, sparse or colbert");
  ExpectError(Call("POST", target, json{{"dense", {1, 0, 0}}}), 400, "invalid_argument", "collection expects 2");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"top_k", 0}}), 400, "invalid_argument", "top_k");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"top_k", "5"}}), 400, "invalid_argument",
              "top_k must be an integer");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"top_k", 1.5}}), 400, "invalid_argument", "top_k");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"top_k", 20000}}), 413, "resource_exhausted", "top_k");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"fusion", "max"}}), 400, "invalid_argument", "fusion");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"weights", {{"dense", "1"}}}}), 400, "invalid_argument",
              "weights.dense");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"weights", {{"lexical", 1}}}}), 400, "invalid_argument",
              "unknown field 'lexical'");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"include", {"vectors"}}}), 400, "invalid_argument",
              "include[0]");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"nprobe", -1}}), 400, "invalid_argument", "nprobe");
  ExpectError(Call("POST", target, json{{"dense", {1, 0}}, {"k", 5}}), 400, "invalid_argument", "unknown field 'k'");
  ExpectError(Call("POST", target, json{{"text", "what is m3"}}), 400, "invalid_argument",
              "query has text, but the collection does not embed text");
  ExpectError(Call("POST", "/embed", json{{"texts", {"what is m3"}}}), 400, "no_model",
              "no embedding model is configured; start the server with --model DIR");
}

TEST_F(ServiceTest, ContentTypeMustBeJson) {
  CreateCollection("c", {{"dense_dim", 2}});
  const std::string body = json{{"dense", {1, 0}}}.dump();
  ExpectError(Call("POST", "/collections/c/search", body, "text/plain"), 415, "unsupported_media_type", "text/plain");
  ExpectError(Call("POST", "/collections/c/search", body, ""), 415, "unsupported_media_type");
  ExpectError(Call("PUT", "/collections/d", body, "application/x-www-form-urlencoded"), 415, "unsupported_media_type");
  EXPECT_EQ(Call("POST", "/collections/c/search", body, "Application/JSON; charset=utf-8").status, 200);
}

TEST_F(ServiceTest, ApiKeysGuardEveryRouteButHealthz) {
  Open({"key-one", "key-two"});
  Response r = Call("GET", "/collections");
  ExpectError(r, 401, "unauthenticated", "Bearer");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"WWW-Authenticate", "Bearer"}));
  ExpectError(Call("GET", "/collections", "", "", "Bearer key-three"), 401, "unauthenticated");
  ExpectError(Call("GET", "/collections", "", "", "Bearer key-one-"), 401, "unauthenticated");
  ExpectError(Call("GET", "/collections", "", "", "Basic key-one"), 401, "unauthenticated");
  ExpectError(Call("GET", "/metrics"), 401, "unauthenticated");
  ExpectError(Call("GET", "/nope"), 401, "unauthenticated");  // no route discovery without a key
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  EXPECT_EQ(Call("GET", "/collections", "", "", "Bearer key-two").status, 200);
  EXPECT_EQ(Call("GET", "/metrics", "", "", "bearer key-one").status, 200);
}

TEST_F(ServiceTest, MetricsCountRequestsAndDocuments) {
  CreateCollection("c", {{"dense_dim", 2}});
  ASSERT_EQ(Call("POST", "/collections/c/documents", json{{"documents", {{{"id", "a"}, {"dense", {1, 2}}}}}}).status, 200);
  Request search{"POST", "/collections/c/search?debug=1", "application/json", "", "{}"};
  service_->RecordExchange(search, 200, 0.003);
  service_->RecordExchange(search, 200, 0.2);
  service_->RecordExchange({"GET", "/whatever", "", "", ""}, 404, 0.0001);
  Response r = Call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4");
  std::string text = r.body;
  EXPECT_NE(text.find("m3vdb_http_requests_total{route=\"/collections/{name}/search\",method=\"POST\",status=\"200\"} 2"),
            std::string::npos) << text;
  EXPECT_NE(text.find("m3vdb_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"), std::string::npos);
  EXPECT_NE(text.find("m3vdb_http_request_duration_seconds_bucket{route=\"/collections/{name}/search\",le=\"0.005\"} 1"),
            std::string::npos) << text;
  EXPECT_NE(text.find("m3vdb_http_request_duration_seconds_bucket{route=\"/collections/{name}/search\",le=\"+Inf\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("m3vdb_http_request_duration_seconds_count{route=\"/collections/{name}/search\"} 2"), std::string::npos);
  EXPECT_NE(text.find("m3vdb_collection_documents{collection=\"c\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("m3vdb_collections 1"), std::string::npos);
  ASSERT_EQ(Call("POST", "/collections/c/search", json{{"dense", {1, 2}}}).status, 200);
  text = Call("GET", "/metrics").body;
  EXPECT_NE(text.find("m3vdb_dense_searches_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("m3vdb_dense_search_engine_calls_total 1"), std::string::npos);
}

// Training as an asynchronous job: a collection of clustered vectors, trained through the API.
class TrainServiceTest : public ServiceTest {
 protected:
  // `n` documents of dimension `dim`: points around 16 centres, id "d<i>".
  void Fill(const std::string& name, size_t n, uint32_t dim, const json& index) {
    CreateCollection(name, {{"dense_dim", dim}, {"metric", "l2"}, {"index", index}});
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> uniform(-1, 1);
    std::vector<float> centres(16 * dim);
    for (float& c : centres) c = 5 * uniform(rng);
    for (size_t begin = 0; begin < n; begin += 1000) {
      json docs = json::array();
      for (size_t i = begin; i < std::min(n, begin + 1000); ++i) {
        std::vector<float> v(dim);
        for (uint32_t j = 0; j < dim; ++j) v[j] = centres[(i % 16) * dim + j] + uniform(rng);
        vectors_[name + "/d" + std::to_string(i)] = v;
        docs.push_back({{"id", "d" + std::to_string(i)}, {"dense", v}});
      }
      const Response r = Call("POST", "/collections/" + name + "/documents", json{{"documents", docs}});
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }

  // Polls GET /jobs/{id} until the job has finished; its last view.
  json WaitForJob(const std::string& id) {
    json job;
    for (int i = 0; i < 2400; ++i) {  // up to two minutes on a loaded machine
      const Response r = Call("GET", "/jobs/" + id);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) return job;
      job = Parse(r);
      if (job["state"] == "succeeded" || job["state"] == "failed") return job;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "job " << id << " did not finish: " << job.dump();
    return job;
  }

  std::map<std::string, std::vector<float>> vectors_;
};

TEST_F(TrainServiceTest, TrainJobEndToEnd) {
  Fill("c", 600, 8, {{"nlist", 4}, {"m", 2}, {"epochs", 1}, {"nprobe", 4}});
  Response r = Call("POST", "/collections/c/train", json{{"seed", 7}});
  ASSERT_EQ(r.status, 202) << r.body;
  json job = Parse(r);
  const std::string id = job["id"];
  EXPECT_EQ(job["collection"], "c");
  EXPECT_TRUE(job["state"] == "queued" || job["state"] == "running") << job.dump();
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], std::make_pair(std::string("Location"), "/jobs/" + id));

  job = WaitForJob(id);
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["fraction"], 1.0);
  EXPECT_EQ(job["phase"], "encode");
  EXPECT_TRUE(job["eta_seconds"].is_null());
  EXPECT_FALSE(job.contains("error"));
  const json& report = job["report"];
  EXPECT_EQ(report["generation"], 1);
  EXPECT_EQ(report["documents"], 600);
  EXPECT_GE(report["total_seconds"].get<double>(), report["kmeans_seconds"].get<double>());
  EXPECT_GT(report["first_loss"].get<double>(), 0.0);
  EXPECT_EQ(report["resumed_kmeans"], false);  // no checkpoint of an earlier run
  EXPECT_EQ(report["resumed_epochs"], 0);
  ASSERT_TRUE(report["validation_recall"].is_array());  // best-epoch selection: 60 of 600 held out
  const auto& recall = report["validation_recall"];
  ASSERT_GE(recall.size(), 2u);
  const int best = report["best_epoch"].get<int>();
  ASSERT_GE(best, 0);
  ASSERT_LT(static_cast<size_t>(best), recall.size());
  for (const auto& r : recall) EXPECT_LE(r.get<double>(), recall[static_cast<size_t>(best)].get<double>());

  r = Call("GET", "/collections/c");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Parse(r)["index"]["kind"], "ivfpq");
  EXPECT_EQ(Parse(r)["index"]["generation"], 1);
  EXPECT_EQ(Parse(r)["index"]["training"], false);

  // Search still works, on the learned index: a stored vector finds itself (exact rerank).
  for (const char* doc : {"d0", "d17", "d599"}) {
    r = Call("POST", "/collections/c/search", json{{"dense", vectors_[std::string("c/") + doc]}, {"top_k", 3}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Parse(r)["results"][0]["id"], doc) << r.body;
    EXPECT_NEAR(Parse(r)["results"][0]["scores"]["dense"].get<double>(), 0.0, 1e-3);
  }

  const std::string metrics = Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("m3vdb_collection_index_generation{collection=\"c\",kind=\"ivfpq\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("m3vdb_collection_documents{collection=\"c\"} 600"), std::string::npos);
  EXPECT_NE(metrics.find("m3vdb_collection_training{collection=\"c\"} 0"), std::string::npos);
  EXPECT_NE(metrics.find("m3vdb_train_jobs{state=\"succeeded\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("m3vdb_train_jobs{state=\"running\"} 0"), std::string::npos);

  // Retraining (queries given as base64 this time) makes generation 2.
  std::vector<float> queries;
  for (const char* doc : {"d1", "d2", "d3"})
    queries.insert(queries.end(), vectors_[std::string("c/") + doc].begin(), vectors_[std::string("c/") + doc].end());
  r = Call("POST", "/collections/c/train", json{{"queries_b64", EncodeDenseBase64(queries)}});
  ASSERT_EQ(r.status, 202) << r.body;
  job = WaitForJob(Parse(r)["id"]);
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["report"]["generation"], 2);
  EXPECT_NE(Parse(r)["id"], id);
}

TEST_F(TrainServiceTest, OneJobPerCollectionAtATime) {
  // Long enough (many Distill-VQ epochs) that the second request comes while the first runs.
  Fill("c", 2000, 16, {{"nlist", 16}, {"m", 4}, {"epochs", 400}});
  Fill("other", 300, 4, {{"nlist", 2}, {"m", 1}, {"epochs", 1}});
  Response first = Call("POST", "/collections/c/train");  // no body: every default
  ASSERT_EQ(first.status, 202) << first.body;
  ExpectError(Call("POST", "/collections/c/train"), 409, "already_exists", "job " + Parse(first)["id"].get<std::string>());
  // Another collection trains meanwhile.
  Response other = Call("POST", "/collections/other/train");
  ASSERT_EQ(other.status, 202) << other.body;
  EXPECT_EQ(WaitForJob(Parse(other)["id"])["state"], "succeeded");

  // Shutting the service down cancels the running job: the database then closes cleanly and
  // the collection still has its exact index, searchable after reopening.
  json job;
  for (int i = 0; i < 2400; ++i) {  // k-means first: up to two minutes on a loaded machine
    job = Parse(Call("GET", "/jobs/" + Parse(first)["id"].get<std::string>()));
    if (job["phase"] == "distill" || job["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(job["state"], "running") << job.dump();
  ASSERT_EQ(job["phase"], "distill") << job.dump();
  EXPECT_GE(job["fraction"].get<double>(), 0.0);
  EXPECT_GT(job["elapsed_seconds"].get<double>(), 0.0);
  const std::string metrics = Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("m3vdb_collection_training{collection=\"c\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("m3vdb_train_jobs{state=\"running\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("m3vdb_train_jobs{state=\"succeeded\"} 1"), std::string::npos) << metrics;
  service_.reset();
  db_.reset();
  Open({});
  Response r = Call("GET", "/collections/c");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Parse(r)["index"]["kind"], "flat");
  EXPECT_EQ(Parse(r)["index"]["training"], false);
  EXPECT_EQ(Parse(Call("GET", "/collections/other"))["index"]["kind"], "ivfpq");
  r = Call("POST", "/collections/c/search", json{{"dense", vectors_["c/d5"]}, {"top_k", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Parse(r)["results"][0]["id"], "d5");
  ExpectError(Call("GET", "/jobs/" + Parse(first)["id"].get<std::string>()), 404, "not_found");  // jobs live in memory
}

TEST_F(TrainServiceTest, AutomaticTrainingInProgressIs409) {
  Fill("c", 600, 8, {{"nlist", 4}, {"m", 2}, {"epochs", 1}});
  auto collection = db_->GetCollection("c");
  ASSERT_TRUE(collection.ok());
  // A training started through the library holds the collection until the test lets it go.
  std::promise<void> started, release;
  std::thread trainer([&] {
    TrainOptions options;
    bool first = true;
    options.progress = [&](std::string_view, double, double) {
      if (!first) return;
      first = false;
      started.set_value();
      release.get_future().wait();
    };
    EXPECT_TRUE((*collection)->Train(options).ok());
  });
  started.get_future().wait();
  ExpectError(Call("POST", "/collections/c/train"), 409, "already_exists", "already training");
  release.set_value();
  trainer.join();
  EXPECT_EQ(Parse(Call("GET", "/collections/c"))["index"]["generation"], 1);
}

TEST_F(TrainServiceTest, TrainErrors) {
  Fill("c", 600, 8, {{"nlist", 4}, {"m", 2}, {"epochs", 1}});
  ExpectError(Call("POST", "/collections/nope/train"), 404, "not_found", "nope");
  ExpectError(Call("GET", "/jobs/12345"), 404, "not_found", "12345");
  ExpectError(Call("GET", "/jobs/not-a-number"), 404, "not_found");
  ExpectError(Call("GET", "/jobs/99999999999999999999999"), 404, "not_found");
  ExpectError(Call("POST", "/collections/c/train", std::string("{\"seed\":")), 400, "invalid_argument", "not valid JSON");
  ExpectError(Call("POST", "/collections/c/train", std::string("[]")), 400, "invalid_argument", "object");
  ExpectError(Call("POST", "/collections/c/train", json{{"epochs", 3}}), 400, "invalid_argument", "unknown field 'epochs'");
  ExpectError(Call("POST", "/collections/c/train", json{{"seed", -1}}), 400, "invalid_argument", "seed");
  ExpectError(Call("POST", "/collections/c/train", json{{"seed", "x"}}), 400, "invalid_argument", "seed must be an integer");
  ExpectError(Call("POST", "/collections/c/train", json{{"queries", {{1, 2, 3}}}}), 400, "invalid_argument",
              "collection expects dense_dim 8");
  ExpectError(Call("POST", "/collections/c/train", json{{"queries", {{1, 2, 3, 4, 5, 6, 7, 8}, {1}}}}), 400,
              "invalid_argument", "queries[1]");
  ExpectError(Call("POST", "/collections/c/train", json{{"queries", {{1, 2, 3, 4, 5, 6, 7, "x"}}}}), 400,
              "invalid_argument", "queries[0][7] must be a number");
  ExpectError(Call("POST", "/collections/c/train", json{{"queries_b64", "***"}}), 400, "invalid_argument", "queries_b64");
  ExpectError(Call("POST", "/collections/c/train", json{{"queries_b64", EncodeDenseBase64(std::vector<float>(12, 1))}}),
              400, "invalid_argument", "not a multiple of dense_dim 8");
  ExpectError(Call("POST", "/collections/c/train", json{{"queries", json::array()}, {"queries_b64", ""}}), 400,
              "invalid_argument", "both");
  ExpectError(Call("POST", "/collections/c/train", "{}", "text/plain"), 415, "unsupported_media_type");
  std::vector<float> nan_query(8, 0.5f);
  nan_query[3] = std::numeric_limits<float>::quiet_NaN();
  ExpectError(Call("POST", "/collections/c/train", json{{"queries_b64", EncodeDenseBase64(nan_query)}}), 400,
              "invalid_argument", "non-finite");
  ExpectError(Call("GET", "/collections/c/train"), 405, "method_not_allowed", "POST");
  EXPECT_EQ(Parse(Call("GET", "/collections/c"))["index"]["kind"], "flat");  // nothing started

  // A job whose training fails shows the engine's error.
  Fill("small", 40, 8, {{"nlist", 4}, {"m", 2}});
  Response r = Call("POST", "/collections/small/train");
  ASSERT_EQ(r.status, 202) << r.body;
  const json job = WaitForJob(Parse(r)["id"]);
  EXPECT_EQ(job["state"], "failed");
  EXPECT_EQ(job["error"]["code"], "failed_precondition") << job.dump();
  EXPECT_NE(job["error"]["message"].get<std::string>().find("40 documents"), std::string::npos) << job.dump();
  EXPECT_FALSE(job.contains("report"));
  EXPECT_NE(Call("GET", "/metrics").body.find("m3vdb_train_jobs{state=\"failed\"} 1"), std::string::npos);
}

TEST_F(TrainServiceTest, FinishedJobsAreKeptBoundedly) {
  service_ = std::make_unique<Service>(*db_, ServiceOptions{{}, 1, 64, /*max_finished_jobs=*/2});
  Fill("c", 40, 8, {{"nlist", 4}, {"m", 2}});  // too small: each job fails at once
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Response r = Call("POST", "/collections/c/train");
    ASSERT_EQ(r.status, 202) << r.body;
    ids.push_back(Parse(r)["id"]);
    EXPECT_EQ(WaitForJob(ids.back())["state"], "failed");
  }
  ExpectError(Call("GET", "/jobs/" + ids[0]), 404, "not_found");  // the oldest went
  EXPECT_EQ(Call("GET", "/jobs/" + ids[1]).status, 200);
  EXPECT_EQ(Call("GET", "/jobs/" + ids[2]).status, 200);

  service_ = std::make_unique<Service>(*db_, ServiceOptions{{}, 1, 64, 100, std::chrono::milliseconds(1)});
  Response r = Call("POST", "/collections/c/train");
  ASSERT_EQ(r.status, 202);
  const std::string id = Parse(r)["id"];
  for (int i = 0; i < 200 && Call("GET", "/jobs/" + id).status == 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ExpectError(Call("GET", "/jobs/" + id), 404, "not_found");  // past its retention
}

}  // namespace
}  // namespace m3vdb::net
