// POST /snapshots without sockets: disabled by default, names checked against the rule (never
// a path), 409 for an existing name, 401 without the key, and snapshots taken while another
// thread keeps writing: each one opens with Database::Open and holds a prefix of the writer's
// batches, every batch whole or absent, with the documents' values intact.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "net/service.h"
#include "tests/engine/temp_dir.h"

namespace m3vdb::net {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kDim = 4;
constexpr int kBatchDocs = 40;

std::string DocId(int batch, int i) { return "b" + std::to_string(batch) + "-" + std::to_string(i); }
std::vector<float> DocVector(int batch, int i) {
  std::vector<float> v(kDim);
  for (int d = 0; d < kDim; ++d) v[d] = static_cast<float>(batch * 1000 + i * 10 + d) * 0.25f;
  return v;
}
json Batch(int batch) {
  json docs = json::array();
  for (int i = 0; i < kBatchDocs; ++i) docs.push_back({{"id", DocId(batch, i)}, {"dense", DocVector(batch, i)}});
  return json{{"documents", docs}};
}

class SnapshotTest : public ::testing::Test {
 protected:
  // A service over a fresh database; `snapshot_dir` empty disables snapshots.
  void Open(std::string snapshot_dir, std::vector<std::string> api_keys = {}) {
    service_.reset();
    db_.reset();
    Options options;
    options.sync = false;
    auto db = Database::Open(options, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    ServiceOptions service_options;
    service_options.api_keys = std::move(api_keys);
    service_options.snapshot_dir = std::move(snapshot_dir);
    service_ = std::make_unique<Service>(*db_, service_options);
  }

  Response Call(const std::string& method, const std::string& target, const std::string& body,
                const std::string& authorization = "", const std::string& content_type = "application/json") const {
    return service_->Handle(Request{method, target, content_type, authorization, body});
  }
  Response Snapshot(const json& body, const std::string& authorization = "") const {
    return Call("POST", "/snapshots", body.dump(), authorization);
  }

  static void ExpectError(const Response& response, int status, const std::string& code, const std::string& needle) {
    EXPECT_EQ(response.status, status) << response.body;
    const json body = json::parse(response.body, nullptr, false);
    ASSERT_TRUE(body.is_object() && body.contains("error")) << response.body;
    EXPECT_EQ(body["error"]["code"], code) << response.body;
    EXPECT_NE(body["error"]["message"].get<std::string>().find(needle), std::string::npos)
        << "message lacks '" << needle << "': " << response.body;
  }

  test::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Service> service_;
};

// Opens the snapshot at `path` and returns how many of the writer's batches it holds, checking
// that they are batches 0..k-1, each whole, with the values written; -1 (and a failure) otherwise.
int CheckPrefixOfBatches(const std::string& path, int batches_attempted) {
  Options options;
  options.create_if_missing = false;
  auto db = Database::Open(options, path);
  EXPECT_TRUE(db.ok()) << path << ": " << db.status().ToString();
  if (!db.ok()) return -1;
  auto collection = (*db)->GetCollection("c");
  EXPECT_TRUE(collection.ok()) << collection.status().ToString();
  if (!collection.ok()) return -1;
  int whole = 0;
  bool absent_seen = false;
  for (int b = 0; b < batches_attempted; ++b) {
    int present = 0;
    for (int i = 0; i < kBatchDocs; ++i) {
      auto doc = (*collection)->Get(DocId(b, i));
      if (!doc.ok()) {
        EXPECT_EQ(doc.status().code(), StatusCode::kNotFound) << doc.status().ToString();
        continue;
      }
      ++present;
      EXPECT_EQ(doc->dense, DocVector(b, i)) << DocId(b, i);
    }
    EXPECT_TRUE(present == 0 || present == kBatchDocs) << path << ": batch " << b << " is split: " << present << " of "
                                                       << kBatchDocs << " documents";
    if (present == 0) {
      absent_seen = true;
    } else {
      EXPECT_FALSE(absent_seen) << path << ": batch " << b << " is present after an absent one";
      ++whole;
    }
  }
  EXPECT_EQ((*collection)->Count(), uint64_t(whole) * kBatchDocs) << path;
  return whole;
}

TEST_F(SnapshotTest, DisabledWithoutSnapshotDir) {
  Open("");
  ExpectError(Snapshot({{"name", "nightly"}}), 422, "failed_precondition", "server.snapshot_dir (--snapshot-dir)");
  ExpectError(Snapshot({{"name", "nightly"}}), 422, "failed_precondition", "disabled");
}

TEST_F(SnapshotTest, BadNamesAndBodiesAre400AndWriteNothing) {
  const std::string snapshots = dir_.Sub("snapshots");
  Open(snapshots);
  const std::string rule = "[A-Za-z0-9._-]";
  for (const std::string& name : {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
                                  std::string("../escape"), std::string("/tmp/abs"), std::string(129, 'a'),
                                  std::string("caf\xc3\xa9"), std::string("a b"), std::string("a\\b"),
                                  std::string("x\n"), std::string("a\0b", 3)}) {
    SCOPED_TRACE("name '" + name + "'");
    ExpectError(Snapshot({{"name", name}}), 400, "invalid_argument", rule);
  }
  ExpectError(Snapshot(json::object()), 400, "invalid_argument", "name is required");
  ExpectError(Snapshot({{"name", 7}}), 400, "invalid_argument", "name must be a string");
  ExpectError(Snapshot({{"name", "ok"}, {"path", "/tmp"}}), 400, "invalid_argument", "path");
  ExpectError(Call("POST", "/snapshots", "[]"), 400, "invalid_argument", "object");
  ExpectError(Call("POST", "/snapshots", R"({"name":"ok"})", "", "text/plain"), 415, "unsupported_media_type", "JSON");
  EXPECT_FALSE(std::filesystem::exists(snapshots)) << "a rejected request created the snapshot directory";
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("escape")));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("db") + "/b"));

  // The longest name allowed, and every kind of character of the rule.
  const std::string longest = std::string(125, 'z') + "._-";
  const Response r = Snapshot({{"name", longest}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_TRUE(std::filesystem::is_directory(std::filesystem::path(snapshots) / longest));
}

TEST_F(SnapshotTest, ExistingNameIs409AndKeepsTheFirstSnapshot) {
  const std::string snapshots = dir_.Sub("snapshots");
  Open(snapshots);
  ASSERT_EQ(Call("PUT", "/collections/c", json{{"dense_dim", kDim}}.dump()).status, 201);
  ASSERT_EQ(Call("POST", "/collections/c/documents", Batch(0).dump()).status, 200);
  Response r = Snapshot({{"name", "first"}});
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_EQ(Call("POST", "/collections/c/documents", Batch(1).dump()).status, 200);
  ExpectError(Snapshot({{"name", "first"}}), 409, "already_exists", "first");
  EXPECT_EQ(CheckPrefixOfBatches(snapshots + "/first", 2), 1);  // still the state before batch 1

  // A file or a dangling link of that name is just as taken.
  std::filesystem::create_symlink(dir_.Sub("nowhere"), snapshots + "/link");
  ExpectError(Snapshot({{"name", "link"}}), 409, "already_exists", "link");
}

TEST_F(SnapshotTest, NeedsTheApiKey) {
  Open(dir_.Sub("snapshots"), {"secret"});
  Response r = Snapshot({{"name", "s"}});
  ExpectError(r, 401, "unauthenticated", "Bearer");
  ExpectError(Snapshot({{"name", "s"}}, "Bearer wrong"), 401, "unauthenticated", "API key");
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("snapshots")));
  r = Snapshot({{"name", "s"}}, "Bearer secret");
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST_F(SnapshotTest, RunsOnTheComputeSideAndIsCountedUnderItsRoute) {
  Open(dir_.Sub("snapshots"));
  const Request request{"POST", "/snapshots", "application/json", "", R"({"name":"m"})"};
  EXPECT_FALSE(service_->IsLightweight(request));
  const Response r = service_->Handle(request);
  ASSERT_EQ(r.status, 201) << r.body;
  service_->RecordExchange(request, r.status, 0.02);
  const std::string metrics = Call("GET", "/metrics", "").body;
  EXPECT_NE(metrics.find("m3vdb_http_requests_total{route=\"/snapshots\",method=\"POST\",status=\"201\"} 1"),
            std::string::npos)
      << metrics;
  ExpectError(Call("GET", "/snapshots", ""), 405, "method_not_allowed", "POST");
}

