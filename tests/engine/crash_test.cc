// Crash recovery: a writer process (crash_writer.cc) ingests batches and acknowledges each one
// on stdout; the test kills it with SIGKILL after a random delay (some kills land while it is
// still opening the database, half of them mid-ingest), reopens the database and checks
// that every acknowledged batch is fully present and intact and that no batch is partial. The
// next writer continues from the next batch number; at least 20 such cycles.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "m3vdb/m3vdb.h"
#include "tests/engine/crash_batch.h"
#include "tests/engine/temp_dir.h"

extern char** environ;

namespace m3vdb {
namespace {

using test::CrashBatch;
using test::CrashDocId;
using test::kBatchDocs;
using test::TempDir;

constexpr int kCycles = 24;

struct WriterRun {
  std::vector<int64_t> acks;  // batches acknowledged, in order
  bool killed = false;        // died of our SIGKILL (rather than exiting by itself)
  int exit_code = 0;          // when it exited by itself
};

// Appends every complete "ack <n>" line in `buffer` to `acks`, keeping a trailing partial line.
void ParseAcks(std::string* buffer, std::vector<int64_t>* acks) {
  size_t start = 0;
  for (size_t end; (end = buffer->find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = buffer->substr(start, end - start);
    if (line.rfind("ack ", 0) == 0) acks->push_back(std::stoll(line.substr(4)));
  }
  buffer->erase(0, start);
}

// When the kill comes: `delay` after the writer was started, or after its first ack.
struct KillPlan {
  std::chrono::microseconds delay{0};
  bool after_first_ack = false;
};

// Starts the writer at batch `first`, collects its acknowledgements until the planned moment,
// kills it with SIGKILL and collects what it printed before dying.
WriterRun RunAndKill(const std::string& db_path, int64_t first, KillPlan plan) {
  WriterRun run;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return run;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::string program = CRASH_WRITER_PATH;
  std::string path = db_path;
  std::string first_batch = std::to_string(first);
  char* argv[] = {program.data(), path.data(), first_batch.data(), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (spawned != 0) {
    close(fds[0]);
    ADD_FAILURE() << "posix_spawn " << program << " failed: " << spawned;
    return run;
  }

  using Clock = std::chrono::steady_clock;
  std::string buffer;
  char chunk[4096];
  // Waiting for the first ack is bounded too, in case the writer hangs.
  auto deadline = Clock::now() + (plan.after_first_ack ? std::chrono::seconds(20) : plan.delay);
  bool waiting_for_ack = plan.after_first_ack;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fds[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;  // the writer exited by itself
    buffer.append(chunk, static_cast<size_t>(n));
    if (waiting_for_ack && buffer.find('\n') != std::string::npos) {
      waiting_for_ack = false;
      deadline = Clock::now() + plan.delay;
    }
  }
  kill(pid, SIGKILL);
  for (ssize_t n; (n = read(fds[0], chunk, sizeof chunk)) > 0;) buffer.append(chunk, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  run.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ParseAcks(&buffer, &run.acks);
  return run;
}

// How many documents of batch `batch` are stored; each stored one must be intact.
int StoredDocsOfBatch(const Collection& collection, int64_t batch) {
  int stored = 0;
  for (const Document& want : CrashBatch(batch)) {
    auto got = collection.Get(want.id);
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), StatusCode::kNotFound) << want.id << ": " << got.status().ToString();
      continue;
    }
    ++stored;
    EXPECT_EQ(got->dense, want.dense) << want.id;
    EXPECT_EQ(got->metadata_json, want.metadata_json) << want.id;
    EXPECT_EQ(got->sparse.indices, want.sparse.indices) << want.id;
    EXPECT_EQ(got->sparse.values, want.sparse.values) << want.id;
  }
  return stored;
}

// A document's own vector finds it with the sparse index and the dense index rebuilt on open.
void ExpectSearchFinds(const Collection& collection, int64_t batch, int i) {
  const Document doc = test::CrashDoc(batch, i);
  Query query;
  query.sparse = doc.sparse;
  query.dense = doc.dense;
  SearchOptions options;
  options.top_k = 1;
  options.rerank_k = 1;
  options.weights.sparse = 10000.0f;  // only this document has both of the query's tokens
  auto hits = collection.Search(query, options);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, doc.id);
}

TEST(CrashTest, AcknowledgedBatchesSurviveSigkillAndNoBatchIsPartial) {
  TempDir dir;
  const std::string path = dir.Sub("db");
  std::mt19937 rng(20240611);
  auto Uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::set<int64_t> present;  // batches known to be fully stored
  int64_t next = 0;           // the batch the next writer starts with
  int early_kills = 0, unacked_but_landed = 0;
  const auto started = std::chrono::steady_clock::now();

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle) + ", writer started at batch " + std::to_string(next));
    // A quarter of the kills land within 3 ms of the start, a quarter within 300 ms (while
    // opening and recovering, or early in the ingest), half of them up to 100 ms after the
    // first ack (mid-ingest; batches take a few ms, so usually in the middle of one).
    KillPlan plan;
    switch (cycle % 4) {
      case 0:
        plan.delay = std::chrono::microseconds(Uniform(0, 3000));
        break;
      case 1:
        plan.delay = std::chrono::microseconds(Uniform(5000, 300000));
        break;
      default:
        plan.after_first_ack = true;
        plan.delay = std::chrono::microseconds(Uniform(0, 100000));
    }
    const WriterRun run = RunAndKill(path, next, plan);
    ASSERT_TRUE(run.killed) << "writer exited by itself with status " << run.exit_code;
    for (size_t j = 0; j < run.acks.size(); ++j) {
      ASSERT_EQ(run.acks[j], next + static_cast<int64_t>(j)) << "acks out of order";
    }
    if (run.acks.empty()) ++early_kills;
    const int64_t last_acked = run.acks.empty() ? next - 1 : run.acks.back();

    auto db = Database::Open(Options{}, path);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto collection = (*db)->GetCollection(test::kCrashCollection);
    if (!collection.ok()) {
      ASSERT_EQ(collection.status().code(), StatusCode::kNotFound) << collection.status().ToString();
      ASSERT_TRUE(present.empty() && run.acks.empty()) << "collection lost after acknowledged writes";
      continue;
    }
    const Collection& c = *collection.value();
    for (int64_t batch = next; batch <= last_acked; ++batch) {
      ASSERT_EQ(StoredDocsOfBatch(c, batch), kBatchDocs) << "acknowledged batch " << batch;
      present.insert(batch);
    }
    // The batch in flight when the writer died landed whole or not at all; the one after it
    // was never started.
    const int in_flight = StoredDocsOfBatch(c, last_acked + 1);
    ASSERT_TRUE(in_flight == 0 || in_flight == kBatchDocs)
        << "batch " << last_acked + 1 << " is partial: " << in_flight << " of " << kBatchDocs;
    ASSERT_EQ(StoredDocsOfBatch(c, last_acked + 2), 0);
    if (in_flight == kBatchDocs) {
      present.insert(last_acked + 1);
      ++unacked_but_landed;
    }
    next = in_flight == kBatchDocs ? last_acked + 2 : last_acked + 1;
    ASSERT_EQ(c.Count(), present.size() * kBatchDocs) << "documents outside the known batches";
    // Spot-check a few batches written by earlier writers.
    std::vector<int64_t> older(present.begin(), present.end());
    for (int k = 0; k < 3 && !older.empty(); ++k) {
      const int64_t batch = older[std::uniform_int_distribution<size_t>(0, older.size() - 1)(rng)];
      ASSERT_EQ(StoredDocsOfBatch(c, batch), kBatchDocs) << "batch " << batch;
    }
    if (!present.empty()) ExpectSearchFinds(c, *present.rbegin(), cycle % kBatchDocs);
  }

  // Everything, once more, from a clean open.
  auto db = Database::Open(Options{}, path);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto collection = (*db)->GetCollection(test::kCrashCollection);
  ASSERT_TRUE(collection.ok()) << collection.status().ToString();
  ASSERT_FALSE(present.empty()) << "no writer acknowledged anything: the kills were all too early";
  for (int64_t batch : present) {
    ASSERT_EQ(StoredDocsOfBatch(**collection, batch), kBatchDocs) << "batch " << batch;
  }
  EXPECT_EQ((*collection)->Count(), present.size() * kBatchDocs);
  EXPECT_EQ(static_cast<int64_t>(present.size()), next) << "batch numbers have a hole";

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "[ crash    ] " << kCycles << " kills, " << present.size() << " batches stored, " << early_kills
            << " kills before any ack, " << unacked_but_landed << " unacknowledged batches that landed whole, "
            << seconds << " s\n";
}

}  // namespace
}  // namespace m3vdb
