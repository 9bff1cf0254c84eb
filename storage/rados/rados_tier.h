// RadosTier: the durable tier of the RADOS backend: one object per block in
// the store's pool and namespace, named "block." followed by the block's
// XXH3-128 id in hex, written whole and never changed
// (storage/rados/rados_format.md gives the layout).
//
// Write creates the object exclusively with its bytes and a "touched" time
// (xattr pstore.touched, Unix microseconds) in one operation; writing a block
// that exists only refreshes that time, so a sweep of the garbage collector
// can tell a block a put is reusing now from one nothing has named for a
// while. Reads go through librados' aio, many in flight, straight into a
// pool buffer of the store's block size (a smaller block is then copied into
// a buffer of its own size, so that the DRAM tier is not charged for the
// rest; a larger one, from a store that had bigger blocks, is read again
// whole); what comes back is checked against the id (DataLoss on a
// mismatch). An unreachable cluster is Unavailable.
//
// Writes can go the same way (WriteAsync): the create, and the touch when
// the block is stored, as aio operations, many in flight.
//
// Thread-safe. The destructor waits for reads and writes in flight.

#ifndef PSTORE_STORAGE_RADOS_RADOS_TIER_H_
#define PSTORE_STORAGE_RADOS_RADOS_TIER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/buffer_pool.h"
#include "storage/rados/rados_pool.h"
#include "storage/tier.h"

namespace pstore {

// The name of block `id`'s object.
std::string BlockObjectName(const BlockId& id);

// The xattr of a block object that holds when a put last wrote or reused
// it, in Unix microseconds (decimal text).
inline constexpr char kTouchedXattr[] = "pstore.touched";

class RadosTier : public Tier {
 public:
  // Reads expect blocks of at most `block_bytes`.
  RadosTier(std::shared_ptr<RadosPool> pool, uint64_t block_bytes,
            BufferPool& buffers = BufferPool::Default());
  ~RadosTier() override;

  absl::string_view name() const override {
    return TierKindName(TierKind::kCold);
  }
  bool Contains(const BlockId& id) const override;
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  void ReadAsync(const BlockId& id, ReadCallback done) override;
  bool reads_async() const override { return true; }
  absl::Status Write(const BlockId& id, const BlockRef& block) override;
  void WriteAsync(const BlockId& id, BlockRef block,
                  WriteCallback done) override;
  bool writes_async() const override { return true; }
  absl::Status Erase(const BlockId& id) override;
  TierStats Stats() const override;

 private:
  struct AioRead;
  struct AioWrite;
  static void OnAioRead(rados_completion_t completion, void* arg);
  static void OnAioWrite(rados_completion_t completion, void* arg);
  // Starts the next operation of `write` (its create, or its touch of a
  // stored block); on failure to start, finishes it.
  void StartWrite(std::unique_ptr<AioWrite> write);
  void FinishWrite(std::unique_ptr<AioWrite> write, absl::Status status);

  // Turns what a read of block `id` into `buffer` gave (`result`, the
  // object's `size`, the bytes read) into the block, counting.
  absl::StatusOr<BlockRef> Finish(const BlockId& id, int result, uint64_t size,
                                  size_t bytes_read, Buffer buffer);

  const std::shared_ptr<RadosPool> pool_;
  const uint64_t block_bytes_;
  BufferPool& buffers_;

  absl::Mutex mu_;
  int reads_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int writes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> write_bytes_{0};
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> erases_{0};
  std::atomic<uint64_t> checksum_failures_{0};
  std::atomic<uint64_t> io_errors_{0};
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_TIER_H_
