// Command-line flags of pstored, parsed with CLI11 into a ServerConfig.

#ifndef PSTORE_SERVER_FLAGS_H_
#define PSTORE_SERVER_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/server.h"

namespace pstore {

struct DaemonConfig {
  ServerConfig server;
  // Time calls in flight get to finish after SIGTERM or SIGINT.
  absl::Duration drain = absl::Seconds(30);
  // File to write the bound ports to, once serving: the gRPC port, then
  // the metrics port (0 when off), one per line (for tests and tools that
  // pass port 0). Default: none.
  std::string port_file;
  // RADOS backend: the address other nodes and clients reach this node at,
  // registered with the other nodes. Empty: the --listen host (this
  // machine's host name for a wildcard host) and the port bound.
  std::string advertise_address;
  // spdlog level: trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
};

// Parses pstored's command line. Returns the config; for --help, a status
// of code Cancelled whose message is the help text (print it, exit 0); for
// a bad flag or value, InvalidArgument with a one-line message.
absl::StatusOr<DaemonConfig> ParseDaemonFlags(int argc,
                                              const char* const* argv);

// Returns a one-line summary of the effective configuration, for the log.
std::string DescribeConfig(const DaemonConfig& config);

// Returns true if the gRPC address `listen` can be reached only from this
// machine: a loopback host:port (127.0.0.0/8, ::1, localhost) or a Unix
// domain socket (unix:PATH, unix://PATH, unix-abstract:NAME). pstored warns
// when it serves any other address without TLS and bearer tokens.
bool IsLocalOnlyAddress(absl::string_view listen);

// Returns the address this node registers with the other nodes of a shared
// store: `configured` if set, else `listen`'s host (this machine's host
// name for a wildcard host) with `port`, the port bound.
std::string AdvertiseAddress(const std::string& configured,
                             const std::string& listen, int port);

}  // namespace pstore

#endif  // PSTORE_SERVER_FLAGS_H_
