// TierSet: the tiers of one store, fastest first, as the store's parts see
// them. Not owned; the store keeps them alive while any part runs.

#ifndef PSTORE_STORAGE_TIER_SET_H_
#define PSTORE_STORAGE_TIER_SET_H_

#include "storage/dram_cache.h"
#include "storage/tier.h"

namespace pstore {

struct TierSet {
  DramCache* dram = nullptr;
  CacheTier* nvme = nullptr;  // Null when the NVMe tier is off.
  Tier* cold = nullptr;       // The durable tier: every block is here.
  // Where reads that miss DRAM and NVMe go, when not straight to `cold`:
  // the durable tier read through the other nodes (storage/peers/).
  // Null: `cold`.
  Tier* fetch = nullptr;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_TIER_SET_H_
