#include "client/pstore_client.h"

#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/internal/call_util.h"
#include "client/internal/channels.h"
#include "client/internal/pull_session.h"
#include "client/internal/raw_chunk.h"
#include "client/internal/small_reads.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/hash.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/sync_stream.h"
#include "pstore/v1/pstore.grpc.pb.h"
#include "util/file_io.h"
#include "util/status.h"

namespace pstore {
namespace {

// Buffers at least this large are backed by transparent huge pages where
// the kernel allows them on request (THP "madvise" mode).
constexpr size_t kHugePageBytes = size_t{2} << 20;

// Asks for huge pages under the 2 MiB-aligned part of [data, data + size),
// memory not touched yet: its first touch then faults once per 2 MiB, not
// once per 4 KiB. Advice only: where the kernel declines, nothing changes.
void AdviseHugePages(uint8_t* data, size_t size) {
  if (size < 2 * kHugePageBytes) return;
  uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  uintptr_t end = begin + size;
  begin = (begin + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  end &= ~(kHugePageBytes - 1);
  if (end <= begin) return;
  // Ignored: advice the kernel may refuse (THP off, or an old kernel).
  (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

using client_internal::Channels;
using client_internal::CheckChunk;
using client_internal::ForEachPiece;
using client_internal::FromGrpc;
using client_internal::Hex;
using client_internal::SetDeadline;
using client_internal::StartRawRead;
using client_internal::WithContext;
using client_internal::WithRetries;

constexpr int kListPageSize = 1000;

// Whether a unary call may be sent again after UNAVAILABLE.
enum class Idempotent {
  // Sending it again after a lost reply changes nothing: retried.
  kYes,
  // A second send would see the first one's effect and fail (ALREADY_EXISTS,
  // NOT_FOUND) where the call succeeded: sent once. gRPC still retries, by
  // itself, a call that never left the client.
  kNo,
};

// Calls unary `method` on the next channel, with retries if `idempotent`.
template <typename Request, typename Response>
absl::Status CallUnary(const ClientOptions& options, Channels& channels,
                       Idempotent idempotent,
                       grpc::Status (v1::ParamStore::Stub::*method)(
                           grpc::ClientContext*, const Request&, Response*),
                       const Request& request, Response* response,
                       Canceller* canceller = nullptr) {
  const int attempts =
      idempotent == Idempotent::kYes ? options.max_attempts : 1;
  return WithRetries(
      options, attempts,
      [&]() -> absl::Status {
        grpc::ClientContext context;
        SetDeadline(options, &context);
        client_internal::CancelRegistration registration(canceller, &context);
        PSTORE_RETURN_IF_ERROR(registration.status());
        v1::ParamStore::Stub& stub = *channels.Next().stub;
        return FromGrpc((stub.*method)(&context, request, response));
      },
      /*retries=*/nullptr, canceller);
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
      channels_(std::make_unique<Channels>(options_, std::move(credentials))),
      small_reads_(std::make_unique<client_internal::SmallReads>()) {}

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
  header.mutable_header()->set_kind(options.kind);
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
  absl::Status status =
      WithRetries(options_, options_.max_attempts, [&]() -> absl::Status {
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
  if (info.kind() != options.kind) {
    // A pstored from before kinds stored a file as a tensor.
    return absl::FailedPreconditionError(absl::StrCat(
        "put ", name, ": ", options_.address,
        " stores no files or shard headers beside tensors (it predates "
        "them): upgrade pstored"));
  }
  return info;
}

bool KeepFreedBuffersOnHeap(size_t trim_bytes) {
  if (std::getenv("PSTORE_MALLOC_DEFAULTS") != nullptr) return false;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && absl::string_view(tunables).find(
                                 "glibc.malloc.") != absl::string_view::npos) {
    return false;
  }
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD,
          static_cast<int>(std::min<size_t>(trim_bytes, size_t{1} << 30)));
  return true;
}

// --- Cancellation ---

void Canceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* context : contexts_) context->TryCancel();
}

bool Canceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Canceller::SleepUnlessCancelled(absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), duration);
  return !cancelled_;
}

bool Canceller::Register(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  contexts_.push_back(context);
  return true;
}

void Canceller::Unregister(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  contexts_.erase(std::remove(contexts_.begin(), contexts_.end(), context),
                  contexts_.end());
}

// --- Reads ---

absl::StatusOr<v1::TensorInfo> Client::GetTensorTo(
    absl::string_view name, const GetOptions& options,
    const std::function<absl::Status(const v1::TensorInfo&,
                                     std::span<const uint8_t>)>& sink) {
  return ReadTo(name, options, std::nullopt, sink);
}

absl::StatusOr<v1::TensorInfo> Client::ReadTo(
    absl::string_view name, const GetOptions& options,
    std::optional<uint64_t> expected_bytes,
    const std::function<absl::Status(const v1::TensorInfo&,
                                     std::span<const uint8_t>)>& sink) {
  if (options.canceller != nullptr && options.canceller->cancelled()) {
    return absl::CancelledError(absl::StrCat("get ", name, ": cancelled"));
  }
  if (small_reads_->ShouldTry(name, options, expected_bytes)) {
    absl::StatusOr<std::optional<v1::TensorInfo>> small =
        small_reads_->Read(options_, *channels_, name, options, sink);
    if (!small.ok()) {
      return WithContext(small.status(), absl::StrCat("get ", name));
    }
    if (small->has_value()) return **std::move(small);
  }
  absl::StatusOr<v1::TensorInfo> info = StreamTo(name, options, sink);
  if (info.ok()) small_reads_->Remember(name, options, *info);
  return info;
}

absl::StatusOr<v1::TensorInfo> Client::StreamTo(
    absl::string_view name, const GetOptions& options,
    const std::function<absl::Status(const v1::TensorInfo&,
                                     std::span<const uint8_t>)>& sink) {
  bool have_info = false;
  v1::TensorInfo info;
  uint64_t received = 0;
  Xxh3_64Hasher hasher;
  int attempts = 0;
  std::optional<v1::TensorInfo> final_info;
  absl::Status status = WithRetries(
      options_, options_.max_attempts,
      [&]() -> absl::Status {
        ++attempts;
        // The bytes of this attempt, checked against the last chunk's hash.
        Xxh3_64Hasher attempt_hasher;
        grpc::ClientContext context;
        SetDeadline(options_, &context);
        client_internal::CancelRegistration registration(options.canceller,
                                                         &context);
        PSTORE_RETURN_IF_ERROR(registration.status());
        v1::GetTensorRequest request;
        request.set_encoding(options.encoding);
        request.set_max_chunk_bytes(options.chunk_bytes != 0
                                        ? options.chunk_bytes
                                        : options_.chunk_bytes);
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
        std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader =
            StartRawRead(connection.channel.get(), connection.get_tensor,
                         &context, request);
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
            return absl::DataLossError(
                "the first chunk carries no tensor info");
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
      },
      /*retries=*/nullptr, options.canceller);
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
  return ReadTo(
      name, options, out.size(),
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
          AdviseHugePages(bytes.data(), bytes.capacity());
        }
        bytes.insert(bytes.end(), piece.begin(), piece.end());
        return absl::OkStatus();
      });
  if (!info.ok()) return info.status();
  return std::make_pair(*std::move(info), std::move(bytes));
}

