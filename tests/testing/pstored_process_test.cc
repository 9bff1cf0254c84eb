// PstoredProcess: a pstored it started never outlives the process that
// started it, even one killed with SIGKILL (a crashed or killed test must
// not leave a server running).
//
// The test runs this binary again with --start_pstored_and_wait=DIR: that
// process starts a pstored through PstoredProcess, writes its pid to
// DIR/pstored.pid and waits. The test kills it with SIGKILL and checks,
// within a bounded wait, that the pstored is gone.

#include "tests/testing/pstored_process.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "util/child_process.h"
#include "util/file_io.h"

namespace pstore::testing {
namespace {

constexpr char kStartFlag[] = "--start_pstored_and_wait=";

// The re-executed binary: starts a pstored with its data under `dir`,
// writes its pid to `dir`/pstored.pid (whole, then renamed), and waits up
// to two minutes for the test to kill it. Returns the exit code.
int StartPstoredAndWait(const std::string& dir) {
  PstoredProcess server(dir + "/data", {});
  if (absl::Status started = server.Start(); !started.ok()) {
    std::fprintf(stderr, "%s\n", started.ToString().c_str());
    return 1;
  }
  const std::string pid_file = dir + "/pstored.pid";
  std::ofstream(pid_file + ".tmp") << server.pid() << "\n";
  std::filesystem::rename(pid_file + ".tmp", pid_file);
  absl::SleepFor(absl::Minutes(2));
  return 0;
}

// Returns true if process `pid` has exited: it no longer exists, or is a
// zombie its new parent has not reaped yet.
bool Exited(pid_t pid) {
  if (kill(pid, 0) == -1 && errno == ESRCH) return true;
  absl::StatusOr<std::string> stat =
      ReadFileToString(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return true;
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
  size_t after_comm = stat->rfind(") ");
  return after_comm != std::string::npos && after_comm + 2 < stat->size() &&
         (*stat)[after_comm + 2] == 'Z';
}

TEST(PstoredProcessTest, APstoredDiesWithTheProcessThatStartedIt) {
  TempDir dir;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  ChildProcess starter("pstored starter",
                       {self, absl::StrCat(kStartFlag, dir.path().string())},
                       dir.Sub("starter.log"));
  ASSERT_OK(starter.Start());
  pid_t pstored = -1;
  for (int i = 0; i < 6000 && pstored <= 0 && starter.Running(); ++i) {
    absl::StatusOr<std::string> text = ReadFileToString(dir.Sub("pstored.pid"));
    int pid = 0;
    if (text.ok() &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid)) {
      pstored = pid;
    } else {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  ASSERT_GT(pstored, 0) << starter.LogTail();

  // Only the starter: its process group is left alone, and it is not
  // reaped (which would kill what is left in its group) until the check
  // is done.
  ASSERT_EQ(kill(starter.pid(), SIGKILL), 0);
  bool exited = false;
  for (int i = 0; i < 3000 && !exited; ++i) {
    exited = Exited(pstored);
    if (!exited) absl::SleepFor(absl::Milliseconds(10));
  }
  if (!exited) kill(pstored, SIGKILL);  // Left behind: this test's to end.
  EXPECT_TRUE(exited) << "pstored " << pstored
                      << " outlived the process that started it";
}

}  // namespace
}  // namespace pstore::testing

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (absl::StartsWith(argv[i], pstore::testing::kStartFlag)) {
      return pstore::testing::StartPstoredAndWait(
          argv[i] + std::strlen(pstore::testing::kStartFlag));
    }
  }
  ::testing::InitGoogleMock(&argc, argv);
  return RUN_ALL_TESTS();
}
