#include "storage/catalog.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/cold/cold_tier.h"
#include "tests/testing/catalog_matchers.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::EqualsMeta;
using ::pstore::testing::MetaOrWouldBlock;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::pstore::testing::WouldBlock;
using ::testing::AnyOf;

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    catalog_.reset();
    cold_.reset();
    ColdTierOptions options;
    options.dir = dir_.Sub("cold");
    ASSERT_OK_AND_ASSIGN(cold_, ColdTier::Open(options));
    ASSERT_OK_AND_ASSIGN(catalog_, Catalog::Open(cold_.get()));
  }

  // Stores a tensor of `blocks` through the staging protocol.
  absl::StatusOr<std::vector<BlockId>> PutTensor(
      const std::string& model, const std::string& revision,
      const std::string& tensor, const std::vector<BlockRef>& blocks) {
    TensorMeta meta;
    meta.name = TensorName{RevisionName{model, revision}, tensor};
    meta.dtype = DType::kU8;
    meta.block_bytes = blocks.empty() ? 0 : blocks[0]->size();
    for (const BlockRef& block : blocks) {
      BlockId id = BlockId::Of(block->bytes());
      absl::StatusOr<bool> stored = catalog_->StageBlock(id);
      if (!stored.ok()) return stored.status();
      if (!*stored) {
        absl::Status written = catalog_->WriteStagedBlock(id, block);
        if (!written.ok()) return written;
      }
      meta.blocks.push_back(id);
      meta.byte_length += block->size();
    }
    meta.shape = {static_cast<int64_t>(meta.byte_length)};
    return catalog_->CommitTensor(meta);
  }

  TempDir dir_;
  std::unique_ptr<ColdTier> cold_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, PublishMovesLatestAndResolvesModelNames) {
  RevisionName v1{"m", "v1"}, v2{"m", "v2"};
  ASSERT_OK(catalog_->CreateRevision(v1, {{"author", "a"}}));
  EXPECT_THAT(catalog_->Resolve(RevisionName{"m", ""}),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(catalog_->PublishRevision(v1));
  ASSERT_OK_AND_ASSIGN(RevisionName latest,
                       catalog_->Resolve(RevisionName{"m", ""}));
  EXPECT_EQ(latest.revision, "v1");
  ASSERT_OK(catalog_->CreateRevision(v2, {}));
  ASSERT_OK(catalog_->PublishRevision(v2));
  ASSERT_OK_AND_ASSIGN(RevisionInfo info,
                       catalog_->GetRevision(RevisionName{"m", ""}));
  EXPECT_EQ(info.name.revision, "v2");
  EXPECT_TRUE(info.published);
  EXPECT_TRUE(info.latest);
  ASSERT_OK_AND_ASSIGN(RevisionInfo first, catalog_->GetRevision(v1));
  EXPECT_EQ(first.metadata.at("author"), "a");
  EXPECT_FALSE(first.latest);
  // Publishing again is a no-op, so a retried call succeeds.
  EXPECT_OK(catalog_->PublishRevision(v1));
  EXPECT_EQ(catalog_->Resolve(RevisionName{"m", ""})->revision, "v2");
}

TEST_F(CatalogTest, CreateRefusesAnExistingRevision) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "v1"}, {}));
  EXPECT_THAT(catalog_->CreateRevision(RevisionName{"m", "v1"}, {}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(CatalogTest, PublishedRevisionRefusesPutsAndDeletes) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(
      PutTensor("m", "v1", "t", {CopyBlock(RandomBytes(100, 1))}).status());
  ASSERT_OK(catalog_->PublishRevision(v1));
  EXPECT_THAT(PutTensor("m", "v1", "u", {CopyBlock(RandomBytes(100, 2))}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(catalog_->DeleteTensor(TensorName{v1, "t"}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(catalog_->EnsureOpenRevision(v1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(CatalogTest, DeletingLatestFallsBackToThePreviousPublish) {
  for (const char* revision : {"v1", "v2", "v3"}) {
    ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", revision}, {}));
  }
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "v1"}));
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "v2"}));
  ASSERT_OK(catalog_->DeleteRevision(RevisionName{"m", "v2"}).status());
  EXPECT_EQ(catalog_->Resolve(RevisionName{"m", ""})->revision, "v1");
  ASSERT_OK(catalog_->DeleteRevision(RevisionName{"m", "v1"}).status());
  EXPECT_THAT(catalog_->Resolve(RevisionName{"m", ""}),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(catalog_->DeleteRevision(RevisionName{"m", "v3"}).status());
  ASSERT_OK_AND_ASSIGN(std::vector<ModelInfo> models, catalog_->ListModels());
  EXPECT_TRUE(models.empty());
}

TEST_F(CatalogTest, ReferenceCountsFollowRecordsAndCollectAtZero) {
  BlockRef shared = CopyBlock(RandomBytes(4096, 1));
  BlockRef only_a = CopyBlock(RandomBytes(4096, 2));
  BlockId shared_id = BlockId::Of(shared->bytes());
  BlockId only_a_id = BlockId::Of(only_a->bytes());
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "b"}, {}));
  ASSERT_OK(PutTensor("m", "a", "t", {shared, only_a, shared}).status());
  ASSERT_OK(PutTensor("m", "b", "t", {shared}).status());
  EXPECT_EQ(*catalog_->RefCount(shared_id), 3u);
  EXPECT_EQ(*catalog_->RefCount(only_a_id), 1u);

  ASSERT_OK_AND_ASSIGN(std::vector<BlockId> collected,
                       catalog_->DeleteRevision(RevisionName{"m", "a"}));
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0], only_a_id);
  EXPECT_EQ(*catalog_->RefCount(shared_id), 1u);
  EXPECT_EQ(*catalog_->RefCount(only_a_id), 0u);
  EXPECT_FALSE(cold_->Contains(only_a_id));
  EXPECT_TRUE(cold_->Contains(shared_id));
}