// --- Unary calls ---

#define PSTORE_UNARY(idempotent, method, request, response) \
  CallUnary(options_, *channels_, Idempotent::idempotent,   \
            &v1::ParamStore::Stub::method, request, response)

absl::StatusOr<v1::TensorInfo> Client::StatTensor(absl::string_view name) {
  v1::StatTensorRequest request;
  request.set_name(std::string(name));
  v1::TensorInfo response;
  absl::Status status = PSTORE_UNARY(kYes, StatTensor, request, &response);
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
    absl::Status status = PSTORE_UNARY(kYes, ListTensors, request, &response);
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
  return WithContext(PSTORE_UNARY(kNo, DeleteTensor, request, &response),
                     absl::StrCat("delete ", name));
}

absl::StatusOr<v1::Revision> Client::CreateRevision(
    absl::string_view name,
    const std::map<std::string, std::string>& metadata) {
  v1::CreateRevisionRequest request;
  request.set_name(std::string(name));
  request.mutable_metadata()->insert(metadata.begin(), metadata.end());
  v1::Revision response;
  absl::Status status = PSTORE_UNARY(kNo, CreateRevision, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("create ", name));
  return response;
}

absl::StatusOr<v1::Revision> Client::PublishRevision(absl::string_view name) {
  v1::PublishRevisionRequest request;
  request.set_name(std::string(name));
  v1::Revision response;
  absl::Status status = PSTORE_UNARY(kYes, PublishRevision, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("publish ", name));
  return response;
}

