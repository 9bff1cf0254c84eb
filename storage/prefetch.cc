#include "storage/prefetch.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "storage/dram_cache.h"
#include "util/status.h"

namespace pstore {
namespace {

// Reads a DRAM prefetch keeps in flight.
constexpr size_t kPrefetchWindow = 16;

absl::Status PrefetchIntoNvme(const std::vector<SizedBlock>& blocks,
                              const TierSet& tiers, PrefetchResult* result) {
  Tier* below = tiers.fetch != nullptr ? tiers.fetch : tiers.cold;
  for (const SizedBlock& block : blocks) {
    if (tiers.nvme->Contains(block.id)) {
      ++result->already_present;
      continue;
    }
    absl::StatusOr<BlockRef> bytes =
        tiers.dram->Contains(CacheKey{block.id, kStoredVariant})
            ? tiers.dram->Read(block.id)
            : below->Read(block.id);
    if (!bytes.ok()) bytes = below->Read(block.id);
    if (!bytes.ok()) return bytes.status();
    PSTORE_RETURN_IF_ERROR(tiers.nvme->Write(block.id, *bytes));
  }
  return absl::OkStatus();
}

absl::Status PrefetchIntoDram(const std::vector<SizedBlock>& blocks,
                              const TierSet& tiers, BlockReader* reader,
                              PrefetchResult* result) {
  absl::Mutex mu;
  size_t in_flight = 0;
  absl::Status first_error;
  for (const SizedBlock& block : blocks) {
    if (tiers.dram->Contains(CacheKey{block.id, kStoredVariant})) {
      ++result->already_present;
      continue;
    }
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](size_t* n) { return *n < kPrefetchWindow; }, &in_flight));
      if (!first_error.ok()) break;
      ++in_flight;
    }
    reader->ReadAsync(block.id, [&](absl::StatusOr<BlockRef> read) {
      absl::MutexLock lock(&mu);
      if (!read.ok() && first_error.ok()) first_error = read.status();
      --in_flight;
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](size_t* n) { return *n == 0; }, &in_flight));
  return first_error;
}

}  // namespace

absl::Status CheckPrefetchTarget(TierKind tier, const TierSet& tiers) {
  if (tier == TierKind::kCold) {
    return absl::InvalidArgumentError(
        "the cold tier holds every block; prefetch into dram or nvme");
  }
  if (tier == TierKind::kNvme && tiers.nvme == nullptr) {
    return absl::FailedPreconditionError("the NVMe tier is disabled");
  }
  return absl::OkStatus();
}

absl::StatusOr<PrefetchResult> PrefetchRevision(const Manifest& manifest,
                                                TierKind tier,
                                                const TierSet& tiers,
                                                BlockReader* reader) {
  PSTORE_RETURN_IF_ERROR(CheckPrefetchTarget(tier, tiers));
  std::vector<SizedBlock> blocks = DistinctBlocks(manifest.tensors);
  PrefetchResult result;
  result.blocks = blocks.size();
  for (const SizedBlock& block : blocks) result.bytes += block.size;
  if (tier == TierKind::kNvme) {
    PSTORE_RETURN_IF_ERROR(PrefetchIntoNvme(blocks, tiers, &result));
  } else {
    PSTORE_RETURN_IF_ERROR(PrefetchIntoDram(blocks, tiers, reader, &result));
  }
  return result;
}

}  // namespace pstore
