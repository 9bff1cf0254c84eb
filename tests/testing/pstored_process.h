// PstoredProcess: a real pstored binary started for a test, listening on a
// free loopback port, with its data in a temporary directory. The binary is
// $PSTORED_PATH, or the pstored of the build tree the test was built in.
//
// Start waits, bounded, until the server answers; Stop sends SIGTERM and
// waits, bounded, for the exit (then SIGKILL). The destructor stops it.

#ifndef PSTORE_TESTS_TESTING_PSTORED_PROCESS_H_
#define PSTORE_TESTS_TESTING_PSTORED_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pstore::testing {

class PstoredProcess {
 public:
  // Data goes under `data_dir`; `extra_flags` are appended to the command
  // line (e.g. "--dram_bytes=64MiB").
  PstoredProcess(std::string data_dir, std::vector<std::string> extra_flags);
  ~PstoredProcess();

  PstoredProcess(const PstoredProcess&) = delete;
  PstoredProcess& operator=(const PstoredProcess&) = delete;

  // Runs pstored under `prefix` (e.g. {"fiu-run", "-x"}) from the next
  // Start on.
  void SetCommandPrefix(std::vector<std::string> prefix) {
    prefix_ = std::move(prefix);
  }

  // Starts pstored and waits up to `timeout` for it to serve. Returns
  // FailedPrecondition if it is running; Unavailable if it exits or does
  // not serve in time (its log is in the message).
  absl::Status Start(absl::Duration timeout = absl::Seconds(60));

  // Sends `signal` and waits up to `timeout` for exit; kills it after.
  // Returns the exit status as waitpid gives it, or an error if not
  // running.
  absl::StatusOr<int> Stop(int signal = 15,
                           absl::Duration timeout = absl::Seconds(60));

  // Kills with SIGKILL and reaps.
  void Kill();

  // Returns true while the process runs.
  bool Running();

  // "127.0.0.1:PORT" once started.
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // The port of /metrics, /healthz and /readyz (0 if off).
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  const std::string& data_dir() const { return data_dir_; }
  // Returns what the process wrote to stderr so far.
  std::string Log() const;

 private:
  const std::string data_dir_;
  const std::vector<std::string> extra_flags_;
  std::vector<std::string> prefix_;
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  std::string address_;
  std::string log_path_;
};

// Returns $PSTORED_PATH, else the build tree's pstored.
std::string PstoredPath();

// Returns $PSTORE_CLI_PATH, else the build tree's pstore-cli.
std::string PstoreCliPath();

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_PSTORED_PROCESS_H_
