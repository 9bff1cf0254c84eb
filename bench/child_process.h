// ChildProcess: a program pstore-bench starts and stops by its process id
// (pstored, grpc-ceiling, nginx, redis-server, fio, gnuplot). Each child
// runs in its own process group with the default signal mask, its stdout
// and stderr in a log file, and dies with the harness (PR_SET_PDEATHSIG).
// Stop sends SIGTERM to the group and waits, bounded, then sends SIGKILL.
//
// Every live child is recorded in a process-wide registry, so that
// StopAllChildren can end them from the harness's signal thread on SIGINT
// or SIGTERM. Start must be called from the main thread (the death signal
// follows the thread that forked).
//
// Thread-compatible: one ChildProcess is used by one thread at a time;
// the registry is thread-safe.

#ifndef PSTORE_BENCH_CHILD_PROCESS_H_
#define PSTORE_BENCH_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pstore::bench {

class ChildProcess {
 public:
  // `name` labels messages; `argv[0]` is the program's path.
  ChildProcess(std::string name, std::vector<std::string> argv,
               std::string log_path);
  // Stops the child if it runs.
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Forks and execs. Internal if fork fails. A program that cannot be
  // executed exits 127 at once (see its log).
  absl::Status Start();

  // Waits up to `timeout` for `port_file` to hold a port; returns it.
  // Unavailable (with the log's tail) if the child exits or times out.
  absl::StatusOr<int> WaitForPortFile(const std::string& port_file,
                                      absl::Duration timeout);

  // Waits up to `timeout` until 127.0.0.1:`port` accepts connections.
  absl::Status WaitForTcp(int port, absl::Duration timeout);

  // Waits up to `timeout` for the child to exit by itself; returns its
  // waitpid status. DeadlineExceeded (after killing it) on timeout.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Sends SIGTERM to the child's group, waits up to `timeout`, then
  // SIGKILL. Returns the waitpid status; FailedPrecondition if not running.
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(10));

  // Returns true while the child runs.
  bool Running();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  // Returns the last `max_bytes` of the child's log.
  std::string LogTail(size_t max_bytes = 4000) const;

 private:
  // Reaps the child if it has exited; returns true if it has.
  bool Reap(int* status);

  const std::string name_;
  const std::vector<std::string> argv_;
  const std::string log_path_;
  pid_t pid_ = -1;
};

// Sends SIGTERM to every registered child's group, waits up to `timeout`
// for all, then SIGKILLs the rest. Safe from any thread.
void StopAllChildren(absl::Duration timeout);

// Returns a TCP port on 127.0.0.1 that was free a moment ago (bind to port
// 0, read it, close). For peers that cannot report the port they bound.
absl::StatusOr<int> FreeLoopbackPort();

// Returns a one-line description of a waitpid status ("exit 1", "signal 9").
std::string DescribeWaitStatus(int status);

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_CHILD_PROCESS_H_