TEST_F(CatalogTest, ReplacingATensorReleasesItsOldBlocks) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  BlockRef old_block = CopyBlock(RandomBytes(4096, 1));
  ASSERT_OK(PutTensor("m", "a", "t", {old_block}).status());
  ASSERT_OK_AND_ASSIGN(
      std::vector<BlockId> collected,
      PutTensor("m", "a", "t", {CopyBlock(RandomBytes(4096, 2))}));
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0], BlockId::Of(old_block->bytes()));
}

TEST_F(CatalogTest, OpenCollectsBlocksOfPutsThatNeverCommitted) {
  BlockRef block = CopyBlock(RandomBytes(8192, 5));
  BlockId id = BlockId::Of(block->bytes());
  ASSERT_OK_AND_ASSIGN(bool stored, catalog_->StageBlock(id));
  EXPECT_FALSE(stored);
  ASSERT_OK(catalog_->WriteStagedBlock(id, block));
  EXPECT_TRUE(cold_->Contains(id));
  Reopen();  // As if the process died before the commit.
  EXPECT_FALSE(cold_->Contains(id));
}

TEST_F(CatalogTest, AbortKeepsBlocksThatARecordOrAnotherPutUses) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  BlockRef committed = CopyBlock(RandomBytes(4096, 1));
  ASSERT_OK(PutTensor("m", "a", "t", {committed}).status());
  BlockId committed_id = BlockId::Of(committed->bytes());

  BlockRef fresh = CopyBlock(RandomBytes(4096, 2));
  BlockId fresh_id = BlockId::Of(fresh->bytes());
  // Two puts stage the fresh block; one aborts, the other still holds it.
  ASSERT_OK(catalog_->StageBlock(fresh_id).status());
  ASSERT_OK(catalog_->WriteStagedBlock(fresh_id, fresh));
  ASSERT_OK_AND_ASSIGN(bool seen, catalog_->StageBlock(fresh_id));
  EXPECT_TRUE(seen);  // Written by the other put.
  ASSERT_OK(catalog_->StageBlock(committed_id).status());

  ASSERT_OK_AND_ASSIGN(std::vector<BlockId> collected,
                       catalog_->AbortStaged({fresh_id, committed_id}));
  EXPECT_TRUE(collected.empty());
  EXPECT_TRUE(cold_->Contains(fresh_id));
  ASSERT_OK_AND_ASSIGN(collected, catalog_->AbortStaged({fresh_id}));
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_FALSE(cold_->Contains(fresh_id));
  EXPECT_TRUE(cold_->Contains(committed_id));
}

