#include "storage/block.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace pstore {

BlockData::BlockData(Buffer buffer, size_t size)
    : buffer_(std::move(buffer)), size_(size) {
  size_t padded = AlignUp(size_);
  if (padded > size_) std::memset(buffer_.data() + size_, 0, padded - size_);
}

uint64_t BlockData::ChunkHash(uint64_t offset, uint64_t length,
                              uint64_t chunk_bytes) const {
  std::span<const uint8_t> range = bytes().subspan(offset, length);
  if (chunk_bytes == 0 || offset % chunk_bytes != 0 ||
      length != std::min<uint64_t>(chunk_bytes, size_ - offset)) {
    return Xxh3_64(range);
  }
  const size_t index = offset / chunk_bytes;
  {
    absl::MutexLock lock(&memo_mu_);
    if (memo_chunk_bytes_ == chunk_bytes && memo_known_[index]) {
      return memo_hashes_[index];
    }
  }
  // Hash outside the lock; two senders may both hash a chunk once.
  const uint64_t hash = Xxh3_64(range);
  absl::MutexLock lock(&memo_mu_);
  if (memo_chunk_bytes_ != chunk_bytes) {
    const size_t chunks = (size_ + chunk_bytes - 1) / chunk_bytes;
    memo_chunk_bytes_ = chunk_bytes;
    memo_hashes_.assign(chunks, 0);
    memo_known_.assign(chunks, false);
  }
  memo_hashes_[index] = hash;
  memo_known_[index] = true;
  return hash;
}

BlockRef CopyBlock(std::span<const uint8_t> bytes, BufferPool& pool) {
  Buffer buffer = pool.Allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer.data(), bytes.data(), bytes.size());
  return MakeBlock(std::move(buffer), bytes.size());
}

}  // namespace pstore
