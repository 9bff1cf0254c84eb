// UdsListener: pstored's Unix domain socket (--uds_path), for clients on
// the same host. It creates the socket file, accepts connections on a
// thread of its own, checks each peer's credentials (SO_PEERCRED: the
// uid and gid of the process that connected) against the allowed uids and
// gids, and hands each accepted connection to the gRPC server, which
// serves it as it serves a TCP connection: the same service, the same
// bearer tokens, no TLS (the socket never leaves the host; who may connect
// is the socket file's mode and the allowed ids).
//
// The socket file is created with `mode` (chmod after bind) in a directory
// that must exist. A socket file left by a pstored that died is replaced;
// a live one (something accepts on it) or a path that is not a socket is
// refused. The file is removed when the listener stops.
//
// Thread-safe: refused() may be called from any thread; Stop (or the
// destructor) once.

#ifndef PSTORE_SERVER_UDS_LISTENER_H_
#define PSTORE_SERVER_UDS_LISTENER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace grpc {
class Server;
}

namespace pstore {

struct UdsOptions {
  // Path of the socket file (at most 107 bytes). Required.
  std::string path;
  // File mode of the socket: who may connect. Default: 0660 (the owner
  // and the group of pstored).
  uint32_t mode = 0660;
  // Peers allowed to connect: a peer whose uid is in allowed_uids, or
  // whose gid is in allowed_gids, is served; any other is refused (its
  // connection closed at once). Both empty: every peer the file mode lets
  // in. Default: empty.
  std::vector<uid_t> allowed_uids;
  std::vector<gid_t> allowed_gids;
};

class UdsListener {
 public:
  // Creates the socket and starts accepting connections for `server`
  // (running; it must outlive the listener). InvalidArgument for a path
  // too long or a mode out of range; FailedPrecondition for a path that
  // exists and is not a socket, or in a directory that does not exist;
  // Unavailable if a live process accepts on the path; the errno's code
  // else.
  static absl::StatusOr<std::unique_ptr<UdsListener>> Start(
      const UdsOptions& options, grpc::Server* server);

  // Stops (see Stop).
  ~UdsListener();

  UdsListener(const UdsListener&) = delete;
  UdsListener& operator=(const UdsListener&) = delete;

  // Stops accepting and removes the socket file; connections already
  // handed to gRPC stay with it. Idempotent.
  void Stop();

  // Returns the connections refused for their peer's credentials.
  uint64_t refused() const { return refused_.load(); }

 private:
  UdsListener(const UdsOptions& options, grpc::Server* server, int listen_fd,
              int stop_fd);

  // Accepts connections until Stop.
  void AcceptLoop();

  // Returns whether a peer of `uid` and `gid` may connect.
  bool Allowed(uid_t uid, gid_t gid) const;

  const UdsOptions options_;
  grpc::Server* const server_;
  const int listen_fd_;
  const int stop_fd_;  // An eventfd: readable once Stop is called.
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
  bool stopped_ = false;
};

// Parses a comma-separated list of numeric ids ("0,1000"); InvalidArgument
// naming `flag` for anything else.
absl::StatusOr<std::vector<uint32_t>> ParseIdList(const std::string& text,
                                                  const std::string& flag);

}  // namespace pstore

#endif  // PSTORE_SERVER_UDS_LISTENER_H_
