#include "util/timer_queue.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pstore {
namespace {

using ::testing::ElementsAre;

// The longest any test waits for a closure that should run; the closures
// themselves are due within tens of milliseconds.
constexpr absl::Duration kBound = absl::Seconds(2);

// A closure due long after every test has ended.
constexpr absl::Duration kNever = absl::Hours(1);

// Records the order in which closures run.
class RunLog {
 public:
  void Add(int value) {
    absl::MutexLock lock(&mu_);
    values_.push_back(value);
  }
  std::vector<int> values() const {
    absl::MutexLock lock(&mu_);
    return values_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<int> values_ ABSL_GUARDED_BY(mu_);
};

TEST(TimerQueueTest, RunsClosuresInTimeOrder) {
  RunLog log;
  absl::Notification all_ran;
  std::atomic<int> remaining{4};
  auto task = [&](int value) {
    return [&, value] {
      log.Add(value);
      if (--remaining == 0) all_ran.Notify();
    };
  };
  TimerQueue queue("test-order");
  absl::Time now = absl::Now();
  // Scheduled out of time order; the two at +20 ms keep their order of
  // scheduling.
  queue.Schedule(now + absl::Milliseconds(30), task(4));
  queue.Schedule(now + absl::Milliseconds(20), task(2));
  queue.Schedule(now + absl::Milliseconds(10), task(1));
  queue.Schedule(now + absl::Milliseconds(20), task(3));
  ASSERT_TRUE(all_ran.WaitForNotificationWithTimeout(kBound));
  EXPECT_THAT(log.values(), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(queue.size(), 0);
}

TEST(TimerQueueTest, EarlierClosureWakesTheThreadBeforeTheFirstOnesTime) {
  std::atomic<bool> late_ran{false};
  absl::Notification early_ran;
  TimerQueue queue("test-wake");
  queue.Schedule(absl::Now() + kNever, [&] { late_ran = true; });
  // Let the thread go to sleep until the late closure's time.
  absl::SleepFor(absl::Milliseconds(20));
  queue.Schedule(absl::Now() + absl::Milliseconds(10),
                 [&] { early_ran.Notify(); });
  ASSERT_TRUE(early_ran.WaitForNotificationWithTimeout(kBound));
  EXPECT_FALSE(late_ran.load());
  EXPECT_EQ(queue.size(), 1);
}

TEST(TimerQueueTest, ClosureDueInThePastRunsAtOnce) {
  absl::Notification past_ran;
  absl::Notification infinite_past_ran;
  TimerQueue queue("test-past");
  queue.Schedule(absl::Now() + kNever, [] {});
  absl::SleepFor(absl::Milliseconds(20));
  queue.Schedule(absl::Now() - absl::Seconds(1), [&] { past_ran.Notify(); });
  queue.Schedule(absl::InfinitePast(), [&] { infinite_past_ran.Notify(); });
  EXPECT_TRUE(past_ran.WaitForNotificationWithTimeout(kBound));
  EXPECT_TRUE(infinite_past_ran.WaitForNotificationWithTimeout(kBound));
}

TEST(TimerQueueTest, ClosureMayScheduleAnother) {
  absl::Notification second_ran;
  TimerQueue queue("test-nested");
  queue.Schedule(absl::Now(), [&] {
    queue.Schedule(absl::Now() + absl::Milliseconds(5),
                   [&] { second_ran.Notify(); });
  });
  EXPECT_TRUE(second_ran.WaitForNotificationWithTimeout(kBound));
}

TEST(TimerQueueTest, SizeCountsClosuresNotYetRun) {
  TimerQueue queue("test-size");
  EXPECT_EQ(queue.size(), 0);
  queue.Schedule(absl::Now() + kNever, [] {});
  queue.Schedule(absl::Now() + kNever, [] {});
  EXPECT_EQ(queue.size(), 2);
}

TEST(TimerQueueTest, DestructorDropsClosuresNotYetDueWithoutRunningThem) {
  std::atomic<int> ran{0};
  auto captured = std::make_shared<int>(0);
  absl::Notification due_ran;
  {
    TimerQueue queue("test-drop");
    queue.Schedule(absl::Now(), [&] {
      ++ran;
      due_ran.Notify();
    });
    ASSERT_TRUE(due_ran.WaitForNotificationWithTimeout(kBound));
    for (int i = 0; i < 3; ++i) {
      queue.Schedule(absl::Now() + kNever, [&ran, captured] { ++ran; });
    }
    EXPECT_EQ(captured.use_count(), 4);
  }
  EXPECT_EQ(ran.load(), 1);
  // The dropped closures, and their captures, are gone.
  EXPECT_EQ(captured.use_count(), 1);
}

TEST(TimerQueueTest, DestructorWaitsForTheClosureRunning) {
  absl::Notification started;
  std::atomic<bool> finished{false};
  {
    TimerQueue queue("test-join");
    queue.Schedule(absl::Now(), [&] {
      started.Notify();
      absl::SleepFor(absl::Milliseconds(50));
      finished = true;
    });
    ASSERT_TRUE(started.WaitForNotificationWithTimeout(kBound));
  }
  EXPECT_TRUE(finished.load());
}

TEST(TimerQueueTest, ClosuresScheduledFromManyThreadsAllRun) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  std::atomic<int> remaining{kThreads * kPerThread};
  absl::Notification all_ran;
  TimerQueue queue("test-threads");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        queue.Schedule(absl::Now() + absl::Milliseconds((t + i) % 7), [&] {
          if (--remaining == 0) all_ran.Notify();
        });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(all_ran.WaitForNotificationWithTimeout(kBound));
  EXPECT_EQ(remaining.load(), 0);
}

}  // namespace
}  // namespace pstore
