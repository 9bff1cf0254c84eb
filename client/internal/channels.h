// Channels: the gRPC channels of one pstore::Client, each with its stub and
// the reads registered by path for raw reads. Internal to client/.
//
// Each channel has its own TCP connection (a subchannel pool of its own) and
// large HTTP/2 frames. Streams get their flow-control window from what the
// reader asks for (BDP probing off, see channels.cc); small reads go over a
// channel of their own with BDP probing on. Created once with the client and
// never changed: thread-safe.

#ifndef PSTORE_CLIENT_INTERNAL_CHANNELS_H_
#define PSTORE_CLIENT_INTERNAL_CHANNELS_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "client/pstore_client.h"
#include "grpcpp/channel.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/security/credentials.h"
#include "pstore/v1/pstore.grpc.pb.h"

namespace pstore::client_internal {

class Channels {
 public:
  // One channel, its stub, and its methods registered for raw reads.
  struct Connection {
    explicit Connection(std::shared_ptr<grpc::Channel> channel_in);

    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::ParamStore::Stub> stub;
    grpc::internal::RpcMethod get_tensor;
    grpc::internal::RpcMethod pull_model;
    grpc::internal::RpcMethod read_tensor;
  };

  // Opens options.channels channels to options.address (lazily: gRPC
  // connects on the first call).
  Channels(const ClientOptions& options,
           std::shared_ptr<grpc::ChannelCredentials> credentials);

  // Returns connection `index`, modulo their number.
  Connection& Get(size_t index) {
    return *connections_[index % connections_.size()];
  }
  // Returns the connections in turn, for calls spread over them.
  Connection& Next() {
    return Get(next_.fetch_add(1, std::memory_order_relaxed));
  }
  // Returns the connection for unary small reads (ReadTensor).
  Connection& SmallReads() { return *small_reads_; }

 private:
  std::vector<std::unique_ptr<Connection>> connections_;
  std::unique_ptr<Connection> small_reads_;
  std::atomic<size_t> next_{0};
};

}  // namespace pstore::client_internal

#endif  // PSTORE_CLIENT_INTERNAL_CHANNELS_H_
