// RawTensorChunk: a v1::TensorChunk read straight from the gRPC message that
// carried it, without copying its `data` field. Internal to client/.
//
// Protobuf's own parser copies `bytes data` (up to 16 MiB a message) out of
// gRPC's receive slices into a std::string. RawTensorChunk instead walks the
// protobuf wire format across the slices of a grpc::ByteBuffer, keeps a
// reference to the slices, and records where the data field's bytes lie in
// them: readers hash and store those bytes where they are. Every other field
// (tag and value, a few bytes) is copied and parsed by protobuf, so fields
// added to TensorChunk later keep working.
//
// The object owns references to the slices of the last buffer parsed; the
// spans data() returns stay valid until the next Parse or the object's
// destruction. One thread at a time.

#ifndef PSTORE_CLIENT_INTERNAL_RAW_CHUNK_H_
#define PSTORE_CLIENT_INTERNAL_RAW_CHUNK_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "pstore/v1/pstore.pb.h"

namespace pstore::client_internal {

class RawTensorChunk {
 public:
  RawTensorChunk() = default;
  // The spans point into slices_ (inline slices hold their bytes in the
  // grpc_slice itself): not copyable.
  RawTensorChunk(const RawTensorChunk&) = delete;
  RawTensorChunk& operator=(const RawTensorChunk&) = delete;

  // Parses `buffer`, a serialized TensorChunk, replacing what the object
  // held. Takes references to the buffer's slices; copies no byte of
  // `data`. DataLoss if the bytes are not a well-formed TensorChunk: a
  // truncated varint or field, a length past the end, a wire type that is
  // not valid (or groups, which proto3 never sends), a `data` field that is
  // not length-delimited or appears twice, or other fields protobuf cannot
  // parse. After an error the object holds an empty chunk.
  absl::Status Parse(const grpc::ByteBuffer& buffer);

  // Returns every field of the chunk except `data` (data() is empty).
  const v1::TensorChunk& fields() const { return fields_; }
  // Returns the bytes of `data`, in order, in one span per slice they lie
  // in; no span is empty. Empty when the chunk has no data.
  const std::vector<std::span<const uint8_t>>& data() const { return data_; }
  // Returns the total size of data().
  uint64_t data_size() const { return data_size_; }

 private:
  void Clear();

  std::vector<grpc::Slice> slices_;
  std::vector<std::span<const uint8_t>> data_;
  uint64_t data_size_ = 0;
  // The raw bytes of every field but `data`, parsed into fields_.
  std::string other_fields_;
  v1::TensorChunk fields_;
};

}  // namespace pstore::client_internal

#endif  // PSTORE_CLIENT_INTERNAL_RAW_CHUNK_H_
