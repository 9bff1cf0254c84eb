// BlockCollector against a real RocksDB backend and DRAM tier: puts stage
// blocks, unreferenced blocks leave every tier unless a put holds them,
// and what a crash leaves staged is collected at the next open.

#include "storage/block_collector.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/block_reader.h"
#include "storage/cold/rocksdb_backend.h"
#include "storage/dram/dram_tier.h"
#include "storage/encoded_blocks.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class BlockCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  // Opens the backend and the parts over it, as a store's open does.
  void Open() {
    collector_.reset();
    encoded_.reset();
    reader_.reset();
    backend_ = Backend();
    ColdTierOptions options;
    options.dir = dir_.Sub("cold");
    options.sync_commits = false;
    ASSERT_OK_AND_ASSIGN(backend_, OpenRocksDbBackend(options));
    DramTierOptions dram_options;
    dram_options.capacity_bytes = 16 << 20;
    ASSERT_OK_AND_ASSIGN(dram_, DramTier::Open(dram_options));
    TierSet tiers{dram_.get(), nullptr, backend_.blocks.get()};
    reader_ = std::make_unique<BlockReader>(tiers, 1, nullptr);
    encoded_ =
        std::make_unique<EncodedBlockCache>(dram_.get(), reader_.get(), 1);
    collector_ = std::make_unique<BlockCollector>(backend_.catalog.get(), tiers,
                                                  encoded_.get());
    ASSERT_OK(collector_->CollectStagedAtOpen());
  }

  // Stages and writes `block` as a put does; returns whether it was
  // already stored.
  bool StageAndWrite(const BlockRef& block) {
    BlockId id = BlockId::Of(block->bytes());
    absl::StatusOr<bool> stored = collector_->Stage(id);
    EXPECT_TRUE(stored.ok()) << stored.status();
    if (stored.ok() && !*stored) {
      EXPECT_OK(backend_.blocks->Write(id, block));
      collector_->MarkWritten(id);
      EXPECT_OK(dram_->Write(id, block));
    }
    return stored.value_or(false);
  }

  absl::StatusOr<std::vector<BlockId>> Commit(const RevisionName& revision,
                                              const std::string& tensor,
                                              const std::vector<BlockId>& ids) {
    TensorMeta meta;
    meta.name = TensorName{revision, tensor};
    meta.dtype = DType::kU8;
    meta.block_bytes = 4096;
    meta.byte_length = 4096 * ids.size();
    meta.shape = {static_cast<int64_t>(meta.byte_length)};
    meta.blocks = ids;
    return backend_.catalog->CommitTensor(meta);
  }

  bool Stored(const BlockId& id) { return backend_.blocks->Contains(id); }

  TempDir dir_;
  Backend backend_;
  std::unique_ptr<DramTier> dram_;
  std::unique_ptr<BlockReader> reader_;
  std::unique_ptr<EncodedBlockCache> encoded_;
  std::unique_ptr<BlockCollector> collector_;
};

TEST_F(BlockCollectorTest, OpenCollectsBlocksOfPutsThatNeverCommitted) {
  BlockRef block = CopyBlock(RandomBytes(4096, 5));
  BlockId id = BlockId::Of(block->bytes());
  EXPECT_FALSE(StageAndWrite(block));
  EXPECT_TRUE(Stored(id));
  Open();  // As if the process died before the commit.
  EXPECT_FALSE(Stored(id));
  EXPECT_THAT(*backend_.catalog->ListStaged(), IsEmpty());
}

TEST_F(BlockCollectorTest, AbortKeepsBlocksThatARecordOrAnotherPutUses) {
  RevisionName a{"m", "a"};
  ASSERT_OK(backend_.catalog->CreateRevision(a, {}));
  BlockRef committed = CopyBlock(RandomBytes(4096, 1));
  BlockId committed_id = BlockId::Of(committed->bytes());
  EXPECT_FALSE(StageAndWrite(committed));
  ASSERT_OK(Commit(a, "t", {committed_id}).status());
  collector_->Unstage(std::vector<BlockId>{committed_id});

  BlockRef fresh = CopyBlock(RandomBytes(4096, 2));
  BlockId fresh_id = BlockId::Of(fresh->bytes());
  // Two puts stage the fresh block; one aborts, the other still holds it.
  EXPECT_FALSE(StageAndWrite(fresh));
  EXPECT_TRUE(StageAndWrite(fresh));      // Written by the other put.
  EXPECT_TRUE(StageAndWrite(committed));  // Referenced by a record.

  collector_->Abort(std::vector<BlockId>{fresh_id, committed_id});
  EXPECT_TRUE(Stored(fresh_id));
  EXPECT_EQ(collector_->collected_blocks(), 0u);
  collector_->Abort(std::vector<BlockId>{fresh_id});
  EXPECT_FALSE(Stored(fresh_id));
  EXPECT_FALSE(dram_->Contains(fresh_id));
  EXPECT_TRUE(Stored(committed_id));
  EXPECT_EQ(collector_->collected_blocks(), 1u);
  EXPECT_THAT(*backend_.catalog->ListStaged(), IsEmpty());
}

