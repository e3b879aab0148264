// The compute pool's bound: tasks beyond the idle workers plus the queue capacity are refused,
// and Stop runs everything that was accepted.
#include "net/compute_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>

namespace m3vdb::net {
namespace {

// Occupies one worker until released. The task holds only shared states, never the Blocker.
class Blocker {
 public:
  std::function<void()> Task() {
    return [started = started_, released = released_] {
      started->set_value();
      released.wait();
    };
  }
  void WaitStarted() { started_future_.wait(); }
  void Release() { release_.set_value(); }

 private:
  std::shared_ptr<std::promise<void>> started_ = std::make_shared<std::promise<void>>();
  std::future<void> started_future_ = started_->get_future();
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

TEST(ComputePool, RefusesBeyondTheQueueCapacity) {
  ComputePool pool(1, 2);
  Blocker blocker;
  ASSERT_TRUE(pool.TrySubmit(blocker.Task()));
  blocker.WaitStarted();
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.TrySubmit([&] { ++ran; }));
  EXPECT_TRUE(pool.TrySubmit([&] { ++ran; }));
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_FALSE(pool.TrySubmit([&] { ++ran; }));  // the worker is busy and two already wait
  blocker.Release();
  pool.Stop();
  EXPECT_EQ(ran, 2);
  EXPECT_FALSE(pool.TrySubmit([] {}));  // stopped
}

TEST(ComputePool, ZeroCapacityAcceptsOnlyWhatIdleWorkersTake) {
  ComputePool pool(2, 0);
  Blocker a, b;
  ASSERT_TRUE(pool.TrySubmit(a.Task()));
  ASSERT_TRUE(pool.TrySubmit(b.Task()));
  a.WaitStarted();
  b.WaitStarted();
  EXPECT_FALSE(pool.TrySubmit([] {}));
  a.Release();
  b.Release();
}

TEST(ComputePool, StopFinishesQueuedTasks) {
  std::atomic<int> ran{0};
  {
    ComputePool pool(3, 1000);
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(pool.TrySubmit([&] { ++ran; }));
  }  // the destructor stops the pool
  EXPECT_EQ(ran, 500);
}

}  // namespace
}  // namespace m3vdb::net
