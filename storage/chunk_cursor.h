// ChunkCursor: walks a read plan (storage/read_plan.h) as the chunks a
// stream sends. The plan's parts become "units", one per block slice (or
// one for an empty part), read and sent in order; each unit's block is cut
// into chunks of at most max_chunk_bytes, each with the XXH3-64 a reader
// checks; the last chunk of a part carries the XXH3-64 of the whole part
// and, when the encoding was derived while sending, what the part came to
// (which a whole part also records in the store, so the next read of it
// knows its hash beforehand).
//
// Thread-compatible: one stream owns a cursor, under its own lock.

#ifndef PSTORE_STORAGE_CHUNK_CURSOR_H_
#define PSTORE_STORAGE_CHUNK_CURSOR_H_

#include <cstdint>
#include <vector>

#include "codec/encoding.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/encoded_blocks.h"
#include "storage/read_plan.h"

namespace pstore {

// One chunk of a read, as the cursor cuts it.
struct Chunk {
  const ReadPart* part = nullptr;
  bool first = false;          // The first chunk of its part.
  BlockRef block;              // Null for a chunk without bytes.
  uint64_t block_offset = 0;   // Of the chunk's first byte in `block`.
  uint64_t length = 0;         // Bytes of the chunk.
  uint64_t tensor_offset = 0;  // Of the chunk's first byte in the tensor.
  uint64_t xxh3_64 = 0;        // Of the chunk's bytes.
  bool unit_done = false;      // The chunk ends its unit.
  bool last = false;           // The last chunk of its part.
  // When `last`: the XXH3-64 of every byte of the part.
  uint64_t xxh3_64_of_all = 0;
  // When `last` and the part's hash (or, for a quantized encoding, its
  // error) was not known beforehand: the hash and error it came to.
  bool derived = false;
  QuantizationStats stats;
};

class ChunkCursor {
 public:
  // Walks `parts`, cutting chunks of at most `max_chunk_bytes`, and records
  // what whole encoded tensors come to in `summaries` (not owned; outlives
  // the cursor).
  ChunkCursor(std::vector<ReadPart> parts, uint32_t max_chunk_bytes,
              EncodedBlockCache* summaries);

  // The units, in sending order.
  size_t num_units() const { return units_.size(); }
  const ReadPart& part_of(size_t unit) const {
    return parts_[units_[unit].part];
  }
  // Returns true if `unit` stands for an empty part (it has no block).
  bool is_empty(size_t unit) const { return units_[unit].slice < 0; }
  // REQUIRES: !is_empty(unit).
  const BlockSlice& slice_of(size_t unit) const {
    return part_of(unit).slices[units_[unit].slice];
  }
  // Returns the bytes of the block `unit` reads (0 for an empty part).
  uint64_t unit_bytes(size_t unit) const {
    return is_empty(unit) ? 0 : slice_of(unit).block_size;
  }

  // Returns the next chunk of `unit`, the first unit not yet sent whole,
  // from its block `block` (ignored for an empty part). REQUIRES: the
  // chunks of every earlier unit were taken.
  Chunk Next(size_t unit, const EncodedBlock& block);

 private:
  struct Unit {
    size_t part = 0;
    int slice = -1;  // -1: an empty part.
  };

  const std::vector<ReadPart> parts_;
  const uint32_t max_chunk_bytes_;
  EncodedBlockCache* const summaries_;
  std::vector<Unit> units_;
  uint64_t sent_in_unit_ = 0;  // Bytes of the current unit taken.
  Xxh3_64Hasher part_hash_;    // Of the current part, when not known.
  QuantizationStats part_stats_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_CHUNK_CURSOR_H_
