#include "server/chunk.h"

#include <string>

#include "absl/container/inlined_vector.h"
#include "grpcpp/support/slice.h"

namespace pstore {
namespace {

// Tag of TensorChunk.data: field 3, wire type 2 (length-delimited).
constexpr uint8_t kDataTag = (3 << 3) | 2;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Returns the serialized `fields` followed, when `data_length` is not 0, by
// the tag and length of `data`.
std::string Head(const v1::TensorChunk& fields, uint64_t data_length) {
  std::string head = fields.SerializeAsString();
  if (data_length > 0) {
    head.push_back(static_cast<char>(kDataTag));
    AppendVarint(data_length, &head);
  }
  return head;
}

// Releases the block reference a data slice holds.
void ReleaseBlock(void* user_data) { delete static_cast<BlockRef*>(user_data); }

// Returns a slice of bytes [offset, offset + length) of `block` that holds
// a reference to it.
grpc::Slice DataSlice(const BlockRef& block, uint64_t offset, uint64_t length) {
  // gRPC never writes through the pointer; the API is not const-correct.
  return grpc::Slice(const_cast<uint8_t*>(block->data()) + offset, length,
                     &ReleaseBlock, new BlockRef(block));
}

}  // namespace

grpc::ByteBuffer MakeChunkBuffer(const v1::TensorChunk& fields,
                                 std::span<const DataPiece> pieces) {
  uint64_t length = 0;
  for (const DataPiece& piece : pieces) length += piece.length;
  absl::InlinedVector<grpc::Slice, 4> slices;
  slices.emplace_back(Head(fields, length));
  for (const DataPiece& piece : pieces) {
    if (piece.length == 0) continue;
    slices.push_back(DataSlice(piece.block, piece.offset, piece.length));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

grpc::ByteBuffer MakeChunkBuffer(const v1::TensorChunk& fields,
                                 const BlockRef& block, uint64_t offset,
                                 uint64_t length) {
  if (length == 0) {
    grpc::Slice slice(Head(fields, 0));
    return grpc::ByteBuffer(&slice, 1);
  }
  grpc::Slice slices[2] = {Head(fields, length),
                           DataSlice(block, offset, length)};
  return grpc::ByteBuffer(slices, 2);
}

grpc::ByteBuffer MakeBlockDataBuffer(const BlockRef& block) {
  // Tag of BlockData.data: field 1, wire type 2.
  std::string head(1, static_cast<char>((1 << 3) | 2));
  AppendVarint(block->size(), &head);
  if (block->size() == 0) {
    grpc::Slice slice(head);
    return grpc::ByteBuffer(&slice, 1);
  }
  grpc::Slice slices[2] = {grpc::Slice(head),
                           DataSlice(block, 0, block->size())};
  return grpc::ByteBuffer(slices, 2);
}

}  // namespace pstore
