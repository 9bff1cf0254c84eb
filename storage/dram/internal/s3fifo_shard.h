// Shard: one shard of the DRAM tier (storage/dram/dram_tier.h): a map of
// cache entries and its S3-FIFO queues (Yang et al., SOSP 2023) under one
// mutex. The tier owns the shards, the byte budget they charge and the pin
// table; a shard evicts, admits and counts.
//
// S3-FIFO, exactly as implemented, per shard:
//  - Each unpinned entry is in one of two FIFO queues, small or main, and has
//    a frequency counter 0..3. A hit (Lookup/Read) raises it by one, capped
//    at 3. Contains and a no-op Insert leave it alone.
//  - Insert puts a new entry at the tail of small with frequency 0, unless
//    its key is in the shard's ghost FIFO: then the key leaves the ghost and
//    the entry goes to the tail of main with frequency 0.
//  - To evict one entry: if small is not empty and either holds at least
//    small_queue_ratio * (capacity_bytes / num_shards) bytes or main is
//    empty, take the head of small: with frequency >= 1 (read at least once
//    since it was inserted) it moves to the tail of main with its frequency
//    reset to 0, and the search goes on; with frequency 0 it is evicted and
//    its key is appended to the ghost FIFO. Otherwise take the head of main:
//    with frequency > 0 it is decremented and the entry moves to the tail of
//    main, and the search goes on; with frequency 0 it is evicted. The search
//    ends: each step either shrinks small or lowers a frequency.
//  - The ghost FIFO holds keys only. It keeps at most
//    max(32, number of evictable entries in the shard) keys, which is about
//    as many as main holds at steady state (main holds ~90% of the entries);
//    older keys fall off its head.
//
//
// Thread-safe: every method takes the shard's mutex; none calls out while
// holding it.

#ifndef PSTORE_STORAGE_DRAM_INTERNAL_S3FIFO_SHARD_H_
#define PSTORE_STORAGE_DRAM_INTERNAL_S3FIFO_SHARD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "storage/block.h"
#include "storage/dram_cache.h"
#include "storage/tier.h"

namespace pstore::dram_internal {

constexpr uint8_t kMaxFrequency = 3;
constexpr size_t kMinGhostEntries = 32;

// Where an entry is: detached (being removed), in a queue, or pinned.
enum class Queue : uint8_t { kNone, kSmall, kMain, kPinned };

struct Entry {
  CacheKey key;
  BlockRef block;
  uint64_t charge = 0;
  uint8_t freq = 0;
  Queue queue = Queue::kNone;
  Entry* prev = nullptr;
  Entry* next = nullptr;
};

// An intrusive doubly linked FIFO of entries; does not own them.
class EntryList {
 public:
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }

  void PushBack(Entry* entry) {
    entry->prev = tail_;
    entry->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = entry;
    } else {
      head_ = entry;
    }
    tail_ = entry;
    ++size_;
  }

  void Remove(Entry* entry) {
    if (entry->prev != nullptr) {
      entry->prev->next = entry->next;
    } else {
      head_ = entry->next;
    }
    if (entry->next != nullptr) {
      entry->next->prev = entry->prev;
    } else {
      tail_ = entry->prev;
    }
    entry->prev = nullptr;
    entry->next = nullptr;
    --size_;
  }

  // REQUIRES: !empty().
  Entry* PopFront() {
    Entry* entry = head_;
    Remove(entry);
    return entry;
  }

 private:
  Entry* head_ = nullptr;
  Entry* tail_ = nullptr;
  size_t size_ = 0;
};

// An entry evicted to make room, handed to the eviction callback.
struct Victim {
  CacheKey key;
  BlockRef block;
};

// One shard: a map of entries and its S3-FIFO queues, under one mutex. The
// bytes of its entries are charged on the tier-wide counter `used`, which the
// shard lowers whenever it drops an entry (the caller raised it before
// inserting).
class Shard {
 public:
  Shard(uint64_t small_target_bytes, std::atomic<uint64_t>* used)
      : small_target_bytes_(small_target_bytes), used_(used) {}

  bool Contains(const CacheKey& key) const {
    absl::ReaderMutexLock lock(&mu_);
    return FindLocked(key) != nullptr;
  }

  // Returns the block of `key` and counts a hit (raising its frequency), or
  // returns null and counts a miss.
  BlockRef Lookup(const CacheKey& key) {
    absl::MutexLock lock(&mu_);
    Entry* entry = FindLocked(key);
    if (entry == nullptr) {
      ++misses_;
      return nullptr;
    }
    if (entry->freq < kMaxFrequency) ++entry->freq;
    ++hits_;
    read_bytes_ += entry->block->size();
    return entry->block;
  }

  // Adds an unpinned entry whose `charge` the caller has already added to
  // `used`. Returns false, changing nothing, if `key` is present.
  bool Insert(const CacheKey& key, BlockRef block, uint64_t charge) {
    absl::MutexLock lock(&mu_);
    if (FindLocked(key) != nullptr) return false;
    Entry* entry = AddEntryLocked(key, std::move(block), charge);
    auto ghost = ghost_.find(key);
    if (ghost != ghost_.end()) {
      ghost_.erase(ghost);
      EnqueueMainLocked(entry);
    } else {
      entry->queue = Queue::kSmall;
      small_.PushBack(entry);
      small_bytes_ += charge;
    }
    return true;
  }

