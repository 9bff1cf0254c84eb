// PstoredProcess: a real pstored binary started for a test, listening on a
// free loopback port, with its data in a temporary directory. The binary is
// $PSTORED_PATH, or the pstored of the build tree the test was built in.
//
// Start waits, bounded, until the server answers; Stop sends SIGTERM and
// waits, bounded, for the exit (then SIGKILL). The destructor stops it.
// The server runs as a ChildProcess (util/child_process.h): in its own
// process group, and killed when the thread that called Start ends, so a
// test that crashes or is killed leaves no pstored behind. Call Start from
// the test's own thread.

#ifndef PSTORE_TESTS_TESTING_PSTORED_PROCESS_H_
#define PSTORE_TESTS_TESTING_PSTORED_PROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "util/child_process.h"

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
  // Returns the exit status as waitpid gives it; FailedPrecondition if not
  // running; DeadlineExceeded if it had to be killed.
  absl::StatusOr<int> Stop(int signal = SIGTERM,
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
  // The process id while it runs, else -1.
  pid_t pid() const { return process_ == nullptr ? -1 : process_->pid(); }
  const std::string& data_dir() const { return data_dir_; }
  // Returns what the process wrote to stderr so far.
  std::string Log() const;

 private:
  const std::string data_dir_;
  const std::vector<std::string> extra_flags_;
  std::vector<std::string> prefix_;
  std::unique_ptr<ChildProcess> process_;  // Of the last Start.
  int port_ = 0;
  int metrics_port_ = 0;
  std::string address_;
  std::string log_path_;
};

// Returns $PSTORED_PATH, else the build tree's pstored.
std::string PstoredPath();

// Returns $PSTORE_CLI_PATH, else the build tree's pstore-cli.
std::string PstoreCliPath();

// What a shell command printed (stdout and stderr) and its exit code (-1
// if it did not exit normally).
struct CommandResult {
  int exit_code = -1;
  std::string out;
};

// Runs `command` with /bin/sh and waits for it.
CommandResult RunCommand(const std::string& command);

// Makes, with openssl, in directory `dir`: a CA (ca.pem, ca.key), a
// certificate for 127.0.0.1 and localhost (server.pem, server.key) and a
// client certificate (client.pem, client.key), all signed by the CA.
// Returns false if openssl is missing or fails.
bool MakeTestCertificates(const std::string& dir);

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_PSTORED_PROCESS_H_
