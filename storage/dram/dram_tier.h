// DramTier: the hot tier. A sharded in-memory cache of blocks under a byte
// budget, with whole-revision pins and an eviction callback (the tiered
// store spills victims to NVMe through it).
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
#include "storage/tier.h"

namespace pstore {

inline constexpr uint8_t kStoredVariant = 0;

struct CacheKey {
  BlockId id;
  uint8_t variant = kStoredVariant;

  friend bool operator==(const CacheKey&, const CacheKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const CacheKey& key) {
    return H::combine(std::move(h), key.id, key.variant);
  }
};

// A block a pin asks for: its id and its size in bytes.
struct PinnedBlockSpec {
  BlockId id;
  uint64_t size = 0;
};

struct DramTierOptions {
  // The byte budget, charged by buffer capacity (BlockData::charge()).
  // Default: 1 GiB.
  uint64_t capacity_bytes = uint64_t{1} << 30;

  // The most bytes pins may hold; at most capacity_bytes.
  // Default: 0, meaning 3/4 of capacity_bytes.
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

  // Called for every entry evicted to make room (not for Erase or Clear),
  // outside all locks, on the thread that caused the eviction. Must not
  // block for long: hand the block to another thread.
  // Default: none.
  std::function<void(const CacheKey& key, BlockRef block)> on_evict;
};

class DramTier : public Tier {
 public:
  // Returns InvalidArgument for a zero budget, a pin budget above the
  // budget, a shard count that is not a power of two, or a ratio outside
  // (0, 1).
  static absl::StatusOr<std::unique_ptr<DramTier>> Open(
      DramTierOptions options);

  ~DramTier() override;

  // Tier, on variant 0. Write inserts; it evicts unpinned entries as needed
  // and returns ResourceExhausted if the block cannot fit even then.
  absl::string_view name() const override { return "dram"; }
  bool Contains(const BlockId& id) const override;
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  absl::Status Write(const BlockId& id, const BlockRef& block) override;
  absl::Status Erase(const BlockId& id) override;
  absl::Status Clear() override;
  TierStats Stats() const override;

  // The same, for any variant. Lookup counts hits and misses; Insert of a
  // key already present keeps the present entry and returns OK.
  bool Contains(const CacheKey& key) const;
  absl::StatusOr<BlockRef> Lookup(const CacheKey& key);
  absl::Status Insert(const CacheKey& key, BlockRef block);

  // Pins the variant-0 blocks `blocks` under `pin_name` (a revision name),
  // all or none. Blocks already cached are pinned in place; the others come
  // from `load`, called once per missing block with no lock held.
  // Codes: AlreadyExists if `pin_name` is pinned; ResourceExhausted if the
  // blocks not yet pinned by another pin do not fit in the pin budget (the
  // message gives the bytes asked and free); any error of `load` (after
  // undoing what this call pinned).
  absl::Status Pin(
      absl::string_view pin_name, std::span<const PinnedBlockSpec> blocks,
      absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)> load);

  // Releases pin `pin_name`; its blocks become evictable unless another pin
  // holds them. NotFound if there is no such pin.
  absl::Status Unpin(absl::string_view pin_name);

  // Returns the names of the current pins, sorted.
  std::vector<std::string> ListPins() const;

  // Returns the bytes held by pins (each block once).
  uint64_t pinned_bytes() const;
  uint64_t pin_budget_bytes() const;
  int num_shards() const;

 private:
  class Impl;
  explicit DramTier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_DRAM_DRAM_TIER_H_
