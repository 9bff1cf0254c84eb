// BlockData: the immutable bytes of one block, in a pool buffer, shared by
// reference count (BlockRef). A block being streamed to a client stays alive
// after its tier evicts it, without a copy. Bytes past size() up to the
// buffer's capacity are zero, so a block can be written with O_DIRECT as is.
//
// BlockData's bytes are immutable once built; the memo of chunk hashes is
// guarded by a mutex. Thread-safe.

#ifndef PSTORE_STORAGE_BLOCK_H_
#define PSTORE_STORAGE_BLOCK_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "codec/hash.h"
#include "storage/buffer_pool.h"

namespace pstore {

class BlockData {
 public:
  // Takes `buffer` whose first `size` bytes are the block; zeroes the rest
  // up to the next multiple of kIoAlignment. REQUIRES: size <= capacity.
  BlockData(Buffer buffer, size_t size);

  const uint8_t* data() const { return buffer_.data(); }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {buffer_.data(), size_}; }
  absl::string_view view() const {
    return {reinterpret_cast<const char*>(buffer_.data()), size_};
  }
  // Returns the bytes of memory this block holds (its buffer's capacity):
  // what budgets charge for it.
  size_t charge() const { return buffer_.capacity(); }
  // Returns the block's bytes padded with zeros to a multiple of
  // kIoAlignment, for O_DIRECT writes.
  std::span<const uint8_t> aligned_bytes() const {
    return {buffer_.data(), AlignUp(size_)};
  }

  // Returns the XXH3-64 of bytes [offset, offset + length). Chunks cut from
  // the start of the block every `chunk_bytes` (offset a multiple of it,
  // length min(chunk_bytes, size() - offset)) are hashed once and
  // remembered, for the last chunk size asked for: a block in the DRAM
  // cache is sent to many clients. REQUIRES: the range lies in the block.
  uint64_t ChunkHash(uint64_t offset, uint64_t length,
                     uint64_t chunk_bytes) const;

 private:
  Buffer buffer_;
  size_t size_;
  mutable absl::Mutex memo_mu_;
  mutable uint64_t memo_chunk_bytes_ ABSL_GUARDED_BY(memo_mu_) = 0;
  // Per chunk: its hash, valid where memo_known_ says so.
  mutable std::vector<uint64_t> memo_hashes_ ABSL_GUARDED_BY(memo_mu_);
  mutable std::vector<bool> memo_known_ ABSL_GUARDED_BY(memo_mu_);
};

using BlockRef = std::shared_ptr<const BlockData>;

// Returns a new block holding a copy of `bytes`, from `pool`.
BlockRef CopyBlock(std::span<const uint8_t> bytes,
                   BufferPool& pool = BufferPool::Default());

// Returns a block built from the first `size` bytes of `buffer`.
inline BlockRef MakeBlock(Buffer buffer, size_t size) {
  return std::make_shared<const BlockData>(std::move(buffer), size);
}

}  // namespace pstore

#endif  // PSTORE_STORAGE_BLOCK_H_
