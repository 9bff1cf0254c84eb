// DramTier implementation.
//
// Layout. The tier is an array of shards and one pin table:
//  - A block's shard is chosen from its id only (never its variant), so all
//    variants of an id live in one shard and Erase(id) touches one shard.
//    Inside a shard, entries are indexed by id, then by variant (an id
//    rarely has more than two variants).
//  - The byte budget is one atomic counter, `used_`, shared by all shards.
//    An insert first reserves its charge on that counter with a
//    compare-and-swap that never lets it pass capacity_bytes; when the
//    reservation does not fit, it evicts from its own shard, then from the
//    others in order, and tries again. So used_bytes <= capacity_bytes holds
//    at every instant, and when no insert is in flight used_bytes equals the
//    sum of the charges of the entries held.
//  - Pins live in a table under `pin_mu_`. Lock order: `pin_mu_` before any
//    shard's mutex; at most one shard mutex is held at a time. No lock is held
//    while the eviction callback, a pin's load function or a block's
//    destructor (which returns memory to the BufferPool) runs: victims and
//    dropped blocks are collected under the lock and handled after it.
//
// Pins:
//  - `pinned_blocks_` maps each pinned id to the number of pins that hold it
//    and the bytes it is charged in pinned_bytes() (so a block shared by
//    several pins is charged once). A pinned entry is in neither queue, so it
//    is never evicted; Clear() skips it.
//  - Pin runs in three steps: (1) under `pin_mu_`, register the name as
//    pending (a second Pin of the name gets AlreadyExists), wait until no
//    block of the pin is being loaded by another Pin, and compute the bytes
//    the blocks not yet pinned would add (actual charge if cached, else
//    BufferPool::CapacityFor(size)); refuse with ResourceExhausted, changing
//    nothing, past the budget. (2) Still under `pin_mu_`, take a reference on
//    every block: cached ones are pinned in place, missing ones are marked
//    loading with their estimated charge reserved in pinned_bytes_. (3) With
//    no lock held, call `load` for each missing block and insert it pinned
//    (evicting unpinned entries to make room in the global budget). Any
//    failure undoes every reference this call took; blocks it loaded stay
//    cached, unpinned, at the tail of main.
//  - Unpin drops the references; a block no pin holds goes to the tail of
//    main with frequency 0.
//  - Erase of a pinned block (the tiered store never does it: it erases
//    blocks whose refcount is zero, which no pinned revision uses) drops the
//    entry anyway: the block leaves pinned_bytes(), its pin references are
//    kept so Unpin still works, and a later Write of the id inserts it as an
//    ordinary unpinned entry. A later Pin that names the id loads it again.

#include "storage/dram/dram_tier.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "storage/buffer_pool.h"
#include "storage/dram/internal/s3fifo_shard.h"
#include "util/status.h"

namespace pstore {
namespace {

using dram_internal::Entry;
using dram_internal::Queue;
using dram_internal::Shard;
using dram_internal::Victim;

constexpr int kMaxAutoShards = 16;
constexpr uint64_t kMinBlocksPerAutoShard = 32;

// Returns `x` with its bits mixed (the splitmix64 finalizer), so that even
// hand-made ids spread over the shards.
uint64_t MixBits(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Returns the number of shards for `capacity` when the options leave it to
// us: the largest power of two up to kMaxAutoShards that leaves each shard
// room for kMinBlocksPerAutoShard blocks of `typical_block_bytes`.
int ChooseShardCount(uint64_t capacity, uint64_t typical_block_bytes) {
  int shards = 1;
  while (shards < kMaxAutoShards &&
         capacity / (uint64_t{2} * static_cast<uint64_t>(shards)) /
                 typical_block_bytes >=
             kMinBlocksPerAutoShard) {
    shards *= 2;
  }
  return shards;
}

}  // namespace

class DramTier::Impl {
 public:
  Impl(DramTierOptions options, int num_shards, uint64_t pin_budget)
      : options_(std::move(options)), pin_budget_(pin_budget) {
    uint64_t small_target = static_cast<uint64_t>(
        static_cast<double>(options_.capacity_bytes / num_shards) *
        options_.small_queue_ratio);
    shards_.reserve(num_shards);
    for (int i = 0; i < num_shards; ++i) {
      shards_.push_back(std::make_unique<Shard>(small_target, &used_));
    }
  }

