#include "bench/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace pstore::bench {
namespace {

// The process ids of live children.
class Registry {
 public:
  void Add(pid_t pid) {
    absl::MutexLock lock(&mu_);
    pids_.insert(pid);
  }
  void Remove(pid_t pid) {
    absl::MutexLock lock(&mu_);
    pids_.erase(pid);
  }
  std::set<pid_t> Snapshot() {
    absl::MutexLock lock(&mu_);
    return pids_;
  }

 private:
  absl::Mutex mu_;
  std::set<pid_t> pids_ ABSL_GUARDED_BY(mu_);
};

Registry& Children() {
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace

ChildProcess::ChildProcess(std::string name, std::vector<std::string> argv,
                           std::string log_path)
    : name_(std::move(name)),
      argv_(std::move(argv)),
      log_path_(std::move(log_path)) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) (void)Stop();  // Best effort: Stop ends in SIGKILL anyway.
}

absl::Status ChildProcess::Start() {
  if (pid_ > 0) return absl::FailedPreconditionError(name_ + " is running");
  std::vector<std::string> args = argv_;
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    return absl::InternalError(
        absl::StrCat("fork for ", name_, ": ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Also set the group here, so that a Stop right after Start finds it.
  setpgid(pid, pid);
  pid_ = pid;
  Children().Add(pid);
  return absl::OkStatus();
}

bool ChildProcess::Reap(int* status) {
  if (pid_ <= 0) return true;
  pid_t done = waitpid(pid_, status, WNOHANG);
  if (done == pid_ || (done < 0 && errno == ECHILD)) {
    Children().Remove(pid_);
    // Helpers the child left in its group (nginx workers, fio jobs).
    kill(-pid_, SIGKILL);
    pid_ = -1;
    return true;
  }
  return false;
}

absl::StatusOr<int> ChildProcess::WaitForPortFile(const std::string& port_file,
                                                  absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (Reap(&status)) {
      return absl::UnavailableError(absl::StrCat(name_, " exited at start (",
                                                 DescribeWaitStatus(status),
                                                 "):\n", LogTail()));
    }
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return port;
    absl::SleepFor(absl::Milliseconds(10));
  }
  (void)Stop(absl::Seconds(2));
  return absl::UnavailableError(
      absl::StrCat(name_, " did not report its port in time:\n", LogTail()));
}

absl::Status ChildProcess::WaitForTcp(int port, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (Reap(&status)) {
      return absl::UnavailableError(absl::StrCat(name_, " exited at start (",
                                                 DescribeWaitStatus(status),
                                                 "):\n", LogTail()));
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<uint16_t>(port));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      int connected =
          connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
      close(fd);
      if (connected == 0) return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  (void)Stop(absl::Seconds(2));
  return absl::UnavailableError(
      absl::StrCat(name_, " did not accept connections on port ", port,
                   " in time:\n", LogTail()));
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError(name_ + " is not running");
  }
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (Reap(&status)) return status;
    absl::SleepFor(absl::Milliseconds(5));
  }
  (void)Stop(absl::Seconds(2));
  return absl::DeadlineExceededError(absl::StrCat(
      name_, " did not finish in ", absl::FormatDuration(timeout), "; killed"));
}

absl::StatusOr<int> ChildProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError(name_ + " is not running");
  }
  pid_t pid = pid_;
  kill(-pid, SIGTERM);
  kill(pid, SIGTERM);
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (Reap(&status)) return status;
    absl::SleepFor(absl::Milliseconds(5));
  }
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  Children().Remove(pid);
  pid_ = -1;
  return absl::DeadlineExceededError(
      absl::StrCat(name_, " did not stop within ",
                   absl::FormatDuration(timeout), " of SIGTERM; killed"));
}

bool ChildProcess::Running() {
  int status = 0;
  return !Reap(&status);
}

std::string ChildProcess::LogTail(size_t max_bytes) const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  std::string log = text.str();
  if (log.size() > max_bytes) log = "..." + log.substr(log.size() - max_bytes);
  return log;
}

void StopAllChildren(absl::Duration timeout) {
  std::set<pid_t> pids = Children().Snapshot();
  for (pid_t pid : pids) {
    kill(-pid, SIGTERM);
    kill(pid, SIGTERM);
  }
  absl::Time deadline = absl::Now() + timeout;
  std::set<pid_t> left = pids;
  while (!left.empty() && absl::Now() < deadline) {
    for (auto it = left.begin(); it != left.end();) {
      int status = 0;
      pid_t done = waitpid(*it, &status, WNOHANG);
      if (done == *it || (done < 0 && errno == ECHILD)) {
        kill(-*it, SIGKILL);
        Children().Remove(*it);
        it = left.erase(it);
      } else {
        ++it;
      }
    }
    if (!left.empty()) absl::SleepFor(absl::Milliseconds(10));
  }
  for (pid_t pid : left) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    Children().Remove(pid);
  }
}

absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int error = errno;
    close(fd);
    return absl::InternalError(
        absl::StrCat("bind 127.0.0.1:0: ", std::strerror(error)));
  }
  close(fd);
  return ntohs(address.sin_port);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return absl::StrCat("status ", status);
}

}  // namespace pstore::bench
