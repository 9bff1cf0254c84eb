// ChildProcess with real programs (sh, sleep): output in the log, exit
// statuses, a bounded stop that ends in SIGKILL, waits for a port, and the
// death signal tied to the thread that started the child.

#include "util/child_process.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::testing::HasSubstr;

// Returns a child that runs `script` with sh, logging to `dir`.
ChildProcess Shell(const TempDir& dir, const std::string& script) {
  return ChildProcess("sh", {"/bin/sh", "-c", script}, dir.Sub("sh.log"));
}

// Waits, bounded, until no process is left in group `pgid`: true if none
// is. What a group kill hit is reaped by whoever inherited it, later.
bool GroupGone(pid_t pgid) {
  for (int i = 0; i < 2000; ++i) {
    if (kill(-pgid, 0) == -1) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

// Waits, bounded, until `child`'s log contains `text`.
bool WaitForLog(const ChildProcess& child, const std::string& text) {
  for (int i = 0; i < 2000; ++i) {
    if (child.LogTail().find(text) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

TEST(ChildProcessTest, WritesStdoutAndStderrToTheLogAndReturnsTheExitStatus) {
  TempDir dir;
  ChildProcess child = Shell(dir, "echo out; echo err >&2; exit 3");
  ASSERT_OK(child.Start());
  ASSERT_OK_AND_ASSIGN(int status, child.Wait(absl::Seconds(30)));
  EXPECT_EQ(DescribeWaitStatus(status), "exit 3");
  EXPECT_EQ(child.LogTail(), "out\nerr\n");
  EXPECT_EQ(child.LogTail(4), "...err\n");
  EXPECT_FALSE(child.Running());
  EXPECT_EQ(child.pid(), -1);
}

TEST(ChildProcessTest, FindsAProgramInPathAndExits127WhenThereIsNone) {
  TempDir dir;
  ChildProcess sh("sh", {"sh", "-c", "exit 0"}, dir.Sub("sh.log"));
  ASSERT_OK(sh.Start());
  ASSERT_OK_AND_ASSIGN(int status, sh.Wait(absl::Seconds(30)));
  EXPECT_EQ(DescribeWaitStatus(status), "exit 0");

  ChildProcess missing("missing", {dir.Sub("no-such-program")},
                       dir.Sub("missing.log"));
  ASSERT_OK(missing.Start());
  ASSERT_OK_AND_ASSIGN(status, missing.Wait(absl::Seconds(30)));
  EXPECT_EQ(DescribeWaitStatus(status), "exit 127");
}

TEST(ChildProcessTest, RunsInItsOwnGroupWithTheDefaultSignalMask) {
  TempDir dir;
  // Blocked here, on the thread that forks: the child must not inherit it.
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
  ChildProcess child =
      Shell(dir, "grep -E '^(SigBlk|SigIgn)' /proc/self/status; sleep 60");
  absl::Status started = child.Start();
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &old, nullptr), 0);
  ASSERT_OK(started);
  EXPECT_EQ(getpgid(child.pid()), child.pid());
  ASSERT_TRUE(WaitForLog(child, "SigIgn")) << child.LogTail();
  EXPECT_THAT(child.LogTail(), HasSubstr("SigBlk:\t0000000000000000"));
  ASSERT_OK_AND_ASSIGN(int status, child.Stop());
  EXPECT_EQ(DescribeWaitStatus(status), "signal 15");
}

TEST(ChildProcessTest, StopEndsAChildThatIgnoresSigtermWithSigkill) {
  TempDir dir;
  ChildProcess child =
      Shell(dir, "trap '' TERM; echo ready; while :; do sleep 1; done");
  ASSERT_OK(child.Start());
  ASSERT_TRUE(WaitForLog(child, "ready")) << child.LogTail();
  const pid_t pid = child.pid();
  EXPECT_THAT(child.Stop(absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(child.Running());
  // Reaped, and its group (the sleep) gone with it.
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_TRUE(GroupGone(pid));
  EXPECT_THAT(child.Stop(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ChildProcessTest, KillEndsTheChildAndWhatItLeftInItsGroup) {
  TempDir dir;
  ChildProcess child = Shell(dir, "sleep 60 & echo ready; wait");
  ASSERT_OK(child.Start());
  ASSERT_TRUE(WaitForLog(child, "ready")) << child.LogTail();
  const pid_t pid = child.pid();
  child.Kill();
  EXPECT_EQ(child.pid(), -1);
  EXPECT_EQ(kill(pid, 0), -1);
  // SIGKILL went to the whole group, the sleep sh started too.
  EXPECT_TRUE(GroupGone(pid));
}

TEST(ChildProcessTest, WaitForPortFileReturnsThePortOnceWritten) {
  TempDir dir;
  const std::string port_file = dir.Sub("port");
  ChildProcess child =
      Shell(dir, absl::StrCat("sleep 0.2; printf '4242\\n4343\\n' > ",
                              port_file, ".tmp; mv ", port_file, ".tmp ",
                              port_file, "; sleep 60"));
  ASSERT_OK(child.Start());
  ASSERT_OK_AND_ASSIGN(int port,
                       child.WaitForPortFile(port_file, absl::Seconds(30)));
  EXPECT_EQ(port, 4242);
  EXPECT_TRUE(child.Running());
}

TEST(ChildProcessTest, WaitForPortFileReportsAnExitAtStartWithTheLog) {
  TempDir dir;
  ChildProcess child = Shell(dir, "echo unknown flag --frob >&2; exit 2");
  ASSERT_OK(child.Start());
  absl::StatusOr<int> port =
      child.WaitForPortFile(dir.Sub("port"), absl::Seconds(30));
  EXPECT_THAT(port, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(port.status().message()),
              HasSubstr("exited at start (exit 2)"));
  EXPECT_THAT(std::string(port.status().message()),
              HasSubstr("unknown flag --frob"));
}

TEST(ChildProcessTest, WaitForPortFileStopsAChildThatNeverWritesIt) {
  TempDir dir;
  ChildProcess child = Shell(dir, "sleep 60");
  ASSERT_OK(child.Start());
  EXPECT_THAT(child.WaitForPortFile(dir.Sub("port"), absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(child.Running());
}

TEST(ChildProcessTest, WaitForTcpReturnsOnceThePortAcceptsConnections) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(int port, FreeLoopbackPort());
  EXPECT_GT(port, 0);
  // The listener is this test's; the child only has to stay alive.
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
      0);
  ASSERT_EQ(listen(listener, 4), 0);
  ChildProcess child = Shell(dir, "sleep 60");
  ASSERT_OK(child.Start());
  EXPECT_OK(child.WaitForTcp(port, absl::Seconds(30)));
  close(listener);

  ChildProcess exits = Shell(dir, "exit 1");
  ASSERT_OK(exits.Start());
  ASSERT_OK_AND_ASSIGN(int closed_port, FreeLoopbackPort());
  EXPECT_THAT(exits.WaitForTcp(closed_port, absl::Seconds(30)),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(ChildProcessTest, StopAllChildrenEndsEveryLiveChild) {
  TempDir dir;
  ChildProcess first = Shell(dir, "sleep 60");
  ChildProcess second =
      Shell(dir, "trap '' TERM; echo ready; while :; do sleep 1; done");
  ASSERT_OK(first.Start());
  ASSERT_OK(second.Start());
  ASSERT_TRUE(WaitForLog(second, "ready")) << second.LogTail();
  const pid_t first_pid = first.pid();
  const pid_t second_pid = second.pid();
  StopAllChildren(absl::Milliseconds(500));
  EXPECT_FALSE(first.Running());
  EXPECT_FALSE(second.Running());
  EXPECT_TRUE(GroupGone(first_pid));
  EXPECT_TRUE(GroupGone(second_pid));
}

// PR_SET_PDEATHSIG fires when the thread that forked exits, even though
// the process lives on: what the header warns of.
TEST(ChildProcessTest, TheChildDiesWithTheThreadThatStartedIt) {
  TempDir dir;
  ChildProcess child = Shell(dir, "echo started; sleep 60");
  absl::Status started;
  bool running = false;
  std::thread starter([&] {
    started = child.Start();
    // The death signal is set between fork and exec: once the shell runs,
    // it is set, and the thread's exit sends it.
    running = started.ok() && WaitForLog(child, "started");
  });
  starter.join();
  ASSERT_OK(started);
  ASSERT_TRUE(running) << child.LogTail();
  ASSERT_OK_AND_ASSIGN(int status, child.Wait(absl::Seconds(30)));
  EXPECT_EQ(DescribeWaitStatus(status), "signal 9");
}

TEST(ChildProcessTest, DescribesWaitStatuses) {
  EXPECT_EQ(DescribeWaitStatus(0), "exit 0");
  EXPECT_EQ(DescribeWaitStatus(2 << 8), "exit 2");
  EXPECT_EQ(DescribeWaitStatus(SIGKILL), "signal 9");
}

}  // namespace
}  // namespace pstore
