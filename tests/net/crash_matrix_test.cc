// The crash matrix: `m3vdb serve` (a real process on loopback HTTP) is killed with SIGKILL at a
// random moment during ingest, during deletes, during the automatic training of a learned
// index and during a retraining requested with POST /collections/{name}/train (and the swap of
// its new generation) — 50 kills in all — and restarted on the same directory each time. After every
// restart:
//   * every acknowledged write is there (count, and each touched document read back),
//   * a batch that was in flight when the process died is there whole or not at all,
//   * searches over HTTP equal those of a database rebuilt, with the library, from the
//     acknowledged state (ids and scores; exact search: rerank_k covers every document and a
//     trained index is probed in full).
// At the end the directory, opened with the library, holds exactly the model's documents.
// M3VDB_CRASH_CYCLES (default 50) changes the number of kills; the seed is printed.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
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

constexpr int kDim = 8;
constexpr int kWriters = 2;
constexpr int kTrainThreshold = 300;

using Model = std::map<std::string, std::vector<float>>;  // id -> dense vector, per collection

std::vector<float> Vector(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(kDim);
  for (auto& x : v) x = u(rng);
  return v;
}

// One write a client sent: an upsert (ids with vectors) or a delete (ids only).
struct Op {
  bool is_delete = false;
  std::vector<std::pair<std::string, std::vector<float>>> docs;
  std::vector<std::string> ids;
};

std::string Body(const Op& op) {
  json docs = json::array();
  for (const auto& [id, v] : op.docs) docs.push_back({{"id", id}, {"dense", v}});
  return json{{"documents", docs}}.dump();
}

class CrashMatrix {
 public:
  CrashMatrix(uint64_t seed) : rng_(seed) {}

  std::unique_ptr<ServeProcess> Start() {
    auto serve = std::make_unique<ServeProcess>(std::vector<std::string>{
        "serve", "--data-dir", dir_.Sub("db"), "--port", "0", "--compute-threads", "4", "--log-level", "warn"});
    port_ = serve->WaitForPort();
    EXPECT_NE(port_, 0) << serve->output();
    return serve;
  }

  std::unique_ptr<net::HttpClient> Client() {
    auto c = net::HttpClient::Connect("127.0.0.1", port_, 10s);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  void CreateCollection(const std::string& name, uint64_t train_threshold) {
    json spec = {{"dense_dim", kDim}, {"metric", "l2"}};
    if (train_threshold)
      spec["index"] = {{"nlist", 4}, {"m", 2}, {"epochs", 1}, {"train_threshold", train_threshold}};
    auto r = Client()->Send("PUT", "/collections/" + name, spec.dump());
    ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
    models_[name];
  }

  // A random write on `name` by writer `w`: mostly upserts of fresh or existing ids of the
  // writer's own id space, some deletes of existing ones.
  Op RandomOp(const std::string& name, int w, std::mt19937_64& rng, double delete_share) {
    Op op;
    const Model& model = models_[name];
    std::vector<std::string> own;
    for (const auto& [id, v] : model)
      if (id.rfind("w" + std::to_string(w) + "-", 0) == 0) own.push_back(id);
    std::uniform_real_distribution<double> u(0, 1);
    if (!own.empty() && u(rng) < delete_share) {
      op.is_delete = true;
      for (int i = 0; i < 8; ++i) op.ids.push_back(own[rng() % own.size()]);
      op.ids.push_back("w" + std::to_string(w) + "-never");  // an absent id is allowed
      return op;
    }
    const int n = 5 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      std::string id = (!own.empty() && u(rng) < 0.2) ? own[rng() % own.size()]
                                                    : "w" + std::to_string(w) + "-" + std::to_string(next_id_[w]++);
      bool dup = false;
      for (const auto& d : op.docs) dup |= d.first == id;
      if (!dup) op.docs.emplace_back(id, Vector(rng));
    }
    return op;
  }

