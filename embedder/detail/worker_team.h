// A team of worker threads for one Encode call. ParallelFor hands out items dynamically; the
// calling thread works too. Idle workers block on a condition variable rather than spinning
// (OpenMP's default active wait steals the cores of a small shared machine from BLAS and from
// other processes). Not thread-safe: one ParallelFor at a time, from the owning thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace m3vdb::embedder {

class WorkerTeam {
 public:
  explicit WorkerTeam(int threads);
  ~WorkerTeam();
  WorkerTeam(const WorkerTeam&) = delete;
  WorkerTeam& operator=(const WorkerTeam&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(item, worker) for every item in [0, n); worker is in [0, size()).
  void ParallelFor(size_t n, const std::function<void(size_t, int)>& fn);

 private:
  void Work(int worker);
  void Drain(int worker);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t, int)>* fn_ = nullptr;
  size_t n_ = 0;
  std::atomic<size_t> next_{0};
  size_t generation_ = 0;
  int busy_ = 0;
  bool stop_ = false;
};

}  // namespace m3vdb::embedder
