// `m3vdb serve` as a child process: configured by a YAML file or flags, it prints the port it
// picked; SIGTERM in the middle of a concurrent ingest loses no acknowledged write (the
// database, reopened with the library afterwards, holds every acknowledged batch whole), and
// the process exits 0 after closing the database.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "m3vdb/m3vdb.h"
#include "net/client.h"
#include "tests/engine/temp_dir.h"
#include "tests/net/serve_process.h"

namespace m3vdb {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using test::ServeProcess;

constexpr int kDim = 16;
constexpr int kBatchDocs = 25;

std::string DocId(int writer, int batch, int i) {
  return std::to_string(writer) + "-" + std::to_string(batch) + "-" + std::to_string(i);
}
std::vector<float> DocVector(int writer, int batch, int i) {
  std::vector<float> v(kDim);
  for (int d = 0; d < kDim; ++d) v[d] = static_cast<float>(writer * 1'000'000 + batch * 1000 + i * 10 + d) * 0.5f;
  return v;
}

TEST(ServeProcess, SigtermDuringIngestLosesNoAcknowledgedWrite) {
  test::TempDir dir;
  const std::string db_dir = dir.Sub("db");
  ServeProcess serve({"serve", "--data-dir", db_dir, "--port", "0", "--compute-threads", "2",
                      "--shutdown-timeout-ms", "20000"});
  const uint16_t port = serve.WaitForPort();
  ASSERT_NE(port, 0) << serve.output();
  {
    auto client = net::HttpClient::Connect("127.0.0.1", port);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    auto r = (*client)->Send("PUT", "/collections/c", json{{"dense_dim", kDim}, {"metric", "l2"}}.dump());
    ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
  }

  constexpr int kWriters = 4;
  std::mutex mu;
  std::vector<std::vector<int>> acked(kWriters);  // batch numbers acknowledged with 200, per writer
  std::vector<int> attempted(kWriters, 0);
  std::atomic<int> total_acks{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto client = net::HttpClient::Connect("127.0.0.1", port, 30s);
      if (!client.ok()) return;
      for (int b = 0;; ++b) {
        json docs = json::array();
        for (int i = 0; i < kBatchDocs; ++i)
          docs.push_back({{"id", DocId(w, b, i)}, {"dense_b64", net::EncodeDenseBase64(DocVector(w, b, i))}});
        {
          std::lock_guard lock(mu);
          attempted[w] = b + 1;
        }
        auto r = (*client)->Send("POST", "/collections/c/documents", json{{"documents", docs}}.dump());
        if (!r.ok()) return;                   // the server is gone
        if (r->status == 503) continue;        // overloaded: not acknowledged, try the next batch
        if (r->status != 200) return;
        std::lock_guard lock(mu);
        acked[w].push_back(b);
        ++total_acks;
        if (!r->keep_alive) return;  // the server is shutting down
      }
    });
  }
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (total_acks < 100 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  serve.Signal(SIGTERM);
  for (auto& t : writers) t.join();
  EXPECT_EQ(serve.WaitForExit(30s), 0) << serve.output();
  ASSERT_GE(total_acks.load(), 100) << serve.output();
  EXPECT_NE(serve.output().find("received signal 15, shutting down"), std::string::npos);
  EXPECT_NE(serve.output().find("database " + db_dir + " closed"), std::string::npos) << serve.output();

  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, db_dir);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto collection = (*db)->GetCollection("c");
  ASSERT_TRUE(collection.ok());
  size_t present_docs = 0;
  for (int w = 0; w < kWriters; ++w) {
    for (int b : acked[w]) {
      for (int i = 0; i < kBatchDocs; ++i) {
        auto doc = (*collection)->Get(DocId(w, b, i));
        ASSERT_TRUE(doc.ok()) << "acknowledged document " << DocId(w, b, i) << " is missing";
        EXPECT_EQ(doc->dense, DocVector(w, b, i));
      }
    }
    // Every attempted batch is whole or absent (the last one may have landed unacknowledged).
    for (int b = 0; b < attempted[w]; ++b) {
      int present = 0;
      for (int i = 0; i < kBatchDocs; ++i) present += (*collection)->Get(DocId(w, b, i)).ok();
      EXPECT_TRUE(present == 0 || present == kBatchDocs) << "batch " << w << "-" << b << " is partial: " << present;
      present_docs += present;
    }
  }
  EXPECT_EQ((*collection)->Count(), present_docs);
}

TEST(ServeProcess, ConfigFileAndFlags) {
  test::TempDir dir;
  const std::string config_path = dir.Sub("m3vdb.yaml");
  std::ofstream(config_path) << "data_dir: " << dir.Sub("db") << "\n"
                             << "log_level: warn\n"
                             << "server:\n  port: 1\n  api_keys: [alpha, beta]\n  io_threads: 1\n";
  // The flag overrides the file's port.
  ServeProcess serve({"serve", "--config", config_path, "--port", "0"});
  const uint16_t port = serve.WaitForPort();
  ASSERT_NE(port, 0) << serve.output();
  auto client = net::HttpClient::Connect("127.0.0.1", port);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Send("GET", "/collections");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  (*client)->SetHeader("Authorization", "Bearer beta");
  r = (*client)->Send("GET", "/collections");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  serve.Signal(SIGINT);
  EXPECT_EQ(serve.WaitForExit(20s), 0) << serve.output();
}

TEST(ServeProcess, BadConfigurationExitsWithTheKey) {
  test::TempDir dir;
  const std::string config_path = dir.Sub("bad.yaml");
  std::ofstream(config_path) << "data_dir: " << dir.Sub("db") << "\nserver:\n  prot: 8080\n";
  ServeProcess bad_key({"serve", "--config", config_path});
  EXPECT_EQ(bad_key.WaitForExit(20s), 2);
  EXPECT_NE(bad_key.output().find("unknown configuration key 'server.prot'"), std::string::npos) << bad_key.output();
  ServeProcess bad_flag({"serve", "--data-dir", dir.Sub("db"), "--io-threads", "zero"});
  EXPECT_EQ(bad_flag.WaitForExit(20s), 2);
  EXPECT_NE(bad_flag.output().find("server.io_threads (--io-threads)"), std::string::npos) << bad_flag.output();
}

}  // namespace
}  // namespace m3vdb
