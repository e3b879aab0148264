// Load and soak: `m3vdb serve` (a real process on loopback) under mixed ingest, search, delete
// and read traffic from several clients for M3VDB_SOAK_SECONDS (default 15 s under ctest;
// docs/reliability.md gives the longer documented run). Checks, all the way through:
//   * every answer is the expected success, or 503 (the documented back-pressure), nothing else;
//   * results are correct: each client owns its ids, so a document it upserted is read back
//     with its vector and found as the top hit of a search for that vector, and one it deleted
//     is 404;
//   * memory stays flat: the server's RSS in the last quarter of the run is within 25% + 64 MiB
//     of its RSS at the end of the first half (the store's memtables and caches fill early and
//     then stay; a per-request leak grows with the request count instead).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "net/client.h"
#include "tests/engine/temp_dir.h"
#include "tests/net/serve_process.h"

namespace m3vdb {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kDim = 32;
constexpr int kClients = 6;
constexpr int kIdsPerClient = 400;

// VmRSS of `pid` in KiB, 0 when unreadable.
long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

struct Tally {
  std::atomic<long> ok{0}, busy{0}, upserts{0}, searches{0}, deletes{0}, reads{0};
};

void Client(uint16_t port, int c, std::chrono::steady_clock::time_point end, Tally* tally) {
  auto connected = net::HttpClient::Connect("127.0.0.1", port, 30s);
  ASSERT_TRUE(connected.ok()) << connected.status().ToString();
  auto& http = **connected;
  std::mt19937_64 rng(1000 + c);
  std::uniform_real_distribution<float> u(-1, 1);
  std::map<int, std::vector<float>> mine;  // this client's live documents
  auto id_of = [&](int k) { return "c" + std::to_string(c) + "-" + std::to_string(k); };
  // Sends until the answer is not 503; false on a transport error.
  auto send = [&](std::string_view method, const std::string& target, const std::string& body,
                  net::HttpReply* reply) {
    for (;;) {
      auto r = http.Send(method, target, body);
      if (!r.ok()) {
        ADD_FAILURE() << method << " " << target << ": " << r.status().ToString();
        return false;
      }
      if (r->status == 503) {
        ++tally->busy;
        EXPECT_EQ(r->Header("Retry-After"), "1");
        std::this_thread::sleep_for(5ms);
        continue;
      }
      *reply = std::move(*r);
      return true;
    }
  };
  while (std::chrono::steady_clock::now() < end && !::testing::Test::HasFailure()) {
    const int op = static_cast<int>(rng() % 10);
    net::HttpReply r;
    if (op < 4 || mine.empty()) {  // upsert 8 documents of this client's id space
      json docs = json::array();
      std::map<int, std::vector<float>> batch;
      for (int i = 0; i < 8; ++i) {
        int k = static_cast<int>(rng() % kIdsPerClient);
        std::vector<float> v(kDim);
        for (auto& x : v) x = u(rng);
        batch[k] = v;
      }
      for (const auto& [k, v] : batch) docs.push_back({{"id", id_of(k)}, {"dense", v}});
      if (!send("POST", "/collections/soak/documents", json{{"documents", docs}}.dump(), &r)) return;
      ASSERT_EQ(r.status, 200) << r.body;
      for (auto& [k, v] : batch) mine[k] = v;
      ++tally->upserts;
    } else if (op < 7) {  // search for one of this client's vectors: it must be the top hit
      auto it = std::next(mine.begin(), static_cast<long>(rng() % mine.size()));
      if (!send("POST", "/collections/soak/search", json{{"dense", it->second}, {"top_k", 3}}.dump(), &r)) return;
      ASSERT_EQ(r.status, 200) << r.body;
      const json hits = json::parse(r.body)["results"];
      ASSERT_FALSE(hits.empty());
      EXPECT_EQ(hits[0]["id"].get<std::string>(), id_of(it->first));
      EXPECT_NEAR(hits[0]["score"].get<double>(), 0.0, 1e-4);  // l2: minus the squared distance
      ++tally->searches;
    } else if (op < 9) {  // delete one, then it is gone
      auto it = std::next(mine.begin(), static_cast<long>(rng() % mine.size()));
      if (!send("DELETE", "/collections/soak/documents/" + id_of(it->first), "", &r)) return;
      ASSERT_EQ(r.status, 200) << r.body;
      if (!send("GET", "/collections/soak/documents/" + id_of(it->first), "", &r)) return;
      ASSERT_EQ(r.status, 404) << r.body;
      mine.erase(it);
      ++tally->deletes;
    } else {  // read one back
      auto it = std::next(mine.begin(), static_cast<long>(rng() % mine.size()));
      if (!send("GET", "/collections/soak/documents/" + id_of(it->first), "", &r)) return;
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(json::parse(r.body)["dense"].get<std::vector<float>>(), it->second);
      ++tally->reads;
    }
    ++tally->ok;
  }
}

TEST(Soak, MixedTrafficKeepsMemoryFlatAndAnswersCorrectly) {
  const char* env = std::getenv("M3VDB_SOAK_SECONDS");
  const int seconds = env ? std::atoi(env) : 15;
  test::TempDir dir;
  // A small compute queue, so that the clients also meet the documented 503 back-pressure.
  test::ServeProcess serve({"serve", "--data-dir", dir.Sub("db"), "--port", "0", "--compute-threads", "2",
                            "--queue-capacity", "2", "--log-level", "warn"});
  const uint16_t port = serve.WaitForPort();
  ASSERT_NE(port, 0) << serve.output();
  {
    auto c = net::HttpClient::Connect("127.0.0.1", port);
    ASSERT_TRUE(c.ok());
    auto r = (*c)->Send("PUT", "/collections/soak", json{{"dense_dim", kDim}, {"metric", "l2"}}.dump());
    ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
  }
  Tally tally;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) clients.emplace_back(Client, port, c, end, &tally);
  std::vector<std::pair<double, long>> rss;  // (seconds, KiB)
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(250ms);
    rss.emplace_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                     RssKiB(serve.pid()));
  }
  for (auto& t : clients) t.join();
  ASSERT_FALSE(rss.empty());
  long half = 0, last_quarter = 0;
  for (const auto& [t, kib] : rss) {
    if (t <= seconds * 0.5) half = std::max(half, kib);
    if (t >= seconds * 0.75) last_quarter = std::max(last_quarter, kib);
  }
  std::printf("soak: %d s, %d clients: %ld requests answered (%ld upserts of 8, %ld searches, %ld deletes, %ld reads), "
              "%ld 503s; server RSS %ld MiB at half time, %ld MiB max in the last quarter\n",
              seconds, kClients, tally.ok.load(), tally.upserts.load(), tally.searches.load(), tally.deletes.load(),
              tally.reads.load(), tally.busy.load(), half / 1024, last_quarter / 1024);
  EXPECT_GT(tally.ok.load(), 0);
  EXPECT_LE(last_quarter, half + half / 4 + 64 * 1024) << "server memory kept growing";
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.WaitForExit(60s), 0) << serve.output();
}

}  // namespace
}  // namespace m3vdb