TEST_F(CatalogTest, ListsTensorsInPagesWithAPrefix) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  for (int i = 0; i < 25; ++i) {
    std::string name =
        (i % 2 == 0 ? "even." : "odd.") + std::to_string(100 + i);
    ASSERT_OK(
        PutTensor("m", "a", name, {CopyBlock(RandomBytes(64, i))}).status());
  }
  std::vector<std::string> seen;
  std::string token;
  for (int page = 0; page < 10; ++page) {
    ASSERT_OK_AND_ASSIGN(
        TensorPage result,
        catalog_->ListTensors(RevisionName{"m", "a"}, "even.", 5, token));
    for (const TensorMeta& tensor : result.tensors) {
      seen.push_back(tensor.name.tensor);
    }
    token = result.next_page_token;
    if (token.empty()) break;
  }
  ASSERT_EQ(seen.size(), 13u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.front(), "even.100");
  EXPECT_EQ(seen.back(), "even.124");
  EXPECT_THAT(catalog_->ListTensors(RevisionName{"m", "a"}, "", 0, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(CatalogTest, ReadersSeeAPublishAllOrNothing) {
  // v1 has tensors a0..a9; v2 has b0..b9. A reader of the model's latest
  // manifest must see exactly one of the two sets, never a mix.
  for (const char* revision : {"v1", "v2"}) {
    ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", revision}, {}));
    for (int i = 0; i < 10; ++i) {
      std::string tensor =
          std::string(revision == std::string("v1") ? "a" : "b") +
          std::to_string(i);
      ASSERT_OK(
          PutTensor("m", revision, tensor, {CopyBlock(RandomBytes(64, i))})
              .status());
    }
  }
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "v1"}));
  std::atomic<bool> done{false};
  std::atomic<int> mixed{0}, reads{0};
  std::thread reader([&] {
    for (int i = 0; i < 20000 && !done; ++i) {
      auto manifest = catalog_->GetManifest(RevisionName{"m", ""});
      if (!manifest.ok()) {
        ++mixed;
        continue;
      }
      ++reads;
      const auto& tensors = manifest->second;
      char expected = manifest->first.name.revision == "v1" ? 'a' : 'b';
      if (tensors.size() != 10) ++mixed;
      for (const TensorMeta& tensor : tensors) {
        if (tensor.name.tensor[0] != expected) ++mixed;
      }
    }
  });
  // Publish only once the reader is reading (bounded wait).
  for (int i = 0; i < 2000 && reads.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "v2"}));
  ASSERT_OK(catalog_->DeleteRevision(RevisionName{"m", "v1"}).status());
  done = true;
  reader.join();
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST_F(CatalogTest, ReopenKeepsEverything) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {{"k", "v"}}));
  BlockRef block = CopyBlock(RandomBytes(5000, 1));
  ASSERT_OK(PutTensor("m", "a", "t", {block}).status());
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "a"}));
  ASSERT_OK(catalog_->AddPinRecord(RevisionName{"m", "a"}));
  Reopen();
  ASSERT_OK_AND_ASSIGN(TensorMeta meta,
                       catalog_->GetTensor(TensorName{{"m", ""}, "t"}));
  EXPECT_EQ(meta.byte_length, 5000u);
  EXPECT_EQ(meta.name.revision.revision, "a");
  ASSERT_OK_AND_ASSIGN(BlockRef read, cold_->Read(meta.blocks[0]));
  EXPECT_EQ(read->view(), block->view());
  ASSERT_OK_AND_ASSIGN(std::vector<RevisionName> pins,
                       catalog_->ListPinRecords());
  ASSERT_EQ(pins.size(), 1u);
  EXPECT_EQ(pins[0].ToString(), "m@a");
  EXPECT_EQ(catalog_->GetRevision(RevisionName{"m", "a"})->metadata.at("k"),
            "v");
}

TEST_F(CatalogTest, MemoryOnlyReadsGiveWhatAnyReadGivesOrWouldBlock) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(
      PutTensor("m", "v1", "t", {CopyBlock(RandomBytes(5000, 1))}).status());
  ASSERT_OK(catalog_->PublishRevision(v1));
  // The revision named, and the model's latest (through Resolve).
  for (const TensorName& name :
       {TensorName{v1, "t"}, TensorName{RevisionName{"m", ""}, "t"}}) {
    ASSERT_OK_AND_ASSIGN(TensorMeta any, catalog_->GetTensor(name));
    EXPECT_EQ(any.name, (TensorName{v1, "t"}));
    EXPECT_THAT(catalog_->GetTensor(name, CatalogRead::kMemoryOnly),
                MetaOrWouldBlock(any))
        << name.ToString();
  }
  absl::StatusOr<RevisionName> latest =
      catalog_->Resolve(RevisionName{"m", ""}, CatalogRead::kMemoryOnly);
  if (latest.ok()) {
    EXPECT_EQ(*latest, v1);
  } else {
    EXPECT_THAT(latest, WouldBlock());
  }
  // A named revision needs no read at all.
  ASSERT_OK_AND_ASSIGN(RevisionName named,
                       catalog_->Resolve(v1, CatalogRead::kMemoryOnly));
  EXPECT_EQ(named, v1);
}

