// Tier: one level of storage for immutable, content-addressed blocks.
// CacheTier: a tier that holds copies only (DRAM, NVMe), so that it may be
// emptied; the durable tier (cold/) is a plain Tier.
//
// Every tier (dram/, nvme/, cold/) implements Tier, and one conformance
// suite (tests/storage/tier_conformance_test.cc) checks them all.
// Because a block never changes under its id, no tier needs invalidation:
// Write of an id already present is a no-op that returns OK.
//
// Contract:
//  - Every method is safe for concurrent use from multiple threads.
//  - Read returns the block's bytes or NotFound (absent: the normal fall
//    through to the next tier). A disk tier verifies what came off disk
//    against the id and returns DataLoss on a mismatch, after dropping the
//    entry (cache tiers) so the next Read is a clean NotFound.
//  - Write REQUIRES that `block` hashes to `id`; tiers may check it and
//    return InvalidArgument. ResourceExhausted means the tier has no room
//    (a DRAM tier full of pinned blocks; a disk out of space).
//  - Unavailable means a transient fault (I/O error): try another tier.
//  - Callbacks passed to ReadAsync run exactly once, on a tier thread or on
//    the caller's thread if the answer is known at once; they must not block.

#ifndef PSTORE_STORAGE_TIER_H_
#define PSTORE_STORAGE_TIER_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "storage/block.h"

namespace pstore {

// The tiers of a store, fastest first.
enum class TierKind { kDram = 0, kNvme = 1, kCold = 2 };
inline constexpr int kNumTierKinds = 3;

// Returns "dram", "nvme" or "cold": the one spelling of each tier's name in
// logs, metrics and messages.
absl::string_view TierKindName(TierKind kind);

// Counters of one tier. Monotonic counters count since open.
struct TierStats {
  uint64_t capacity_bytes = 0;     // The budget; 0 means unbounded.
  uint64_t used_bytes = 0;         // Bytes charged now.
  uint64_t blocks = 0;             // Blocks held now.
  uint64_t hits = 0;               // Reads that found the block.
  uint64_t misses = 0;             // Reads that returned NotFound.
  uint64_t writes = 0;             // Blocks written (not counting no-ops).
  uint64_t write_bytes = 0;        // Bytes of those blocks.
  uint64_t read_bytes = 0;         // Bytes returned by hits.
  uint64_t evictions = 0;          // Blocks dropped to make room.
  uint64_t erases = 0;             // Blocks dropped by Erase.
  uint64_t checksum_failures = 0;  // Reads that returned DataLoss.
  uint64_t io_errors = 0;          // Reads or writes failed by the device.
  uint64_t reclaimed_regions = 0;  // NVMe only: regions recycled.
  bool io_uring = false;           // NVMe only: I/O goes through io_uring.
};

using ReadCallback = absl::AnyInvocable<void(absl::StatusOr<BlockRef>) &&>;
using WriteCallback = absl::AnyInvocable<void(absl::Status) &&>;

class Tier {
 public:
  virtual ~Tier() = default;

  // Returns the tier's name for logs and metrics (TierKindName).
  virtual absl::string_view name() const = 0;

  // Returns true if a Read of `id` would find it now (it may be gone by the
  // time of the Read).
  virtual bool Contains(const BlockId& id) const = 0;

  // Returns the bytes of block `id`. Codes: NotFound, DataLoss, Unavailable.
  virtual absl::StatusOr<BlockRef> Read(const BlockId& id) = 0;

  // Reads block `id` and passes the result to `done`. The default calls
  // Read on the caller's thread; disk tiers queue the I/O and return at once.
  virtual void ReadAsync(const BlockId& id, ReadCallback done) {
    std::move(done)(Read(id));
  }

  // True if ReadAsync returns at once with many reads in flight (io_uring,
  // RADOS aio), so that callers need no threads of their own to wait.
  virtual bool reads_async() const { return false; }

  // Stores `block` under `id`. Codes: ResourceExhausted, InvalidArgument,
  // Unavailable.
  virtual absl::Status Write(const BlockId& id, const BlockRef& block) = 0;

  // Write, then `done` with its status: on the caller's thread, unless
  // writes_async(); then it returns at once and calls `done` from a thread
  // of its own, exactly once, with many writes in flight.
  virtual void WriteAsync(const BlockId& id, BlockRef block,
                          WriteCallback done) {
    std::move(done)(Write(id, block));
  }
  virtual bool writes_async() const { return false; }

  // Drops block `id`. OK if it was absent.
  virtual absl::Status Erase(const BlockId& id) = 0;

  virtual TierStats Stats() const = 0;
};

class CacheTier : public Tier {
 public:
  // Drops every block that may be dropped (unpinned blocks for DRAM; all
  // for NVMe).
  virtual absl::Status Clear() = 0;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_TIER_H_
