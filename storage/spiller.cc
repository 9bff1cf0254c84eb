#include "storage/spiller.h"

#include <utility>

#include "spdlog/spdlog.h"

namespace pstore {

Spiller::Spiller(CacheTier* nvme, size_t queue_blocks)
    : nvme_(nvme), queue_blocks_(queue_blocks) {
  thread_ = std::thread([this] { Loop(); });
}

Spiller::~Spiller() { Stop(); }

void Spiller::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    queue_.clear();
  }
  if (thread_.joinable()) thread_.join();
}

void Spiller::Offer(const BlockId& id, BlockRef block) {
  absl::MutexLock lock(&mu_);
  if (stop_ || queue_.size() >= queue_blocks_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.emplace_back(id, std::move(block));
}

void Spiller::Loop() {
  while (true) {
    std::pair<BlockId, BlockRef> item;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Spiller* spiller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(spiller->mu_) {
            return spiller->stop_ || !spiller->queue_.empty();
          },
          this));
      if (stop_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (nvme_->Contains(item.first)) continue;
    absl::Status status = nvme_->Write(item.first, item.second);
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      spills_.fetch_add(1, std::memory_order_relaxed);
      if (warned_) {
        spdlog::info("event=spill_resumed");
        warned_ = false;
      }
    } else {
      failures_.fetch_add(1, std::memory_order_relaxed);
      if (!warned_) {
        spdlog::warn(
            "event=spill_failed action=\"evicted blocks stay only in cold "
            "until spills work again\" status=\"{}\"",
            status.ToString());
        warned_ = true;
      }
    }
  }
}

}  // namespace pstore
