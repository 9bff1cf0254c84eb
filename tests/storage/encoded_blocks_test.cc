// EncodedBlockCache over a real DRAM tier and RocksDB cold tier: derived
// blocks are encoded once, cached with what they lost, and forgotten with
// the block.

#include "storage/encoded_blocks.h"

#include <cstring>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "storage/block_reader.h"
#include "storage/cold/cold_tier.h"
#include "storage/dram/dram_tier.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::TempDir;

constexpr uint64_t kBlock = 64 << 10;

// A block of kBlock bytes of F32 values.
BlockRef FloatBlock(float seed) {
  std::vector<float> values(kBlock / sizeof(float));
  for (size_t i = 0; i < values.size(); ++i) values[i] = seed + 0.001f * i;
  std::vector<uint8_t> bytes(kBlock);
  std::memcpy(bytes.data(), values.data(), kBlock);
  return CopyBlock(bytes);
}

class EncodedBlockCacheTest : public ::testing::Test {
 protected:
  // Opens DRAM of `dram_blocks` blocks, all of which pins may hold.
  void Open(int dram_blocks) {
    ColdTierOptions cold_options;
    cold_options.dir = dir_.Sub("cold");
    cold_options.sync_commits = false;
    ASSERT_OK_AND_ASSIGN(cold_, ColdTier::Open(cold_options));
    DramTierOptions options;
    options.capacity_bytes = dram_blocks * kBlock;
    options.pin_budget_bytes = options.capacity_bytes;
    options.num_shards = 1;
    ASSERT_OK_AND_ASSIGN(dram_, DramTier::Open(options));
    reader_ = std::make_unique<BlockReader>(
        TierSet{dram_.get(), nullptr, cold_.get()}, 1, nullptr);
    encoded_ =
        std::make_unique<EncodedBlockCache>(dram_.get(), reader_.get(), 1);
  }

  // Stores `block` in cold and returns its id.
  BlockId Store(const BlockRef& block) {
    BlockId id = BlockId::Of(block->bytes());
    EXPECT_OK(cold_->Write(id, block));
    return id;
  }

  absl::StatusOr<EncodedBlock> Read(const BlockId& id, Encoding encoding) {
    absl::Notification done;
    absl::StatusOr<EncodedBlock> result;
    encoded_->ReadAsync(id, DType::kF32, encoding,
                        [&](absl::StatusOr<EncodedBlock> block) {
                          result = std::move(block);
                          done.Notify();
                        });
    done.WaitForNotification();
    return result;
  }

  TempDir dir_;
  std::unique_ptr<ColdTier> cold_;
  std::unique_ptr<DramTier> dram_;
  std::unique_ptr<BlockReader> reader_;
  std::unique_ptr<EncodedBlockCache> encoded_;
};

TEST_F(EncodedBlockCacheTest, ADerivedBlockIsEncodedOnceAndServedFromDram) {
  Open(8);
  BlockId id = Store(FloatBlock(1.0f));
  ASSERT_OK_AND_ASSIGN(EncodedBlock first, Read(id, Encoding::kQ8_0));
  EXPECT_GT(first.stats.count, 0u);
  ASSERT_OK_AND_ASSIGN(EncodedBlock second, Read(id, Encoding::kQ8_0));
  EXPECT_EQ(first.block->view(), second.block->view());
  EXPECT_EQ(second.stats.count, first.stats.count);
  EXPECT_EQ(encoded_->blocks_encoded(), 1u);
  EXPECT_EQ(encoded_->encoded_hits(), 1u);
  EXPECT_EQ(encoded_->remembered_blocks(), 1u);
  encoded_->Forget(std::vector<BlockId>{id});
  EXPECT_EQ(encoded_->remembered_blocks(), 0u);
}

TEST_F(EncodedBlockCacheTest, ADerivedBlockDramRefusesLeavesNothingRemembered) {
  // DRAM of two blocks, both pinned: every insert is refused.
  Open(2);
  std::vector<PinnedBlockSpec> pinned;
  for (float seed : {10.0f, 20.0f}) {
    BlockRef block = FloatBlock(seed);
    pinned.push_back(PinnedBlockSpec{Store(block), block->size()});
  }
  ASSERT_OK(dram_->Pin("m@v1", pinned,
                       [&](const BlockId& id) { return cold_->Read(id); }));
  BlockId id = Store(FloatBlock(3.0f));
  // Served anyway, each time encoded anew, and nothing is kept for a block
  // that DRAM does not hold.
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(EncodedBlock read, Read(id, Encoding::kF16));
    EXPECT_EQ(read.block->size(), kBlock / 2);
  }
  EXPECT_FALSE(
      dram_->Contains(CacheKey{id, static_cast<uint8_t>(Encoding::kF16)}));
  EXPECT_EQ(encoded_->blocks_encoded(), 2u);
  EXPECT_EQ(encoded_->remembered_blocks(), 0u);
}

}  // namespace
}  // namespace pstore
