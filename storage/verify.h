// VerifyRevision: the scrub behind `pstore-cli verify`: reads every block
// of a revision from every tier that holds a copy and checks each against
// its id.

#ifndef PSTORE_STORAGE_VERIFY_H_
#define PSTORE_STORAGE_VERIFY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "codec/hash.h"
#include "storage/names.h"
#include "storage/records.h"
#include "storage/tier.h"
#include "storage/tier_set.h"

namespace pstore {

// A stored block that failed its check in one tier.
struct BadBlock {
  std::string tensor;  // MODEL@REV/TENSOR.
  size_t block_index = 0;
  BlockId id;
  TierKind tier = TierKind::kCold;
  absl::Status error;
};

struct VerifyReport {
  RevisionName revision;  // Resolved.
  uint64_t blocks = 0;    // Distinct blocks of the revision.
  uint64_t bytes = 0;
  uint64_t checked[kNumTierKinds] = {0, 0, 0};  // Copies checked, by tier.
  std::vector<BadBlock> bad;
};

// Checks every copy of every block of `manifest` in `tiers`. Corrupt NVMe
// entries are dropped by the NVMe tier's read (the durable copy serves);
// corrupt durable blocks are reported (they are the only copy). Copies are
// read without entering DRAM. Errors are per block, in the report.
VerifyReport VerifyRevision(const Manifest& manifest, const TierSet& tiers);

}  // namespace pstore

#endif  // PSTORE_STORAGE_VERIFY_H_
