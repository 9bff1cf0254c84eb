#include "client/pstore_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/internal/raw_chunk.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "codec/hash.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/sync_stream.h"
#include "pstore/v1/pstore.grpc.pb.h"
#include "util/file_io.h"

namespace pstore {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;
constexpr int kListPageSize = 1000;
constexpr int kMaxFrameBytes = (16 << 20) - 1;  // HTTP/2's largest.
constexpr int kLookaheadBytes = 16 << 20;
// The streaming reads, called by path to read their responses unparsed
// (see client/internal/raw_chunk.h); as in the generated pstore.grpc.pb.cc.
constexpr char kGetTensorMethod[] = "/pstore.v1.ParamStore/GetTensor";
constexpr char kPullModelMethod[] = "/pstore.v1.ParamStore/PullModel";
// Received bytes go to the hashes and the destination in pieces of at most
// this size, each still in cache when the next consumer reads it.
constexpr size_t kPieceBytes = 256 << 10;

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::Status WithContext(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(what, ": ", status.message()));
}

std::string Hex(uint64_t value) {
  return absl::StrCat(absl::Hex(value, absl::kZeroPad16));
}

}  // namespace

class Client::Channels {
 public:
  // One channel, its stub, and its methods registered for raw reads.
  struct Connection {
    explicit Connection(std::shared_ptr<grpc::Channel> channel_in)
        : channel(std::move(channel_in)),
          stub(v1::ParamStore::NewStub(channel)),
          get_tensor(kGetTensorMethod,
                     grpc::internal::RpcMethod::SERVER_STREAMING, channel),
          pull_model(kPullModelMethod,
                     grpc::internal::RpcMethod::SERVER_STREAMING, channel) {}

    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::ParamStore::Stub> stub;
    grpc::internal::RpcMethod get_tensor;
    grpc::internal::RpcMethod pull_model;
  };

  Channels(const ClientOptions& options,
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
      if (!options.tls_server_name.empty()) {
        args.SetSslTargetNameOverride(options.tls_server_name);
      }
      connections_.push_back(std::make_unique<Connection>(
          grpc::CreateCustomChannel(options.address, credentials, args)));
    }
  }

  Connection& Get(size_t index) {
    return *connections_[index % connections_.size()];
  }
  Connection& Next() {
    return Get(next_.fetch_add(1, std::memory_order_relaxed));
  }

 private:
  std::vector<std::unique_ptr<Connection>> connections_;
  std::atomic<size_t> next_{0};
};

namespace {

// Runs `attempt` until it succeeds, fails with a code other than
// UNAVAILABLE, or runs out of attempts; sleeps with backoff in between.
template <typename Fn>
absl::Status WithRetries(const ClientOptions& options, Fn attempt,
                         uint64_t* retries = nullptr) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options.initial_backoff;
  absl::Status status;
  for (int i = 0; i < std::max(1, options.max_attempts); ++i) {
    if (i > 0) {
      if (retries != nullptr) ++*retries;
      std::uniform_real_distribution<double> jitter(0.5, 1.0);
      absl::SleepFor(backoff * jitter(rng));
      backoff = std::min(backoff * 2, options.max_backoff);
    }
    status = attempt();
    if (!absl::IsUnavailable(status)) return status;
  }
  return status;
}

// Sets the call's deadline and bearer token.
void SetDeadline(const ClientOptions& options, grpc::ClientContext* context) {
  if (options.call_timeout > absl::ZeroDuration()) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(options.call_timeout));
  }
  if (!options.token.empty()) {
    context->AddMetadata("authorization", "Bearer " + options.token);
  }
}

// Starts server-streaming call `method` on `channel` and returns a reader of
// its responses as they came off the wire, unparsed: the generated stub's
// reader, minus protobuf's copy of every message.
template <typename Request>
std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> StartRawRead(
    grpc::ChannelInterface* channel, const grpc::internal::RpcMethod& method,
    grpc::ClientContext* context, const Request& request) {
  return std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>>(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
          channel, method, context, request));
}