  bool Contains(const CacheKey& key) const {
    return ShardFor(key.id).Contains(key);
  }

  absl::StatusOr<BlockRef> Lookup(const CacheKey& key) {
    BlockRef block = ShardFor(key.id).Lookup(key);
    if (block == nullptr) {
      return absl::NotFoundError(absl::StrCat("dram: block ", key.id.ToHex(),
                                              " variant ", key.variant,
                                              " not cached"));
    }
    return block;
  }

  absl::Status Insert(const CacheKey& key, BlockRef block) {
    if (block == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("dram: null block for ", key.id.ToHex()));
    }
    size_t index = ShardIndex(key.id);
    Shard& shard = *shards_[index];
    // A present key is a no-op: do not evict anything for it.
    if (shard.Contains(key)) return absl::OkStatus();
    uint64_t charge = block->charge();
    if (charge + pinned_bytes() > options_.capacity_bytes) {
      // Fail fast rather than evict everything evictable in vain.
      return absl::ResourceExhaustedError(
          absl::StrCat("dram: no room for block ", key.id.ToHex(), " of ",
                       charge, " bytes: capacity ", options_.capacity_bytes,
                       " bytes, ", pinned_bytes(), " pinned"));
    }
    std::vector<Victim> victims;
    absl::Status status = Reserve(charge, index, &victims);
    if (!status.ok()) {
      status = Annotate(status, absl::StrCat("dram: block ", key.id.ToHex()));
    } else if (!shard.Insert(key, std::move(block), charge)) {
      // Another thread inserted the key meanwhile; keep its entry.
      used_.fetch_sub(charge, std::memory_order_relaxed);
    }
    NotifyEvicted(victims);
    return status;
  }

