// PstoreServer: a running pstored. Opens the tiered store, serves
// pstore.v1.ParamStore with the standard health service and server
// reflection, and shuts down by draining: health goes NOT_SERVING, new calls
// are refused, calls in flight get up to the drain time to finish, then the
// store closes cleanly.
//
// Thread-safe: Shutdown may be called from any thread, once.

#ifndef PSTORE_SERVER_SERVER_H_
#define PSTORE_SERVER_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
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

  // Drains and stops: see the header comment. When it returns the store is
  // closed and no call runs; the process may exit at once (destroying the
  // server object too can take seconds inside gRPC).
  void Shutdown(absl::Duration drain);

  TieredStore* store() const { return store_.get(); }
  ParamStoreService* service() const { return service_.get(); }

 private:
  PstoreServer() = default;

  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<ParamStoreService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_SERVER_H_
