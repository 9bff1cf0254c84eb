#include "tests/testing/pstored_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace pstore::testing {

std::string PstoredPath() {
  const char* path = std::getenv("PSTORED_PATH");
  if (path != nullptr && *path != '\0') return path;
#ifdef PSTORED_DEFAULT_PATH
  return PSTORED_DEFAULT_PATH;
#else
  return "";
#endif
}

std::string PstoreCliPath() {
  const char* path = std::getenv("PSTORE_CLI_PATH");
  if (path != nullptr && *path != '\0') return path;
#ifdef PSTORE_CLI_DEFAULT_PATH
  return PSTORE_CLI_DEFAULT_PATH;
#else
  return "";
#endif
}

PstoredProcess::PstoredProcess(std::string data_dir,
                               std::vector<std::string> extra_flags)
    : data_dir_(std::move(data_dir)), extra_flags_(std::move(extra_flags)) {}

PstoredProcess::~PstoredProcess() {
  if (pid_ > 0) (void)Stop(SIGTERM, absl::Seconds(30));
}

absl::Status PstoredProcess::Start(absl::Duration timeout) {
  if (pid_ > 0) return absl::FailedPreconditionError("pstored is running");
  // An idle gRPC client reads the server's GOAWAY only when its backup
  // poller runs (every 5 s by default); pstored gives such clients 2 s
  // before it exits anyway. Poll often so that a stop in a test is quick.
  // Takes effect if set before the test creates its first channel.
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", 0);
  std::string binary = PstoredPath();
  if (binary.empty()) {
    return absl::FailedPreconditionError("PSTORED_PATH is not set");
  }
  std::filesystem::create_directories(data_dir_);
  std::string port_file = data_dir_ + "/port";
  std::filesystem::remove(port_file);
  log_path_ = data_dir_ + "/pstored.log";

  std::vector<std::string> args = prefix_;
  args.insert(
      args.end(),
      {
          binary,
          "--listen=127.0.0.1:0",
          "--metrics_listen=127.0.0.1:0",
          "--data_dir=" + data_dir_,
          "--port_file=" + port_file,
          "--dram_bytes=256MiB",
          "--nvme_bytes=512MiB",
          "--drain_seconds=10",
          "--sync_commits=false",
          // Tests may run on a nearly full disk; the faults test sets its own.
          "--cold_min_free_bytes=16MiB",
      });
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, STDERR_FILENO);
      dup2(log, STDOUT_FILENO);
    }
    execvp(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;

  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("pstored exited at start:\n", Log()));
    }
    std::ifstream in(port_file);
    int port = 0;
    int metrics_port = 0;
    if (in >> port >> metrics_port && port > 0) {
      port_ = port;
      metrics_port_ = metrics_port;
      address_ = absl::StrCat("127.0.0.1:", port);
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Kill();
  return absl::UnavailableError(
      absl::StrCat("pstored did not serve in time:\n", Log()));
}

absl::StatusOr<int> PstoredProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("pstored is not running");
  kill(pid_, signal);
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
  return absl::DeadlineExceededError("pstored did not exit in time; killed");
}

void PstoredProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool PstoredProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string PstoredProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace pstore::testing