  absl::Status Erase(const BlockId& id) {
    std::vector<BlockRef> garbage;  // Freed after the locks are released.
    Shard& shard = ShardFor(id);
    bool dropped_pinned = false;
    if (shard.Erase(id, /*allow_pinned=*/false, &garbage, &dropped_pinned)) {
      return absl::OkStatus();
    }
    // A pinned entry: drop it under the pin lock and fix the pin table.
    absl::MutexLock lock(&pin_mu_);
    shard.Erase(id, /*allow_pinned=*/true, &garbage, &dropped_pinned);
    if (dropped_pinned) {
      auto it = pinned_blocks_.find(id);
      if (it != pinned_blocks_.end() &&
          it->second.state == PinState::kResident) {
        SubtractPinnedBytesLocked(it->second.charge);
        it->second.charge = 0;
        it->second.state = PinState::kDropped;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Clear() {
    std::vector<BlockRef> garbage;  // Freed after the locks are released.
    for (const std::unique_ptr<Shard>& shard : shards_) shard->Clear(&garbage);
    return absl::OkStatus();
  }

  TierStats Stats() const {
    TierStats stats;
    stats.capacity_bytes = options_.capacity_bytes;
    for (const std::unique_ptr<Shard>& shard : shards_) {
      shard->AddStats(&stats);
    }
    stats.used_bytes = used_.load(std::memory_order_relaxed);
    return stats;
  }

  absl::Status Pin(
      absl::string_view pin_name, std::span<const PinnedBlockSpec> blocks,
      absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)> load);
  absl::Status Unpin(absl::string_view pin_name);

  std::vector<std::string> ListPins() const {
    absl::ReaderMutexLock lock(&pin_mu_);
    std::vector<std::string> names;
    for (const auto& [name, record] : pins_) {
      if (record.granted) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  uint64_t pinned_bytes() const {
    return pinned_bytes_.load(std::memory_order_relaxed);
  }
  uint64_t pin_budget_bytes() const { return pin_budget_; }

  void SetEvictCallback(EvictCallback on_evict) {
    on_evict_ = std::move(on_evict);
  }
  int num_shards() const { return static_cast<int>(shards_.size()); }

 private:
  enum class PinState {
    kLoading,   // A Pin call is loading it; not cached as pinned yet.
    kResident,  // Cached and pinned; `charge` is its BlockData::charge().
    kDropped,   // Erased while pinned; charge 0 until a Pin loads it again.
  };

  struct PinnedBlock {
    uint32_t count = 0;   // Pins holding the block (granted or pending).
    uint64_t charge = 0;  // Bytes counted in pinned_bytes_ for it.
    PinState state = PinState::kLoading;
  };

  struct PinRecord {
    bool granted = false;  // False while its Pin call is still running.
    std::vector<BlockId> ids;
  };

  // What one Pin call did to one of its blocks, to undo it on failure.
  struct PinStep {
    BlockId id;
    uint64_t size = 0;
    bool load = false;    // The call marked the block kLoading.
    bool loaded = false;  // ...and has since inserted it, pinned.
  };

  size_t ShardIndex(const BlockId& id) const {
    return MixBits(id.hash().low ^ id.hash().high) & (shards_.size() - 1);
  }
  Shard& ShardFor(const BlockId& id) const { return *shards_[ShardIndex(id)]; }

  // Adds `charge` to used_ without passing the capacity, evicting unpinned
  // entries (from shard `home` first, then the others) as needed. Victims go
  // to `victims`, also on failure. ResourceExhausted if nothing is left to
  // evict: the rest is pinned or reserved by inserts in flight on other
  // threads (at most one block each). REQUIRES: no shard lock held.
  absl::Status Reserve(uint64_t charge, size_t home,
                       std::vector<Victim>* victims) {
    const uint64_t capacity = options_.capacity_bytes;
    if (charge > capacity) {
      return absl::ResourceExhaustedError(
          absl::StrCat("no room for a block of ", charge,
                       " bytes: capacity is ", capacity, " bytes"));
    }
    while (true) {
      uint64_t used = used_.load(std::memory_order_relaxed);
      while (used + charge <= capacity) {
        if (used_.compare_exchange_weak(used, used + charge,
                                        std::memory_order_relaxed)) {
          return absl::OkStatus();
        }
      }
      uint64_t needed = used + charge - capacity;
      bool freed = false;
      for (size_t i = 0; i < shards_.size() && !freed; ++i) {
        freed =
            shards_[(home + i) % shards_.size()]->Evict(needed, victims) > 0;
      }
      // Nothing to evict may just mean that another thread freed the room
      // (Clear, Erase, its own evictions) after `used` was read: try again
      // while the bytes in use keep going down.
      if (!freed && used_.load(std::memory_order_relaxed) < used) continue;
      if (!freed) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "no room for a block of ", charge, " bytes: ", used, " of ",
            capacity, " bytes used and nothing evictable (", pinned_bytes(),
            " pinned)"));
      }
    }
  }

  // Calls the eviction callback for each victim. REQUIRES: no lock held.
  void NotifyEvicted(std::vector<Victim>& victims) {
    if (!on_evict_) return;
    for (Victim& victim : victims) {
      on_evict_(victim.key, std::move(victim.block));
    }
  }

  void AddPinnedBytesLocked(uint64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pin_mu_) {
    pinned_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }
  void SubtractPinnedBytesLocked(uint64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pin_mu_) {
    pinned_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  }

  // Drops one reference on `id`; when none is left, unpins its entry and
  // forgets it.
  void ReleasePinnedBlockLocked(const BlockId& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pin_mu_);

  // Undoes `steps`, the work of a failed Pin call.
  void UndoPinStepsLocked(const std::vector<PinStep>& steps)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pin_mu_);

