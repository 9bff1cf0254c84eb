#include "storage/block_reader.h"

#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "storage/dram_cache.h"

namespace pstore {

BlockReader::BlockReader(TierSet tiers, int cold_read_threads,
                         BlockReadObserver on_block_read)
    : tiers_(tiers),
      on_block_read_(std::move(on_block_read)),
      cold_readers_(
          std::make_unique<ThreadPool>("pstore-cold", cold_read_threads)) {}

BlockReader::~BlockReader() {
  // Runs the cold reads still queued; each finishes its waiters.
  cold_readers_.reset();
  // Asynchronous cold reads end within the tier's operation timeout.
  absl::MutexLock lock(&async_mu_);
  async_mu_.Await(absl::Condition(
      +[](int* in_flight) { return *in_flight == 0; }, &async_cold_reads_));
}

void BlockReader::CountRead(TierKind tier, absl::Time start) {
  reads_from_[static_cast<int>(tier)].fetch_add(1, std::memory_order_relaxed);
  if (on_block_read_) on_block_read_(tier, absl::Now() - start);
}

void BlockReader::ReadAsync(const BlockId& id, ReadCallback done,
                            ReadScope scope) {
  absl::Time start = absl::Now();
  absl::StatusOr<BlockRef> hit =
      tiers_.dram->Lookup(CacheKey{id, kStoredVariant});
  if (hit.ok()) {
    CountRead(TierKind::kDram, start);
    std::move(done)(std::move(hit));
    return;
  }
  {
    absl::MutexLock lock(&inflight_mu_);
    auto [it, inserted] = inflight_.try_emplace(id);
    it->second.push_back(std::move(done));
    if (!inserted) {
      coalesced_reads_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  StartDiskRead(id, start, scope);
}

void BlockReader::StartDiskRead(const BlockId& id, absl::Time start,
                                ReadScope scope) {
  if (tiers_.nvme != nullptr && tiers_.nvme->Contains(id)) {
    tiers_.nvme->ReadAsync(id, [this, id, start,
                                scope](absl::StatusOr<BlockRef> result) {
      if (result.ok()) {
        FinishRead(id, std::move(result), TierKind::kNvme, start);
        return;
      }
      // A corrupt or failed NVMe entry is only a cache miss: cold has it.
      if (!absl::IsNotFound(result.status())) {
        spdlog::warn(
            "event=nvme_read_failed block={} action=read_cold status=\"{}\"",
            id.ToHex(), result.status().ToString());
      }
      ReadFromCold(id, start, scope);
    });
    return;
  }
  ReadFromCold(id, start, scope);
}

void BlockReader::ReadFromCold(const BlockId& id, absl::Time start,
                               ReadScope scope) {
  // A read that joined one in flight shares its scope: a local read may
  // wait on another node's answer, which ends by its deadlines.
  Tier* tier = scope == ReadScope::kAny && tiers_.fetch != nullptr
                   ? tiers_.fetch
                   : tiers_.cold;
  if (tier->reads_async()) {
    // Many in flight at once, none holding a thread (a pool of a few
    // threads waiting on the network would cap a cold pull at a few reads
    // in flight).
    {
      absl::MutexLock lock(&async_mu_);
      ++async_cold_reads_;
    }
    tier->ReadAsync(id, [this, id, start](absl::StatusOr<BlockRef> result) {
      FinishRead(id, std::move(result), TierKind::kCold, start);
      absl::MutexLock lock(&async_mu_);
      --async_cold_reads_;
    });
    return;
  }
  cold_readers_->Schedule([this, id, start, tier] {
    FinishRead(id, tier->Read(id), TierKind::kCold, start);
  });
}

void BlockReader::FinishRead(const BlockId& id, absl::StatusOr<BlockRef> result,
                             TierKind source, absl::Time start) {
  if (result.ok()) {
    CountRead(source, start);
    // Refused only when DRAM is full of pinned blocks: serve it anyway.
    (void)tiers_.dram->Insert(CacheKey{id, kStoredVariant}, *result);
  }
  std::vector<ReadCallback> waiters;
  {
    absl::MutexLock lock(&inflight_mu_);
    auto it = inflight_.find(id);
    if (it != inflight_.end()) {
      waiters = std::move(it->second);
      inflight_.erase(it);
    }
  }
  for (ReadCallback& waiter : waiters) std::move(waiter)(result);
}

absl::StatusOr<BlockRef> BlockReader::Read(const BlockId& id) {
  absl::Notification done;
  absl::StatusOr<BlockRef> result;
  ReadAsync(id, [&](absl::StatusOr<BlockRef> block) {
    result = std::move(block);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<BlockRef> BlockReader::ReadBelowDram(const BlockId& id) {
  // Counted, but not observed: these reads (pins, prefetches) serve no
  // client directly.
  if (tiers_.nvme != nullptr && tiers_.nvme->Contains(id)) {
    absl::StatusOr<BlockRef> block = tiers_.nvme->Read(id);
    if (block.ok()) {
      reads_from_[static_cast<int>(TierKind::kNvme)].fetch_add(
          1, std::memory_order_relaxed);
      return block;
    }
  }
  Tier* below = tiers_.fetch != nullptr ? tiers_.fetch : tiers_.cold;
  absl::StatusOr<BlockRef> block = below->Read(id);
  if (block.ok()) {
    reads_from_[static_cast<int>(TierKind::kCold)].fetch_add(
        1, std::memory_order_relaxed);
  }
  return block;
}

}  // namespace pstore
