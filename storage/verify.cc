#include "storage/verify.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "storage/dram_cache.h"

namespace pstore {

VerifyReport VerifyRevision(const Manifest& manifest, const TierSet& tiers) {
  VerifyReport report;
  report.revision = manifest.revision.name;
  absl::flat_hash_set<BlockId> seen;
  for (const TensorMeta& tensor : manifest.tensors) {
    for (size_t i = 0; i < tensor.blocks.size(); ++i) {
      const BlockId& id = tensor.blocks[i];
      if (!seen.insert(id).second) continue;
      ++report.blocks;
      report.bytes += tensor.BlockSize(i);
      auto check = [&](TierKind tier, absl::StatusOr<BlockRef> block) {
        ++report.checked[static_cast<int>(tier)];
        absl::Status error = block.status();
        if (error.ok() && (BlockId::Of((*block)->bytes()) != id ||
                           (*block)->size() != tensor.BlockSize(i))) {
          error = absl::DataLossError(
              absl::StrCat("block ", id.ToHex(), " in ", TierKindName(tier),
                           " fails its XXH3-128 check"));
        }
        if (!error.ok()) {
          report.bad.push_back(
              BadBlock{tensor.name.ToString(), i, id, tier, std::move(error)});
        }
      };
      if (tiers.dram->Contains(CacheKey{id, kStoredVariant})) {
        absl::StatusOr<BlockRef> cached = tiers.dram->Read(id);
        // A copy evicted meanwhile is not a fault.
        if (cached.ok()) check(TierKind::kDram, std::move(cached));
      }
      if (tiers.nvme != nullptr && tiers.nvme->Contains(id)) {
        absl::StatusOr<BlockRef> warm = tiers.nvme->Read(id);
        // A copy gone meanwhile (reclaimed) is not a fault.
        if (!absl::IsNotFound(warm.status())) {
          check(TierKind::kNvme, std::move(warm));
        }
      }
      check(TierKind::kCold, tiers.cold->Read(id));
    }
  }
  return report;
}

}  // namespace pstore
