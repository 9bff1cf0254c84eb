// BlockReader: the read path of a store. A read looks in DRAM, then NVMe,
// then the durable tier; a block read from a disk tier (which verifies it
// against its id) enters DRAM, whose admission policy decides whether it
// stays. Concurrent readers of the same missing block share one disk read.
// Reads of the durable tier run on a pool of its own; NVMe reads are the
// tier's own asynchronous I/O.
//
// Thread-safe. ReadAsync never blocks; its callback runs on this thread
// for a DRAM hit, else on an NVMe completion thread or a cold-read thread.

#ifndef PSTORE_STORAGE_BLOCK_READER_H_
#define PSTORE_STORAGE_BLOCK_READER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/tier.h"
#include "storage/tier_set.h"
#include "util/thread_pool.h"

namespace pstore {

// Called for every block read served, with the tier that served it and the
// time from the request to the bytes. Runs on the reading thread; must be
// cheap and thread-safe.
using BlockReadObserver =
    std::function<void(TierKind tier, absl::Duration latency)>;

// Where a read may look below NVMe: kAny goes through TierSet::fetch (the
// other nodes first) when there is one; kLocal reads the durable tier
// itself (a read another node asked for: never handed on again).
enum class ReadScope { kAny, kLocal };

class BlockReader {
 public:
  // Reads through `tiers` (not owned), with `cold_read_threads` threads
  // reading the durable tier.
  BlockReader(TierSet tiers, int cold_read_threads,
              BlockReadObserver on_block_read);

  // Waits for the reads queued on the durable tier. REQUIRES: no new read
  // starts, and the NVMe tier has completed its reads (destroy it first).
  ~BlockReader();

  // Reads block `id` through the tiers and passes it to `done`. Codes:
  // NotFound if no tier has it (deleted meanwhile); DataLoss if the durable
  // copy is corrupt; Unavailable for I/O errors.
  void ReadAsync(const BlockId& id, ReadCallback done,
                 ReadScope scope = ReadScope::kAny);

  // ReadAsync, waiting for the answer. Must not be called on a thread that
  // a read's completion needs (an NVMe completion or cold-read thread).
  absl::StatusOr<BlockRef> Read(const BlockId& id);

  // Reads `id` from NVMe or the durable tier, on this thread, without
  // looking in or adding to DRAM.
  absl::StatusOr<BlockRef> ReadBelowDram(const BlockId& id);

  // Block reads served by `tier`, and readers that joined a read in flight.
  uint64_t reads_from(TierKind tier) const {
    return reads_from_[static_cast<int>(tier)].load(std::memory_order_relaxed);
  }
  uint64_t coalesced_reads() const {
    return coalesced_reads_.load(std::memory_order_relaxed);
  }

 private:
  void StartDiskRead(const BlockId& id, absl::Time start, ReadScope scope);
  void ReadFromCold(const BlockId& id, absl::Time start, ReadScope scope);
  void FinishRead(const BlockId& id, absl::StatusOr<BlockRef> result,
                  TierKind source, absl::Time start);
  void CountRead(TierKind tier, absl::Time start);

  const TierSet tiers_;
  const BlockReadObserver on_block_read_;
  std::unique_ptr<ThreadPool> cold_readers_;
  // Reads in flight in a durable tier that reads asynchronously (RADOS);
  // the destructor waits for them.
  absl::Mutex async_mu_;
  int async_cold_reads_ ABSL_GUARDED_BY(async_mu_) = 0;

  absl::Mutex inflight_mu_;
  // Reads in flight, by block, with the readers waiting for each.
  absl::flat_hash_map<BlockId, std::vector<ReadCallback>> inflight_
      ABSL_GUARDED_BY(inflight_mu_);

  std::atomic<uint64_t> reads_from_[kNumTierKinds] = {0, 0, 0};
  std::atomic<uint64_t> coalesced_reads_{0};
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_BLOCK_READER_H_