  // Evicts entries in S3-FIFO order until `needed` bytes are freed or
  // nothing unpinned is left, appending them to `victims`. Returns the bytes
  // freed.
  uint64_t Evict(uint64_t needed, std::vector<Victim>* victims) {
    absl::MutexLock lock(&mu_);
    uint64_t freed = 0;
    while (freed < needed) {
      Entry* entry = ChooseVictimLocked();
      if (entry == nullptr) break;
      freed += entry->charge;
      ++evictions_;
      CacheKey key = entry->key;
      BlockRef block = RemoveEntryLocked(entry);
      victims->push_back(Victim{key, std::move(block)});
    }
    return freed;
  }

  // Drops every variant of `id`, moving their blocks to `garbage`. Returns
  // false, changing nothing, if one is pinned and `allow_pinned` is false.
  // Sets `*dropped_pinned` if a pinned entry was dropped.
  bool Erase(const BlockId& id, bool allow_pinned,
             std::vector<BlockRef>* garbage, bool* dropped_pinned) {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return true;
    if (!allow_pinned) {
      for (const std::unique_ptr<Entry>& entry : it->second) {
        if (entry->queue == Queue::kPinned) return false;
      }
    }
    for (const std::unique_ptr<Entry>& entry : it->second) {
      if (entry->queue == Queue::kPinned) *dropped_pinned = true;
      DetachLocked(entry.get());
      used_->fetch_sub(entry->charge, std::memory_order_relaxed);
      garbage->push_back(std::move(entry->block));
      --blocks_;
      ++erases_;
    }
    entries_.erase(it);
    return true;
  }

  // Drops every unpinned entry and the ghost FIFO, moving the blocks to
  // `garbage`.
  void Clear(std::vector<BlockRef>* garbage) {
    absl::MutexLock lock(&mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto& variants = it->second;
      for (size_t i = 0; i < variants.size();) {
        Entry* entry = variants[i].get();
        if (entry->queue == Queue::kPinned) {
          ++i;
          continue;
        }
        DetachLocked(entry);
        used_->fetch_sub(entry->charge, std::memory_order_relaxed);
        garbage->push_back(std::move(entry->block));
        --blocks_;
        variants.erase(variants.begin() + static_cast<ptrdiff_t>(i));
      }
      if (variants.empty()) {
        entries_.erase(it++);
      } else {
        ++it;
      }
    }
    ghost_.clear();
    ghost_fifo_.clear();
  }

  // Returns the charge of variant 0 of `id` if it is cached.
  std::optional<uint64_t> PeekCharge(const BlockId& id) const {
    absl::ReaderMutexLock lock(&mu_);
    const Entry* entry = FindLocked(CacheKey{id, kStoredVariant});
    if (entry == nullptr) return std::nullopt;
    return entry->charge;
  }

  // Pins variant 0 of `id` if it is cached and returns its charge.
  std::optional<uint64_t> PinInPlace(const BlockId& id) {
    absl::MutexLock lock(&mu_);
    Entry* entry = FindLocked(CacheKey{id, kStoredVariant});
    if (entry == nullptr) return std::nullopt;
    if (entry->queue != Queue::kPinned) {
      DetachLocked(entry);
      entry->queue = Queue::kPinned;
    }
    return entry->charge;
  }

  // Makes variant 0 of `id` evictable again, at the tail of main with
  // frequency 0, if it is cached and pinned.
  void UnpinInPlace(const BlockId& id) {
    absl::MutexLock lock(&mu_);
    Entry* entry = FindLocked(CacheKey{id, kStoredVariant});
    if (entry == nullptr || entry->queue != Queue::kPinned) return;
    entry->queue = Queue::kNone;
    EnqueueMainLocked(entry);
  }

  enum class PinnedInsert { kInserted, kPinnedExisting, kOverBudget };

  // Pins variant 0 of `id`: the cached entry if there is one (a Write may
  // have raced the load), else a new entry holding `block`, whose `charge`
  // the caller has already added to `used`. Sets `*pinned_charge` to the
  // charge of the pinned entry. Changes nothing and returns kOverBudget if
  // that charge would pass `max_charge`.
  PinnedInsert InsertPinned(const BlockId& id, BlockRef block, uint64_t charge,
                            uint64_t max_charge, uint64_t* pinned_charge) {
    absl::MutexLock lock(&mu_);
    CacheKey key{id, kStoredVariant};
    Entry* entry = FindLocked(key);
    if (entry != nullptr) {
      if (entry->charge > max_charge) return PinnedInsert::kOverBudget;
      if (entry->queue != Queue::kPinned) {
        DetachLocked(entry);
        entry->queue = Queue::kPinned;
      }
      *pinned_charge = entry->charge;
      return PinnedInsert::kPinnedExisting;
    }
    if (charge > max_charge) return PinnedInsert::kOverBudget;
    entry = AddEntryLocked(key, std::move(block), charge);
    entry->queue = Queue::kPinned;
    *pinned_charge = charge;
    return PinnedInsert::kInserted;
  }

