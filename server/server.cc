#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "server/flags.h"
#include "server/peer_client.h"
#include "spdlog/spdlog.h"
#include "util/file_io.h"
#include "util/status.h"

namespace pstore {
namespace {

// After a drain that ended with every call done, the least time gRPC gets
// to deliver what those calls wrote and to close the connections (see
// PstoreServer::Shutdown); also the time allowed past its deadline.
constexpr absl::Duration kGrpcStopGrace = absl::Seconds(2);

// Returns the contents of the text file at `path` (certificates, keys).
absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  PSTORE_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
  }
  return text;
}

// Returns the client this node asks its peers with: TLS when it serves TLS,
// its peer token when tokens are on; null, with a warning, when the
// configuration cannot give peers what they need (a node configured before
// peers existed still starts, reading only the pool). Codes of reading
// the files.
absl::StatusOr<std::shared_ptr<PeerClient>> OpenPeerClient(
    const ServerConfig& config, bool tls) {
  auto off = [](const std::string& why) {
    spdlog::warn("event=peers_off reason=\"{}\"", why);
    return std::shared_ptr<PeerClient>();
  };
  GrpcPeerClientOptions options;
  options.max_block_bytes = config.store.block_bytes;
  if (tls) {
    options.tls_ca_file = config.peer_tls_ca_file.empty()
                              ? config.tls_client_ca_file
                              : config.peer_tls_ca_file;
    if (options.tls_ca_file.empty()) {
      return off(
          "peer reads over TLS need the CA of the nodes' certificates: set "
          "--peer_tls_ca_file (or --tls_client_ca)");
    }
    options.tls_cert_file = config.tls_cert_file;
    options.tls_key_file = config.tls_key_file;
  }
  if (!config.tokens_file.empty()) {
    if (config.peer_token_file.empty()) {
      return off(
          "with --tokens_file, peer reads need this node's token of scope "
          "peer: set --peer_token_file");
    }
    if (!tls && !IsLocalOnlyAddress(config.listen)) {
      return off(
          "the peer token would cross the network in plaintext: serve TLS "
          "(--tls_cert/--tls_key)");
    }
    PSTORE_ASSIGN_OR_RETURN(std::string token,
                            ReadTextFile(config.peer_token_file));
    options.token = std::string(absl::StripAsciiWhitespace(token));
  }
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<GrpcPeerClient> client,
                          GrpcPeerClient::Create(std::move(options)));
  return std::shared_ptr<PeerClient>(std::move(client));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PstoreServer>> PstoreServer::Start(
    ServerConfig config) {
  std::unique_ptr<PstoreServer> server(new PstoreServer());
  if (!config.tokens_file.empty()) {
    PSTORE_ASSIGN_OR_RETURN(server->auth_,
                            Authorizer::Load(config.tokens_file));
    config.service.auth = server->auth_.get();
  }
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (config.tls_cert_file.empty() != config.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls_cert and --tls_key");
  }
  if (!config.tls_cert_file.empty()) {
    grpc::SslServerCredentialsOptions tls(
        config.tls_client_ca_file.empty()
            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    PSTORE_ASSIGN_OR_RETURN(pair.cert_chain,
                            ReadTextFile(config.tls_cert_file));
    PSTORE_ASSIGN_OR_RETURN(pair.private_key,
                            ReadTextFile(config.tls_key_file));
    tls.pem_key_cert_pairs.push_back(std::move(pair));
    if (!config.tls_client_ca_file.empty()) {
      PSTORE_ASSIGN_OR_RETURN(tls.pem_root_certs,
                              ReadTextFile(config.tls_client_ca_file));
    }
    credentials = grpc::SslServerCredentials(tls);
    server->tls_ = true;
  } else if (!config.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca needs --tls_cert and --tls_key");
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  server->metrics_ = std::make_unique<ServerMetrics>(config.version);
  ServerMetrics* metrics = server->metrics_.get();
  config.store.on_block_read = [metrics](TierKind tier,
                                         absl::Duration latency) {
    metrics->ObserveBlockRead(tier, latency);
  };
  if (config.store.rados.has_value() && config.store.peers.enabled) {
    PSTORE_ASSIGN_OR_RETURN(config.store.peer_client,
                            OpenPeerClient(config, server->tls_));
  }
  PSTORE_ASSIGN_OR_RETURN(server->store_, TieredStore::Open(config.store));
  config.service.metrics = metrics;
  config.service.version = config.version;
  server->service_ =
      std::make_unique<ParamStoreService>(server->store_.get(), config.service);
  metrics->Attach(server->store_.get(), server->service_.get());
  PeerServiceOptions peer_options;
  peer_options.corrupt_replies = config.fault_corrupt_peer_replies;
  server->peer_service_ = std::make_unique<PeerStoreService>(
      server->store_.get(), server->service_.get(), peer_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.RegisterService(server->peer_service_.get());
  builder.SetMaxReceiveMessageSize(config.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             config.max_streams_per_connection);
  // Large HTTP/2 frames, as clients advertise: fewer frames per chunk.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, (16 << 20) - 1);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen,
                     ": the address is in use or not valid here"));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  if (!config.uds.path.empty()) {
    PSTORE_ASSIGN_OR_RETURN(
        server->uds_, UdsListener::Start(config.uds, server->server_.get()));
  }

  if (!config.metrics_listen.empty()) {
    PstoreServer* raw = server.get();
    HttpEndpoint::Handlers handlers;
    handlers.metrics = [metrics] { return metrics->Render(); };
    handlers.degraded_reason = server->store_->degraded_reason();
    handlers.not_ready_reason = [raw]() -> std::string {
      return raw->NotReadyReason();
    };
    PSTORE_ASSIGN_OR_RETURN(
        server->http_, HttpEndpoint::Start(config.metrics_listen, handlers));
  }
  return server;
}

PstoreServer::~PstoreServer() {
  if (!shut_down_) Shutdown(absl::ZeroDuration());
  uds_.reset();
  http_.reset();
  server_.reset();
  peer_service_.reset();
  service_.reset();
}

absl::Status PstoreServer::ReloadTokens() {
  if (auth_ == nullptr) {
    return absl::FailedPreconditionError("pstored runs without --tokens_file");
  }
  return auth_->Reload();
}

int PstoreServer::metrics_port() const {
  return http_ == nullptr ? 0 : http_->port();
}

std::string PstoreServer::NotReadyReason() const {
  if (draining_.load()) return "draining";
  if (!store_open_.load()) return "store closed";
  return "";
}

void PstoreServer::Shutdown(absl::Duration drain) {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_ == nullptr) {
    // Start failed part way: there may be no metrics or store yet.
    if (metrics_ != nullptr) metrics_->Detach();
    store_open_ = false;
    store_.reset();
    return;
  }
  // Load balancers and probes see NOT_SERVING first; new calls are refused
  // with UNAVAILABLE, so clients retry elsewhere, while calls in flight get
  // up to `drain` to finish.
  server_->GetHealthCheckService()->SetServingStatus(false);
  // No new connections on the socket; those it handed over drain as TCP's.
  if (uds_ != nullptr) uds_->Stop();
  // The other nodes of a shared store stop counting on this one.
  store_->Leave();
  draining_ = true;
  metrics_->SetDraining(true);
  CallGate& gate = service_->gate();
  gate.Close();
  spdlog::info("event=drain_start calls_in_flight={}", gate.in_flight());
  const absl::Time drain_deadline = absl::Now() + drain;
  const bool drained = gate.WaitIdle(drain_deadline);
  if (!drained) {
    spdlog::warn("event=drain_timeout calls_cancelled={}", gate.in_flight());
  }

  // Closes the connections, each with a GOAWAY, once its client has read
  // it; at `grpc_deadline` cancels the calls left and drops the connections
  // that are still open. A call is done when its last bytes are queued, not
  // when its client has them: a slow reader may still have megabytes to
  // take in, which a dropped connection would cut off (the client gets
  // "connection reset"). So after a drain in which every call finished,
  // gRPC gets the rest of the drain time, and at least kGrpcStopGrace; calls
  // still running when the drain time is up are cancelled at once. This
  // runs on its own thread, and the store closes as soon as no call uses
  // it.
  const absl::Time grpc_deadline =
      drained ? std::max(drain_deadline, absl::Now() + kGrpcStopGrace)
              : absl::Now();
  auto stopped = std::make_shared<absl::Notification>();
  std::thread stopper([server = server_.get(), stopped, grpc_deadline] {
    server->Shutdown(absl::ToChronoTime(grpc_deadline));
    server->Wait();
    stopped->Notify();
  });
  if (!gate.WaitIdle(absl::Now() + absl::Seconds(10))) {
    // Cannot happen unless a storage callback is stuck: keep the store
    // open rather than pull it from under that call.
    spdlog::error("event=store_in_use calls={}", gate.in_flight());
    stopper.detach();
    (void)server_.release();
    (void)service_.release();
    (void)store_.release();
    return;
  }
  metrics_->Detach();
  store_open_ = false;
  store_.reset();
  spdlog::info("event=store_closed");

  if (stopped->WaitForNotificationWithDeadline(
          std::max(grpc_deadline, absl::Now()) + kGrpcStopGrace)) {
    stopper.join();
    // The grpc::Server object stays until the destructor: destroying the
    // last one shuts gRPC down, which can wait seconds for an idle poller
    // thread. The daemon exits without it.
    spdlog::info("event=grpc_stopped");
    return;
  }
  // gRPC is still closing a connection past its deadline. Nothing uses the
  // store any more; leave gRPC's shutdown running and let the process exit.
  spdlog::info(
      "event=grpc_stop_pending reason=\"a client has not closed "
      "its connection\"");
  stopper.detach();
  (void)server_.release();
  (void)service_.release();
}

}  // namespace pstore
