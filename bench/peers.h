// The peers pstore-bench measures pstored against, each on 127.0.0.1 and a
// free port, started and stopped by the harness by process id:
//   CeilingPeer  grpc-ceiling (bench/grpc_ceiling_main.cc) and the typed
//                client that reads it, on the pstore client's channel
//                arguments: the transport's ceiling;
//   NginxPeer    nginx serving files from a directory (sendfile from the
//                page cache or tmpfs);
//   RedisPeer    redis-server with persistence off;
//   RunFio       one fio job, its JSON output parsed.
// The raw RocksDB peer runs inside pstore-bench (see pstore_bench.cc).
//
// Thread-safety: CeilingPeer's read methods may be called from many
// threads at once (one stub per channel); the rest are thread-compatible.

#ifndef PSTORE_BENCH_PEERS_H_
#define PSTORE_BENCH_PEERS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/peer.grpc.pb.h"
#include "util/child_process.h"

namespace pstore::bench {

class CeilingPeer {
 public:
  // Starts `binary` with its log and port file in `dir`.
  static absl::StatusOr<std::unique_ptr<CeilingPeer>> Start(
      const std::string& binary, const std::string& dir);
  ~CeilingPeer();

  // Opens channels until there are `count` (one TCP connection each).
  // REQUIRES: no read runs meanwhile.
  void EnsureChannels(int count);

  // Streams `bytes` bytes in messages of `message_bytes` over channel
  // `channel` into `out` (at least `bytes` long), each Chunk parsed by the
  // typed stub and copied into place, as the pstore client does.
  absl::Status Stream(int channel, uint64_t bytes, uint32_t message_bytes,
                      std::span<uint8_t> out);

  // Calls Unary for a reply of `bytes` bytes on channel `channel` and
  // copies its data into `out`.
  absl::Status Unary(int channel, uint32_t bytes, std::span<uint8_t> out);

  // Stops the server; returns its exit status or an error.
  absl::Status Stop();
  // The server's process id.
  pid_t pid() const { return process_->pid(); }

 private:
  CeilingPeer() = default;
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
  std::vector<std::unique_ptr<pstore::bench::Ceiling::Stub>> stubs_;
};

class NginxPeer {
 public:
  // Starts `binary` serving `root` (which must be readable by nginx's
  // worker user), with its configuration and logs in `dir`.
  static absl::StatusOr<std::unique_ptr<NginxPeer>> Start(
      const std::string& binary, const std::string& dir,
      const std::string& root);
  ~NginxPeer();

  // GETs `path` (e.g. "/model.bin") over a new connection, reading the
  // body 1 MiB per recv() into `buffer`; returns the body's length.
  absl::StatusOr<uint64_t> Get(absl::string_view path,
                               std::span<uint8_t> buffer);
  // As Get, each piece also write()n to `out_fd`.
  absl::StatusOr<uint64_t> GetToFile(absl::string_view path,
                                     std::span<uint8_t> buffer, int out_fd);
  absl::Status Stop();
  int port() const { return port_; }
  // The master's process id and its workers'.
  std::vector<pid_t> pids() const;

 private:
  NginxPeer() = default;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

class RedisPeer {
 public:
  // Starts `binary` with no persistence, its working directory `dir`.
  static absl::StatusOr<std::unique_ptr<RedisPeer>> Start(
      const std::string& binary, const std::string& dir);
  ~RedisPeer();
  absl::Status Stop();
  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }

 private:
  RedisPeer() = default;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

// What one fio job measured (its only job's reads).
struct FioResult {
  double bytes_per_second = 0;
  uint64_t bytes = 0;  // Read.
  uint64_t ios = 0;
  // The job's minor page faults, its start (I/O buffers) included: fio's
  // JSON "minf".
  uint64_t minor_faults = 0;
  // Total latency (submission to completion) in microseconds.
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  double max_us = 0;
  std::string engine;
};

// Runs `binary` with `args` (the job, without output options) and
// --output-format=json into a file in `dir`; waits up to `timeout`.
// Returns what it measured; Internal with fio's log if it fails.
absl::StatusOr<FioResult> RunFio(const std::string& binary,
                                 const std::vector<std::string>& args,
                                 const std::string& dir,
                                 absl::Duration timeout);

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_PEERS_H_