  // Adds this shard's counters to `stats`.
  void AddStats(TierStats* stats) const {
    absl::ReaderMutexLock lock(&mu_);
    stats->blocks += blocks_;
    stats->hits += hits_;
    stats->misses += misses_;
    stats->writes += writes_;
    stats->write_bytes += write_bytes_;
    stats->read_bytes += read_bytes_;
    stats->evictions += evictions_;
    stats->erases += erases_;
  }

 private:
  Entry* FindLocked(const CacheKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = entries_.find(key.id);
    if (it == entries_.end()) return nullptr;
    for (const std::unique_ptr<Entry>& entry : it->second) {
      if (entry->key.variant == key.variant) return entry.get();
    }
    return nullptr;
  }

  // Creates a detached entry and counts the write.
  Entry* AddEntryLocked(const CacheKey& key, BlockRef block, uint64_t charge)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto entry = std::make_unique<Entry>();
    entry->key = key;
    entry->charge = charge;
    write_bytes_ += block->size();
    entry->block = std::move(block);
    Entry* raw = entry.get();
    entries_[key.id].push_back(std::move(entry));
    ++blocks_;
    ++writes_;
    return raw;
  }

  void EnqueueMainLocked(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    entry->freq = 0;
    entry->queue = Queue::kMain;
    main_.PushBack(entry);
    main_bytes_ += entry->charge;
  }

  // Takes `entry` out of its queue, if it is in one.
  void DetachLocked(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (entry->queue) {
      case Queue::kSmall:
        small_.Remove(entry);
        small_bytes_ -= entry->charge;
        break;
      case Queue::kMain:
        main_.Remove(entry);
        main_bytes_ -= entry->charge;
        break;
      case Queue::kNone:
      case Queue::kPinned:
        break;
    }
    entry->queue = Queue::kNone;
  }

  // Returns the next entry S3-FIFO evicts, already out of its queue, or null
  // if every entry is pinned. See the rule at the top of this file.
  Entry* ChooseVictimLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (true) {
      if (!small_.empty() &&
          (small_bytes_ >= small_target_bytes_ || main_.empty())) {
        Entry* entry = small_.PopFront();
        small_bytes_ -= entry->charge;
        entry->queue = Queue::kNone;
        if (entry->freq >= 1) {
          EnqueueMainLocked(entry);
          continue;
        }
        AddGhostLocked(entry->key);
        return entry;
      }
      if (main_.empty()) return nullptr;
      Entry* entry = main_.PopFront();
      if (entry->freq > 0) {
        --entry->freq;
        main_.PushBack(entry);
        continue;
      }
      main_bytes_ -= entry->charge;
      entry->queue = Queue::kNone;
      return entry;
    }
  }

  // Deletes `entry` (detaching it first) and returns its block.
  BlockRef RemoveEntryLocked(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    DetachLocked(entry);
    used_->fetch_sub(entry->charge, std::memory_order_relaxed);
    --blocks_;
    BlockRef block = std::move(entry->block);
    auto it = entries_.find(entry->key.id);
    auto& variants = it->second;
    for (auto v = variants.begin(); v != variants.end(); ++v) {
      if (v->get() == entry) {
        variants.erase(v);
        break;
      }
    }
    if (variants.empty()) entries_.erase(it);
    return block;
  }

  void AddGhostLocked(const CacheKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint64_t seq = ++ghost_seq_;
    ghost_[key] = seq;
    ghost_fifo_.emplace_back(key, seq);
    size_t limit = std::max(kMinGhostEntries, small_.size() + main_.size());
    // The FIFO also holds stale keys (re-inserted since, or re-added with a
    // newer sequence number); bound it too.
    while (ghost_.size() > limit || ghost_fifo_.size() > 2 * limit) {
      auto [old_key, old_seq] = ghost_fifo_.front();
      ghost_fifo_.pop_front();
      auto it = ghost_.find(old_key);
      if (it != ghost_.end() && it->second == old_seq) ghost_.erase(it);
    }
  }

  const uint64_t small_target_bytes_;
  std::atomic<uint64_t>* const used_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<BlockId, absl::InlinedVector<std::unique_ptr<Entry>, 1>>
      entries_ ABSL_GUARDED_BY(mu_);
  EntryList small_ ABSL_GUARDED_BY(mu_);
  EntryList main_ ABSL_GUARDED_BY(mu_);
  uint64_t small_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t main_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Ghost keys with the sequence number of their latest eviction; the FIFO
  // may hold stale (key, seq) pairs that no longer match the map.
  absl::flat_hash_map<CacheKey, uint64_t> ghost_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<CacheKey, uint64_t>> ghost_fifo_ ABSL_GUARDED_BY(mu_);
  uint64_t ghost_seq_ ABSL_GUARDED_BY(mu_) = 0;

  uint64_t blocks_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t write_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t read_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t erases_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pstore::dram_internal

#endif  // PSTORE_STORAGE_DRAM_INTERNAL_S3FIFO_SHARD_H_
