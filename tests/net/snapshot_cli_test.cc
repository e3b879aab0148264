// `m3vdb snapshot` against a real `m3vdb serve` process: `--url` asks the server (POST
// /snapshots) and prints where the snapshot went; `DIR --to DIR2` on the served directory fails
// with a message naming the process that holds the RocksDB lock and pointing to `--url`, and
// works once the server is gone.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "m3vdb/m3vdb.h"
#include "net/client.h"
#include "tests/engine/temp_dir.h"
#include "tests/net/serve_process.h"

namespace m3vdb {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using test::ServeProcess;

constexpr int kDim = 8;

std::vector<float> DocVector(int i) {
  std::vector<float> v(kDim);
  for (int d = 0; d < kDim; ++d) v[d] = static_cast<float>(i * 100 + d);
  return v;
}

// Writes documents first..last-1 of collection "c" through the server.
void Write(net::HttpClient& client, int first, int last) {
  json docs = json::array();
  for (int i = first; i < last; ++i) docs.push_back({{"id", "d" + std::to_string(i)}, {"dense", DocVector(i)}});
  auto r = client.Send("POST", "/collections/c/documents", json{{"documents", docs}}.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
}

// The documents of collection "c" in the database at `path`, checked against DocVector.
size_t CountChecked(const std::string& path) {
  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, path);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return 0;
  auto collection = (*db)->GetCollection("c");
  EXPECT_TRUE(collection.ok()) << collection.status().ToString();
  if (!collection.ok()) return 0;
  const uint64_t count = (*collection)->Count();
  for (uint64_t i = 0; i < count; ++i) {
    auto doc = (*collection)->Get("d" + std::to_string(i));
    EXPECT_TRUE(doc.ok()) << "d" << i << ": " << doc.status().ToString();
    if (doc.ok()) {
      EXPECT_EQ(doc->dense, DocVector(static_cast<int>(i)));
    }
  }
  return count;
}

TEST(SnapshotCli, UrlAsksTheRunningServer) {
  test::TempDir dir;
  const std::string db_dir = dir.Sub("db"), snapshots = dir.Sub("snapshots");
  ServeProcess serve({"serve", "--data-dir", db_dir, "--port", "0", "--snapshot-dir", snapshots, "--api-key", "k3y"});
  const uint16_t port = serve.WaitForPort();
  ASSERT_NE(port, 0) << serve.output();
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto client = net::HttpClient::Connect("127.0.0.1", port);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  (*client)->SetHeader("Authorization", "Bearer k3y");
  auto r = (*client)->Send("PUT", "/collections/c", json{{"dense_dim", kDim}}.dump());
  ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
  Write(**client, 0, 30);

  ServeProcess snapshot({"snapshot", "--url", url + "/", "--name", "nightly-2026-12-01", "--api-key", "k3y"});
  ASSERT_EQ(snapshot.WaitForExit(60s), 0) << snapshot.output();
  const std::string where = (std::filesystem::path(snapshots) / "nightly-2026-12-01").string();
  EXPECT_NE(snapshot.output().find("to " + where), std::string::npos) << snapshot.output();
  EXPECT_NE(serve.output().find("snapshot 'nightly-2026-12-01' written to " + where), std::string::npos)
      << serve.output();
  Write(**client, 30, 50);  // after the snapshot: not in it

  ServeProcess again({"snapshot", "--url", url, "--name", "nightly-2026-12-01", "--api-key", "k3y"});
  EXPECT_EQ(again.WaitForExit(60s), 1);
  EXPECT_NE(again.output().find("409"), std::string::npos) << again.output();
  EXPECT_NE(again.output().find("already_exists"), std::string::npos) << again.output();

  ServeProcess no_key({"snapshot", "--url", url, "--name", "other"});
  EXPECT_EQ(no_key.WaitForExit(60s), 1);
  EXPECT_NE(no_key.output().find("401"), std::string::npos) << no_key.output();
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(snapshots) / "other"));

  ServeProcess bad_name({"snapshot", "--url", url, "--name", "../up", "--api-key", "k3y"});
  EXPECT_EQ(bad_name.WaitForExit(60s), 1);
  EXPECT_NE(bad_name.output().find("[A-Za-z0-9._-]"), std::string::npos) << bad_name.output();

  ServeProcess bad_url({"snapshot", "--url", "https://127.0.0.1:1", "--name", "x"});
  EXPECT_EQ(bad_url.WaitForExit(60s), 2);
  EXPECT_NE(bad_url.output().find("http://HOST:PORT"), std::string::npos) << bad_url.output();

  ServeProcess both({"snapshot", db_dir, "--to", dir.Sub("copy"), "--url", url, "--name", "x"});
  EXPECT_NE(both.WaitForExit(60s), 0);
  EXPECT_NE(both.output().find("excludes"), std::string::npos) << both.output();
  ServeProcess neither({"snapshot"});
  EXPECT_EQ(neither.WaitForExit(60s), 2);
  EXPECT_NE(neither.output().find("--url"), std::string::npos) << neither.output();

  serve.Signal(SIGTERM);
  ASSERT_EQ(serve.WaitForExit(30s), 0) << serve.output();
  EXPECT_EQ(CountChecked(where), 30u);
  EXPECT_EQ(CountChecked(db_dir), 50u);
}

TEST(SnapshotCli, ServedDirectoryNamesTheLockHolderAndTheRoute) {
  test::TempDir dir;
  const std::string db_dir = dir.Sub("db");
  ServeProcess serve({"serve", "--data-dir", db_dir, "--port", "0"});
  const uint16_t port = serve.WaitForPort();
  ASSERT_NE(port, 0) << serve.output();
  {
    auto client = net::HttpClient::Connect("127.0.0.1", port);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    auto r = (*client)->Send("PUT", "/collections/c", json{{"dense_dim", kDim}}.dump());
    ASSERT_TRUE(r.ok() && r->status == 201);
    Write(**client, 0, 12);
  }

  const std::string copy = dir.Sub("copy");
  ServeProcess held({"snapshot", db_dir, "--to", copy});
  EXPECT_EQ(held.WaitForExit(60s), 1);
  const std::string out = held.output();
  EXPECT_NE(out.find(db_dir + " is in use"), std::string::npos) << out;
  EXPECT_NE(out.find("process " + std::to_string(serve.pid()) + " holds its RocksDB lock"), std::string::npos) << out;
  EXPECT_NE(out.find("m3vdb snapshot --url http://HOST:PORT --name NAME"), std::string::npos) << out;
  EXPECT_NE(out.find("POST /snapshots"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(copy));

  serve.Signal(SIGTERM);
  ASSERT_EQ(serve.WaitForExit(30s), 0) << serve.output();
  ServeProcess unheld({"snapshot", db_dir, "--to", copy});
  ASSERT_EQ(unheld.WaitForExit(60s), 0) << unheld.output();
  EXPECT_NE(unheld.output().find("written to " + copy), std::string::npos) << unheld.output();
  EXPECT_EQ(CountChecked(copy), 12u);
}

}  // namespace
}  // namespace m3vdb
