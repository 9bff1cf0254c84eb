// DramTier: the hot tier, the DramCache of storage/dram_cache.h. A sharded
// in-memory cache of blocks under a byte budget, with whole-revision pins
// and an eviction callback (the tiered store spills victims to NVMe through
// it).
//
// Entries are keyed by CacheKey: a block id and a variant. Variant 0
// (kStoredVariant) is the block as stored; other variants hold blocks
// derived from it (an encoding such as q8_0), so derived bytes live inside
// the same budget and are evicted like any block. The Tier interface reads
// and writes variant 0; Erase(id) drops every variant of the id.
//
// Reads hand out BlockRefs: an evicted block stays alive while a reader
// still holds it, without a copy.
//
// Eviction policy: S3-FIFO (Yang et al., SOSP 2023) per shard: a small FIFO
// (10% of the shard's bytes) admits new entries, a main FIFO holds entries
// read again while in the small one, and a ghost FIFO of recently evicted
// ids sends re-inserted blocks straight to main. A one-pass scan (pulling a
// model larger than DRAM) passes through the small queue and never flushes
// a small set that is read repeatedly; see tests for that property.
//
// The budget is global: an insert that would pass it evicts from its own
// shard first and then from the others, so pinned blocks crowding one shard
// never push the total over the budget.
//
// Pins: Pin(name, blocks, load) pins every block of a revision or none.
// Pinned bytes never exceed Options::pin_budget_bytes; pinned entries are
// never evicted and are not dropped by Clear(). A block shared by several
// pins is charged once.
//
// Thread-safe. No lock is held while the eviction callback or a pin's load
// function runs.

#ifndef PSTORE_STORAGE_DRAM_DRAM_TIER_H_
#define PSTORE_STORAGE_DRAM_DRAM_TIER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/dram_cache.h"
#include "storage/tier.h"

namespace pstore {

struct DramTierOptions {
  // The byte budget, charged by buffer capacity (BlockData::charge()).
  // Default: 1 GiB.
  uint64_t capacity_bytes = uint64_t{1} << 30;

  // The most bytes pins may hold; at most capacity_bytes.
  // Default: 0, meaning PinBudgetBytes(capacity_bytes, 0).
  uint64_t pin_budget_bytes = 0;

  // Number of shards; a power of two. Default: 0, meaning chosen from the
  // budget so that each shard holds at least 32 blocks of
  // typical_block_bytes, at most 16 shards.
  int num_shards = 0;

  // The size of most blocks, used to choose the shard count.
  // Default: 4 MiB.
  uint64_t typical_block_bytes = uint64_t{4} << 20;

  // Share of each shard's budget given to S3-FIFO's small queue.
  // Default: 0.1.
  double small_queue_ratio = 0.1;
};

class DramTier : public DramCache {
 public:
  // Returns InvalidArgument for a zero budget, a pin budget above the
  // budget, a shard count that is not a power of two, or a ratio outside
  // (0, 1).
  static absl::StatusOr<std::unique_ptr<DramTier>> Open(
      DramTierOptions options);

  ~DramTier() override;

  // Tier, on variant 0. Write inserts; it evicts unpinned entries as needed
  // and returns ResourceExhausted if the block cannot fit even then.
  absl::string_view name() const override {
    return TierKindName(TierKind::kDram);
  }
  bool Contains(const BlockId& id) const override;
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  absl::Status Write(const BlockId& id, const BlockRef& block) override;
  absl::Status Erase(const BlockId& id) override;
  absl::Status Clear() override;
  TierStats Stats() const override;

  // DramCache.
  bool Contains(const CacheKey& key) const override;
  absl::StatusOr<BlockRef> Lookup(const CacheKey& key) override;
  absl::Status Insert(const CacheKey& key, BlockRef block) override;
  absl::Status Pin(absl::string_view pin_name,
                   std::span<const PinnedBlockSpec> blocks,
                   absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)>
                       load) override;
  absl::Status Unpin(absl::string_view pin_name) override;
  std::vector<std::string> ListPins() const override;
  uint64_t pinned_bytes() const override;
  uint64_t pin_budget_bytes() const override;
  void SetEvictCallback(EvictCallback on_evict) override;

  int num_shards() const;

 private:
  class Impl;
  explicit DramTier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_DRAM_DRAM_TIER_H_
