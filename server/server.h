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
#include "server/peer_service.h"
#include "server/service.h"
#include "server/uds_listener.h"
#include "storage/tiered_store.h"

namespace pstore {

struct ServerConfig {
  // host:port to listen on; port 0 picks a free one (see port()).
  // Default: 127.0.0.1:7070.
  std::string listen = "127.0.0.1:7070";
  TieredStoreOptions store;
  ServiceOptions service;
  // Largest message a client may send (PutTensor data chunks).
  // Default: 32 MiB.
  int max_receive_message_bytes = 32 << 20;
  // Concurrent calls on one client connection (HTTP/2 streams).
  // Default: 64.
  int max_streams_per_connection = 64;
  // host:port of the HTTP listener for /metrics, /healthz and /readyz;
  // port 0 picks a free one (see metrics_port()); empty disables it.
  // Default: 127.0.0.1:9464.
  std::string metrics_listen = "127.0.0.1:9464";
  // Reported in pstore_build_info and GetServerStatus.
  std::string version = "unknown";
  // PEM files of the server's certificate chain and key: TLS on the gRPC
  // port when both are set. Default: none (plaintext).
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM file of the CA that signs client certificates: when set, clients
  // must present a certificate it signed (mutual TLS). Default: none.
  std::string tls_client_ca_file;
  // JSON file of bearer tokens (server/auth.h); empty: no authorization.
  std::string tokens_file;
  // Reads between the nodes of a shared store (store.peers says when; a
  // RADOS store only). A file holding this node's token of scope "peer",
  // sent with its calls to other nodes: required when tokens are on.
  // Default: none.
  std::string peer_token_file;
  // PEM file of the CA that signs the other nodes' certificates, checked
  // on peer calls, which use TLS when this node serves TLS. Default: none,
  // meaning tls_client_ca_file.
  std::string peer_tls_ca_file;
  // A test fault: blocks served to other nodes have one byte flipped.
  // Default: false.
  bool fault_corrupt_peer_replies = false;
  // The Unix domain socket for clients on this host (server/uds_listener.h):
  // the same service as `listen`, over a socket file. Default: off (empty
  // uds.path).
  UdsOptions uds;
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

  // Drains and stops: see the header comment. After a drain in which every
  // call finished, clients get the rest of the drain time (at least 2 s) to
  // read what those calls sent before their connections close. When it
  // returns the store is closed and no call runs; the process may exit at
  // once (destroying the server object too can take seconds inside gRPC).
  void Shutdown(absl::Duration drain);

  TieredStore* store() const { return store_.get(); }
  ParamStoreService* service() const { return service_.get(); }

  // Returns why the server is not ready ("draining", "store closed"), or
  // the empty string when it is.
  std::string NotReadyReason() const;

  // Reads the tokens file again (SIGHUP). FailedPrecondition when the
  // server has no tokens file; on a bad file keeps the current tokens and
  // returns its error.
  absl::Status ReloadTokens();

  // Returns true if calls need a bearer token / the port speaks TLS.
  bool requires_tokens() const { return auth_ != nullptr; }
  bool uses_tls() const { return tls_; }

 private:
  PstoreServer() = default;

  std::atomic<bool> draining_{false};
  std::atomic<bool> store_open_{true};
  // Declared first: destroyed last (the store reports into it).
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<Authorizer> auth_;
  bool tls_ = false;
  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<ParamStoreService> service_;
  std::unique_ptr<PeerStoreService> peer_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpEndpoint> http_;
  // Declared after server_: stops (and so hands no connection to it)
  // before the server goes.
  std::unique_ptr<UdsListener> uds_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_SERVER_H_
