// Builds TensorChunk messages as gRPC byte buffers without copying block
// bytes: the serialized small fields plus the tag and length of `data` go
// in one small slice, and `data` is one slice per piece of a block, each
// pointing into the cached block and holding a reference to it until gRPC
// is done with the bytes. The result parses as an ordinary
// pstore.v1.TensorChunk in any client.
//
// Thread-safe: MakeChunkBuffer keeps no state, and the block references it
// takes may be dropped on any thread (gRPC releases them on its own).

#ifndef PSTORE_SERVER_CHUNK_H_
#define PSTORE_SERVER_CHUNK_H_

#include <cstdint>
#include <span>

#include "grpcpp/support/byte_buffer.h"
#include "pstore/v1/pstore.pb.h"
#include "storage/block.h"

namespace pstore {

// Bytes [offset, offset + length) of `block`: a piece of a chunk's data.
struct DataPiece {
  BlockRef block;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Returns a serialized TensorChunk whose `data` is the bytes of `pieces`,
// in order, and whose other fields are those of `fields` (its `data` must
// be empty). REQUIRES: each piece lies within its block.
grpc::ByteBuffer MakeChunkBuffer(const v1::TensorChunk& fields,
                                 std::span<const DataPiece> pieces);

// Returns a serialized TensorChunk whose `data` is bytes
// [offset, offset + length) of `block`, and whose other fields are those
// of `fields` (its `data` must be empty). REQUIRES: the range lies within
// the block.
grpc::ByteBuffer MakeChunkBuffer(const v1::TensorChunk& fields,
                                 const BlockRef& block, uint64_t offset,
                                 uint64_t length);

// Returns a serialized pstore.v1.BlockData whose `data` is the whole of
// `block`, pointing into it.
grpc::ByteBuffer MakeBlockDataBuffer(const BlockRef& block);

}  // namespace pstore

#endif  // PSTORE_SERVER_CHUNK_H_
