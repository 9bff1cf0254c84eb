#include "storage/chunk_cursor.h"

#include <algorithm>
#include <span>
#include <utility>

namespace pstore {

ChunkCursor::ChunkCursor(std::vector<ReadPart> parts, uint32_t max_chunk_bytes,
                         EncodedBlockCache* summaries)
    : parts_(std::move(parts)),
      max_chunk_bytes_(max_chunk_bytes),
      summaries_(summaries) {
  for (size_t p = 0; p < parts_.size(); ++p) {
    if (parts_[p].slices.empty()) units_.push_back(Unit{p, -1});
    for (size_t i = 0; i < parts_[p].slices.size(); ++i) {
      units_.push_back(Unit{p, static_cast<int>(i)});
    }
  }
}

Chunk ChunkCursor::Next(size_t unit_index, const EncodedBlock& block) {
  const Unit& unit = units_[unit_index];
  const ReadPart& part = parts_[unit.part];
  Chunk chunk;
  chunk.part = &part;
  chunk.first = unit.slice <= 0 && sent_in_unit_ == 0;
  if (chunk.first) {
    part_hash_.Reset();
    part_stats_ = QuantizationStats();
  }
  if (sent_in_unit_ == 0) part_stats_.Merge(block.stats);

  if (unit.slice >= 0) {
    const BlockSlice& slice = part.slices[unit.slice];
    chunk.block = block.block;
    chunk.block_offset = slice.offset + sent_in_unit_;
    chunk.length =
        std::min<uint64_t>(max_chunk_bytes_, slice.length - sent_in_unit_);
    chunk.tensor_offset = slice.tensor_offset + chunk.block_offset;
  } else {
    chunk.tensor_offset = part.offset;
  }
  std::span<const uint8_t> data;
  if (chunk.length > 0) {
    data = chunk.block->bytes().subspan(chunk.block_offset, chunk.length);
  }
  // Chunks of a block are cut every max_chunk_bytes from the slice's start;
  // the block remembers their hashes when the slice starts the block.
  chunk.xxh3_64 = chunk.length > 0 && part.slices[unit.slice].offset == 0
                      ? chunk.block->ChunkHash(chunk.block_offset, chunk.length,
                                               max_chunk_bytes_)
                      : Xxh3_64(data);
  // The hash of everything sent is known beforehand for a whole part whose
  // hash the store knows; otherwise it is computed while sending.
  const bool hash_known = part.whole && part.xxh3_64.has_value();
  if (!hash_known) part_hash_.Update(data);
  sent_in_unit_ += chunk.length;

  chunk.unit_done =
      unit.slice < 0 || sent_in_unit_ == part.slices[unit.slice].length;
  chunk.last = chunk.unit_done &&
               (unit.slice < 0 ||
                unit.slice + 1 == static_cast<int>(part.slices.size()));
  if (chunk.unit_done) sent_in_unit_ = 0;
  if (!chunk.last) return chunk;

  chunk.xxh3_64_of_all = hash_known ? *part.xxh3_64 : part_hash_.Digest();
  if (!part.xxh3_64.has_value() ||
      (IsQuantized(part.encoding) && !part.quantization.has_value())) {
    chunk.derived = true;
    chunk.stats = part_stats_;
    if (part.whole && !IsIdentityEncoding(part.tensor.dtype, part.encoding)) {
      summaries_->RecordSummary(
          part.tensor, part.encoding,
          EncodedTensorSummary{chunk.xxh3_64_of_all, part_stats_});
    }
  }
  return chunk;
}

}  // namespace pstore