TEST_F(CatalogTest, MemoryOnlyReadOfAnAbsentTensorIsNotFoundOrWouldBlock) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(
      PutTensor("m", "v1", "t", {CopyBlock(RandomBytes(100, 1))}).status());
  ASSERT_OK(catalog_->PublishRevision(v1));
  const std::vector<TensorName> absent = {
      TensorName{v1, "other"},                         // No such tensor.
      TensorName{RevisionName{"m", "v9"}, "t"},        // No such revision.
      TensorName{RevisionName{"m", ""}, "other"},      // Latest lacks it.
      TensorName{RevisionName{"nomodel", ""}, "t"},    // Resolve fails.
      TensorName{RevisionName{"nomodel", "v1"}, "t"},  // No such model.
  };
  // From the memtable, then from SST files with an empty block cache.
  for (int round = 0; round < 2; ++round) {
    for (const TensorName& name : absent) {
      EXPECT_THAT(catalog_->GetTensor(name, CatalogRead::kMemoryOnly),
                  AnyOf(StatusIs(absl::StatusCode::kNotFound), WouldBlock()))
          << name.ToString() << " round " << round;
    }
    EXPECT_THAT(catalog_->Resolve(RevisionName{"nomodel", ""},
                                  CatalogRead::kMemoryOnly),
                AnyOf(StatusIs(absl::StatusCode::kNotFound), WouldBlock()))
        << "round " << round;
    Reopen();
  }
}

TEST_F(CatalogTest, MemoryOnlyReadAfterReopenWouldBlockUntilAReadCachesIt) {
  RevisionName v1{"m", "v1"};
  TensorName named{v1, "t"};
  TensorName latest{RevisionName{"m", ""}, "t"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(
      PutTensor("m", "v1", "t", {CopyBlock(RandomBytes(5000, 1))}).status());
  ASSERT_OK(catalog_->PublishRevision(v1));
  ASSERT_OK_AND_ASSIGN(TensorMeta expected, catalog_->GetTensor(named));

  // Deterministic: ColdTier's destructor flushes the memtables (and were
  // the flush lost, RocksDB's recovery writes the replayed WAL to an SST
  // file too), and the reopened database has a new, empty block cache that
  // Catalog::Open does not fill from the catalog family. A kBlockCacheTier
  // Get of a present key then needs a data block it may not read:
  // Incomplete, which the catalog reports as WouldBlockError.
  Reopen();
  EXPECT_THAT(catalog_->GetTensor(named, CatalogRead::kMemoryOnly),
              WouldBlock());
  EXPECT_THAT(catalog_->GetTensor(latest, CatalogRead::kMemoryOnly),
              WouldBlock());
  EXPECT_THAT(
      catalog_->Resolve(RevisionName{"m", ""}, CatalogRead::kMemoryOnly),
      WouldBlock());
  // Waiting was refused, not failed: the same reads are fine where they may
  // wait, and afterwards are served from the block cache.
  ASSERT_OK_AND_ASSIGN(TensorMeta any, catalog_->GetTensor(named));
  EXPECT_THAT(any, EqualsMeta(expected));
  ASSERT_OK_AND_ASSIGN(TensorMeta cached,
                       catalog_->GetTensor(named, CatalogRead::kMemoryOnly));
  EXPECT_THAT(cached, EqualsMeta(expected));

  ASSERT_OK_AND_ASSIGN(any, catalog_->GetTensor(latest));
  EXPECT_THAT(any, EqualsMeta(expected));
  ASSERT_OK_AND_ASSIGN(cached,
                       catalog_->GetTensor(latest, CatalogRead::kMemoryOnly));
  EXPECT_THAT(cached, EqualsMeta(expected));
  ASSERT_OK_AND_ASSIGN(
      RevisionName resolved,
      catalog_->Resolve(RevisionName{"m", ""}, CatalogRead::kMemoryOnly));
  EXPECT_EQ(resolved, v1);
}

}  // namespace
}  // namespace pstore
