#include "tests/testing/pstored_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "util/file_io.h"
#include "util/status.h"

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
  if (pid() > 0) (void)Stop(SIGTERM, absl::Seconds(30));
}

absl::Status PstoredProcess::Start(absl::Duration timeout) {
  if (pid() > 0) return absl::FailedPreconditionError("pstored is running");
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
  process_ =
      std::make_unique<ChildProcess>("pstored", std::move(args), log_path_);
  PSTORE_RETURN_IF_ERROR(process_->Start());
  // ChildProcess stops the process on a timeout and puts the log's tail in
  // the error.
  PSTORE_ASSIGN_OR_RETURN(int port,
                          process_->WaitForPortFile(port_file, timeout));
  // The file holds "PORT\nMETRICS_PORT\n", written whole.
  absl::StatusOr<std::string> ports = ReadFileToString(port_file);
  if (!ports.ok()) return ports.status();
  std::vector<absl::string_view> words =
      absl::StrSplit(*ports, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  int metrics_port = 0;
  if (words.size() < 2 || !absl::SimpleAtoi(words[1], &metrics_port)) {
    Kill();
    return absl::InternalError(
        absl::StrCat("pstored wrote no metrics port: '", *ports, "'"));
  }
  port_ = port;
  metrics_port_ = metrics_port;
  address_ = absl::StrCat("127.0.0.1:", port);
  return absl::OkStatus();
}

absl::StatusOr<int> PstoredProcess::Stop(int signal, absl::Duration timeout) {
  // A process that exited by itself is reaped here, with its status.
  if (pid() <= 0)
    return absl::FailedPreconditionError("pstored is not running");
  return process_->Stop(timeout, signal);
}

void PstoredProcess::Kill() {
  if (process_ != nullptr) process_->Kill();
}

bool PstoredProcess::Running() {
  return process_ != nullptr && process_->Running();
}

std::string PstoredProcess::Log() const {
  absl::StatusOr<std::string> log = ReadFileToString(log_path_);
  return log.ok() ? *std::move(log) : "";
}

CommandResult RunCommand(const std::string& command) {
  CommandResult run;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t got;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    run.out.append(buffer, got);
  }
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

bool MakeTestCertificates(const std::string& dir) {
  if (RunCommand("command -v openssl").exit_code != 0) return false;
  std::string script = absl::StrCat(
      "set -e; cd ", dir, "; ",
      "key() { openssl genpkey -algorithm EC -pkeyopt "
      "ec_paramgen_curve:P-256 -out $1 2>/dev/null; }; ",
      "key ca.key; openssl req -x509 -new -key ca.key -out ca.pem -days 2 "
      "-subj /CN=pstore-test-ca; ",
      "key server.key; openssl req -new -key server.key -out server.csr "
      "-subj /CN=localhost; ",
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext; ",
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -out server.pem -days 2 -extfile server.ext "
      "2>/dev/null; ",
      "key client.key; openssl req -new -key client.key -out client.csr "
      "-subj /CN=pstore-test-client; ",
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -out client.pem -days 2 2>/dev/null");
  std::string path = dir + "/make-certs.sh";
  {
    FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr) return false;
    std::fprintf(file, "%s\n", script.c_str());
    std::fclose(file);
  }
  return RunCommand("bash " + path).exit_code == 0;
}

}  // namespace pstore::testing
