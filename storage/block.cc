#include "storage/block.h"

#include <cstring>
#include <utility>

namespace pstore {

BlockData::BlockData(Buffer buffer, size_t size)
    : buffer_(std::move(buffer)), size_(size) {
  size_t padded = AlignUp(size_);
  if (padded > size_) std::memset(buffer_.data() + size_, 0, padded - size_);
}

BlockRef CopyBlock(std::span<const uint8_t> bytes, BufferPool& pool) {
  Buffer buffer = pool.Allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer.data(), bytes.data(), bytes.size());
  return MakeBlock(std::move(buffer), bytes.size());
}

}  // namespace pstore
