#include "storage/block_collector.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "util/status.h"

namespace pstore {

BlockCollector::BlockCollector(Catalog* catalog, TierSet tiers,
                               EncodedBlockCache* encoded)
    : catalog_(catalog), tiers_(tiers), encoded_(encoded) {}

absl::Status BlockCollector::CollectStagedAtOpen() {
  PSTORE_ASSIGN_OR_RETURN(std::vector<BlockId> staged, catalog_->ListStaged());
  if (staged.empty()) return absl::OkStatus();
  uint64_t collected = 0;
  {
    absl::MutexLock lock(&mu_);
    collected = CollectLocked(staged);
  }
  spdlog::info(
      "event=staged_blocks_collected collected={} referenced={} "
      "reason=\"puts or deletes that had not finished before the last "
      "shutdown\"",
      collected, staged.size() - collected);
  return absl::OkStatus();
}

absl::StatusOr<bool> BlockCollector::Stage(const BlockId& id) {
  absl::MutexLock lock(&mu_);
  Staging& staging = staging_[id];
  ++staging.count;
  // Without counts every put writes: the durable tier stores the block or
  // finds it stored, and marks it used by this put, for the sweep.
  if (!catalog_->CountsReferences()) return false;
  if (staging.written) return true;
  absl::StatusOr<uint64_t> refs = catalog_->RefCount(id);
  absl::Status status = refs.status();
  if (status.ok() && *refs > 0) return true;
  if (status.ok()) status = catalog_->MarkStaged(id);
  if (!status.ok()) {
    if (--staging_[id].count == 0) staging_.erase(id);
    return status;
  }
  return false;
}

void BlockCollector::MarkWritten(const BlockId& id) {
  absl::MutexLock lock(&mu_);
  auto it = staging_.find(id);
  if (it != staging_.end()) it->second.written = true;
}

void BlockCollector::Unstage(std::span<const BlockId> ids) {
  absl::MutexLock lock(&mu_);
  for (const BlockId& id : ids) {
    auto it = staging_.find(id);
    if (it != staging_.end() && --it->second.count == 0) staging_.erase(it);
  }
}

void BlockCollector::Abort(std::span<const BlockId> ids) {
  absl::MutexLock lock(&mu_);
  std::vector<BlockId> released;
  for (const BlockId& id : ids) {
    auto it = staging_.find(id);
    if (it == staging_.end() || --it->second.count > 0) continue;
    staging_.erase(it);
    released.push_back(id);
  }
  collected_.fetch_add(CollectLocked(released), std::memory_order_relaxed);
}

void BlockCollector::Collect(std::span<const BlockId> ids) {
  if (ids.empty()) return;
  absl::MutexLock lock(&mu_);
  collected_.fetch_add(CollectLocked(ids), std::memory_order_relaxed);
}

uint64_t BlockCollector::CollectLocked(std::span<const BlockId> ids) {
  // Blocks of a catalog without counts are swept, not collected here.
  if (!catalog_->CountsReferences()) return 0;
  std::vector<BlockId> erased;
  std::vector<BlockId> settled;  // Marks to clear.
  for (const BlockId& id : ids) {
    // A put in progress holds it: its commit or abort settles it.
    if (staging_.contains(id)) continue;
    absl::StatusOr<uint64_t> refs = catalog_->RefCount(id);
    if (!refs.ok()) {
      spdlog::warn(
          "event=collect_deferred block={} action=\"collected at the next "
          "open\" status=\"{}\"",
          id.ToHex(), refs.status().ToString());
      continue;
    }
    if (*refs > 0) {
      settled.push_back(id);  // Referenced again since: keep it.
      continue;
    }
    if (absl::Status status = tiers_.cold->Erase(id); !status.ok()) {
      spdlog::warn(
          "event=collect_deferred block={} action=\"collected at the next "
          "open\" status=\"{}\"",
          id.ToHex(), status.ToString());
      continue;
    }
    // Cache erases fail only on a broken invariant; the block is gone from
    // the durable tier and can never be read by name again.
    (void)tiers_.dram->Erase(id);
    if (tiers_.nvme != nullptr) (void)tiers_.nvme->Erase(id);
    erased.push_back(id);
    settled.push_back(id);
  }
  encoded_->Forget(erased);
  if (absl::Status cleared = catalog_->ClearStaged(settled); !cleared.ok()) {
    // The blocks are erased; their marks only cost a check at next open.
    spdlog::warn("event=staged_marks_kept count={} status=\"{}\"",
                 settled.size(), cleared.ToString());
  }
  return erased.size();
}

}  // namespace pstore
