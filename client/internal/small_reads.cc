#include "client/internal/small_reads.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/internal/call_util.h"
#include "client/internal/raw_chunk.h"
#include "codec/hash.h"
#include "grpcpp/client_context.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/support/byte_buffer.h"

namespace pstore::client_internal {
namespace {

// Returns OK if the reply `raw` to a read of `options` describes and holds
// the bytes asked for, checked against their hashes; DataLoss if not.
absl::Status CheckReply(const RawTensorChunk& raw, const GetOptions& options) {
  const v1::TensorChunk& chunk = raw.fields();
  if (!chunk.has_info()) {
    return absl::DataLossError("the reply carries no tensor info");
  }
  const v1::TensorInfo& info = chunk.info();
  if (!info.has_xxh3_64()) {
    return absl::DataLossError(
        absl::StrCat(info.name(), ": the reply carries no hash of its bytes"));
  }
  if (info.offset() != options.offset ||
      (options.length != 0 && info.byte_length() != options.length)) {
    return absl::DataLossError(absl::StrCat(
        info.name(), ": the reply is for bytes [", info.offset(), ", ",
        info.offset() + info.byte_length(), "), not the range asked for"));
  }
  absl::Status placed = CheckChunk(raw, info.offset(), info.byte_length(),
                                   info.name(), /*verify_hash=*/true);
  if (!placed.ok()) return placed;
  if (raw.data_size() != info.byte_length() || !chunk.last()) {
    return absl::DataLossError(absl::StrCat(info.name(), ": the reply holds ",
                                            raw.data_size(), " of ",
                                            info.byte_length(), " bytes"));
  }
  // CheckChunk hashed the bytes against the chunk's hash: the info's must
  // be the same, and a whole raw read's the one the tensor was put with.
  const bool whole_raw = info.encoding() == "raw" && info.offset() == 0 &&
                         info.byte_length() == info.stored_byte_length();
  if (info.xxh3_64() != chunk.xxh3_64() ||
      (whole_raw && info.xxh3_64() != info.stored_xxh3_64())) {
    return absl::DataLossError(absl::StrCat(
        info.name(), ": the bytes hash to ", Hex(chunk.xxh3_64()), ", not ",
        Hex(whole_raw ? info.stored_xxh3_64() : info.xxh3_64())));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SmallReads::Key(absl::string_view name, const GetOptions& options) {
  return absl::StrCat(name, "|", options.encoding);
}

bool SmallReads::ShouldTry(absl::string_view name, const GetOptions& options,
                           std::optional<uint64_t> expected_bytes) {
  if (unimplemented_.load(std::memory_order_relaxed)) return false;
  if (expected_bytes.has_value()) return *expected_bytes <= kMaxSmallReadBytes;
  if (options.length != 0) return options.length <= kMaxSmallReadBytes;
  absl::MutexLock lock(&mu_);
  auto known = sizes_.find(Key(name, options));
  if (known == sizes_.end() || known->second <= options.offset) return true;
  return known->second - options.offset <= kMaxSmallReadBytes;
}

void SmallReads::Remember(absl::string_view name, const GetOptions& options,
                          const v1::TensorInfo& info) {
  if (options.length != 0) return;  // The read says nothing of the end.
  absl::MutexLock lock(&mu_);
  if (sizes_.size() >= kMaxRemembered) sizes_.clear();
  sizes_[Key(name, options)] = info.offset() + info.byte_length();
}

absl::StatusOr<std::optional<v1::TensorInfo>> SmallReads::Read(
    const ClientOptions& client_options, Channels& channels,
    absl::string_view name, const GetOptions& options, const Sink& sink) {
  v1::GetTensorRequest request;
  request.set_name(std::string(name));
  request.set_encoding(options.encoding);
  request.set_offset(options.offset);
  request.set_length(options.length);
  grpc::ByteBuffer reply;
  absl::Status status = WithRetries(
      client_options, client_options.max_attempts,
      [&]() -> absl::Status {
        grpc::ClientContext context;
        SetDeadline(client_options, &context);
        CancelRegistration registration(options.canceller, &context);
        if (absl::Status cancelled = registration.status(); !cancelled.ok()) {
          return cancelled;
        }
        Channels::Connection& connection = channels.SmallReads();
        return FromGrpc(grpc::internal::BlockingUnaryCall<v1::GetTensorRequest,
                                                          grpc::ByteBuffer>(
            connection.channel.get(), connection.read_tensor, &context, request,
            &reply));
      },
      /*retries=*/nullptr, options.canceller);
  if (absl::IsUnimplemented(status)) {
    unimplemented_.store(true, std::memory_order_relaxed);
    return std::nullopt;
  }
  if (absl::IsResourceExhausted(status)) return std::nullopt;
  if (!status.ok()) return status;

  RawTensorChunk raw;
  if (absl::Status parsed = raw.Parse(reply); !parsed.ok()) return parsed;
  if (absl::Status checked = CheckReply(raw, options); !checked.ok()) {
    return checked;
  }
  const v1::TensorInfo& info = raw.fields().info();
  if (raw.data_size() == 0) {
    if (absl::Status done = sink(info, {}); !done.ok()) return done;
  } else {
    absl::Status done = ForEachPiece(
        raw, [&](std::span<const uint8_t> piece) { return sink(info, piece); });
    if (!done.ok()) return done;
  }
  Remember(name, options, info);
  return std::optional<v1::TensorInfo>(info);
}

}  // namespace pstore::client_internal
