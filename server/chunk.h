// Builds TensorChunk messages as gRPC byte buffers without copying block
// bytes: the serialized small fields plus the tag and length of `data` go
// in one small slice, and `data` is a slice that points into the cached
// block and holds a reference to it until gRPC is done with the bytes.
// The result parses as an ordinary pstore.v1.TensorChunk in any client.
//
// Thread-safe: MakeChunkBuffer keeps no state, and the block reference it
// takes may be dropped on any thread (gRPC releases it on its own).

#ifndef PSTORE_SERVER_CHUNK_H_
#define PSTORE_SERVER_CHUNK_H_

#include <cstdint>

#include "grpcpp/support/byte_buffer.h"
#include "pstore/v1/pstore.pb.h"
#include "storage/block.h"

namespace pstore {

// Returns a serialized TensorChunk whose `data` is bytes
// [offset, offset + length) of `block`, and whose other fields are those
// of `fields` (its `data` must be empty). REQUIRES: the range lies within
// the block.
grpc::ByteBuffer MakeChunkBuffer(const v1::TensorChunk& fields,
                                 const BlockRef& block, uint64_t offset,
                                 uint64_t length);

}  // namespace pstore

#endif  // PSTORE_SERVER_CHUNK_H_
