// Read plans: which blocks, in which encoding, a read of a tensor or of a
// shard of a revision sends, and what is known of the bytes before they go.
// A plan is a list of parts, one per tensor (or byte range of one); each
// part lists the block slices of the tensor's encoded view (EncodedView) it
// covers, in order. Pure functions of the records; thread-safe.

#ifndef PSTORE_STORAGE_READ_PLAN_H_
#define PSTORE_STORAGE_READ_PLAN_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "codec/encoding.h"
#include "codec/hash.h"
#include "storage/encoded_blocks.h"
#include "storage/records.h"

namespace pstore {

// The part of one block that a byte range covers.
struct BlockSlice {
  size_t index = 0;  // Block index in the tensor.
  BlockId id;
  uint64_t block_size = 0;     // Size of the whole block.
  uint64_t tensor_offset = 0;  // Offset of the block in the tensor.
  uint64_t offset = 0;         // First byte of the range in the block.
  uint64_t length = 0;         // Bytes of the range in the block.
};

// Returns the blocks covering bytes [offset, offset + length) of `tensor`;
// length 0 means to the end. OutOfRange if the range passes the end.
absl::StatusOr<std::vector<BlockSlice>> SliceTensor(const TensorMeta& tensor,
                                                    uint64_t offset,
                                                    uint64_t length);

// Returns a view of `tensor` as read in `encoding`: byte_length and
// block_bytes of the encoded bytes (block i of the view is the encoding of
// stored block i), everything else as stored. REQUIRES: encodable.
TensorMeta EncodedView(const TensorMeta& tensor, Encoding encoding);

// One tensor's part of a read.
struct ReadPart {
  uint32_t tensor_index = 0;           // In the read: 0, or the manifest index.
  TensorMeta tensor;                   // As stored.
  Encoding encoding = Encoding::kRaw;  // Every block is read in it.
  uint64_t offset = 0;       // First byte of the part in the encoded tensor.
  uint64_t byte_length = 0;  // Bytes of the part.
  bool whole = false;        // The part is the whole encoded tensor.
  // Known before sending, for a whole part: the XXH3-64 of its bytes and,
  // for a quantized encoding, what the tensor lost.
  std::optional<uint64_t> xxh3_64;
  std::optional<QuantizationStats> quantization;
  // The slices of the encoded view to send, in order; empty for an empty
  // part (an empty tensor is still sent, as a part without bytes).
  std::vector<BlockSlice> slices;
};

// Returns the part of `tensor` read in `encoding` over bytes [offset,
// offset + length) of the encoded tensor (length 0: to the end).
// `summaries` says what earlier whole reads learnt of the encoded tensor
// (null: nothing).
// InvalidArgument if the tensor cannot be read in `encoding`, or a
// quantized range does not start and end on quantization block
// boundaries; OutOfRange if the range passes the end.
absl::StatusOr<ReadPart> PlanTensorRead(const TensorMeta& tensor,
                                        Encoding encoding, uint64_t offset,
                                        uint64_t length,
                                        const EncodedBlockCache* summaries);

// Returns shard `shard` of `count` of a read of `tensors` (a manifest, in
// order), each tensor in the encoding EncodingForPull gives it: the
// encoded blocks, in manifest order, cut into `count` contiguous runs of
// about equal bytes. `summaries` as for PlanTensorRead. REQUIRES: shard <
// count.
std::vector<ReadPart> PlanShard(const std::vector<TensorMeta>& tensors,
                                Encoding requested, uint32_t shard,
                                uint32_t count,
                                const EncodedBlockCache* summaries);

}  // namespace pstore

#endif  // PSTORE_STORAGE_READ_PLAN_H_
