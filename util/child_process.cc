#include "util/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "util/file_io.h"
#include "util/status.h"

namespace pstore {
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

// Returns `program` if it has a slash, else the first executable of that
// name in $PATH (else `program`, which exec then fails to find). Done
// before fork: the child of a threaded process may only make
// async-signal-safe calls.
std::string ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return program;
}

// Returns true if process `pid` has exited and was reaped here, or is not
// a child of this process (any more).
bool Reaped(pid_t pid, int* status) {
  pid_t done = waitpid(pid, status, WNOHANG);
  return done == pid || (done < 0 && errno == ECHILD);
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
  if (argv_.empty()) {
    return absl::InvalidArgumentError(name_ + ": no program given");
  }
  std::vector<std::string> args = argv_;
  const std::string program = ResolveProgram(args[0]);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return ErrnoToStatus(errno, absl::StrCat("fork for ", name_));
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent died before the line above: nobody would stop the child.
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
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  // Also set the group here, so that a Stop right after Start finds it.
  setpgid(pid, pid);
  pid_ = pid;
  Children().Add(pid);
  return absl::OkStatus();
}

void ChildProcess::Forget() {
  Children().Remove(pid_);
  pid_ = -1;
}

bool ChildProcess::Reap(int* status) {
  if (pid_ <= 0) return true;
  if (!Reaped(pid_, status)) return false;
  // Helpers the child left in its group (nginx workers, fio jobs).
  kill(-pid_, SIGKILL);
  Forget();
  return true;
}

absl::Status ChildProcess::ExitedAtStart(int status) const {
  return absl::UnavailableError(absl::StrCat(name_, " exited at start (",
                                             DescribeWaitStatus(status), "):\n",
                                             LogTail()));
}

absl::StatusOr<int> ChildProcess::WaitForPortFile(const std::string& port_file,
                                                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (Reap(&status)) return ExitedAtStart(status);
    // The number counts once whitespace follows it: a file being written
    // in place is not read while the number is cut.
    absl::StatusOr<std::string> text = ReadFileToString(port_file);
    if (text.ok()) {
      size_t end = text->find_first_of(" \t\n");
      int port = 0;
      if (end != std::string::npos &&
          absl::SimpleAtoi(absl::string_view(*text).substr(0, end), &port) &&
          port > 0) {
        return port;
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  (void)Stop(absl::Seconds(2));  // The timeout is the error to report.
  return absl::UnavailableError(
      absl::StrCat(name_, " did not report its port in ",
                   absl::FormatDuration(timeout), ":\n", LogTail()));
}

absl::Status ChildProcess::WaitForTcp(int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (Reap(&status)) return ExitedAtStart(status);
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
  (void)Stop(absl::Seconds(2));  // The timeout is the error to report.
  return absl::UnavailableError(
      absl::StrCat(name_, " did not accept connections on port ", port, " in ",
                   absl::FormatDuration(timeout), ":\n", LogTail()));
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError(name_ + " is not running");
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (Reap(&status)) return status;
    absl::SleepFor(absl::Milliseconds(5));
  }
  (void)Stop(absl::Seconds(2));  // The timeout is the error to report.
  return absl::DeadlineExceededError(absl::StrCat(
      name_, " did not finish in ", absl::FormatDuration(timeout), "; killed"));
}

absl::StatusOr<int> ChildProcess::Stop(absl::Duration timeout, int signal) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError(name_ + " is not running");
  }
  const pid_t pid = pid_;
  kill(-pid, signal);
  kill(pid, signal);  // In case it left its group.
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (Reap(&status)) return status;
    absl::SleepFor(absl::Milliseconds(5));
  }
  Kill();
  return absl::DeadlineExceededError(absl::StrCat(
      name_, " did not stop within ", absl::FormatDuration(timeout),
      " of signal ", signal, "; killed"));
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int status = 0;
  // Bounded: SIGKILL cannot be caught, and the child is ours to reap.
  waitpid(pid_, &status, 0);
  Forget();
}

bool ChildProcess::Running() {
  int status = 0;
  return !Reap(&status);
}

std::string ChildProcess::LogTail(size_t max_bytes) const {
  absl::StatusOr<std::string> log = ReadFileToString(log_path_);
  if (!log.ok()) return "";
  if (log->size() > max_bytes) {
    return "..." + log->substr(log->size() - max_bytes);
  }
  return *std::move(log);
}

void StopAllChildren(absl::Duration timeout) {
  const std::set<pid_t> pids = Children().Snapshot();
  for (pid_t pid : pids) {
    kill(-pid, SIGTERM);
    kill(pid, SIGTERM);
  }
  const absl::Time deadline = absl::Now() + timeout;
  std::set<pid_t> left = pids;
  while (!left.empty() && absl::Now() < deadline) {
    for (auto it = left.begin(); it != left.end();) {
      int status = 0;
      if (Reaped(*it, &status)) {
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
  if (fd < 0) return ErrnoToStatus(errno, "socket");
  FdCloser closer(fd);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return ErrnoToStatus(errno, "bind 127.0.0.1:0");
  }
  return ntohs(address.sin_port);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  return absl::StrCat("status ", status);
}

}  // namespace pstore