  // Loads block `step.id` for a Pin and inserts it pinned. REQUIRES: no lock
  // held.
  absl::Status LoadPinnedBlock(
      absl::string_view pin_name, PinStep& step,
      absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)> load);

  const DramTierOptions options_;
  const uint64_t pin_budget_;
  // Set before the cache is shared; read without a lock.
  EvictCallback on_evict_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<uint64_t> used_{0};

  mutable absl::Mutex pin_mu_;
  absl::flat_hash_map<std::string, PinRecord> pins_ ABSL_GUARDED_BY(pin_mu_);
  absl::flat_hash_map<BlockId, PinnedBlock> pinned_blocks_
      ABSL_GUARDED_BY(pin_mu_);
  // Written under pin_mu_; read without it.
  std::atomic<uint64_t> pinned_bytes_{0};
};

void DramTier::Impl::ReleasePinnedBlockLocked(const BlockId& id) {
  auto it = pinned_blocks_.find(id);
  if (it == pinned_blocks_.end()) return;
  PinnedBlock& pinned = it->second;
  if (--pinned.count > 0) return;
  if (pinned.state == PinState::kResident) ShardFor(id).UnpinInPlace(id);
  SubtractPinnedBytesLocked(pinned.charge);
  pinned_blocks_.erase(it);
}

void DramTier::Impl::UndoPinStepsLocked(const std::vector<PinStep>& steps) {
  for (auto step = steps.rbegin(); step != steps.rend(); ++step) {
    if (step->load && !step->loaded) {
      // Still marked kLoading by this call; other Pins wait rather than
      // share such a block, so only earlier pins (of an erased block) may
      // hold it.
      auto it = pinned_blocks_.find(step->id);
      if (it == pinned_blocks_.end()) continue;
      PinnedBlock& pinned = it->second;
      SubtractPinnedBytesLocked(pinned.charge);
      pinned.charge = 0;
      if (--pinned.count == 0) {
        pinned_blocks_.erase(it);
      } else {
        pinned.state = PinState::kDropped;
      }
      continue;
    }
    ReleasePinnedBlockLocked(step->id);
  }
}

absl::Status DramTier::Impl::LoadPinnedBlock(
    absl::string_view pin_name, PinStep& step,
    absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)> load) {
  absl::StatusOr<BlockRef> loaded = load(step.id);
  if (!loaded.ok()) {
    return Annotate(
        loaded.status(),
        absl::StrCat("dram: pin ", pin_name, ": load block ", step.id.ToHex()));
  }
  BlockRef block = *std::move(loaded);
  if (block == nullptr) {
    return absl::InternalError(absl::StrCat("dram: pin ", pin_name,
                                            ": load returned no block for ",
                                            step.id.ToHex()));
  }
  uint64_t charge = block->charge();
  size_t index = ShardIndex(step.id);
  std::vector<Victim> victims;
  absl::Status status = Reserve(charge, index, &victims);
  if (status.ok()) {
    absl::MutexLock lock(&pin_mu_);
    PinnedBlock& pinned = pinned_blocks_[step.id];
    uint64_t others = pinned_bytes() - pinned.charge;
    uint64_t max_charge = pin_budget_ - std::min(pin_budget_, others);
    uint64_t pinned_charge = 0;
    switch (shards_[index]->InsertPinned(step.id, std::move(block), charge,
                                         max_charge, &pinned_charge)) {
      case Shard::PinnedInsert::kPinnedExisting:
        used_.fetch_sub(charge, std::memory_order_relaxed);
        [[fallthrough]];
      case Shard::PinnedInsert::kInserted:
        AddPinnedBytesLocked(pinned_charge);
        SubtractPinnedBytesLocked(pinned.charge);
        pinned.charge = pinned_charge;
        pinned.state = PinState::kResident;
        step.loaded = true;
        break;
      case Shard::PinnedInsert::kOverBudget:
        used_.fetch_sub(charge, std::memory_order_relaxed);
        status = absl::ResourceExhaustedError(absl::StrCat(
            "dram: pin ", pin_name, ": block ", step.id.ToHex(), " takes ",
            charge, " bytes, ", max_charge, " free in the pin budget"));
        break;
    }
  } else {
    status = Annotate(status, absl::StrCat("dram: pin ", pin_name, ": block ",
                                           step.id.ToHex()));
  }
  NotifyEvicted(victims);
  return status;
}