  // Sends writes until the process dies; the acknowledged ones are applied to the model, the
  // one in flight when the connection broke is returned.
  std::optional<Op> Writer(const std::string& name, int w, uint64_t seed, double delete_share) {
    std::mt19937_64 rng(seed);
    auto connected = net::HttpClient::Connect("127.0.0.1", port_, 10s);
    if (!connected.ok()) return std::nullopt;  // killed before this writer got going
    auto client = std::move(*connected);
    for (;;) {
      Op op;
      {
        std::lock_guard lock(mu_);
        op = RandomOp(name, w, rng, delete_share);
      }
      if (op.is_delete) {
        // The API deletes one id per request: each is its own acknowledged write.
        for (const auto& id : op.ids) {
          Op one;
          one.is_delete = true;
          one.ids = {id};
          auto d = client->Send("DELETE", "/collections/" + name + "/documents/" + id);
          if (!d.ok()) return one;  // the process died with this delete in flight
          if (d->status != 200 && d->status != 404) {
            ADD_FAILURE() << "delete answered " << d->status << ": " << d->body;
            return std::nullopt;
          }
          std::lock_guard lock(mu_);
          Apply(name, one);
          ++acknowledged_;
        }
        continue;
      }
      Result<net::HttpReply> r = client->Send("POST", "/collections/" + name + "/documents", Body(op));
      if (!r.ok()) return op;  // the process died with this write in flight
      if (r->status != 200 && r->status != 201) {
        ADD_FAILURE() << "write answered " << r->status << ": " << r->body;
        return std::nullopt;
      }
      std::lock_guard lock(mu_);
      Apply(name, op);
      ++acknowledged_;
    }
  }

  void Apply(const std::string& name, const Op& op) {
    Model& m = models_[name];
    if (op.is_delete)
      for (const auto& id : op.ids) m.erase(id);
    else
      for (const auto& [id, v] : op.docs) m[id] = v;
  }

  // The stored vector of `id`, std::nullopt when absent.
  std::optional<std::vector<float>> Fetch(net::HttpClient& c, const std::string& name, const std::string& id) {
    auto r = c.Send("GET", "/collections/" + name + "/documents/" + id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->status == 404) return std::nullopt;
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["dense"].get<std::vector<float>>();
  }

  // After a restart: resolves each in-flight write (whole or absent), then checks the
  // collection against the model.
  void Verify(const std::string& name, const std::vector<Op>& in_flight) {
    auto c = Client();
    ASSERT_TRUE(c);
    Model& model = models_[name];
    for (const Op& op : in_flight) {
      if (op.is_delete) {
        // A delete in flight: the id is either still there with the model's vector, or gone.
        int gone = 0, kept = 0;
        for (const auto& id : op.ids) {
          if (!model.count(id)) continue;
          auto v = Fetch(*c, name, id);
          if (v) {
            EXPECT_EQ(*v, model[id]) << id;
            ++kept;
          } else {
            ++gone;
          }
        }
        EXPECT_TRUE(gone == 0 || kept == 0) << "a delete batch is half applied: " << gone << " gone, " << kept << " kept";
        if (gone) Apply(name, op);
      } else {
        int applied = 0, absent = 0;
        for (const auto& [id, v] : op.docs) {
          auto got = Fetch(*c, name, id);
          if (got && *got == v) ++applied;
          else {
            ++absent;
            if (model.count(id)) EXPECT_EQ(got.value_or(std::vector<float>{}), model[id]) << id;
            else EXPECT_FALSE(got.has_value()) << id;
          }
        }
        EXPECT_TRUE(applied == 0 || absent == 0)
            << "an upsert batch is half applied: " << applied << " of " << op.docs.size();
        if (applied) {
          Apply(name, op);
          ++resolved_applied_;
        } else {
          ++resolved_absent_;
        }
      }
    }
    // Count and a sample of documents.
    auto info = c->Send("GET", "/collections/" + name);
    ASSERT_TRUE(info.ok() && info->status == 200);
    const json ij = json::parse(info->body);
    EXPECT_EQ(ij["count"].get<uint64_t>(), model.size()) << name;
    const size_t step = std::max<size_t>(1, model.size() / 20);
    size_t i = 0;
    for (const auto& [id, v] : model) {
      if (i++ % step != 0) continue;
      auto got = Fetch(*c, name, id);
      ASSERT_TRUE(got.has_value()) << "acknowledged document " << id << " is missing";
      EXPECT_EQ(*got, v) << id;
    }
    CompareSearches(*c, name, ij["index"]["nlist"].get<int>());
  }

