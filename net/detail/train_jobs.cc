#include "net/detail/train_jobs.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace m3vdb::net::detail {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
  }
  return "unknown";
}

struct TrainJobs::Job {
  std::atomic<bool> cancel{false};
  std::thread thread;                                 // guarded by TrainJobs::mu_
  std::chrono::steady_clock::time_point finished_at;  // guarded by TrainJobs::mu_, once finished
  std::mutex mu;
  JobView view;                                         // guarded by mu
  std::chrono::steady_clock::time_point started;        // guarded by mu
  std::chrono::steady_clock::time_point phase_started;  // guarded by mu
  bool finished = false;                                // guarded by mu
};

namespace {

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

TrainJobs::TrainJobs(size_t max_finished, std::chrono::milliseconds retention)
    : max_finished_(max_finished), retention_(retention) {}

TrainJobs::~TrainJobs() { Shutdown(); }

Result<JobView> TrainJobs::Start(const std::string& name, std::shared_ptr<Collection> collection,
                                 TrainOptions options) {
  std::vector<std::thread> done;
  Result<JobView> result = Status::Internal("job not started");
  {
    std::lock_guard lock(mu_);
    done = PruneLocked(std::chrono::steady_clock::now());
    if (shut_down_) {
      result = Status::Unavailable("the server is shutting down; no training job can start");
    } else if (auto it = active_.find(name); it != active_.end()) {
      result = Status::AlreadyExists("collection '" + name + "' already has training job " +
                                     std::to_string(it->second) + " queued or running");
    } else if (collection->GetIndexInfo().training) {
      result = Status::AlreadyExists("collection '" + name +
                                     "' is already training (started automatically or by the library)");
    } else {
      auto job = std::make_shared<Job>();
      const uint64_t id = next_id_++;
      job->view.id = std::to_string(id);
      job->view.collection = name;
      job->view.state = JobState::kQueued;
      jobs_.emplace(id, job);
      active_.emplace(name, id);
      result = job->view;
      job->thread =
          std::thread([this, job, collection = std::move(collection), options = std::move(options)]() mutable {
            Run(job, std::move(collection), std::move(options));
          });
    }
  }
  for (std::thread& t : done) t.join();
  return result;
}

void TrainJobs::Run(const std::shared_ptr<Job>& job, std::shared_ptr<Collection> collection, TrainOptions options) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(job->mu);
    job->view.state = JobState::kRunning;
    job->started = job->phase_started = now;
  }
  options.cancel = &job->cancel;
  options.progress = [&job](std::string_view phase, double fraction, double loss) {
    const auto t = std::chrono::steady_clock::now();
    std::lock_guard lock(job->mu);
    if (job->view.phase != phase) {
      job->view.phase = std::string(phase);
      job->phase_started = t;
    }
    job->view.fraction = std::clamp(fraction, 0.0, 1.0);
    job->view.loss = loss;
    // Time per unit of the phase so far, times what remains of it.
    if (job->view.fraction > 0 && job->view.fraction < 1)
      job->view.eta_seconds = Seconds(t - job->phase_started) * (1 - job->view.fraction) / job->view.fraction;
    else
      job->view.eta_seconds.reset();
  };
  spdlog::info("training job {} started for collection '{}'", job->view.id, job->view.collection);
  Result<TrainReport> report = collection->Train(options);
  collection.reset();
  {
    // The job leaves active_ in the same step as it shows its final state, so a client that sees
    // it finished can start the next job for the collection at once. Lock order: mu_, then job->mu.
    std::lock_guard jobs_lock(mu_);
    std::lock_guard lock(job->mu);
    job->finished = true;
    job->view.elapsed_seconds = Seconds(std::chrono::steady_clock::now() - job->started);
    job->view.eta_seconds.reset();
    if (report.ok()) {
      job->view.state = JobState::kSucceeded;
      job->view.fraction = 1;
      job->view.report = *report;
    } else {
      job->view.state = JobState::kFailed;
      job->view.error = job->cancel.load()
                            ? report.status().WithContext("cancelled because the server is shutting down")
                            : report.status();
    }
    job->finished_at = std::chrono::steady_clock::now();
    auto it = active_.find(job->view.collection);
    if (it != active_.end() && std::to_string(it->second) == job->view.id) active_.erase(it);
  }
  if (report.ok())
    spdlog::info("training job {} succeeded: generation {}", job->view.id, report->generation);
  else
    spdlog::warn("training job {} failed: {}", job->view.id, report.status().ToString());
}

Result<JobView> TrainJobs::Get(const std::string& id) {
  std::shared_ptr<Job> job;
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu_);
    done = PruneLocked(std::chrono::steady_clock::now());
    uint64_t key = 0;
    const bool numeric = !id.empty() && id.size() <= 19 &&
                         std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) key = std::stoull(id);
    auto it = numeric ? jobs_.find(key) : jobs_.end();
    if (it != jobs_.end()) job = it->second;
  }
  for (std::thread& t : done) t.join();
  if (!job) return Status::NotFound("training job '" + id + "' not found (finished jobs are kept for a while only)");
  std::lock_guard lock(job->mu);
  JobView view = job->view;
  if (!job->finished && view.state == JobState::kRunning)
    view.elapsed_seconds = Seconds(std::chrono::steady_clock::now() - job->started);
  return view;
}

std::map<JobState, size_t> TrainJobs::CountByState() {
  std::map<JobState, size_t> counts{
      {JobState::kQueued, 0}, {JobState::kRunning, 0}, {JobState::kSucceeded, 0}, {JobState::kFailed, 0}};
  std::vector<std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, job] : jobs_) jobs.push_back(job);
  }
  for (const auto& job : jobs) {
    std::lock_guard lock(job->mu);
    ++counts[job->view.state];
  }
  return counts;
}

std::vector<std::thread> TrainJobs::PruneLocked(std::chrono::steady_clock::time_point now) {
  std::vector<std::thread> done;
  std::vector<uint64_t> finished;  // oldest first (ids grow with start order)
  for (const auto& [id, job] : jobs_)
    if (job->finished_at != std::chrono::steady_clock::time_point{}) finished.push_back(id);
  size_t excess = finished.size() > max_finished_ ? finished.size() - max_finished_ : 0;
  for (uint64_t id : finished) {
    auto it = jobs_.find(id);
    const bool expired = now - it->second->finished_at >= retention_;
    if (!expired && excess == 0) continue;
    if (excess > 0) --excess;
    if (it->second->thread.joinable()) done.push_back(std::move(it->second->thread));
    jobs_.erase(it);
  }
  return done;
}

void TrainJobs::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    if (!shut_down_) {
      shut_down_ = true;
      if (!active_.empty()) spdlog::info("cancelling {} training job(s) for shutdown", active_.size());
    }
    for (auto& [id, job] : jobs_) {
      job->cancel.store(true);
      if (job->thread.joinable()) threads.push_back(std::move(job->thread));
    }
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace m3vdb::net::detail
