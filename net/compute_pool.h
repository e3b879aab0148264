// A fixed set of worker threads with a bounded queue: where the server runs engine work
// (searches, batch upserts) so that its I/O threads only read and write sockets.
//
// `TrySubmit` never blocks and never grows memory past the bound: when every worker is busy
// and `queue_capacity` tasks already wait, it refuses the task (the server then answers 503).
// `Stop` (also run by the destructor) lets the queued and running tasks finish, then joins the
// workers; tasks submitted after it are refused. Tasks must not throw.
// Thread safety: every method may be called from any thread; `Stop` from any but a worker.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace m3vdb::net {

class ComputePool {
 public:
  // `threads` workers (at least 1); at most `queue_capacity` tasks wait for a free worker.
  ComputePool(size_t threads, size_t queue_capacity);
  ~ComputePool();
  ComputePool(const ComputePool&) = delete;
  ComputePool& operator=(const ComputePool&) = delete;

  // Queues `task`; false (and `task` is dropped) when the queue is full or the pool stopped.
  bool TrySubmit(std::function<void()> task);

  // Finishes every queued and running task, then joins the workers. Idempotent.
  void Stop();

  size_t threads() const { return workers_.size(); }
  size_t queue_capacity() const { return capacity_; }
  size_t queued() const;  // tasks waiting for a worker now

 private:
  void Work();

  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  size_t busy_ = 0;                          // guarded by mu_: workers running a task
  bool stopping_ = false;                    // guarded by mu_
  std::mutex join_mu_;  // serializes concurrent Stop calls
  std::vector<std::thread> workers_;
};

}  // namespace m3vdb::net
