// StoreStats: the counters of a whole store, for metrics and status.
// Monotonic counters count since open.

#ifndef PSTORE_STORAGE_STORE_STATS_H_
#define PSTORE_STORAGE_STORE_STATS_H_

#include <cstdint>

#include "storage/tier.h"

namespace pstore {

// The counters of reads between the nodes of a shared store
// (storage/peers/). Monotonic counters count since open.
struct PeerStats {
  bool enabled = false;      // Reads ask the blocks' owners first.
  uint64_t ring_nodes = 0;   // Nodes on the ring now, this one included.
  uint64_t peer_blocks = 0;  // Blocks read from their owners, verified.
  uint64_t peer_bytes = 0;
  uint64_t peer_errors = 0;      // Owners that answered an error, or none.
  uint64_t peer_bad_blocks = 0;  // Owners' answers that failed the hash.
  uint64_t hedges = 0;           // Durable reads started past the deadline.
  uint64_t hedge_wins = 0;       // Of those, the ones that answered first.
  uint64_t served_blocks = 0;    // Blocks this node served to other nodes.
  uint64_t served_bytes = 0;
};

struct StoreStats {
  TierStats dram;
  TierStats nvme;
  TierStats cold;
  bool nvme_enabled = false;
  bool io_uring = false;
  uint64_t reads_from[kNumTierKinds] = {0, 0, 0};  // Reads served, by tier.
  uint64_t coalesced_reads = 0;   // Readers that joined a read in flight.
  uint64_t spills = 0;            // Evicted blocks written to NVMe.
  uint64_t spills_dropped = 0;    // Evicted blocks not spilled.
  uint64_t spill_failures = 0;    // NVMe writes of spills that failed.
  uint64_t dedup_blocks = 0;      // Put blocks found already stored.
  uint64_t collected_blocks = 0;  // Blocks erased when unreferenced.
  uint64_t pinned_bytes = 0;
  uint64_t pin_budget_bytes = 0;
  uint64_t blocks_encoded = 0;  // Derived blocks computed.
  uint64_t encoded_hits = 0;    // Derived blocks found in DRAM.
  PeerStats peers;
};

// What one garbage collection found and did (storage/rados/rados_gc.h).
struct GcReport {
  bool dry_run = false;
  uint64_t referenced_blocks = 0;  // Distinct blocks records name.
  uint64_t block_objects = 0;      // Block objects in the store.
  uint64_t removed = 0;            // Unreferenced, old: removed (or would be).
  uint64_t removed_bytes = 0;
  uint64_t kept_recent = 0;  // Unreferenced, touched within the grace period.
  uint64_t kept_raced = 0;   // Touched by a put while the sweep ran.
  double seconds = 0;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_STORE_STATS_H_
