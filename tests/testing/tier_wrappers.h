// Wrappers of tier interfaces that forward every call to a wrapped tier, in
// the manner of RocksDB's FileSystemWrapper: a test overrides the one
// method where it injects a delay, a race or a fault, and the store it
// hands the wrapper to runs unchanged.
//
// Thread-safe as the wrapped tier is.

#ifndef PSTORE_TESTS_TESTING_TIER_WRAPPERS_H_
#define PSTORE_TESTS_TESTING_TIER_WRAPPERS_H_

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "storage/dram_cache.h"
#include "storage/tier.h"

namespace pstore::testing {

class ForwardingCacheTier : public CacheTier {
 public:
  explicit ForwardingCacheTier(std::unique_ptr<CacheTier> base)
      : base_(std::move(base)) {}

  absl::string_view name() const override { return base_->name(); }
  bool Contains(const BlockId& id) const override {
    return base_->Contains(id);
  }
  absl::StatusOr<BlockRef> Read(const BlockId& id) override {
    return base_->Read(id);
  }
  void ReadAsync(const BlockId& id, ReadCallback done) override {
    base_->ReadAsync(id, std::move(done));
  }
  absl::Status Write(const BlockId& id, const BlockRef& block) override {
    return base_->Write(id, block);
  }
  absl::Status Erase(const BlockId& id) override { return base_->Erase(id); }
  TierStats Stats() const override { return base_->Stats(); }
  absl::Status Clear() override { return base_->Clear(); }

 protected:
  std::unique_ptr<CacheTier> base_;
};

class ForwardingDramCache : public DramCache {
 public:
  explicit ForwardingDramCache(std::unique_ptr<DramCache> base)
      : base_(std::move(base)) {}

  absl::string_view name() const override { return base_->name(); }
  bool Contains(const BlockId& id) const override {
    return base_->Contains(id);
  }
  bool Contains(const CacheKey& key) const override {
    return base_->Contains(key);
  }
  absl::StatusOr<BlockRef> Read(const BlockId& id) override {
    return base_->Read(id);
  }
  void ReadAsync(const BlockId& id, ReadCallback done) override {
    base_->ReadAsync(id, std::move(done));
  }
  absl::Status Write(const BlockId& id, const BlockRef& block) override {
    return base_->Write(id, block);
  }
  absl::Status Erase(const BlockId& id) override { return base_->Erase(id); }
  TierStats Stats() const override { return base_->Stats(); }
  absl::Status Clear() override { return base_->Clear(); }
  absl::StatusOr<BlockRef> Lookup(const CacheKey& key) override {
    return base_->Lookup(key);
  }
  absl::Status Insert(const CacheKey& key, BlockRef block) override {
    return base_->Insert(key, std::move(block));
  }
  absl::Status Pin(absl::string_view pin_name,
                   std::span<const PinnedBlockSpec> blocks,
                   absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)>
                       load) override {
    return base_->Pin(pin_name, blocks, load);
  }
  absl::Status Unpin(absl::string_view pin_name) override {
    return base_->Unpin(pin_name);
  }
  std::vector<std::string> ListPins() const override {
    return base_->ListPins();
  }
  uint64_t pinned_bytes() const override { return base_->pinned_bytes(); }
  uint64_t pin_budget_bytes() const override {
    return base_->pin_budget_bytes();
  }
  void SetEvictCallback(EvictCallback on_evict) override {
    base_->SetEvictCallback(std::move(on_evict));
  }

 protected:
  std::unique_ptr<DramCache> base_;
};

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_TIER_WRAPPERS_H_
