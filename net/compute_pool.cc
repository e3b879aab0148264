#include "net/compute_pool.h"

#include <algorithm>

namespace m3vdb::net {

ComputePool::ComputePool(size_t threads, size_t queue_capacity) : capacity_(queue_capacity) {
  threads = std::max<size_t>(threads, 1);
  workers_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

ComputePool::~ComputePool() { Stop(); }

bool ComputePool::TrySubmit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    // Workers not running a task take one at once, so only tasks beyond them count against
    // the bound.
    const size_t free_workers = workers_.size() - busy_;
    if (queue_.size() + 1 > free_workers + capacity_) return false;
    queue_.push_back(std::move(task));
  }
  ready_.notify_one();
  return true;
}

void ComputePool::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  std::lock_guard join_lock(join_mu_);
  for (std::thread& worker : workers_)
    if (worker.joinable()) worker.join();
}

size_t ComputePool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void ComputePool::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    task();
    task = nullptr;  // release what the task holds before taking the lock again
    lock.lock();
    --busy_;
  }
}

}  // namespace m3vdb::net
