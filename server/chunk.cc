#include "server/chunk.h"

#include <string>

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

// Releases the block reference a data slice holds.
void ReleaseBlock(void* user_data) { delete static_cast<BlockRef*>(user_data); }

}  // namespace

grpc::ByteBuffer MakeChunkBuffer(const v1::TensorChunk& fields,
                                 const BlockRef& block, uint64_t offset,
                                 uint64_t length) {
  std::string head = fields.SerializeAsString();
  if (length == 0) {
    grpc::Slice slice(head);
    return grpc::ByteBuffer(&slice, 1);
  }
  head.push_back(static_cast<char>(kDataTag));
  AppendVarint(length, &head);
  grpc::Slice slices[2] = {
      grpc::Slice(head),
      // gRPC never writes through the pointer; the API is not const-correct.
      grpc::Slice(const_cast<uint8_t*>(block->data()) + offset, length,
                  &ReleaseBlock, new BlockRef(block)),
  };
  return grpc::ByteBuffer(slices, 2);
}

}  // namespace pstore
