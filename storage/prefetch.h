// PrefetchRevision: loads every block of a revision into DRAM or NVMe ahead
// of the reads that will want it (`pstore-cli prefetch`).

#ifndef PSTORE_STORAGE_PREFETCH_H_
#define PSTORE_STORAGE_PREFETCH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "storage/block_reader.h"
#include "storage/records.h"
#include "storage/tier.h"
#include "storage/tier_set.h"

namespace pstore {

struct PrefetchResult {
  uint64_t blocks = 0;           // Distinct blocks of the revision.
  uint64_t bytes = 0;            // Their bytes.
  uint64_t already_present = 0;  // Blocks the tier held before.
};

// Returns OK if blocks may be prefetched into `tier`: FailedPrecondition
// for NVMe when the tier is off; InvalidArgument for the durable tier.
absl::Status CheckPrefetchTarget(TierKind tier, const TierSet& tiers);

// Loads the blocks of `manifest` into `tier` of `tiers`: DRAM through
// `reader` (a window of reads in flight, so the disks stay busy), NVMe by
// copying from DRAM or the durable tier. Codes of CheckPrefetchTarget; the
// first read or write error otherwise. Blocks loaded before an error stay.
absl::StatusOr<PrefetchResult> PrefetchRevision(const Manifest& manifest,
                                                TierKind tier,
                                                const TierSet& tiers,
                                                BlockReader* reader);

}  // namespace pstore

#endif  // PSTORE_STORAGE_PREFETCH_H_