TEST_F(SnapshotTest, SnapshotsDuringConcurrentWritesHoldWholeBatchesInOrder) {
  const std::string snapshots = dir_.Sub("snapshots/nested");  // created by the first snapshot
  Open(snapshots);
  ASSERT_EQ(Call("PUT", "/collections/c", json{{"dense_dim", kDim}, {"metric", "l2"}}.dump()).status, 201);
  constexpr int kBefore = 5;  // acknowledged before any snapshot: every snapshot holds them
  for (int b = 0; b < kBefore; ++b) ASSERT_EQ(Call("POST", "/collections/c/documents", Batch(b).dump()).status, 200);

  std::atomic<int> acked{kBefore}, attempted{kBefore};
  std::atomic<bool> stop{false}, failed{false};
  std::thread writer([&] {
    for (int b = kBefore; !stop.load(); ++b) {
      attempted.store(b + 1);
      const Response r = Call("POST", "/collections/c/documents", Batch(b).dump());
      if (r.status != 200) {
        failed.store(true);
        ADD_FAILURE() << "batch " << b << ": " << r.body;
        return;
      }
      acked.store(b + 1);
    }
  });

  constexpr int kSnapshots = 6;
  struct Taken {
    std::string path;
    int acked_before = 0, attempted_after = 0;
  };
  std::vector<Taken> taken;
  for (int s = 0; s < kSnapshots && !failed.load(); ++s) {
    const int wait_for = acked.load() + 3;  // let the writer get going between snapshots
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (acked.load() < wait_for && !failed.load() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    Taken t;
    t.acked_before = acked.load();
    const Response r = Snapshot({{"name", "during-" + std::to_string(s)}});
    t.attempted_after = attempted.load();
    ASSERT_EQ(r.status, 201) << r.body;
    const json body = json::parse(r.body);
    EXPECT_EQ(body["name"], "during-" + std::to_string(s));
    EXPECT_GE(body["took_ms"].get<double>(), 0.0);
    t.path = body["path"].get<std::string>();
    EXPECT_EQ(std::filesystem::path(t.path),
              std::filesystem::absolute(std::filesystem::path(snapshots) / ("during-" + std::to_string(s))));
    taken.push_back(t);
  }
  // Writes keep being acknowledged after the snapshots.
  const int after_snapshots = acked.load();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (acked.load() < after_snapshots + 2 && !failed.load() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  stop.store(true);
  writer.join();
  ASSERT_FALSE(failed.load());
  EXPECT_GE(acked.load(), after_snapshots + 2);

  int previous = 0;
  for (const Taken& t : taken) {
    SCOPED_TRACE(t.path);
    const int whole = CheckPrefixOfBatches(t.path, attempted.load());
    // Everything acknowledged before the request, nothing not yet sent when it was answered.
    EXPECT_GE(whole, t.acked_before);
    EXPECT_LE(whole, t.attempted_after);
    EXPECT_GE(whole, previous);  // later snapshots hold at least as much
    previous = whole;
  }
  // The live database went on: it holds every acknowledged batch.
  auto live = db_->GetCollection("c");
  ASSERT_TRUE(live.ok());
  EXPECT_EQ((*live)->Count(), uint64_t(acked.load()) * kBatchDocs);
}

}  // namespace
}  // namespace m3vdb::net
