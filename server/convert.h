// Conversions between storage types and the pstore.v1 wire messages, and
// from absl::Status to grpc::Status (the same canonical codes).
//
// Pure functions; thread-safe.

#ifndef PSTORE_SERVER_CONVERT_H_
#define PSTORE_SERVER_CONVERT_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "grpcpp/support/status.h"
#include "pstore/v1/pstore.pb.h"
#include "storage/tiered_store.h"

namespace pstore {

// Returns `status` as a grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Fills the stored-tensor fields of `info` from `meta`; the fields of what
// a read sends (encoding, byte_length, offset, xxh3_64) describe the whole
// raw tensor.
void ToTensorInfo(const TensorMeta& meta, v1::TensorInfo* info);
// Sets info's block_bytes and block_ids from `meta`.
void AddBlocks(const TensorMeta& meta, v1::TensorInfo* info);

// Fills `info` with what a read of `part` sends: the stored tensor, the
// encoding, the part's offset and byte length, and its XXH3-64 and
// quantization error where known beforehand.
void ToTensorInfo(const ReadPart& part, v1::TensorInfo* info);

// Sets the XXH3-64 and, for a quantized encoding, the error of `info` to
// what a part came to (see Chunk::derived).
void SetDerivedInfo(Encoding encoding, uint64_t xxh3_64,
                    const QuantizationStats& stats, v1::TensorInfo* info);

// Fills `revision` from `info` (without tensors).
void ToRevision(const RevisionInfo& info, v1::Revision* revision);

// Parses `message` from the raw bytes of a request. InvalidArgument naming
// the message type if they are not one. (Every method of the service reads
// raw bytes because gRPC 1.51 answers a request that does not parse with
// UNIMPLEMENTED on unary calls, and ends a client stream as if the client
// had half-closed.) The buffer's slices are shared, not copied.
template <typename Message>
absl::Status ParseRaw(const grpc::ByteBuffer& buffer, Message* message) {
  grpc::ByteBuffer shared(buffer);
  if (!grpc::SerializationTraits<Message>::Deserialize(&shared, message).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request is not a valid ", Message::descriptor()->full_name(),
        " message (protobuf wire format, UTF-8 strings)"));
  }
  return absl::OkStatus();
}

// If `slices` (the raw bytes of a PutTensorRequest) are exactly one `data`
// field and nothing else, sets `pieces` to that field's bytes as spans into
// the slices (no copy) and returns true. Returns false for any other
// message (a header, several fields, unknown fields, a truncated length),
// which ParseRaw then takes, so the result is the same as a full parse.
bool PutDataPieces(const std::vector<grpc::Slice>& slices,
                   std::vector<std::span<const uint8_t>>& pieces);

// Returns the TierKind of a wire tier. InvalidArgument for
// TIER_UNSPECIFIED or unknown values.
absl::StatusOr<TierKind> FromWireTier(v1::Tier tier);

// Returns the wire tier of `kind`.
v1::Tier ToWireTier(TierKind kind);

}  // namespace pstore

#endif  // PSTORE_SERVER_CONVERT_H_
