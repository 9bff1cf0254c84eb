// HttpEndpoint: pstored's HTTP listener for operators (cpp-httplib):
//   /metrics   Prometheus text exposition (ServerMetrics::Render)
//   /healthz   200 while the process answers
//   /readyz    200 when the store is open, the tiers usable and the server
//              not draining ("ready", or "degraded: WHY" when the Ceph
//              cluster is unreachable and only cached blocks are served);
//              503 with the reason otherwise
//
// Thread-safe. Requests are served on the listener's own threads.

#ifndef PSTORE_SERVER_HTTP_ENDPOINT_H_
#define PSTORE_SERVER_HTTP_ENDPOINT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace pstore {

class HttpEndpoint {
 public:
  struct Handlers {
    // Returns the body of /metrics.
    std::function<std::string()> metrics;
    // Returns the empty string when ready, else why not.
    std::function<std::string()> not_ready_reason;
    // Empty unless degraded: /readyz stays 200 (cached weights are still
    // served) and says why.
    std::function<std::string()> degraded_reason;
  };

  // Listens on `address` ("host:port"; port 0 picks a free one).
  // Unavailable if the address cannot be bound; InvalidArgument if it is
  // malformed.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(
      const std::string& address, Handlers handlers);

  // Stops listening and joins the listener.
  ~HttpEndpoint();

  int port() const { return port_; }

 private:
  HttpEndpoint() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_HTTP_ENDPOINT_H_
