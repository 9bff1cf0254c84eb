// GrpcPeerClient: the PeerClient (storage/peers/peer_client.h) of pstored:
// asks other nodes for blocks with pstore.v1.PeerStore.ReadBlock, over one
// channel per node, with TLS (and this node's certificate, for mutual TLS)
// when this node serves TLS, and with this node's peer token when tokens
// are on (and then only over TLS or to a loopback address: a call that
// would send it in plaintext to another machine fails with
// FailedPrecondition). The answer is copied once, from gRPC's buffers into
// a buffer of the store's pool; the caller checks it against the id.
//
// Thread-safe. The destructor cancels the calls in flight and waits for
// their callbacks.

#ifndef PSTORE_SERVER_PEER_CLIENT_H_
#define PSTORE_SERVER_PEER_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "storage/peers/peer_client.h"

namespace pstore {

struct GrpcPeerClientOptions {
  // PEM files: the CA that signs the nodes' certificates (TLS on when set),
  // and this node's certificate chain and key, presented to nodes that ask
  // for one (mutual TLS). Default: none (plaintext).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // The bearer token of scope "peer" sent with every call; empty: none.
  std::string token;
  // The largest block a node may answer with. Default: 4 MiB.
  uint64_t max_block_bytes = uint64_t{4} << 20;
};

class GrpcPeerClient : public PeerClient {
 public:
  // InvalidArgument for a certificate without its key (or without a CA);
  // the codes of reading the files.
  static absl::StatusOr<std::shared_ptr<GrpcPeerClient>> Create(
      GrpcPeerClientOptions options);
  ~GrpcPeerClient() override;

  void ReadBlock(const std::string& address, const BlockId& id,
                 absl::Duration timeout, PeerReadCallback done) override;

 private:
  struct Call;

  GrpcPeerClient(GrpcPeerClientOptions options,
                 std::shared_ptr<grpc::ChannelCredentials> credentials);
  // The stub of the channel to `address`, made on first use.
  grpc::GenericStub* StubFor(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Logs, at most every 10 s, that a node refused this one's calls.
  void WarnMisconfigured(const absl::Status& status);

  const GrpcPeerClientOptions options_;
  const std::string bearer_;  // "Bearer TOKEN", or empty.
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<grpc::GenericStub>> stubs_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Call*> calls_ ABSL_GUARDED_BY(mu_);
  int callbacks_running_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> last_warning_{0};
};

}  // namespace pstore

#endif  // PSTORE_SERVER_PEER_CLIENT_H_
