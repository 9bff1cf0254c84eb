// Spiller: writes blocks evicted from DRAM to the NVMe tier on a thread of
// its own, so eviction (on a reader's or writer's thread) never waits for
// a disk. A bounded queue: past it, evicted blocks are dropped (the durable
// tier has them), and counted.
//
// Thread-safe.

#ifndef PSTORE_STORAGE_SPILLER_H_
#define PSTORE_STORAGE_SPILLER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/tier.h"

namespace pstore {

class Spiller {
 public:
  // Spills into `nvme` (not owned), holding at most `queue_blocks` blocks
  // waiting.
  Spiller(CacheTier* nvme, size_t queue_blocks);
  // Stops (see Stop).
  ~Spiller();

  // Queues block `id` for the NVMe tier, or drops it if the queue is full
  // or the spiller stopped. Never blocks on I/O.
  void Offer(const BlockId& id, BlockRef block);

  // Drops what is queued, finishes the write under way and stops the
  // thread. Idempotent.
  void Stop();

  uint64_t spills() const { return spills_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t failures() const {
    return failures_.load(std::memory_order_relaxed);
  }

 private:
  void Loop();

  CacheTier* const nvme_;
  const size_t queue_blocks_;

  absl::Mutex mu_;
  std::deque<std::pair<BlockId, BlockRef>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // A failure was logged and no spill has succeeded since.
  bool warned_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<uint64_t> spills_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failures_{0};
  std::thread thread_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_SPILLER_H_
