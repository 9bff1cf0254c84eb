// DramCache: the interface of the hot tier, beyond CacheTier's: entries
// keyed by block id and variant (a block as stored, or a block derived from
// it in an encoding), whole-revision pins within a pin budget, and the
// callback through which evicted blocks reach the next tier down. The store
// is built over this interface; dram/ implements it (DramTier).
//
// The Tier methods read and write variant kStoredVariant; Erase(id) drops
// every variant of the id. Every method is safe for concurrent use.

#ifndef PSTORE_STORAGE_DRAM_CACHE_H_
#define PSTORE_STORAGE_DRAM_CACHE_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/records.h"
#include "storage/tier.h"

namespace pstore {

inline constexpr uint8_t kStoredVariant = 0;

// A cache entry's key: a block id and a variant (kStoredVariant for the
// block as stored; an Encoding's value for a block derived from it).
struct CacheKey {
  BlockId id;
  uint8_t variant = kStoredVariant;

  friend bool operator==(const CacheKey&, const CacheKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const CacheKey& key) {
    return H::combine(std::move(h), key.id, key.variant);
  }
};

// Returns the pin budget of a cache of `capacity_bytes`: `configured`, or
// 3/4 of the capacity when `configured` is 0.
inline uint64_t PinBudgetBytes(uint64_t capacity_bytes, uint64_t configured) {
  return configured != 0 ? configured : capacity_bytes / 4 * 3;
}

// A block a pin asks for: its id and its size in bytes.
using PinnedBlockSpec = SizedBlock;

// Called with every entry evicted to make room (not for Erase or Clear),
// outside all locks, on the thread that caused the eviction. Must not block
// for long: hand the block to another thread.
using EvictCallback = std::function<void(const CacheKey& key, BlockRef block)>;

class DramCache : public CacheTier {
 public:
  // Returns true if `key` is cached now.
  virtual bool Contains(const CacheKey& key) const = 0;
  using Tier::Contains;

  // Returns the entry of `key`, counting a hit or a miss. NotFound if
  // absent.
  virtual absl::StatusOr<BlockRef> Lookup(const CacheKey& key) = 0;

  // Caches `block` under `key`, evicting unpinned entries as needed. Insert
  // of a key already present keeps the present entry and returns OK.
  // ResourceExhausted if the block cannot fit even after evicting.
  virtual absl::Status Insert(const CacheKey& key, BlockRef block) = 0;

  // Pins the variant-0 blocks `blocks` under `pin_name` (a revision name),
  // all or none. Blocks already cached are pinned in place; the others come
  // from `load`, called once per missing block with no lock held.
  // Codes: AlreadyExists if `pin_name` is pinned; ResourceExhausted if the
  // blocks not yet pinned by another pin do not fit in the pin budget (the
  // message gives the bytes asked and free); any error of `load` (after
  // undoing what this call pinned).
  virtual absl::Status Pin(
      absl::string_view pin_name, std::span<const PinnedBlockSpec> blocks,
      absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)> load) = 0;

  // Releases pin `pin_name`; its blocks become evictable unless another pin
  // holds them. NotFound if there is no such pin.
  virtual absl::Status Unpin(absl::string_view pin_name) = 0;

  // Returns the names of the current pins, sorted.
  virtual std::vector<std::string> ListPins() const = 0;

  // Returns the bytes held by pins (each block once), and the most they may
  // hold.
  virtual uint64_t pinned_bytes() const = 0;
  virtual uint64_t pin_budget_bytes() const = 0;

  // Sets the callback evicted entries go to. REQUIRES: called before the
  // cache is shared between threads.
  virtual void SetEvictCallback(EvictCallback on_evict) = 0;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_DRAM_CACHE_H_