absl::Status Client::DeleteRevision(absl::string_view name) {
  v1::DeleteRevisionRequest request;
  request.set_name(std::string(name));
  v1::DeleteRevisionResponse response;
  return WithContext(PSTORE_UNARY(kNo, DeleteRevision, request, &response),
                     absl::StrCat("delete ", name));
}

absl::StatusOr<v1::Revision> Client::GetRevision(absl::string_view name,
                                                 bool with_blocks,
                                                 Canceller* canceller) {
  v1::GetRevisionRequest request;
  request.set_name(std::string(name));
  request.set_with_blocks(with_blocks);
  v1::Revision response;
  absl::Status status = CallUnary(options_, *channels_, Idempotent::kYes,
                                  &v1::ParamStore::Stub::GetRevision, request,
                                  &response, canceller);
  if (!status.ok()) return WithContext(status, absl::StrCat("revision ", name));
  return response;
}

absl::StatusOr<std::vector<v1::Model>> Client::ListModels() {
  v1::ListModelsRequest request;
  v1::ListModelsResponse response;
  absl::Status status = PSTORE_UNARY(kYes, ListModels, request, &response);
  if (!status.ok()) return WithContext(status, "list models");
  return std::vector<v1::Model>(response.models().begin(),
                                response.models().end());
}

absl::StatusOr<uint64_t> Client::Pin(absl::string_view name) {
  v1::PinRequest request;
  request.set_name(std::string(name));
  v1::PinResponse response;
  absl::Status status = PSTORE_UNARY(kNo, Pin, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("pin ", name));
  return response.pinned_bytes();
}

absl::Status Client::Unpin(absl::string_view name) {
  v1::UnpinRequest request;
  request.set_name(std::string(name));
  v1::UnpinResponse response;
  return WithContext(PSTORE_UNARY(kNo, Unpin, request, &response),
                     absl::StrCat("unpin ", name));
}

absl::StatusOr<v1::PrefetchResponse> Client::Prefetch(absl::string_view name,
                                                      v1::Tier tier) {
  v1::PrefetchRequest request;
  request.set_name(std::string(name));
  request.set_tier(tier);
  v1::PrefetchResponse response;
  absl::Status status = PSTORE_UNARY(kYes, Prefetch, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("prefetch ", name));
  return response;
}

absl::Status Client::DropCache(v1::Tier tier) {
  v1::DropCacheRequest request;
  request.set_tier(tier);
  v1::DropCacheResponse response;
  return WithContext(PSTORE_UNARY(kYes, DropCache, request, &response),
                     "drop cache");
}

absl::StatusOr<v1::ServerStatus> Client::GetServerStatus() {
  v1::GetServerStatusRequest request;
  v1::ServerStatus response;
  absl::Status status = PSTORE_UNARY(kYes, GetServerStatus, request, &response);
  if (!status.ok()) return WithContext(status, "status");
  return response;
}

absl::StatusOr<v1::VerifyResponse> Client::Verify(absl::string_view name) {
  v1::VerifyRequest request;
  request.set_name(std::string(name));
  v1::VerifyResponse response;
  absl::Status status = PSTORE_UNARY(kYes, Verify, request, &response);
  if (!status.ok()) return WithContext(status, absl::StrCat("verify ", name));
  return response;
}

absl::StatusOr<v1::CollectGarbageResponse> Client::CollectGarbage(
    bool dry_run) {
  v1::CollectGarbageRequest request;
  request.set_dry_run(dry_run);
  v1::CollectGarbageResponse response;
  // Not retried: a sweep that timed out may still be running on the server.
  absl::Status status = PSTORE_UNARY(kNo, CollectGarbage, request, &response);
  if (!status.ok()) return WithContext(status, "gc");
  return response;
}

#undef PSTORE_UNARY

// --- Pull ---

absl::StatusOr<PullResult> Client::PullModel(absl::string_view name,
                                             const PullOptions& options,
                                             const PullCallbacks& callbacks) {
  client_internal::PullSession session(*this, *channels_, name, options,
                                       callbacks);
  return session.Run();
}

}  // namespace pstore
