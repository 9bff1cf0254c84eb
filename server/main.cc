// pstored: the pstore daemon. See server/flags.h for the flags and
// `pstored --help` for their defaults.

#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/stubs/logging.h"
#include "pstore_version.h"  // Generated: PSTORE_VERSION.
#include "server/flags.h"
#include "server/server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "util/file_io.h"
#include "util/status.h"

namespace {

// Writes the ports to `path`, whole or not at all.
absl::Status WritePortFile(const std::string& path, int port,
                           int metrics_port) {
  PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<pstore::ReplacingFile> file,
                          pstore::ReplacingFile::Create(path, 0));
  const std::string text = absl::StrCat(port, "\n", metrics_port, "\n");
  PSTORE_RETURN_IF_ERROR(file->Write(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(text.data()), text.size())));
  return file->Commit();
}

// glibc's allocator, set for a daemon whose data path must not fault.
// Block memory comes from the BufferPool; what is left on the heap that is
// large is gRPC's receive buffers (up to several MiB per read of a put's
// messages) and protobuf's strings. glibc by default, or with a low fixed
// mmap threshold, maps each such buffer fresh and unmaps it on free, so
// every page of every received byte is faulted in again (42-67k minor
// faults per GiB put, bench/README.md "Figures behind choices in the
// code"). Serving them from the heap (a 32 MiB threshold, glibc's largest)
// and keeping freed heap (trim threshold) reuses the same pages; four
// arenas bound how many heaps hold such memory.
void TuneMalloc() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_ARENA_MAX, 4);
}

// Protobuf logs a line when a message does not parse (invalid UTF-8 in a
// string, for one): bad requests would write to stderr outside the
// structured log. Such requests already get INVALID_ARGUMENT, so the lines
// go to the debug level.
void LogProtobuf(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  spdlog::level::level_enum spd_level =
      level >= google::protobuf::LOGLEVEL_FATAL ? spdlog::level::critical
                                                : spdlog::level::debug;
  spdlog::log(spd_level, "event=protobuf_log file={}:{} message=\"{}\"", file,
              line, message);
}

}  // namespace

int main(int argc, char** argv) {
  TuneMalloc();
  // Debian builds Abseil without NDEBUG, which turns on the Mutex deadlock
  // detector: a lock-graph update on every lock, on every hot path. The
  // tests keep it on; the daemon does without.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  google::protobuf::SetLogHandler(&LogProtobuf);
  // Every thread inherits this mask; only sigwait below sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<pstore::DaemonConfig> config =
      pstore::ParseDaemonFlags(argc, argv);
  if (absl::IsCancelled(config.status())) {
    std::fputs(std::string(config.status().message()).c_str(), stdout);
    return 0;
  }
  if (!config.ok()) {
    std::fprintf(stderr, "pstored: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("pstored");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  spdlog::info("event=start version={} {}", PSTORE_VERSION,
               pstore::DescribeConfig(*config));

  config->server.version = PSTORE_VERSION;
  absl::StatusOr<std::unique_ptr<pstore::PstoreServer>> server =
      pstore::PstoreServer::Start(config->server);
  if (!server.ok()) {
    spdlog::critical("event=start_failed status=\"{}\"",
                     server.status().ToString());
    // A Ceph cluster or pool that cannot be reached (or named) is a
    // configuration to fix, as a bad flag is.
    const absl::StatusCode code = server.status().code();
    if (config->server.store.rados.has_value() &&
        (code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kNotFound ||
         code == absl::StatusCode::kPermissionDenied ||
         code == absl::StatusCode::kInvalidArgument)) {
      return 2;
    }
    return 1;
  }
  spdlog::info("event=serving port={} metrics_port={}", (*server)->port(),
               (*server)->metrics_port());
  if (config->server.store.rados.has_value()) {
    const std::string address = pstore::AdvertiseAddress(
        config->advertise_address, config->server.listen, (*server)->port());
    if (absl::Status joined = (*server)->store()->Join(address); !joined.ok()) {
      spdlog::critical("event=start_failed status=\"{}\"", joined.ToString());
      return 1;
    }
  }
  if (!config->port_file.empty()) {
    absl::Status written = WritePortFile(config->port_file, (*server)->port(),
                                         (*server)->metrics_port());
    if (!written.ok()) {
      spdlog::critical("event=start_failed status=\"{}\"", written.ToString());
      return 1;
    }
  }

  if (!pstore::IsLocalOnlyAddress(config->server.listen) &&
      (!(*server)->uses_tls() || !(*server)->requires_tokens())) {
    spdlog::warn(
        "event=insecure_listen listen={} tls={} tokens={} "
        "warning=\"anyone who reaches this address can {} weights; set "
        "--tls_cert/--tls_key and --tokens_file\"",
        config->server.listen, (*server)->uses_tls() ? "on" : "off",
        (*server)->requires_tokens() ? "on" : "off",
        (*server)->requires_tokens() ? "read (in plaintext)"
                                     : "read and write");
  }

  int signal_number = 0;
  while (true) {
    sigwait(&stop_signals, &signal_number);
    if (signal_number != SIGHUP) break;
    absl::Status reloaded = (*server)->ReloadTokens();
    if (reloaded.ok()) {
      spdlog::info("event=tokens_reloaded");
    } else {
      spdlog::error(
          "event=tokens_reload_failed action=\"kept the current "
          "tokens\" status=\"{}\"",
          reloaded.ToString());
    }
  }
  spdlog::info("event=draining signal={} drain_seconds={}",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT",
               absl::ToDoubleSeconds(config->drain));
  (*server)->Shutdown(config->drain);
  spdlog::info("event=stopped");
  spdlog::shutdown();
  // The store is closed. Skip static destructors: gRPC may still be saying
  // goodbye to a slow client on its own threads.
  std::fflush(nullptr);
  std::_Exit(0);
}
