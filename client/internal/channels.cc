#include "client/internal/channels.h"

#include <utility>

#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace pstore::client_internal {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;
constexpr int kMaxFrameBytes = (16 << 20) - 1;  // HTTP/2's largest.
constexpr int kLookaheadBytes = 16 << 20;
// The reads, called by path to read their responses unparsed (see
// client/internal/raw_chunk.h); as in the generated pstore.grpc.pb.cc.
constexpr char kGetTensorMethod[] = "/pstore.v1.ParamStore/GetTensor";
constexpr char kPullModelMethod[] = "/pstore.v1.ParamStore/PullModel";
constexpr char kReadTensorMethod[] = "/pstore.v1.ParamStore/ReadTensor";

}  // namespace

Channels::Connection::Connection(std::shared_ptr<grpc::Channel> channel_in)
    : channel(std::move(channel_in)),
      stub(v1::ParamStore::NewStub(channel)),
      get_tensor(kGetTensorMethod, grpc::internal::RpcMethod::SERVER_STREAMING,
                 channel),
      pull_model(kPullModelMethod, grpc::internal::RpcMethod::SERVER_STREAMING,
                 channel),
      read_tensor(kReadTensorMethod, grpc::internal::RpcMethod::NORMAL_RPC,
                  channel) {}

Channels::Channels(const ClientOptions& options,
                   std::shared_ptr<grpc::ChannelCredentials> credentials) {
  for (int i = 0; i < options.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    // A separate subchannel pool per channel gives each its own TCP
    // connection, so parallel streams do not share one.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("pstore.channel_index", i);
    // Large HTTP/2 frames and an initial window that holds several chunks:
    // fewer frames to parse, and no slow ramp of the flow-control window
    // at the start of a pull.
    args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kMaxFrameBytes);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kLookaheadBytes);
    // The window stays at the lookahead: BDP probing grew it past that on
    // loopback, so more of each stream sat in gRPC's receive buffers at
    // once, and the heap that held them grew and was handed back to the
    // kernel over and over (faulted in again each time).
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
    connections_.push_back(std::make_unique<Connection>(
        grpc::CreateCustomChannel(options.address, credentials, args)));
  }
}

}  // namespace pstore::client_internal
