// Asynchronous training jobs behind POST /collections/{name}/train and GET /jobs/{id}.
//
// `Start` runs `Collection::Train` on a thread of its own (never on the server's I/O threads
// or its compute pool) and returns the job's id at once; `Get` reads the job's state, progress
// and, once finished, its report or error. At most one job per collection is queued or running
// (a second `Start` is AlreadyExists, HTTP 409). Finished jobs are kept for `retention` and at
// most `max_finished` of them (the oldest go first); running jobs are never dropped.
//
// The destructor cancels every running job (TrainOptions::cancel: it stops at the trainer's
// next check, leaving the previous index serving) and joins its thread, so the owner can close
// the database right after. Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "m3vdb/m3vdb.h"

namespace m3vdb::net::detail {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed };
const char* JobStateName(JobState state);  // "queued", "running", "succeeded", "failed"

// What GET /jobs/{id} shows: a copy taken under the job's lock.
struct JobView {
  std::string id;
  std::string collection;
  JobState state = JobState::kQueued;
  std::string phase;                  // the trainer's phase: "kmeans", "distill", "encode" ("" before)
  double fraction = 0;                // of the current phase, in [0, 1]
  double loss = 0;                    // latest Distill-VQ loss
  std::optional<double> eta_seconds;  // estimated seconds until the current phase ends
  double elapsed_seconds = 0;         // since the job started running (to its end once finished)
  std::optional<TrainReport> report;  // kSucceeded
  std::optional<Status> error;        // kFailed
};

class TrainJobs {
 public:
  TrainJobs(size_t max_finished, std::chrono::milliseconds retention);
  ~TrainJobs();  // cancels running jobs and joins their threads
  TrainJobs(const TrainJobs&) = delete;
  TrainJobs& operator=(const TrainJobs&) = delete;

  // Starts training `collection` (named `name`) with `options` (its `progress` and `cancel` are
  // the job's own). AlreadyExists when that collection already has a job queued or running or
  // is training otherwise (automatic training); Unavailable after `Shutdown`.
  Result<JobView> Start(const std::string& name, std::shared_ptr<Collection> collection, TrainOptions options);

  // The job, or NotFound (never existed, or dropped after its retention).
  Result<JobView> Get(const std::string& id);

  // Jobs now kept, by state (every state present, possibly 0).
  std::map<JobState, size_t> CountByState();

  // Cancels running jobs, joins them, and refuses new ones. Idempotent.
  void Shutdown();

 private:
  struct Job;
  void Run(const std::shared_ptr<Job>& job, std::shared_ptr<Collection> collection, TrainOptions options);
  // Drops finished jobs past retention or beyond max_finished and joins their threads.
  // Called with mu_ held; returns the threads to join after unlocking.
  std::vector<std::thread> PruneLocked(std::chrono::steady_clock::time_point now);

  const size_t max_finished_;
  const std::chrono::milliseconds retention_;
  std::mutex mu_;
  uint64_t next_id_ = 1;                           // guarded by mu_
  bool shut_down_ = false;                         // guarded by mu_
  std::map<uint64_t, std::shared_ptr<Job>> jobs_;  // guarded by mu_, by id (= start order)
  std::map<std::string, uint64_t> active_;         // guarded by mu_: collection -> its unfinished job
};

}  // namespace m3vdb::net::detail
