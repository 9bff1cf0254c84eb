#include "util/thread_pool.h"

#include <atomic>

#include "absl/synchronization/blocking_counter.h"
#include "gtest/gtest.h"

namespace pstore {
namespace {

TEST(ThreadPoolTest, RunsEveryScheduledClosure) {
  std::atomic<int> sum{0};
  {
    ThreadPool pool("test", 4);
    for (int i = 1; i <= 1000; ++i) {
      pool.Schedule([&sum, i] { sum += i; });
    }
  }  // The destructor drains the queue.
  EXPECT_EQ(sum.load(), 500500);
}

TEST(ThreadPoolTest, ClosuresMayScheduleMoreWork) {
  std::atomic<int> ran{0};
  absl::BlockingCounter done(2);
  ThreadPool pool("test", 2);
  pool.Schedule([&] {
    ++ran;
    pool.Schedule([&] {
      ++ran;
      done.DecrementCount();
    });
    done.DecrementCount();
  });
  done.Wait();
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace pstore
