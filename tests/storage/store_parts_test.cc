// A TieredStore composed of parts handed to it (TieredStore::Open with
// StoreParts), some wrapped to hold a read or to run a race at a chosen
// moment: the store's behaviour where timing decides.

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/cold/rocksdb_backend.h"
#include "storage/dram/dram_tier.h"
#include "storage/nvme/nvme_tier.h"
#include "storage/tiered_store.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_puts.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tier_wrappers.h"
#include "util/status.h"

namespace pstore {
namespace {

using ::pstore::testing::ForwardingCacheTier;
using ::pstore::testing::ForwardingDramCache;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::testing::IsEmpty;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// An NVMe tier whose reads wait, while holding() is set, until the tier is
// closed; closing completes them, as a device completes its I/O in flight.
class HeldReadsNvme : public ForwardingCacheTier {
 public:
  using ForwardingCacheTier::ForwardingCacheTier;

  ~HeldReadsNvme() override {
    std::vector<std::pair<BlockId, ReadCallback>> held;
    {
      absl::MutexLock lock(&mu_);
      held = std::move(held_);
    }
    for (auto& [id, done] : held) base_->ReadAsync(id, std::move(done));
    base_.reset();  // Waits for those reads.
  }

  void ReadAsync(const BlockId& id, ReadCallback done) override {
    absl::MutexLock lock(&mu_);
    if (!holding_) {
      base_->ReadAsync(id, std::move(done));
      return;
    }
    held_.emplace_back(id, std::move(done));
  }

  void Hold() {
    absl::MutexLock lock(&mu_);
    holding_ = true;
  }
  size_t held() {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }

 private:
  absl::Mutex mu_;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<BlockId, ReadCallback>> held_ ABSL_GUARDED_BY(mu_);
};

// A DRAM cache that runs a hook once, after the next pin is in place and
// before Pin returns.
class HookAfterPin : public ForwardingDramCache {
 public:
  using ForwardingDramCache::ForwardingDramCache;

  void set_after_pin(std::function<void()> hook) {
    after_pin_ = std::move(hook);
  }

  absl::Status Pin(absl::string_view pin_name,
                   std::span<const PinnedBlockSpec> blocks,
                   absl::FunctionRef<absl::StatusOr<BlockRef>(const BlockId&)>
                       load) override {
    absl::Status pinned = base_->Pin(pin_name, blocks, load);
    if (after_pin_) std::exchange(after_pin_, nullptr)();
    return pinned;
  }

 private:
  std::function<void()> after_pin_;
};

class StorePartsTest : public ::testing::Test {
 protected:
  ColdTierOptions ColdOptions() const {
    ColdTierOptions options;
    options.dir = dir_.Sub("cold");
    options.sync_commits = false;
    options.min_free_bytes = 16 * kMiB;
    return options;
  }

  // Opens a store of the real parts, DRAM and NVMe wrapped.
  void Open() {
    StoreParts parts;
    ASSERT_OK_AND_ASSIGN(parts.backend, OpenRocksDbBackend(ColdOptions()));
    DramTierOptions dram;
    dram.capacity_bytes = 64 * kMiB;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> dram_tier,
                         DramTier::Open(dram));
    auto dram_cache = std::make_unique<HookAfterPin>(std::move(dram_tier));
    dram_ = dram_cache.get();
    parts.dram = std::move(dram_cache);
    NvmeTierOptions nvme;
    nvme.dir = dir_.Sub("nvme");
    nvme.capacity_bytes = 64 * kMiB;
    nvme.region_bytes = 16 * kMiB;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<NvmeTier> nvme_tier,
                         NvmeTier::Open(std::move(nvme)));
    auto held = std::make_unique<HeldReadsNvme>(std::move(nvme_tier));
    nvme_ = held.get();
    parts.nvme = std::move(held);
    TieredStoreOptions options;
    options.block_bytes = 1 * kMiB;
    options.sync_commits = false;
    ASSERT_OK_AND_ASSIGN(
        store_, TieredStore::Open(std::move(options), std::move(parts)));
  }

  absl::StatusOr<TensorMeta> Put(const std::string& name,
                                 const std::vector<uint8_t>& bytes) {
    return ::pstore::testing::PutBytes(*store_, name, bytes);
  }

  TempDir dir_;
  std::unique_ptr<TieredStore> store_;
  HookAfterPin* dram_ = nullptr;
  HeldReadsNvme* nvme_ = nullptr;
};

TEST_F(StorePartsTest, ClosingWithAnNvmeReadInFlightFinishesTheRead) {
  Open();
  std::vector<uint8_t> bytes = RandomBytes(2 * kMiB, 1);
  ASSERT_OK_AND_ASSIGN(TensorMeta meta, Put("m@v1/t", bytes));
  ASSERT_OK(
      store_->Prefetch(RevisionName{"m", "v1"}, TierKind::kNvme).status());
  ASSERT_OK(store_->DropCache(TierKind::kDram));
  nvme_->Hold();
  absl::Notification done;
  absl::StatusOr<BlockRef> result;
  store_->ReadBlockAsync(meta.blocks[0], [&](absl::StatusOr<BlockRef> block) {
    result = std::move(block);
    done.Notify();
  });
  ASSERT_EQ(nvme_->held(), 1u);
  // Close while the read is in flight: the NVMe tier completes it at close,
  // into a DRAM tier and a reader that are still open.
  store_.reset();
  ASSERT_TRUE(done.HasBeenNotified());
  ASSERT_OK(result.status());
  EXPECT_TRUE(
      (*result)->view() ==
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), 1 * kMiB));
}

TEST_F(StorePartsTest, APinRacingTheDeleteOfItsRevisionLeavesNoPin) {
  Open();
  ASSERT_OK(Put("m@v1/t", RandomBytes(3 * kMiB, 2)).status());
  ASSERT_OK(store_->PublishRevision(RevisionName{"m", "v1"}));
  absl::Status deleted = absl::UnknownError("not run");
  // The revision is deleted after its blocks are pinned in DRAM and before
  // the pin is recorded.
  dram_->set_after_pin([&] {
    std::thread deleter([&] {
      deleted = store_->DeleteRevision(RevisionName{"m", "v1"});
    });
    deleter.join();
  });
  EXPECT_THAT(store_->Pin(RevisionName{"m", "v1"}),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(deleted);
  EXPECT_THAT(store_->ListPins(), IsEmpty());
  EXPECT_EQ(store_->Stats().pinned_bytes, 0u);
  // Nor is a pin recorded, to come back at the next open.
  store_.reset();
  ASSERT_OK_AND_ASSIGN(Backend backend, OpenRocksDbBackend(ColdOptions()));
  EXPECT_THAT(*backend.catalog->ListPinRecords(), IsEmpty());
}

}  // namespace
}  // namespace pstore