  // Ten searches over HTTP against the same searches on a database rebuilt from the model.
  void CompareSearches(net::HttpClient& c, const std::string& name, int nlist) {
    const Model& model = models_[name];
    test::TempDir rebuilt_dir;
    Options options;
    options.sync = false;
    auto db = Database::Open(options, rebuilt_dir.path().string());
    ASSERT_TRUE(db.ok());
    CollectionSchema schema;
    schema.dense_dim = kDim;
    schema.metric = Metric::kL2;
    auto coll = (*db)->CreateCollection("r", schema);
    ASSERT_TRUE(coll.ok());
    std::vector<Document> docs;
    for (const auto& [id, v] : model) {
      Document d;
      d.id = id;
      d.dense = v;
      docs.push_back(std::move(d));
    }
    ASSERT_TRUE((*coll)->Upsert(docs).ok());
    const int rerank = static_cast<int>(std::max<size_t>(model.size(), 10));
    for (int q = 0; q < 10; ++q) {
      Query query;
      query.dense = Vector(rng_);
      SearchOptions so;
      so.top_k = 10;
      so.rerank_k = rerank;
      auto want = (*coll)->Search(query, so);
      ASSERT_TRUE(want.ok());
      auto r = c.Send("POST", "/collections/" + name + "/search",
                      json{{"dense", query.dense}, {"top_k", 10}, {"rerank_k", rerank}, {"nprobe", nlist}}.dump());
      ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
      const json hits = json::parse(r->body)["results"];
      ASSERT_EQ(hits.size(), want->size()) << name;
      for (size_t i = 0; i < want->size(); ++i) {
        EXPECT_EQ(hits[i]["id"].get<std::string>(), (*want)[i].id) << name << " query " << q << " rank " << i;
        EXPECT_NEAR(hits[i]["score"].get<double>(), (*want)[i].score, 1e-4 * (1 + std::fabs((*want)[i].score)));
      }
    }
  }

  // Restarts the server after the previous kill and checks what the kill left behind.
  std::unique_ptr<ServeProcess> Recover() {
    auto serve = Start();
    if (port_ == 0) {
      ADD_FAILURE() << "the server did not come back after kill -9: " << serve->output();
      return nullptr;
    }
    if (!pending_name_.empty()) {
      Verify(pending_name_, pending_);
      if (pending_name_[0] == 't') {
        auto info = Client()->Send("GET", "/collections/" + pending_name_);
        EXPECT_TRUE(info.ok());
        if (info.ok()) {
          const json idx = json::parse(info->body)["index"];
          // Either the old (exact) index or a whole new generation, never a half-written one.
          EXPECT_TRUE((idx["kind"] == "flat" && idx["generation"] == 0) ||
                      (idx["kind"] == "ivfpq" && idx["generation"] >= 1))
              << idx.dump();
        }
      }
      if (pending_name_ == "retrain") {
        // The old generation whole, or the new one whole; searchable either way (Verify).
        auto c = Client();
        const int64_t g = c ? Generation(*c) : -1;
        EXPECT_TRUE(g == retrain_generation_ || g == retrain_generation_ + 1)
            << "generation " << g << " after a kill during the retraining of generation " << retrain_generation_;
        retrains_finished_ += g == retrain_generation_ + 1;
      }
    }
    pending_name_.clear();
    pending_.clear();
    return serve;
  }