TEST_F(BlockCollectorTest, ABlockAPutStagesOutlivesItsLastReference) {
  RevisionName a{"m", "a"};
  ASSERT_OK(backend_.catalog->CreateRevision(a, {}));
  BlockRef block = CopyBlock(RandomBytes(4096, 3));
  BlockId id = BlockId::Of(block->bytes());
  EXPECT_FALSE(StageAndWrite(block));
  ASSERT_OK(Commit(a, "t", {id}).status());
  collector_->Unstage(std::vector<BlockId>{id});

  // A second put finds the block stored and reuses it; meanwhile its only
  // record goes.
  EXPECT_TRUE(StageAndWrite(block));
  ASSERT_OK_AND_ASSIGN(std::vector<BlockId> unreferenced,
                       backend_.catalog->DeleteTensor(TensorName{a, "t"}));
  EXPECT_THAT(unreferenced, ElementsAre(id));
  collector_->Collect(unreferenced);
  EXPECT_TRUE(Stored(id));  // The put holds it.
  // The put commits: the block is referenced again and kept.
  ASSERT_OK(Commit(a, "u", {id}).status());
  collector_->Unstage(std::vector<BlockId>{id});
  EXPECT_TRUE(Stored(id));
  EXPECT_THAT(*backend_.catalog->ListStaged(), IsEmpty());
  EXPECT_EQ(collector_->collected_blocks(), 0u);
}

TEST_F(BlockCollectorTest, ADeleteCutShortBeforeCollectingIsFinishedAtOpen) {
  RevisionName a{"m", "a"};
  ASSERT_OK(backend_.catalog->CreateRevision(a, {}));
  BlockRef block = CopyBlock(RandomBytes(4096, 4));
  BlockId id = BlockId::Of(block->bytes());
  EXPECT_FALSE(StageAndWrite(block));
  ASSERT_OK(Commit(a, "t", {id}).status());
  collector_->Unstage(std::vector<BlockId>{id});
  // The revision goes, and the process dies before the block is erased.
  ASSERT_OK(backend_.catalog->DeleteRevision(a).status());
  EXPECT_TRUE(Stored(id));
  Open();
  EXPECT_FALSE(Stored(id));
  EXPECT_THAT(*backend_.catalog->ListStaged(), IsEmpty());
}

TEST_F(BlockCollectorTest, CollectErasesFromEveryTierAndClearsTheMarks) {
  RevisionName a{"m", "a"};
  ASSERT_OK(backend_.catalog->CreateRevision(a, {}));
  std::vector<BlockId> ids;
  for (int i = 0; i < 3; ++i) {
    BlockRef block = CopyBlock(RandomBytes(4096, 10 + i));
    ids.push_back(BlockId::Of(block->bytes()));
    EXPECT_FALSE(StageAndWrite(block));
  }
  ASSERT_OK(Commit(a, "t", ids).status());
  collector_->Unstage(ids);
  ASSERT_OK_AND_ASSIGN(std::vector<BlockId> unreferenced,
                       backend_.catalog->DeleteRevision(a));
  EXPECT_EQ(unreferenced.size(), 3u);
  collector_->Collect(unreferenced);
  for (const BlockId& id : ids) {
    EXPECT_FALSE(Stored(id));
    EXPECT_FALSE(dram_->Contains(id));
  }
  EXPECT_EQ(collector_->collected_blocks(), 3u);
  EXPECT_THAT(*backend_.catalog->ListStaged(), IsEmpty());
}

}  // namespace
}  // namespace pstore