// Calls `fn` with the data of `chunk`, in order, in non-empty pieces of at
// most kPieceBytes; stops at and returns the first error `fn` returns.
template <typename Fn>
absl::Status ForEachPiece(const client_internal::RawTensorChunk& chunk, Fn fn) {
  for (std::span<const uint8_t> span : chunk.data()) {
    for (size_t at = 0; at < span.size(); at += kPieceBytes) {
      absl::Status status =
          fn(span.subspan(at, std::min(kPieceBytes, span.size() - at)));
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

// Returns the XXH3-64 of the data of `chunk`.
uint64_t HashData(const client_internal::RawTensorChunk& chunk) {
  if (chunk.data().size() == 1) return Xxh3_64(chunk.data().front());
  Xxh3_64Hasher hasher;
  for (std::span<const uint8_t> span : chunk.data()) hasher.Update(span);
  return hasher.Digest();
}

// Checks that a chunk comes where expected and, if `verify_hash`, its own
// hash.
absl::Status CheckChunk(const client_internal::RawTensorChunk& raw,
                        uint64_t expected_offset, uint64_t remaining,
                        absl::string_view name, bool verify_hash = true) {
  const v1::TensorChunk& chunk = raw.fields();
  if (chunk.offset() != expected_offset) {
    return absl::DataLossError(
        absl::StrCat(name, ": chunk at offset ", chunk.offset(),
                     " arrived where offset ", expected_offset, " was due"));
  }
  if (raw.data_size() > remaining) {
    return absl::DataLossError(absl::StrCat(
        name, ": chunk at offset ", chunk.offset(), " runs past the end"));
  }
  if (!verify_hash) return absl::OkStatus();
  uint64_t hash = HashData(raw);
  if (hash != chunk.xxh3_64()) {
    return absl::DataLossError(
        absl::StrCat(name, ": chunk at offset ", chunk.offset(), " hashes to ",
                     Hex(hash), ", not ", Hex(chunk.xxh3_64())));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<float>> DecodeToFloat(
    const v1::TensorInfo& info, std::span<const uint8_t> bytes) {
  absl::StatusOr<DType> dtype = ParseDType(info.dtype());
  if (!dtype.ok()) return dtype.status();
  absl::StatusOr<Encoding> encoding = ParseEncoding(info.encoding());
  if (!encoding.ok()) return encoding.status();
  std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
  absl::StatusOr<uint64_t> elements = ElementCount(shape);
  if (!elements.ok()) return elements.status();
  if (*encoding == Encoding::kRaw) {
    switch (*dtype) {
      case DType::kF32:
        encoding = Encoding::kF32;
        break;
      case DType::kF16:
        encoding = Encoding::kF16;
        break;
      case DType::kBF16:
        encoding = Encoding::kBF16;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "raw ", info.dtype(), " bytes do not decode to float"));
    }
  }
  std::vector<float> values(*elements);
  absl::Status decoded =
      DecodeToF32(*encoding, bytes, std::span<float>(values));
  if (!decoded.ok()) return decoded;
  return values;
}

Client::Client(ClientOptions options,
               std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)),
      channels_(std::make_unique<Channels>(options_, std::move(credentials))) {}

Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("no server address given");
  }
  if (options.channels < 1 || options.channels > 64) {
    return absl::InvalidArgumentError("channels must be in 1..64");
  }
  if (options.chunk_bytes == 0 || options.chunk_bytes > (16u << 20)) {
    return absl::InvalidArgumentError("chunk_bytes must be in 1..16 MiB");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs both tls_cert_file and tls_key_file");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions tls;
    absl::StatusOr<std::string> ca = ReadFileToString(options.tls_ca_file);
    if (!ca.ok()) return ca.status();
    tls.pem_root_certs = *std::move(ca);
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadFileToString(options.tls_cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFileToString(options.tls_key_file);
      if (!key.ok()) return key.status();
      tls.pem_cert_chain = *std::move(cert);
      tls.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(tls);
  } else if (!options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs TLS: set tls_ca_file too");
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return std::unique_ptr<Client>(
      new Client(std::move(options), std::move(credentials)));
}

// --- Puts ---

absl::StatusOr<v1::TensorInfo> Client::PutTensor(absl::string_view name,
                                                 absl::string_view dtype,
                                                 std::span<const int64_t> shape,
                                                 std::span<const uint8_t> data,
                                                 const PutOptions& options) {
  return PutTensorFrom(
      name, dtype, shape, data.size(),
      [&](uint64_t offset, std::span<uint8_t> out) {
        if (!out.empty()) {
          std::memcpy(out.data(), data.data() + offset, out.size());
        }
        return absl::OkStatus();
      },
      options);
}

absl::StatusOr<v1::TensorInfo> Client::PutTensorFrom(
    absl::string_view name, absl::string_view dtype,
    std::span<const int64_t> shape, uint64_t byte_length,
    absl::FunctionRef<absl::Status(uint64_t, std::span<uint8_t>)> read,
    const PutOptions& options) {
  std::vector<uint8_t> buffer(std::min<uint64_t>(
      options_.chunk_bytes, std::max<uint64_t>(1, byte_length)));
  v1::PutTensorRequest header;
  header.mutable_header()->set_name(std::string(name));
  header.mutable_header()->set_dtype(std::string(dtype));
  for (int64_t dim : shape) header.mutable_header()->add_shape(dim);
  if (options.send_hash) {
    Xxh3_64Hasher hasher;
    for (uint64_t offset = 0; offset < byte_length; offset += buffer.size()) {
      std::span<uint8_t> piece(
          buffer.data(),
          std::min<uint64_t>(buffer.size(), byte_length - offset));
      absl::Status status = read(offset, piece);
      if (!status.ok()) return status;
      hasher.Update(piece);
    }
    header.mutable_header()->set_xxh3_64(hasher.Digest());
  }

  v1::TensorInfo info;
  absl::Status status = WithRetries(options_, [&]() -> absl::Status {
    grpc::ClientContext context;
    SetDeadline(options_, &context);
    info.Clear();
    std::unique_ptr<grpc::ClientWriter<v1::PutTensorRequest>> writer =
        channels_->Next().stub->PutTensor(&context, &info);
    bool open = writer->Write(header);
    v1::PutTensorRequest message;
    for (uint64_t offset = 0; open && offset < byte_length;
         offset += buffer.size()) {
      std::span<uint8_t> piece(
          buffer.data(),
          std::min<uint64_t>(buffer.size(), byte_length - offset));
      absl::Status read_status = read(offset, piece);
      if (!read_status.ok()) {
        context.TryCancel();
        (void)writer->Finish();  // The read error is what matters.
        return read_status;
      }
      message.set_data(piece.data(), piece.size());
      open = writer->Write(message);
    }
    // A write fails when the server already ended the call; its status
    // comes from Finish.
    if (open) writer->WritesDone();
    return FromGrpc(writer->Finish());
  });
  if (!status.ok()) return WithContext(status, absl::StrCat("put ", name));
  return info;
}

// --- Reads ---

absl::StatusOr<v1::TensorInfo> Client::GetTensorTo(
    absl::string_view name, const GetOptions& options,
    const std::function<absl::Status(const v1::TensorInfo&,
                                     std::span<const uint8_t>)>& sink) {
  bool have_info = false;
  v1::TensorInfo info;
  uint64_t received = 0;
  Xxh3_64Hasher hasher;
  int attempts = 0;
  std::optional<v1::TensorInfo> final_info;
  absl::Status status = WithRetries(options_, [&]() -> absl::Status {
    ++attempts;
    // The bytes of this attempt, checked against the last chunk's hash.
    Xxh3_64Hasher attempt_hasher;
    grpc::ClientContext context;
    SetDeadline(options_, &context);
    v1::GetTensorRequest request;
    request.set_encoding(options.encoding);
    request.set_max_chunk_bytes(options_.chunk_bytes);
    if (have_info) {
      // Resume after the bytes already received, of the same revision.
      request.set_name(info.name());
      request.set_offset(info.offset() + received);
      request.set_length(info.byte_length() - received);
      if (request.length() == 0) return absl::OkStatus();
    } else {
      request.set_name(std::string(name));
      request.set_offset(options.offset);
      request.set_length(options.length);
    }
    Channels::Connection& connection = channels_->Next();
    std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader = StartRawRead(
        connection.channel.get(), connection.get_tensor, &context, request);
    grpc::ByteBuffer message;
    client_internal::RawTensorChunk raw;
    while (reader->Read(&message)) {
      if (absl::Status parsed = raw.Parse(message); !parsed.ok()) {
        context.TryCancel();
        (void)reader->Finish();  // The parse error is what matters.
        return parsed;
      }
      const v1::TensorChunk& chunk = raw.fields();
      if (chunk.has_info()) {
        if (!have_info) {
          info = chunk.info();
          have_info = true;
        } else if (chunk.info().stored_xxh3_64() != info.stored_xxh3_64()) {
          context.TryCancel();
          (void)reader->Finish();
          return absl::AbortedError("the tensor changed during the read");
        }
      }
      if (!have_info) {
        context.TryCancel();
        (void)reader->Finish();
        return absl::DataLossError("the first chunk carries no tensor info");
      }
      // When the server knows the hash of the whole read (a whole tensor),
      // one pass over the bytes checks them all, end to end, against what
      // was put: the chunks' own hashes and the stream's add nothing.
      const bool whole = info.has_xxh3_64();
      absl::Status checked =
          CheckChunk(raw, info.offset() + received,
                     info.byte_length() - received, info.name(), !whole);
      if (checked.ok() && raw.data_size() == 0) {
        // A chunk without bytes still reaches the sink, for its info.
        checked = sink(info, {});
      } else if (checked.ok()) {
        checked = ForEachPiece(raw, [&](std::span<const uint8_t> piece) {
          hasher.Update(piece);
          if (!whole) attempt_hasher.Update(piece);
          received += piece.size();
          return sink(info, piece);
        });
      }
      if (checked.ok() && chunk.last() && !whole) {
        if (attempt_hasher.Digest() != chunk.xxh3_64_of_all()) {
          checked = absl::DataLossError(
              absl::StrCat(info.name(), ": the bytes received hash to ",
                           Hex(attempt_hasher.Digest()), ", not ",
                           Hex(chunk.xxh3_64_of_all())));
        } else if (chunk.has_final_info()) {
          final_info = chunk.final_info();
        }
      }
      if (!checked.ok()) {
        context.TryCancel();
        (void)reader->Finish();  // The check's error is what matters.
        return checked;
      }
    }
    return FromGrpc(reader->Finish());
  });
  if (!status.ok()) return WithContext(status, absl::StrCat("get ", name));
  if (!have_info)
    return absl::DataLossError(absl::StrCat("get ", name, ": no data"));
  if (received != info.byte_length()) {
    return absl::DataLossError(absl::StrCat("get ", name, ": received ",
                                            received, " of ",
                                            info.byte_length(), " bytes"));
  }
  if (info.byte_length() == 0) {
    // An empty tensor still goes through the sink once, for its info.
    absl::Status empty = sink(info, {});
    if (!empty.ok()) return empty;
  }
  if (info.has_xxh3_64() && hasher.Digest() != info.xxh3_64()) {
    return absl::DataLossError(
        absl::StrCat("get ", name, ": the tensor hashes to ",
                     Hex(hasher.Digest()), ", not ", Hex(info.xxh3_64())));
  }
  // The server derived the encoding while sending: its figures came last.
  // After a resumed read they cover only the last attempt's bytes.
  if (final_info.has_value() && attempts == 1) return *final_info;
  if (!info.has_xxh3_64()) info.set_xxh3_64(hasher.Digest());
  return info;
}

absl::StatusOr<v1::TensorInfo> Client::GetTensor(absl::string_view name,
                                                 std::span<uint8_t> out,
                                                 const GetOptions& options) {
  uint64_t position = 0;
  return GetTensorTo(
      name, options,
      [&](const v1::TensorInfo& info, std::span<const uint8_t> bytes) {
        if (info.byte_length() != out.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("the read sends ", info.byte_length(),
                           " bytes but the buffer holds ", out.size()));
        }
        if (!bytes.empty()) {
          std::memcpy(out.data() + position, bytes.data(), bytes.size());
        }
        position += bytes.size();
        return absl::OkStatus();
      });
}

absl::StatusOr<std::pair<v1::TensorInfo, std::vector<uint8_t>>>
Client::GetTensor(absl::string_view name, const GetOptions& options) {
  std::vector<uint8_t> bytes;
  absl::StatusOr<v1::TensorInfo> info = GetTensorTo(
      name, options,
      [&](const v1::TensorInfo& tensor, std::span<const uint8_t> piece) {
        if (bytes.capacity() < tensor.byte_length()) {
          bytes.reserve(tensor.byte_length());
        }
        bytes.insert(bytes.end(), piece.begin(), piece.end());
        return absl::OkStatus();
      });
  if (!info.ok()) return info.status();
  return std::make_pair(*std::move(info), std::move(bytes));
}

// --- Unary calls ---

#define PSTORE_UNARY(method, request, response)                       \
  WithRetries(options_, [&]() -> absl::Status {                       \
    grpc::ClientContext context;                                      \
    SetDeadline(options_, &context);                                  \
    return FromGrpc(                                                  \
        channels_->Next().stub->method(&context, request, response)); \
  })

absl::StatusOr<v1::TensorInfo> Client::StatTensor(absl::string_view name) {
  v1::StatTensorRequest request;
  request.set_name(std::string(name));
  v1::TensorInfo response;
  absl::Status status = PSTORE_UNARY(StatTensor, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("stat ", name));
  return response;
}

absl::StatusOr<std::vector<v1::TensorInfo>> Client::ListTensors(
    absl::string_view revision, absl::string_view prefix) {
  std::vector<v1::TensorInfo> tensors;
  v1::ListTensorsRequest request;
  request.set_revision(std::string(revision));
  request.set_prefix(std::string(prefix));
  request.set_page_size(kListPageSize);
  while (true) {
    v1::ListTensorsResponse response;
    absl::Status status = PSTORE_UNARY(ListTensors, request, &response);
    if (!status.ok()) {
      return WithContext(status, absl::StrCat("list ", revision));
    }
    for (v1::TensorInfo& info : *response.mutable_tensors()) {
      tensors.push_back(std::move(info));
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  return tensors;
}

absl::Status Client::DeleteTensor(absl::string_view name) {
  v1::DeleteTensorRequest request;
  request.set_name(std::string(name));
  v1::DeleteTensorResponse response;
  return WithContext(PSTORE_UNARY(DeleteTensor, request, &response),
                     absl::StrCat("delete ", name));
}

absl::StatusOr<v1::Revision> Client::CreateRevision(
    absl::string_view name,
    const std::map<std::string, std::string>& metadata) {
  v1::CreateRevisionRequest request;
  request.set_name(std::string(name));
  request.mutable_metadata()->insert(metadata.begin(), metadata.end());
  v1::Revision response;
  absl::Status status = PSTORE_UNARY(CreateRevision, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("create ", name));
  return response;
}

absl::StatusOr<v1::Revision> Client::PublishRevision(absl::string_view name) {
  v1::PublishRevisionRequest request;
  request.set_name(std::string(name));
  v1::Revision response;
  absl::Status status = PSTORE_UNARY(PublishRevision, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("publish ", name));
  return response;
}

absl::Status Client::DeleteRevision(absl::string_view name) {
  v1::DeleteRevisionRequest request;
  request.set_name(std::string(name));
  v1::DeleteRevisionResponse response;
  return WithContext(PSTORE_UNARY(DeleteRevision, request, &response),
                     absl::StrCat("delete ", name));
}

absl::StatusOr<v1::Revision> Client::GetRevision(absl::string_view name) {
  v1::GetRevisionRequest request;
  request.set_name(std::string(name));
  v1::Revision response;
  absl::Status status = PSTORE_UNARY(GetRevision, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("revision ", name));
  return response;
}

absl::StatusOr<std::vector<v1::Model>> Client::ListModels() {
  v1::ListModelsRequest request;
  v1::ListModelsResponse response;
  absl::Status status = PSTORE_UNARY(ListModels, request, &response);
  if (!status.ok()) return WithContext(status, "list models");
  return std::vector<v1::Model>(response.models().begin(),
                                response.models().end());
}

absl::StatusOr<uint64_t> Client::Pin(absl::string_view name) {
  v1::PinRequest request;
  request.set_name(std::string(name));
  v1::PinResponse response;
  absl::Status status = PSTORE_UNARY(Pin, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("pin ", name));
  return response.pinned_bytes();
}

absl::Status Client::Unpin(absl::string_view name) {
  v1::UnpinRequest request;
  request.set_name(std::string(name));
  v1::UnpinResponse response;
  return WithContext(PSTORE_UNARY(Unpin, request, &response),
                     absl::StrCat("unpin ", name));
}

absl::StatusOr<v1::PrefetchResponse> Client::Prefetch(absl::string_view name,
                                                      v1::Tier tier) {
  v1::PrefetchRequest request;
  request.set_name(std::string(name));
  request.set_tier(tier);
  v1::PrefetchResponse response;
  absl::Status status = PSTORE_UNARY(Prefetch, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("prefetch ", name));
  return response;
}

absl::Status Client::DropCache(v1::Tier tier) {
  v1::DropCacheRequest request;
  request.set_tier(tier);
  v1::DropCacheResponse response;
  return WithContext(PSTORE_UNARY(DropCache, request, &response), "drop cache");
}

absl::StatusOr<v1::ServerStatus> Client::GetServerStatus() {
  v1::GetServerStatusRequest request;
  v1::ServerStatus response;
  absl::Status status = PSTORE_UNARY(GetServerStatus, request, &response);
  if (!status.ok()) return WithContext(status, "status");
  return response;
}

absl::StatusOr<v1::VerifyResponse> Client::Verify(absl::string_view name) {
  v1::VerifyRequest request;
  request.set_name(std::string(name));
  v1::VerifyResponse response;
  absl::Status status = PSTORE_UNARY(Verify, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("verify ", name));
  return response;
}

#undef PSTORE_UNARY

// --- Pull ---

absl::StatusOr<PullResult> Client::PullModel(absl::string_view name,
                                             const PullOptions& options,
                                             const PullCallbacks& callbacks) {
  if (options.streams < 1 || options.streams > 256) {
    return absl::InvalidArgumentError("streams must be in 1..256");
  }
  PullResult result;
  {
    absl::StatusOr<v1::Revision> revision = GetRevision(name);
    if (!revision.ok()) return revision.status();
    result.revision = *std::move(revision);
  }
  const v1::Revision& manifest = result.revision;
  const size_t num_tensors = manifest.tensors_size();
  absl::StatusOr<Encoding> requested = ParseEncoding(options.encoding);
  if (!requested.ok()) return requested.status();

  // Destinations and per-tensor progress.
  struct TensorState {
    v1::TensorInfo info;  // What this pull sends of the tensor.
    std::span<uint8_t> memory;
    std::atomic<uint64_t> received{0};
    std::atomic<bool> done{false};
    // The byte ranges received, start -> end, so that a part sent twice is
    // caught rather than counted: bytes received == byte_length then means
    // every byte arrived.
    absl::Mutex ranges_mu;
    std::map<uint64_t, uint64_t> ranges ABSL_GUARDED_BY(ranges_mu);
    // The hash of the encoded tensor, once a chunk reports it.
    std::optional<uint64_t> expected_hash;  // Guarded by callback_mu.
  };
  std::vector<TensorState> tensors(num_tensors);
  uint64_t total = 0;
  for (size_t i = 0; i < num_tensors; ++i) {
    v1::TensorInfo& info = tensors[i].info;
    info = manifest.tensors(i);
    absl::StatusOr<DType> dtype = ParseDType(info.dtype());
    if (!dtype.ok()) return dtype.status();
    std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
    Encoding encoding = EncodingForPull(*dtype, shape, *requested);
    if (absl::Status valid = CheckEncodable(*dtype, shape, encoding);
        !valid.ok()) {
      return absl::DataLossError(absl::StrCat(
          "pull ", name, ": the server's manifest has ", info.name(),
          " with a shape that is not valid: ", valid.message()));
    }
    info.set_encoding(std::string(EncodingName(encoding)));
    info.set_byte_length(EncodedTensorBytes(*dtype, shape, encoding));
    if (encoding != Encoding::kRaw) info.clear_xxh3_64();
    absl::StatusOr<std::span<uint8_t>> memory = callbacks.allocate(info);
    if (!memory.ok()) return memory.status();
    if (memory->size() != info.byte_length()) {
      return absl::InvalidArgumentError(
          absl::StrCat("allocate gave ", memory->size(), " bytes for ",
                       info.name(), " of ", info.byte_length()));
    }
    tensors[i].memory = *memory;
    if (info.has_xxh3_64()) tensors[i].expected_hash = info.xxh3_64();
    total += info.byte_length();
  }

  absl::Mutex callback_mu;
  uint64_t received_total = 0;
  // Takes what a chunk's info says of the whole tensor: its encoded hash
  // and quantization error.
  auto learn = [&](size_t index, const v1::TensorInfo& reported) {
    TensorState& state = tensors[index];
    bool whole = reported.offset() == 0 &&
                 reported.byte_length() == state.info.byte_length();
    absl::MutexLock lock(&callback_mu);
    if (whole && reported.has_xxh3_64()) {
      state.expected_hash = reported.xxh3_64();
    }
    if (whole && reported.has_quantization_error()) {
      *state.info.mutable_quantization_error() = reported.quantization_error();
    }
  };
  // Marks tensor `index` done once all its bytes are in and checked.
  auto complete = [&](size_t index) -> absl::Status {
    TensorState& state = tensors[index];
    const v1::TensorInfo& info = state.info;
    if (state.received.load() != info.byte_length()) return absl::OkStatus();
    if (state.done.exchange(true)) return absl::OkStatus();
    uint64_t hash = Xxh3_64(state.memory.data(), state.memory.size());
    absl::MutexLock lock(&callback_mu);
    // An encoded tensor cut across streams has no whole hash until the
    // server has encoded it once; every chunk and part was checked.
    if (state.expected_hash.has_value() && hash != *state.expected_hash) {
      return absl::DataLossError(
          absl::StrCat("pull ", info.name(), ": the tensor hashes to ",
                       Hex(hash), ", not ", Hex(*state.expected_hash)));
    }
    state.info.set_xxh3_64(hash);
    if (callbacks.done) callbacks.done(state.info);
    return absl::OkStatus();
  };

  // Records bytes [begin, end) of tensor `index` as received; DataLoss if
  // some of them already were.
  auto claim = [&](size_t index, uint64_t begin, uint64_t end) -> absl::Status {
    if (begin == end) return absl::OkStatus();
    TensorState& state = tensors[index];
    absl::MutexLock lock(&state.ranges_mu);
    auto next = state.ranges.lower_bound(begin);
    bool overlaps = next != state.ranges.end() && next->first < end;
    if (!overlaps && next != state.ranges.begin()) {
      overlaps = std::prev(next)->second > begin;
    }
    if (overlaps) {
      return absl::DataLossError(absl::StrCat(
          state.info.name(), ": bytes ", begin, "..", end, " arrived twice"));
    }
    state.ranges.emplace(begin, end);
    return absl::OkStatus();
  };
  // A range this shard claimed in the current attempt.
  struct Claim {
    size_t index;
    uint64_t begin;
    uint64_t end;
  };

  std::atomic<uint64_t> retries{0};
  std::vector<absl::Status> shard_status(options.streams);
  auto run_shard = [&](int shard) {
    Channels::Connection& connection = channels_->Get(shard);
    uint64_t shard_retries = 0;
    // Ranges this shard added to each tensor in the current attempt, taken
    // back if the attempt fails, so a retry can resend them.
    std::vector<Claim> added;
    shard_status[shard] = WithRetries(
        options_,
        [&]() -> absl::Status {
          for (const Claim& claimed : added) {
            TensorState& state = tensors[claimed.index];
            if (state.done) continue;
            state.received -= claimed.end - claimed.begin;
            absl::MutexLock lock(&state.ranges_mu);
            state.ranges.erase(claimed.begin);
          }
          added.clear();
          grpc::ClientContext context;
          SetDeadline(options_, &context);
          v1::PullModelRequest request;
          request.set_name(manifest.name());
          request.set_encoding(options.encoding);
          request.set_shard_index(shard);
          request.set_shard_count(options.streams);
          request.set_max_chunk_bytes(options_.chunk_bytes);
          std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader =
              StartRawRead(connection.channel.get(), connection.pull_model,
                           &context, request);
          grpc::ByteBuffer message;
          client_internal::RawTensorChunk raw;
          absl::Status failed;
          uint64_t expected_offset = 0;
          size_t current = SIZE_MAX;
          Xxh3_64Hasher part_hasher;  // This stream's bytes of `current`.
          while (failed.ok() && reader->Read(&message)) {
            failed = raw.Parse(message);
            if (!failed.ok()) break;
            const v1::TensorChunk& chunk = raw.fields();
            size_t index = chunk.tensor_index();
            if (index >= num_tensors) {
              failed = absl::DataLossError("chunk names an unknown tensor");
              break;
            }
            const v1::TensorInfo& info = tensors[index].info;
            if (chunk.has_info()) {
              if (chunk.info().stored_xxh3_64() != info.stored_xxh3_64() ||
                  chunk.info().encoding() != info.encoding()) {
                failed = absl::DataLossError(
                    absl::StrCat(info.name(), " differs from the manifest"));
                break;
              }
              if (chunk.info().offset() > info.byte_length()) {
                failed = absl::DataLossError(
                    absl::StrCat(info.name(), ": a part starts at offset ",
                                 chunk.info().offset(), ", past its ",
                                 info.byte_length(), " bytes"));
                break;
              }
              current = index;
              expected_offset = chunk.info().offset();
              part_hasher.Reset();
              learn(index, chunk.info());
            }
            if (index != current) {
              failed = absl::DataLossError("chunk arrived out of order");
              break;
            }
            failed =
                CheckChunk(raw, expected_offset,
                           info.byte_length() - expected_offset, info.name());
            if (!failed.ok()) break;
            const uint64_t size = raw.data_size();
            // A retry resends the parts of tensors already done and handed
            // to the caller: checked, never written again.
            const bool resent = tensors[index].done.load();
            if (!resent) {
              failed = claim(index, chunk.offset(), chunk.offset() + size);
              if (!failed.ok()) break;
              if (size != 0) {
                added.push_back({index, chunk.offset(), chunk.offset() + size});
              }
            }
            uint8_t* out = tensors[index].memory.data();
            uint64_t at = chunk.offset();
            // Ignored: the function given never fails.
            (void)ForEachPiece(raw, [&](std::span<const uint8_t> piece) {
              part_hasher.Update(piece);
              if (!resent) std::memcpy(out + at, piece.data(), piece.size());
              at += piece.size();
              return absl::OkStatus();
            });
            expected_offset += size;
            if (!resent) {
              tensors[index].received += size;
              if (callbacks.progress && size != 0) {
                absl::MutexLock lock(&callback_mu);
                received_total += size;
                callbacks.progress(received_total, total);
              }
            }
            if (chunk.last()) {
              if (part_hasher.Digest() != chunk.xxh3_64_of_all()) {
                failed = absl::DataLossError(absl::StrCat(
                    info.name(), ": the bytes of this stream hash to ",
                    Hex(part_hasher.Digest()), ", not ",
                    Hex(chunk.xxh3_64_of_all())));
                break;
              }
              if (chunk.has_final_info()) learn(index, chunk.final_info());
              failed = complete(index);
            }
          }
          if (!failed.ok()) {
            context.TryCancel();
            (void)reader->Finish();  // The failure found here is the cause.
            return failed;
          }
          return FromGrpc(reader->Finish());
        },
        &shard_retries);
    retries += shard_retries;
  };

  std::vector<std::thread> threads;
  for (int shard = 1; shard < options.streams; ++shard) {
    threads.emplace_back(run_shard, shard);
  }
  run_shard(0);
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& status : shard_status) {
    if (!status.ok()) return WithContext(status, absl::StrCat("pull ", name));
  }
  for (size_t i = 0; i < num_tensors; ++i) {
    if (!tensors[i].done) {
      absl::Status status = complete(i);
      if (!status.ok()) return status;
      if (!tensors[i].done) {
        return absl::DataLossError(absl::StrCat(
            "pull ", name, ": ", tensors[i].info.name(), " is incomplete"));
      }
    }
  }
  result.bytes = total;
  result.retries = retries;
  return result;
}

}  // namespace pstore