absl::Status DramTier::Impl::Pin(
    absl::string_view pin_name, std::span<const PinnedBlockSpec> blocks,
    absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)> load) {
  std::string name(pin_name);
  std::vector<PinStep> steps;
  {
    absl::flat_hash_set<BlockId> seen;
    for (const PinnedBlockSpec& spec : blocks) {
      if (seen.insert(spec.id).second) {
        steps.push_back(PinStep{spec.id, spec.size});
      }
    }
  }

  {
    absl::MutexLock lock(&pin_mu_);
    if (pins_.contains(name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("dram: pin ", pin_name, " exists"));
    }
    pins_[name] = PinRecord{};  // Pending.

    // Step 1: wait out other Pins loading our blocks, then check the budget
    // without changing anything.
    auto none_loading = [this, &steps]() {
      pin_mu_.AssertReaderHeld();  // Await calls it with pin_mu_ held.
      for (const PinStep& step : steps) {
        auto it = pinned_blocks_.find(step.id);
        if (it != pinned_blocks_.end() &&
            it->second.state == PinState::kLoading) {
          return false;
        }
      }
      return true;
    };
    pin_mu_.Await(absl::Condition(&none_loading));

    uint64_t asked = 0;
    for (const PinStep& step : steps) {
      auto it = pinned_blocks_.find(step.id);
      if (it != pinned_blocks_.end() &&
          it->second.state == PinState::kResident) {
        continue;  // Already charged to another pin.
      }
      asked += ShardFor(step.id).PeekCharge(step.id).value_or(
          BufferPool::CapacityFor(step.size));
    }
    uint64_t free = pin_budget_ - std::min(pin_budget_, pinned_bytes());
    if (asked > free) {
      pins_.erase(name);
      return absl::ResourceExhaustedError(
          absl::StrCat("dram: pin ", pin_name, " asks ", asked, " bytes, ",
                       free, " free in the pin budget of ", pin_budget_));
    }

    // Step 2: take a reference on every block.
    for (PinStep& step : steps) {
      PinnedBlock& pinned = pinned_blocks_[step.id];
      ++pinned.count;
      if (pinned.count > 1 && pinned.state == PinState::kResident) continue;
      std::optional<uint64_t> charge = ShardFor(step.id).PinInPlace(step.id);
      if (charge.has_value()) {
        pinned.state = PinState::kResident;
        pinned.charge = *charge;
      } else {
        pinned.state = PinState::kLoading;
        pinned.charge = BufferPool::CapacityFor(step.size);
        step.load = true;
      }
      AddPinnedBytesLocked(pinned.charge);
    }
    if (pinned_bytes() > pin_budget_) {
      // A cached block changed under us between the check and the pinning.
      UndoPinStepsLocked(steps);
      pins_.erase(name);
      return absl::ResourceExhaustedError(
          absl::StrCat("dram: pin ", pin_name,
                       " no longer fits in the pin budget of ", pin_budget_));
    }
  }

  // Step 3: load the missing blocks with no lock held.
  for (PinStep& step : steps) {
    if (!step.load) continue;
    absl::Status status = LoadPinnedBlock(pin_name, step, load);
    if (!status.ok()) {
      absl::MutexLock lock(&pin_mu_);
      UndoPinStepsLocked(steps);
      pins_.erase(name);
      return status;
    }
  }

  absl::MutexLock lock(&pin_mu_);
  PinRecord& record = pins_[name];
  record.granted = true;
  record.ids.reserve(steps.size());
  for (const PinStep& step : steps) record.ids.push_back(step.id);
  return absl::OkStatus();
}

