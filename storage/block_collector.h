// BlockCollector: keeps the durable tier's blocks in step with the
// catalog's references. A put stages each block it writes (so that no
// delete running meanwhile collects it, and so that a crash before its
// commit leaves a staged mark); a block whose last reference goes is
// collected: erased from every tier, unless a put in progress stages it,
// and then its staged mark is cleared. At open, staged blocks that no
// record references are what a crash left: they are collected too.
//
// The protocol with the Catalog (storage/catalog.h): the catalog marks a
// block staged in the same write that drops its last reference, and a
// commit clears the marks of its blocks; the collector erases only blocks
// that are both unreferenced and not staged in memory, under one lock, so a
// put that stages the block again either comes first (and the block stays)
// or after (and writes the block anew).
//
// Over a catalog that counts no references (Catalog::CountsReferences),
// every staged block is written (the durable tier finds a stored one) and
// nothing is collected here: a mark and sweep does it.
//
// Thread-safe.

#ifndef PSTORE_STORAGE_BLOCK_COLLECTOR_H_
#define PSTORE_STORAGE_BLOCK_COLLECTOR_H_

#include <atomic>
#include <cstdint>
#include <span>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "codec/hash.h"
#include "storage/catalog.h"
#include "storage/encoded_blocks.h"
#include "storage/tier_set.h"

namespace pstore {

class BlockCollector {
 public:
  // None of the pointers is owned; all outlive the collector.
  BlockCollector(Catalog* catalog, TierSet tiers, EncodedBlockCache* encoded);

  // Collects the staged blocks no record references (what puts in progress
  // at a crash left). Call at open, before any put.
  absl::Status CollectStagedAtOpen();

  // Marks block `id` as used by a put in progress. Returns true if the
  // block is already stored (referenced, or written by another put in
  // progress): the caller then compares bytes instead of writing. Else the
  // block is marked staged in the catalog, and the caller writes it.
  absl::StatusOr<bool> Stage(const BlockId& id);

  // Records that a put wrote staged block `id` to the durable tier.
  void MarkWritten(const BlockId& id);

  // Unstages `ids` (one entry per Stage call) of a put that committed.
  void Unstage(std::span<const BlockId> ids);

  // Unstages `ids` (one entry per Stage call) of a put that will not
  // commit, and collects those that no record and no other put uses.
  void Abort(std::span<const BlockId> ids);

  // Collects `ids`, blocks whose last reference went: erases from every
  // tier those still unreferenced and not staged by a put, and clears
  // their staged marks. Blocks that cannot be erased now keep their marks
  // (the next open collects them); that is logged, not returned.
  void Collect(std::span<const BlockId> ids);

  // Blocks erased since open.
  uint64_t collected_blocks() const {
    return collected_.load(std::memory_order_relaxed);
  }

 private:
  // Erases `ids` that are unreferenced and not staged, and clears the marks
  // of those that need none; returns how many it erased.
  uint64_t CollectLocked(std::span<const BlockId> ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Catalog* const catalog_;
  const TierSet tiers_;
  EncodedBlockCache* const encoded_;

  absl::Mutex mu_;
  struct Staging {
    int64_t count = 0;     // Stage calls not yet unstaged.
    bool written = false;  // Some put wrote the bytes.
  };
  absl::flat_hash_map<BlockId, Staging> staging_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> collected_{0};
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_BLOCK_COLLECTOR_H_
