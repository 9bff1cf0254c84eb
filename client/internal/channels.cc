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
  // `index` names the channel; -1 is the small reads' channel.
  auto open = [&](int index) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    // A separate subchannel pool per channel gives each its own TCP
    // connection, so parallel streams do not share one.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("pstore.channel_index", index);
    // Large HTTP/2 frames: fewer frames to parse.
    args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kMaxFrameBytes);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kLookaheadBytes);
    if (index >= 0) {
      // No BDP probing on the streaming channels: it grew the window on
      // loopback, so more of each stream sat in gRPC's receive buffers at
      // once, and the heap that held them grew and was handed back to the
      // kernel over and over (faulted in again each time). Without it a
      // stream's window opens by what the reader asks for, a message at a
      // time.
      args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    }
    // The small reads' channel keeps BDP probing: gRPC 1.51 has no other
    // way to open the connection's window past HTTP/2's initial 64 KiB,
    // and a 64 KiB read's reply (64 KiB and its header) then waited a
    // round trip for a window update (bench/README.md, "Figures behind
    // choices in the code"). What its replies hold is what was asked for.
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
    return std::make_unique<Connection>(
        grpc::CreateCustomChannel(options.address, credentials, args));
  };
  for (int i = 0; i < options.channels; ++i) connections_.push_back(open(i));
  small_reads_ = open(-1);
}

}  // namespace pstore::client_internal