absl::Status DramTier::Impl::Unpin(absl::string_view pin_name) {
  absl::MutexLock lock(&pin_mu_);
  auto it = pins_.find(std::string(pin_name));
  if (it == pins_.end() || !it->second.granted) {
    return absl::NotFoundError(absl::StrCat("dram: no pin named ", pin_name));
  }
  for (const BlockId& id : it->second.ids) ReleasePinnedBlockLocked(id);
  pins_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DramTier>> DramTier::Open(
    DramTierOptions options) {
  if (options.capacity_bytes == 0) {
    return absl::InvalidArgumentError("dram: capacity_bytes must be > 0");
  }
  if (options.pin_budget_bytes > options.capacity_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("dram: pin_budget_bytes ", options.pin_budget_bytes,
                     " exceeds capacity_bytes ", options.capacity_bytes));
  }
  if (options.num_shards < 0 ||
      (options.num_shards & (options.num_shards - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dram: num_shards ", options.num_shards, " is not a power of two"));
  }
  if (!(options.small_queue_ratio > 0.0 && options.small_queue_ratio < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("dram: small_queue_ratio ",
                                                   options.small_queue_ratio,
                                                   " is outside (0, 1)"));
  }
  if (options.num_shards == 0 && options.typical_block_bytes == 0) {
    return absl::InvalidArgumentError(
        "dram: typical_block_bytes must be > 0 to choose the shard count");
  }
  int num_shards = options.num_shards != 0
                       ? options.num_shards
                       : ChooseShardCount(options.capacity_bytes,
                                          options.typical_block_bytes);
  uint64_t pin_budget =
      PinBudgetBytes(options.capacity_bytes, options.pin_budget_bytes);
  auto impl =
      std::make_unique<Impl>(std::move(options), num_shards, pin_budget);
  return std::unique_ptr<DramTier>(new DramTier(std::move(impl)));
}

DramTier::DramTier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DramTier::~DramTier() = default;

bool DramTier::Contains(const BlockId& id) const {
  return impl_->Contains(CacheKey{id, kStoredVariant});
}

absl::StatusOr<BlockRef> DramTier::Read(const BlockId& id) {
  return impl_->Lookup(CacheKey{id, kStoredVariant});
}

absl::Status DramTier::Write(const BlockId& id, const BlockRef& block) {
  return impl_->Insert(CacheKey{id, kStoredVariant}, block);
}

absl::Status DramTier::Erase(const BlockId& id) { return impl_->Erase(id); }

absl::Status DramTier::Clear() { return impl_->Clear(); }

TierStats DramTier::Stats() const { return impl_->Stats(); }

bool DramTier::Contains(const CacheKey& key) const {
  return impl_->Contains(key);
}

absl::StatusOr<BlockRef> DramTier::Lookup(const CacheKey& key) {
  return impl_->Lookup(key);
}

absl::Status DramTier::Insert(const CacheKey& key, BlockRef block) {
  return impl_->Insert(key, std::move(block));
}

absl::Status DramTier::Pin(
    absl::string_view pin_name, std::span<const PinnedBlockSpec> blocks,
    absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)> load) {
  return impl_->Pin(pin_name, blocks, load);
}

absl::Status DramTier::Unpin(absl::string_view pin_name) {
  return impl_->Unpin(pin_name);
}

std::vector<std::string> DramTier::ListPins() const {
  return impl_->ListPins();
}

uint64_t DramTier::pinned_bytes() const { return impl_->pinned_bytes(); }

uint64_t DramTier::pin_budget_bytes() const {
  return impl_->pin_budget_bytes();
}

void DramTier::SetEvictCallback(EvictCallback on_evict) {
  impl_->SetEvictCallback(std::move(on_evict));
}

int DramTier::num_shards() const { return impl_->num_shards(); }

}  // namespace pstore
