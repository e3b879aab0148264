// The HTTP API without sockets: every route and every error case through Service::Handle, on
// a real database in a temporary directory.
#include "net/service.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace m3vdb::net
