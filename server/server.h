// PstoreServer: a running pstored. Opens the tiered store, serves
// pstore.v1.ParamStore with the standard health service and server
// reflection, plus /metrics, /healthz and /readyz over HTTP, and shuts down
// by draining: health goes NOT_SERVING and /readyz 503, new calls are
// refused, calls in flight get up to the drain time to finish, then the
// store closes cleanly.
//
// Thread-safe: Shutdown may be called from any thread, once.

#ifndef PSTORE_SERVER_SERVER_H_
#define PSTORE_SERVER_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/http_endpoint.h"
#include "server/metrics.h"
#include "server/service.h"
#include "storage/tiered_store.h"

namespace pstore {

struct ServerConfig {
  // host:port to listen on; port 0 picks a free one (see port()).
  // Default: 127.0.0.1:7070.
  std::string listen = "127.0.0.1:7070";
  TieredStoreOptions store;
  ServiceOptions service;
  // Largest message a client may send (PutTensor data chunks).
  // Default: 64 MiB.
  int max_receive_message_bytes = 64 << 20;
  // host:port of the HTTP listener for /metrics, /healthz and /readyz;
  // port 0 picks a free one (see metrics_port()); empty disables it.
  // Default: 127.0.0.1:9464.
  std::string metrics_listen = "127.0.0.1:9464";
  // Reported in pstore_build_info and GetServerStatus.
  std::string version = "unknown";
};

class PstoreServer {
 public:
  // Opens the store and starts serving. Codes: those of TieredStore::Open;
  // Unavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<PstoreServer>> Start(
      ServerConfig config);

  // Shuts down with no drain time if Shutdown was not called.
  ~PstoreServer();

  // Returns the port the server listens on.
  int port() const { return port_; }
  // Returns the port of the metrics listener, 0 when it is off.
  int metrics_port() const;

  // Drains and stops: see the header comment. When it returns the store is
  // closed and no call runs; the process may exit at once (destroying the
  // server object too can take seconds inside gRPC).
  void Shutdown(absl::Duration drain);

  TieredStore* store() const { return store_.get(); }
  ParamStoreService* service() const { return service_.get(); }

  // Returns why the server is not ready ("draining", "store closed"), or
  // the empty string when it is.
  std::string NotReadyReason() const;

 private:
  PstoreServer() = default;

  std::atomic<bool> draining_{false};
  std::atomic<bool> store_open_{true};
  // Declared first: destroyed last (the store reports into it).
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<ParamStoreService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpEndpoint> http_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_SERVER_H_
