// The real server on a loopback port (port 0), spoken to over HTTP: every route, the errors only
// the socket side can produce (413, 400 for malformed HTTP, 503, timeouts), keep-alive,
// concurrent clients, and a graceful shutdown that answers the requests in flight.
#include "net/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "net/client.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb::net {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options options;
    options.sync = false;
    auto db = Database::Open(options, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }

  void StartServer(ServerOptions options = {}, ComputePool* pool = nullptr) {
    options.port = 0;
    options.compute_threads = 2;
    auto server = Server::Start(*db_, options, pool);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_NE(server_->port(), 0);
  }

  std::unique_ptr<HttpClient> Client() {
    auto client = HttpClient::Connect("127.0.0.1", server_->port(), 10s);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  static HttpReply Send(HttpClient& client, const std::string& method, const std::string& target,
                        const json& body = nullptr) {
    auto reply = client.Send(method, target, body.is_null() ? "" : body.dump());
    EXPECT_TRUE(reply.ok()) << method << " " << target << ": " << reply.status().ToString();
    return reply.ok() ? std::move(*reply) : HttpReply{};
  }

  static std::string ErrorCode(const HttpReply& reply) {
    const json body = json::parse(reply.body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"]["code"].get<std::string>() : "";
  }

  test::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<ComputePool> pool_;  // when a test controls the compute pool; outlives the server
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, EveryRouteOverHttp) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  EXPECT_EQ(Send(*client, "GET", "/healthz").status, 200);
  HttpReply r = Send(*client, "PUT", "/collections/c", {{"dense_dim", 2}, {"sparse", true}});
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_TRUE(r.keep_alive);
  r = Send(*client, "POST", "/collections/c/documents",
           {{"documents",
             {{{"id", "a"}, {"dense", {1, 0}}, {"metadata", {{"t", "x"}}}},
              {{"id", "b"}, {"dense_b64", EncodeDenseBase64(std::vector<float>{0, 1})},
               {"sparse", {{"indices", {4}}, {"values", {0.5}}}}}}}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["written"], 2);
  r = Send(*client, "GET", "/collections/c/documents/b");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["dense"], json({0.0, 1.0}));
  r = Send(*client, "POST", "/collections/c/search", {{"dense", {0.9, 0.1}}, {"top_k", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["results"][0]["id"], "a");
  EXPECT_EQ(json::parse(r.body)["results"][0]["metadata"]["t"], "x");
  EXPECT_EQ(json::parse(Send(*client, "GET", "/collections").body)["collections"][0]["count"], 2);
  EXPECT_EQ(json::parse(Send(*client, "GET", "/collections/c").body)["count"], 2);
  EXPECT_EQ(Send(*client, "DELETE", "/collections/c/documents/a").status, 200);
  r = Send(*client, "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_NE(r.body.find("m3vdb_collection_documents{collection=\"c\"} 1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("route=\"/collections/{name}/documents\",method=\"POST\",status=\"200\"} 1"), std::string::npos);
  EXPECT_EQ(Send(*client, "DELETE", "/collections/c").status, 200);
  r = Send(*client, "GET", "/collections/c");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "not_found");
}

TEST_F(ServerTest, ErrorsOverHttp) {
  ServerOptions options;
  options.max_body_bytes = 4096;
  StartServer(options);
  auto client = Client();
  ASSERT_TRUE(client);
  ASSERT_EQ(Send(*client, "PUT", "/collections/c", {{"dense_dim", 3}}).status, 201);

  auto r = client->Send("POST", "/collections/c/documents", "{\"documents\": [}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(ErrorCode(*r), "invalid_argument");
  r = client->Send("POST", "/collections/c/documents", json{{"documents", {{{"id", "a"}, {"dense", {1, 2}}}}}}.dump());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("dense has 2 values, collection expects 3"), std::string::npos) << r->body;
  r = client->Send("POST", "/collections/nope/search", json{{"dense", {1, 2, 3}}}.dump());
  EXPECT_EQ(r->status, 404);
  r = client->Send("POST", "/collections/c/search", json{{"dense", {1, 2, 3}}}.dump(), "text/plain");
  EXPECT_EQ(r->status, 415);
  EXPECT_EQ(ErrorCode(*r), "unsupported_media_type");
  r = client->Send("POST", "/collections/c/search", json{{"dense", {1, 2, "3"}}}.dump());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("dense[2] must be a number"), std::string::npos);
  EXPECT_TRUE(r->keep_alive);  // API errors keep the connection

  // Oversized body: refused from its Content-Length, the connection is closed afterwards.
  const std::string big = "{\"documents\":[{\"id\":\"" + std::string(8000, 'x') + "\"}]}";
  r = client->Send("POST", "/collections/c/documents", big);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(ErrorCode(*r), "resource_exhausted");
  EXPECT_FALSE(r->keep_alive);
  // Also when the body arrives in chunks with no length announced.
  r = client->SendRaw("POST /collections/c/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n1f40\r\n" + std::string(8000, ' ') + "\r\n0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(json::parse(Send(*client, "GET", "/collections/c").body)["count"], 0);

  r = client->SendRaw("THIS IS NOT HTTP\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(ErrorCode(*r), "invalid_argument");
  r = client->Send("BREW", "/collections");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 405);
}

TEST_F(ServerTest, ApiKeysOverHttp) {
  ServerOptions options;
  options.api_keys = {"s3cret"};
  StartServer(options);
  auto client = Client();
  ASSERT_TRUE(client);
  EXPECT_EQ(Send(*client, "GET", "/healthz").status, 200);
  HttpReply r = Send(*client, "GET", "/collections");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.Header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(ErrorCode(r), "unauthenticated");
  client->SetHeader("Authorization", "Bearer wrong");
  EXPECT_EQ(Send(*client, "GET", "/collections").status, 401);
  auto good = Client();
  good->SetHeader("Authorization", "Bearer s3cret");
  EXPECT_EQ(Send(*good, "GET", "/collections").status, 200);
  EXPECT_EQ(Send(*good, "PUT", "/collections/c", {{"dense_dim", 2}}).status, 201);
}

// A full compute queue answers 503 at once; /healthz still answers; work resumes afterwards.
TEST_F(ServerTest, OverloadAnswers503) {
  pool_ = std::make_unique<ComputePool>(1, 0);
  ComputePool& pool = *pool_;
  StartServer({}, &pool);
  auto client = Client();
  ASSERT_EQ(Send(*client, "PUT", "/collections/c", {{"dense_dim", 2}}).status, 201);
  auto started = std::make_shared<std::promise<void>>();
  std::promise<void> release;
  // The worker may still be finishing the previous request for a moment.
  auto blocker = [started, released = release.get_future().share()] {
    started->set_value();
    released.wait();
  };
  bool submitted = false;
  for (int i = 0; i < 2000 && !submitted; ++i) {
    submitted = pool.TrySubmit(blocker);
    if (!submitted) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(submitted);
  started->get_future().wait();
  HttpReply r = Send(*client, "POST", "/collections/c/search", {{"dense", {1, 0}}});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(ErrorCode(r), "unavailable");
  EXPECT_EQ(r.Header("Retry-After"), "1");
  EXPECT_EQ(Send(*client, "GET", "/healthz").status, 200);
  EXPECT_NE(Send(*client, "GET", "/metrics").body.find("status=\"503\"} 1"), std::string::npos);
  release.set_value();
  for (int i = 0; i < 100 && r.status == 503; ++i) {  // the worker frees up a moment after release
    std::this_thread::sleep_for(10ms);
    r = Send(*client, "POST", "/collections/c/search", {{"dense", {1, 0}}});
  }
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ServerTest, ConcurrentClientsIngestAndSearch) {
  ServerOptions options;
  options.io_threads = 2;
  StartServer(options);
  ASSERT_EQ(Send(*Client(), "PUT", "/collections/c", {{"dense_dim", 4}, {"metric", "l2"}}).status, 201);
  constexpr int kWriters = 4, kSearchers = 4, kBatches = 15, kBatchDocs = 10;
  auto vector_of = [](int w, int b, int i) {
    return std::vector<float>{float(w), float(b), float(i), float(w * 1000 + b * 10 + i)};
  };
  std::atomic<int> failures{0}, searches{0};
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      auto client = Client();
      for (int b = 0; b < kBatches; ++b) {
        json docs = json::array();
        for (int i = 0; i < kBatchDocs; ++i) {
          const std::string id = std::to_string(w) + "-" + std::to_string(b) + "-" + std::to_string(i);
          if (i % 2) docs.push_back({{"id", id}, {"dense", vector_of(w, b, i)}});
          else docs.push_back({{"id", id}, {"dense_b64", EncodeDenseBase64(vector_of(w, b, i))}});
        }
        auto r = client->Send("POST", "/collections/c/documents", json{{"documents", docs}}.dump());
        if (!r.ok() || r->status != 200) ++failures;
      }
    });
  }
  for (int s = 0; s < kSearchers; ++s) {
    threads.emplace_back([&, s] {
      auto client = Client();
      while (writing) {
        auto r = client->Send("POST", "/collections/c/search", json{{"dense", vector_of(s, 3, 1)}, {"top_k", 3}}.dump());
        if (!r.ok() || r->status != 200) ++failures;
        ++searches;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  writing = false;
  for (auto& t : threads)
    if (t.joinable()) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(searches, 0);
  auto client = Client();
  EXPECT_EQ(json::parse(Send(*client, "GET", "/collections/c").body)["count"], kWriters * kBatches * kBatchDocs);
  // Every document reads back exactly, and an exact query finds its own document first.
  for (int w = 0; w < kWriters; ++w) {
    const json doc = json::parse(Send(*client, "GET", "/collections/c/documents/" + std::to_string(w) + "-7-3").body);
    EXPECT_EQ(doc["dense"], json(vector_of(w, 7, 3)));
    const json hits = json::parse(Send(*client, "POST", "/collections/c/search", {{"dense", vector_of(w, 9, 4)}}).body);
    EXPECT_EQ(hits["results"][0]["id"], std::to_string(w) + "-9-4");
  }
}

// Shutdown answers the request already being handled (with Connection: close), refuses new
// connections, and Wait returns only after that.
TEST_F(ServerTest, GracefulShutdownFinishesInFlightRequests) {
  pool_ = std::make_unique<ComputePool>(1, 4);
  ComputePool& pool = *pool_;
  StartServer({}, &pool);
  const uint16_t port = server_->port();
  ASSERT_EQ(Send(*Client(), "PUT", "/collections/c", {{"dense_dim", 2}}).status, 201);
  auto started = std::make_shared<std::promise<void>>();
  std::promise<void> release;
  // The worker may still be finishing the previous request for a moment.
  auto blocker = [started, released = release.get_future().share()] {
    started->set_value();
    released.wait();
  };
  bool submitted = false;
  for (int i = 0; i < 2000 && !submitted; ++i) {
    submitted = pool.TrySubmit(blocker);
    if (!submitted) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(submitted);
  started->get_future().wait();
  // This write waits in the queue behind the blocker.
  auto writer = std::async(std::launch::async, [&] {
    auto client = Client();
    return client->Send("POST", "/collections/c/documents", json{{"documents", {{{"id", "late"}, {"dense", {1, 2}}}}}}.dump());
  });
  while (pool.queued() == 0) std::this_thread::sleep_for(1ms);
  auto idle = Client();  // a kept-alive connection with no request: closed by the shutdown
  ASSERT_EQ(Send(*idle, "GET", "/healthz").status, 200);
  server_->Shutdown();
  auto waiter = std::async(std::launch::async, [&] { server_->Wait(); });
  EXPECT_EQ(waiter.wait_for(200ms), std::future_status::timeout);  // the write is still in flight
  bool refused = false;  // the listener closes a moment after Shutdown() returns
  for (int i = 0; i < 200 && !refused; ++i) {
    refused = !HttpClient::Connect("127.0.0.1", port, 1s).ok();
    if (!refused) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(refused);
  release.set_value();
  auto reply = writer.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 200) << reply->body;
  EXPECT_FALSE(reply->keep_alive);
  EXPECT_EQ(waiter.wait_for(10s), std::future_status::ready);
  server_.reset();
  auto collection = db_->GetCollection("c");
  ASSERT_TRUE(collection.ok());
  EXPECT_TRUE((*collection)->Get("late").ok());
}

// Training over HTTP: 202 with a job, polled at /jobs/{id} until it succeeded; then a long job
// is cancelled by the server's shutdown, which returns with the database intact.
TEST_F(ServerTest, TrainJobOverHttpAndShutdownCancelsIt) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  auto fill = [&](const std::string& name, size_t n, uint32_t dim, const json& index) {
    ASSERT_EQ(Send(*client, "PUT", "/collections/" + name, {{"dense_dim", dim}, {"index", index}}).status, 201);
    json docs = json::array();
    for (size_t i = 0; i < n; ++i) {
      std::vector<float> v(dim);
      for (uint32_t j = 0; j < dim; ++j) v[j] = static_cast<float>((i * 7 + j * 13) % 29) + 0.01f * static_cast<float>(i % 17);
      docs.push_back({{"id", std::to_string(i)}, {"dense_b64", EncodeDenseBase64(v)}});
    }
    const HttpReply r = Send(*client, "POST", "/collections/" + name + "/documents", {{"documents", docs}});
    ASSERT_EQ(r.status, 200) << r.body;
  };
  auto poll = [&](const std::string& id, const std::function<bool(const json&)>& until) {
    json job;
    for (int i = 0; i < 2400; ++i) {  // up to two minutes on a loaded machine
      const HttpReply r = Send(*client, "GET", "/jobs/" + id);
      EXPECT_EQ(r.status, 200) << r.body;
      job = json::parse(r.body, nullptr, false);
      if (r.status != 200 || until(job)) break;
      std::this_thread::sleep_for(50ms);
    }
    return job;
  };
  fill("small", 500, 8, {{"nlist", 4}, {"m", 2}, {"epochs", 1}});
  HttpReply r = Send(*client, "POST", "/collections/small/train", {{"seed", 3}});
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = json::parse(r.body)["id"];
  EXPECT_EQ(r.Header("Location"), "/jobs/" + id);
  json job = poll(id, [](const json& j) { return j["state"] == "succeeded" || j["state"] == "failed"; });
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  const json info = json::parse(Send(*client, "GET", "/collections/small").body);
  EXPECT_EQ(info["index"]["kind"], "ivfpq");
  EXPECT_EQ(info["index"]["generation"], 1);
  r = Send(*client, "POST", "/collections/small/search", {{"dense", std::vector<float>(8, 1.0f)}, {"top_k", 5}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["results"].size(), 5u);
  EXPECT_EQ(Send(*client, "GET", "/jobs/" + id + "0").status, 404);

  fill("big", 2000, 16, {{"nlist", 16}, {"m", 4}, {"epochs", 400}});
  r = Send(*client, "POST", "/collections/big/train");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Send(*client, "POST", "/collections/big/train").status, 409);
  job = poll(json::parse(r.body)["id"], [](const json& j) {
    return j["phase"] == "distill" || j["state"] == "succeeded" || j["state"] == "failed";
  });
  ASSERT_EQ(job["state"], "running") << job.dump();
  client.reset();
  server_->Shutdown();
  server_->Wait();
  server_.reset();  // cancels the job and joins it
  auto big = db_->GetCollection("big");
  ASSERT_TRUE(big.ok());
  EXPECT_FALSE((*big)->GetIndexInfo().training);
  EXPECT_EQ((*big)->GetIndexInfo().kind, "flat");
  db_.reset();  // closes cleanly with nothing running
}

TEST_F(ServerTest, TimeoutsCloseSlowAndIdleConnections) {
  ServerOptions options;
  options.idle_timeout = 150ms;
  options.header_timeout = 150ms;
  StartServer(options);
  auto client = Client();
  ASSERT_EQ(Send(*client, "GET", "/healthz").status, 200);
  std::this_thread::sleep_for(400ms);  // idle past the timeout: the server closed the connection
  EXPECT_FALSE(client->Send("GET", "/healthz").ok());
  EXPECT_EQ(Send(*client, "GET", "/healthz").status, 200);  // the client reconnects
  // A header that never ends is cut off after the header timeout.
  const auto start = std::chrono::steady_clock::now();
  auto r = client->SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  EXPECT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ServerTest, StartFailsOnABusyPort) {
  StartServer();
  ServerOptions options;
  options.port = server_->port();
  auto second = Server::Start(*db_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kIOError);
  EXPECT_NE(second.status().message().find(std::to_string(options.port)), std::string::npos);
}

}  // namespace
}  // namespace m3vdb::net
