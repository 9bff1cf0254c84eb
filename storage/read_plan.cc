#include "storage/read_plan.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "codec/encoding_plan.h"
#include "util/status.h"

namespace pstore {
namespace {

// Returns the part of `tensor` read in `encoding` over bytes [offset,
// offset + length) of the encoded tensor. REQUIRES: encodable.
absl::StatusOr<ReadPart> MakePart(const TensorMeta& tensor, Encoding encoding,
                                  uint64_t offset, uint64_t length,
                                  uint32_t index,
                                  const EncodedBlockCache* summaries) {
  TensorMeta view = EncodedView(tensor, encoding);
  ReadPart part;
  part.tensor_index = index;
  part.tensor = tensor;
  part.encoding = encoding;
  PSTORE_ASSIGN_OR_RETURN(part.slices, SliceTensor(view, offset, length));
  part.offset = offset;
  part.byte_length = length == 0 ? view.byte_length - offset : length;
  part.whole = offset == 0 && part.byte_length == view.byte_length;
  if (!part.whole) return part;
  if (IsIdentityEncoding(tensor.dtype, encoding)) {
    part.xxh3_64 = tensor.xxh3_64;
  } else if (summaries != nullptr) {
    if (std::optional<EncodedTensorSummary> summary =
            summaries->FindSummary(tensor, encoding)) {
      part.xxh3_64 = summary->xxh3_64;
      if (IsQuantized(encoding)) part.quantization = summary->stats;
    }
  }
  return part;
}

}  // namespace

absl::StatusOr<std::vector<BlockSlice>> SliceTensor(const TensorMeta& tensor,
                                                    uint64_t offset,
                                                    uint64_t length) {
  if (offset > tensor.byte_length ||
      (length > 0 && length > tensor.byte_length - offset)) {
    return absl::OutOfRangeError(absl::StrCat(
        "byte range at ", offset, " of ", length, " bytes passes the end of ",
        tensor.name.ToString(), " (", tensor.byte_length, " bytes)"));
  }
  if (length == 0) length = tensor.byte_length - offset;
  std::vector<BlockSlice> slices;
  if (length == 0) return slices;
  uint64_t end = offset + length;
  size_t first = offset / tensor.block_bytes;
  for (size_t index = first; index < tensor.blocks.size(); ++index) {
    uint64_t block_start = index * tensor.block_bytes;
    if (block_start >= end) break;
    BlockSlice slice;
    slice.index = index;
    slice.id = tensor.blocks[index];
    slice.block_size = tensor.BlockSize(index);
    slice.tensor_offset = block_start;
    slice.offset = std::max(offset, block_start) - block_start;
    slice.length = std::min(end, block_start + slice.block_size) - block_start -
                   slice.offset;
    slices.push_back(slice);
  }
  return slices;
}

TensorMeta EncodedView(const TensorMeta& tensor, Encoding encoding) {
  if (IsIdentityEncoding(tensor.dtype, encoding)) return tensor;
  TensorMeta view = tensor;
  uint64_t element_size = DTypeSize(tensor.dtype);
  view.byte_length = EncodedByteLength(tensor.dtype, encoding,
                                       tensor.byte_length / element_size);
  view.block_bytes = EncodedByteLength(tensor.dtype, encoding,
                                       tensor.block_bytes / element_size);
  return view;
}

absl::StatusOr<ReadPart> PlanTensorRead(const TensorMeta& tensor,
                                        Encoding encoding, uint64_t offset,
                                        uint64_t length,
                                        const EncodedBlockCache* summaries) {
  PSTORE_RETURN_IF_ERROR(
      Annotate(CheckEncodable(tensor.dtype, tensor.shape, encoding),
               tensor.name.ToString()));
  if (IsQuantized(encoding)) {
    uint64_t block =
        encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
    if (offset % block != 0 || length % block != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a ", EncodingName(encoding), " byte range must start and end on ",
          block, "-byte block boundaries; got offset ", offset, " length ",
          length));
    }
  }
  return MakePart(tensor, encoding, offset, length, 0, summaries);
}

std::vector<ReadPart> PlanShard(const std::vector<TensorMeta>& tensors,
                                Encoding requested, uint32_t shard,
                                uint32_t count,
                                const EncodedBlockCache* summaries) {
  std::vector<Encoding> encodings;
  std::vector<uint64_t> encoded_bytes;
  uint64_t total = 0;
  for (const TensorMeta& tensor : tensors) {
    encodings.push_back(EncodingForPull(tensor.dtype, tensor.shape, requested));
    encoded_bytes.push_back(EncodedView(tensor, encodings.back()).byte_length);
    total += encoded_bytes.back();
  }
  // The shard a byte at `offset` of the concatenated encoded tensors is in.
  auto shard_of = [&](uint64_t offset) -> uint32_t {
    if (total == 0) return 0;
    unsigned __int128 scaled =
        static_cast<unsigned __int128>(offset) * count / total;
    return static_cast<uint32_t>(
        std::min<unsigned __int128>(scaled, count - 1));
  };
  std::vector<ReadPart> parts;
  uint64_t base = 0;
  for (size_t index = 0; index < tensors.size(); ++index) {
    // The whole tensor, sliced; a whole slice cannot fail.
    ReadPart part = *MakePart(tensors[index], encodings[index], 0, 0,
                              static_cast<uint32_t>(index), summaries);
    const uint64_t tensor_base = base;
    base += encoded_bytes[index];
    if (part.slices.empty()) {
      if (shard_of(tensor_base) == shard) parts.push_back(std::move(part));
      continue;
    }
    std::vector<BlockSlice> mine;
    for (const BlockSlice& slice : part.slices) {
      if (shard_of(tensor_base + slice.tensor_offset) == shard) {
        mine.push_back(slice);
      }
    }
    if (mine.empty()) continue;
    if (mine.size() != part.slices.size()) {
      part.whole = false;
      part.offset = mine.front().tensor_offset;
      part.byte_length = 0;
      for (const BlockSlice& slice : mine) part.byte_length += slice.length;
      part.xxh3_64.reset();
      part.quantization.reset();
      part.slices = std::move(mine);
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace pstore