  // One cycle: recover, writers run, the process is killed after `delay`.
  void WriteCycle(const std::string& name, std::chrono::microseconds delay, double delete_share) {
    auto serve = Recover();
    if (!serve) return;
    std::vector<std::optional<Op>> in_flight(kWriters);
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w)
      writers.emplace_back([&, w, seed = rng_()] { in_flight[w] = Writer(name, w, seed, delete_share); });
    std::this_thread::sleep_for(delay);
    serve->Kill9();
    for (auto& t : writers) t.join();
    ++kills_;
    pending_name_ = name;
    for (auto& op : in_flight)
      if (op) pending_.push_back(*op);
  }

  // One cycle that kills the process while it trains a new collection's index automatically.
  void TrainCycle(int k, std::chrono::microseconds delay) {
    const std::string name = "t" + std::to_string(k);
    auto serve = Recover();
    if (!serve) return;
    CreateCollection(name, kTrainThreshold);
    auto c = Client();
    ASSERT_TRUE(c);
    // Acknowledged documents up to the threshold; the last batch starts the training.
    int n = 0;
    while (n < kTrainThreshold) {
      Op op;
      for (int i = 0; i < 50; ++i) op.docs.emplace_back("d" + std::to_string(n++), Vector(rng_));
      auto r = c->Send("POST", "/collections/" + name + "/documents", Body(op));
      ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
      Apply(name, op);
      ++acknowledged_;
    }
    bool saw_training = false;
    for (int i = 0; i < 200 && !saw_training; ++i) {
      auto info = c->Send("GET", "/collections/" + name);
      ASSERT_TRUE(info.ok());
      const json idx = json::parse(info->body)["index"];
      saw_training = idx["training"].get<bool>();
      if (!saw_training && idx["kind"] == "ivfpq") break;  // finished before we looked
      if (!saw_training) std::this_thread::sleep_for(1ms);
    }
    trainings_seen_ += saw_training;
    std::this_thread::sleep_for(delay);
    serve->Kill9();
    ++kills_;
    pending_name_ = name;
  }

  // One cycle that kills the process while it retrains an already trained collection through
  // POST /collections/{name}/train: during the training, while the new generation is written,
  // or while it is swapped in. The first call creates and trains "retrain" (no kill then) and
  // times that training, so the kills spread over a whole retraining.
  void RetrainCycle(std::mt19937_64::result_type r) {
    auto serve = Recover();
    if (!serve) return;
    auto c = Client();
    ASSERT_TRUE(c);
    if (!models_.count("retrain")) {
      CreateCollection("retrain", 1'000'000'000);  // trained by request only
      for (int n = 0; n < kTrainThreshold;) {
        Op op;
        for (int i = 0; i < 50; ++i) op.docs.emplace_back("r" + std::to_string(n++), Vector(rng_));
        auto w = c->Send("POST", "/collections/retrain/documents", Body(op));
        ASSERT_TRUE(w.ok() && w->status == 200) << (w.ok() ? w->body : w.status().ToString());
        Apply("retrain", op);
        ++acknowledged_;
      }
      const auto start = std::chrono::steady_clock::now();
      ASSERT_EQ(StartTraining(*c), 202);
      for (int i = 0; i < 6000 && Generation(*c) < 1; ++i) std::this_thread::sleep_for(1ms);
      ASSERT_GE(Generation(*c), 1) << "the first training of 'retrain' did not finish";
      retrain_time_ = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
    }
    retrain_generation_ = Generation(*c);
    ASSERT_EQ(StartTraining(*c), 202);
    std::this_thread::sleep_for(std::chrono::microseconds(r % (retrain_time_.count() + 1)));
    serve->Kill9();
    ++kills_;
    ++retrains_killed_;
    pending_name_ = "retrain";
  }

  int StartTraining(net::HttpClient& c) {
    auto r = c.Send("POST", "/collections/retrain/train", "{}");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->status : 0;
  }

  int64_t Generation(net::HttpClient& c) {
    auto info = c.Send("GET", "/collections/retrain");
    EXPECT_TRUE(info.ok() && info->status == 200);
    if (!info.ok() || info->status != 200) return -1;
    const json idx = json::parse(info->body)["index"];
    return idx["kind"] == "ivfpq" ? idx["generation"].get<int64_t>() : 0;
  }

  // Opens the directory with the library and checks every document of every collection.
  void FinalCheck() {
    auto db = Database::Open(Options{}, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    for (const auto& [name, model] : models_) {
      auto coll = (*db)->GetCollection(name);
      ASSERT_TRUE(coll.ok()) << name;
      EXPECT_EQ((*coll)->Count(), model.size()) << name;
      for (const auto& [id, v] : model) {
        auto d = (*coll)->Get(id);
        ASSERT_TRUE(d.ok()) << name << "/" << id << ": " << d.status().ToString();
        EXPECT_EQ(d->dense, v) << name << "/" << id;
      }
    }
  }

  std::mt19937_64 rng_;
  int kills_ = 0, acknowledged_ = 0, resolved_applied_ = 0, resolved_absent_ = 0, trainings_seen_ = 0;
  int retrains_killed_ = 0, retrains_finished_ = 0;  // kills during a retraining; of them, after its swap

 private:
  test::TempDir dir_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::map<std::string, Model> models_;
  int next_id_[kWriters] = {};
  std::string pending_name_;  // the collection written when the last kill landed
  std::vector<Op> pending_;   // the writes in flight then
  int64_t retrain_generation_ = 0;            // the generation of "retrain" before the last retraining
  std::chrono::microseconds retrain_time_{0};  // how long its first training took
};

TEST(CrashMatrix, KillNineDuringIngestDeleteAndTrainingLosesNothingAcknowledged) {
  const char* env_cycles = std::getenv("M3VDB_CRASH_CYCLES");
  const int cycles = env_cycles ? std::atoi(env_cycles) : 50;
  const uint64_t seed = std::random_device{}();
  std::printf("crash matrix: %d cycles, seed %llu\n", cycles, static_cast<unsigned long long>(seed));
  CrashMatrix m(seed);
  {
    auto serve = m.Start();
    m.CreateCollection("ingest", 0);
    m.CreateCollection("mixed", 0);
    serve->Kill9();
  }
  // Kills: 40% during ingest, 20% during mixed traffic (half deletes), 20% during automatic
  // training, 20% during a requested retraining (and its swap).
  int train_k = 0;
  while (m.kills_ < cycles && !::testing::Test::HasFailure()) {
    const int kind = static_cast<int>(m.rng_() % 10);
    if (kind < 4) {
      m.WriteCycle("ingest", std::chrono::microseconds(m.rng_() % 150'000), 0.0);
    } else if (kind < 6) {
      m.WriteCycle("mixed", std::chrono::microseconds(m.rng_() % 150'000), 0.5);
    } else if (kind < 8) {
      m.TrainCycle(train_k++, std::chrono::microseconds(m.rng_() % 30'000));
    } else {
      m.RetrainCycle(m.rng_());
    }
  }
  {
    auto serve = m.Recover();  // the last kill's check
    ASSERT_TRUE(serve);
    serve->Signal(SIGTERM);
    ASSERT_EQ(serve->WaitForExit(60s), 0) << serve->output();
  }
  m.FinalCheck();
  std::printf("crash matrix: %d kill -9 survived, %d writes acknowledged, in-flight batches found whole %d / absent %d, "
              "%d kills landed while training, %d during a retraining (%d of them after its swap)\n",
              m.kills_, m.acknowledged_, m.resolved_applied_, m.resolved_absent_, m.trainings_seen_,
              m.retrains_killed_, m.retrains_finished_);
}

}  // namespace
}  // namespace m3vdb
