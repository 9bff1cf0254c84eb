#include "storage/records.h"

#include "absl/container/flat_hash_set.h"

namespace pstore {

uint64_t TensorMeta::BlockSize(size_t index) const {
  if (index + 1 < blocks.size()) return block_bytes;
  return byte_length - block_bytes * index;
}

std::vector<SizedBlock> DistinctBlocks(const std::vector<TensorMeta>& tensors) {
  std::vector<SizedBlock> blocks;
  absl::flat_hash_set<BlockId> seen;
  for (const TensorMeta& tensor : tensors) {
    for (size_t i = 0; i < tensor.blocks.size(); ++i) {
      if (seen.insert(tensor.blocks[i]).second) {
        blocks.push_back(SizedBlock{tensor.blocks[i], tensor.BlockSize(i)});
      }
    }
  }
  return blocks;
}

}  // namespace pstore
