// ChildProcess: a program started and stopped by its process id, for the
// tests (a real pstored), the crash harness and pstore-bench (pstored and
// its peers: grpc-ceiling, nginx, redis-server, fio, gnuplot).
//
// Start forks and execs the program in a process group of its own, with
// the default signal mask and SIGPIPE disposition, stdin from /dev/null,
// and stdout and stderr appended to a log file. The child gets SIGKILL
// when its parent dies (PR_SET_PDEATHSIG), so that a test or harness that
// crashes, or is killed, leaves nothing running. That signal follows the
// *thread* that forked, not the process: the child is killed as soon as
// the thread that called Start exits, even if the process lives on. Call
// Start from a thread that outlives the child (the main thread, or the
// thread a test runs on).
//
// Stop sends SIGTERM to the child's group and waits, bounded, then sends
// SIGKILL; every wait here is bounded. Once the child has exited, what it
// left in its group (nginx workers, fio jobs) is killed as well.
//
// Every live child is recorded in a process-wide registry, so that
// StopAllChildren can end them all, e.g. from a signal-handling thread on
// SIGINT or SIGTERM.
//
// Thread-compatible: one ChildProcess is used by one thread at a time; the
// registry is thread-safe.

#ifndef PSTORE_UTIL_CHILD_PROCESS_H_
#define PSTORE_UTIL_CHILD_PROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pstore {

class ChildProcess {
 public:
  // `name` labels messages; `argv[0]` is the program, looked up in $PATH
  // when it has no slash. Output is appended to `log_path`.
  ChildProcess(std::string name, std::vector<std::string> argv,
               std::string log_path);
  // Stops the child if it runs (Stop with the default timeout).
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Forks and execs. FailedPrecondition if the child runs; ErrnoToStatus
  // codes if fork fails. A program that cannot be executed exits 127 at
  // once (its log says why); the child exits 126 if its parent died
  // before PR_SET_PDEATHSIG took effect.
  absl::Status Start();

  // Waits up to `timeout` for `port_file` to start with a port number
  // followed by whitespace (pstored writes "PORT\nMETRICS_PORT\n");
  // returns that port. Unavailable, with the log's tail,
  // if the child exits first or the time runs out (the child is then
  // stopped).
  absl::StatusOr<int> WaitForPortFile(const std::string& port_file,
                                      absl::Duration timeout);

  // Waits up to `timeout` until 127.0.0.1:`port` accepts connections.
  // Unavailable, with the log's tail, if the child exits first or the time
  // runs out (the child is then stopped).
  absl::Status WaitForTcp(int port, absl::Duration timeout);

  // Waits up to `timeout` for the child to exit by itself; returns its
  // waitpid status. FailedPrecondition if it is not running;
  // DeadlineExceeded, after stopping it, on timeout.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Sends `signal` to the child's group, waits up to `timeout` for the
  // child to exit, then sends SIGKILL. Returns the waitpid status;
  // FailedPrecondition if not running; DeadlineExceeded (the child killed
  // and reaped) if it outlived `timeout`.
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(10),
                           int signal = SIGTERM);

  // Sends SIGKILL to the child's group and reaps the child. Does nothing
  // if it is not running.
  void Kill();

  // Returns true while the child runs (reaps it once it has exited).
  bool Running();

  // The child's process id (also its group's), or -1 when not running.
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const std::string& log_path() const { return log_path_; }
  // Returns the last `max_bytes` of the child's log ("..." before them if
  // cut); empty if there is no log.
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  // Reaps the child if it has exited and kills what it left in its group;
  // returns true if it has exited (or is not running).
  bool Reap(int* status);
  // Returns the error of a child that exited with `status` while starting.
  absl::Status ExitedAtStart(int status) const;
  // Forgets the child after it was reaped.
  void Forget();

  const std::string name_;
  const std::vector<std::string> argv_;
  const std::string log_path_;
  pid_t pid_ = -1;
};

// Sends SIGTERM to the group of every live ChildProcess of this process,
// waits up to `timeout` for all of them, then SIGKILLs the rest and reaps
// them. Safe from any thread.
void StopAllChildren(absl::Duration timeout);

// Returns a TCP port on 127.0.0.1 that was free a moment ago (bind to port
// 0, read it, close): for programs that cannot report the port they bound.
// ErrnoToStatus codes if no socket can be bound.
absl::StatusOr<int> FreeLoopbackPort();

// Returns a one-line description of a waitpid status: "exit 1",
// "signal 9".
std::string DescribeWaitStatus(int status);

}  // namespace pstore

#endif  // PSTORE_UTIL_CHILD_PROCESS_H_
