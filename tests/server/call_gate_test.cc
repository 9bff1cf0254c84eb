// CallGate: it counts the calls that Enter and Leave, refuses Enter once
// closed, and WaitIdle returns once no call is counted or its deadline has
// passed.

#include "server/call_gate.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace pstore {
namespace {

TEST(CallGateTest, CountsCallsThatEnterUntilTheyLeave) {
  CallGate gate;
  EXPECT_EQ(gate.in_flight(), 0);
  EXPECT_FALSE(gate.closed());
  ASSERT_TRUE(gate.Enter());
  ASSERT_TRUE(gate.Enter());
  EXPECT_EQ(gate.in_flight(), 2);
  gate.Leave();
  EXPECT_EQ(gate.in_flight(), 1);
  gate.Leave();
  EXPECT_EQ(gate.in_flight(), 0);
}

TEST(CallGateTest, CloseRefusesLaterEntersAndKeepsCallsInFlight) {
  CallGate gate;
  ASSERT_TRUE(gate.Enter());
  gate.Close();
  EXPECT_TRUE(gate.closed());
  EXPECT_FALSE(gate.Enter());
  EXPECT_FALSE(gate.Enter());
  // A refused Enter is not counted; the call from before still is.
  EXPECT_EQ(gate.in_flight(), 1);
  gate.Leave();
  EXPECT_EQ(gate.in_flight(), 0);
  EXPECT_FALSE(gate.Enter());
  EXPECT_EQ(gate.in_flight(), 0);
}

TEST(CallGateTest, WaitIdleReturnsAtOnceWhenNoCallIsCounted) {
  CallGate gate;
  // A deadline already past: there is nothing to wait for.
  EXPECT_TRUE(gate.WaitIdle(absl::InfinitePast()));
  ASSERT_TRUE(gate.Enter());
  gate.Leave();
  gate.Close();
  EXPECT_TRUE(gate.WaitIdle(absl::InfinitePast()));
}

TEST(CallGateTest, WaitIdleGivesUpAtTheDeadlineWhileACallStays) {
  CallGate gate;
  ASSERT_TRUE(gate.Enter());
  gate.Close();
  EXPECT_FALSE(gate.WaitIdle(absl::InfinitePast()));
  EXPECT_FALSE(gate.WaitIdle(absl::Now() + absl::Milliseconds(20)));
  EXPECT_EQ(gate.in_flight(), 1);
}

TEST(CallGateTest, WaitIdleReturnsWhenTheLastCallLeaves) {
  constexpr int kCalls = 8;
  CallGate gate;
  absl::Notification go;
  std::vector<std::thread> calls;
  for (int i = 0; i < kCalls; ++i) ASSERT_TRUE(gate.Enter());
  for (int i = 0; i < kCalls; ++i) {
    calls.emplace_back([&] {
      go.WaitForNotification();
      gate.Leave();
    });
  }
  gate.Close();
  go.Notify();
  // Bounded far beyond what the threads need.
  EXPECT_TRUE(gate.WaitIdle(absl::Now() + absl::Seconds(60)));
  EXPECT_EQ(gate.in_flight(), 0);
  for (std::thread& call : calls) call.join();
}

TEST(CallGateTest, EveryEnterRacingCloseIsRefusedOrCounted) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 10000;
  for (int attempt = 0; attempt < 20; ++attempt) {
    CallGate gate;
    std::atomic<int> entered_after_close{0};
    std::atomic<bool> closed{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kRounds; ++i) {
          if (!gate.Enter()) return;
          // Once the closer has seen no call in flight, none may enter.
          if (closed.load()) ++entered_after_close;
          gate.Leave();
        }
      });
    }
    gate.Close();
    ASSERT_TRUE(gate.WaitIdle(absl::Now() + absl::Seconds(60)));
    closed = true;
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(entered_after_close.load(), 0);
    EXPECT_EQ(gate.in_flight(), 0);
  }
}

}  // namespace
}  // namespace pstore
