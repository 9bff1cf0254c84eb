// Minimal clients for pstore-bench's peers, written on plain sockets so
// that the peer's figure is the server's and the kernel's, not a library's:
//   HttpGet     one HTTP/1.1 GET, the body received into a caller's buffer
//               piece by piece, optionally written to a file (nginx);
//   RespClient  SET and GET of the Redis protocol (RESP2), one connection,
//               the bulk reply received straight into the caller's memory.
// All connect to 127.0.0.1 with TCP_NODELAY.
//
// Thread-compatible: one RespClient per thread.

#ifndef PSTORE_BENCH_WIRE_CLIENTS_H_
#define PSTORE_BENCH_WIRE_CLIENTS_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore::bench {

// GETs http://127.0.0.1:`port``path` over a new connection and receives the
// body with recv() calls of at most `buffer.size()` bytes into `buffer`,
// each overwriting the last; with `out_fd` >= 0, write()s each piece
// received to it. Returns the body's length. Unavailable on a socket
// error; Internal on a status other than 200 or a body shorter than its
// Content-Length; ErrnoToStatus codes if a write fails.
absl::StatusOr<uint64_t> HttpGet(int port, absl::string_view path,
                                 std::span<uint8_t> buffer, int out_fd = -1);

class RespClient {
 public:
  RespClient() = default;
  ~RespClient();
  RespClient(const RespClient&) = delete;
  RespClient& operator=(const RespClient&) = delete;

  // Connects to 127.0.0.1:`port`. Unavailable on failure.
  absl::Status Connect(int port);

  // Runs SET key value; Internal if the reply is not +OK.
  absl::Status Set(absl::string_view key, std::span<const uint8_t> value);

  // Runs GET key, the value received into `out`; returns its length.
  // NotFound for a nil reply; InvalidArgument if `out` is too small;
  // Internal for an error reply.
  absl::StatusOr<uint64_t> Get(absl::string_view key, std::span<uint8_t> out);

  // Runs a command of plain arguments (e.g. FLUSHALL) and returns its
  // one-line reply.
  absl::StatusOr<std::string> Command(const std::vector<std::string>& args);

 private:
  absl::Status SendAll(const void* data, size_t size);
  // Returns the next line of the reply, without its CRLF.
  absl::StatusOr<std::string> ReadLine();
  // Fills `out` from the buffered bytes, then straight from the socket.
  absl::Status ReadExact(uint8_t* out, size_t size);

  int fd_ = -1;
  std::vector<uint8_t> buffer_ = std::vector<uint8_t>(64 << 10);
  size_t begin_ = 0;  // Unread bytes are buffer_[begin_, end_).
  size_t end_ = 0;
};

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_WIRE_CLIENTS_H_
