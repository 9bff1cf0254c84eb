// One suite that every Catalog implementation passes: the contract of
// storage/catalog.h, run against each implementation on its real store
// (RocksDB in a temporary directory). Implementation-specific behaviour
// (what "memory" is for kMemoryOnly reads, how corruption is injected) is
// tested beside each implementation.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/catalog.h"
#include "storage/cold/rocksdb_backend.h"
#include "storage/rados/rados_catalog.h"
#include "storage/rados/rados_pool.h"
#include "tests/testing/catalog_matchers.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_ceph.h"

namespace pstore {
namespace {

using ::pstore::testing::MetaOrWouldBlock;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::pstore::testing::WouldBlock;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

struct CatalogFactory {
  std::string name;
  // Counts block references (Catalog::CountsReferences).
  bool counts_references;
  // Needs the suite's Ceph.
  bool ceph;
  // Opens the catalog kept under `dir`, creating it if new.
  std::function<absl::StatusOr<std::unique_ptr<Catalog>>(const TempDir& dir)>
      open;
};

std::ostream& operator<<(std::ostream& os, const CatalogFactory& factory) {
  return os << factory.name;
}

std::vector<CatalogFactory> Factories() {
  return {
      {"rocksdb", true, false,
       [](const TempDir& dir) -> absl::StatusOr<std::unique_ptr<Catalog>> {
         ColdTierOptions options;
         options.dir = dir.Sub("cold");
         options.sync_commits = false;
         PSTORE_ASSIGN_OR_RETURN(Backend backend,
                                 OpenRocksDbBackend(std::move(options)));
         return std::move(backend.catalog);
       }},
      {"rados", false, true,
       [](const TempDir& dir) -> absl::StatusOr<std::unique_ptr<Catalog>> {
         // One namespace per test directory: a reopen finds the catalog.
         RadosOptions options = ::pstore::testing::TestRadosOptions();
         options.name_space =
             absl::StrCat("catalog-", dir.path().filename().string());
         PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<RadosPool> pool,
                                 RadosPool::Connect(std::move(options)));
         return std::unique_ptr<Catalog>(
             std::make_unique<RadosCatalog>(std::move(pool)));
       }},
  };
}

std::vector<CatalogFactory> CountingFactories() {
  std::vector<CatalogFactory> counting;
  for (CatalogFactory& factory : Factories()) {
    if (factory.counts_references) counting.push_back(std::move(factory));
  }
  return counting;
}

// The id of some made-up block number `n`.
BlockId Block(int n) { return BlockId::Of(RandomBytes(64, 1000 + n)); }

class CatalogConformanceTest : public ::testing::TestWithParam<CatalogFactory> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam().ceph && !::pstore::testing::TestCephConfigured(&why)) {
      GTEST_SKIP() << why;
    }
    Reopen();
  }

  bool counts() const { return GetParam().counts_references; }

  // Closes and opens the catalog again, as a restart does.
  void Reopen() {
    catalog_.reset();
    ASSERT_OK_AND_ASSIGN(catalog_, GetParam().open(dir_));
  }

  // Commits tensor MODEL@REV/TENSOR naming `blocks` (of 4 KiB each, the
  // last too). Returns the blocks whose count reached zero.
  absl::StatusOr<std::vector<BlockId>> Commit(const std::string& model,
                                              const std::string& revision,
                                              const std::string& tensor,
                                              const std::vector<BlockId>& ids) {
    TensorMeta meta;
    meta.name = TensorName{RevisionName{model, revision}, tensor};
    meta.dtype = DType::kU8;
    meta.block_bytes = ids.empty() ? 0 : 4096;
    meta.blocks = ids;
    meta.byte_length = 4096 * ids.size();
    meta.shape = {static_cast<int64_t>(meta.byte_length)};
    meta.xxh3_64 = 42;
    return catalog_->CommitTensor(meta);
  }

  TempDir dir_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_P(CatalogConformanceTest, PublishMovesLatestAndResolvesModelNames) {
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
  EXPECT_THAT(catalog_->PublishRevision(RevisionName{"m", "v9"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(CatalogConformanceTest, CreateRefusesAnExistingRevision) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "v1"}, {}));
  EXPECT_THAT(catalog_->CreateRevision(RevisionName{"m", "v1"}, {}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_OK(catalog_->EnsureOpenRevision(RevisionName{"m", "v1"}));
  EXPECT_OK(catalog_->EnsureOpenRevision(RevisionName{"m", "v2"}));
  EXPECT_OK(catalog_->GetRevision(RevisionName{"m", "v2"}).status());
}

TEST_P(CatalogConformanceTest, PublishedRevisionRefusesPutsAndDeletes) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(Commit("m", "v1", "t", {Block(1)}).status());
  ASSERT_OK(catalog_->PublishRevision(v1));
  EXPECT_THAT(Commit("m", "v1", "u", {Block(2)}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(catalog_->DeleteTensor(TensorName{v1, "t"}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(catalog_->EnsureOpenRevision(v1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  if (counts()) {
    EXPECT_EQ(*catalog_->RefCount(Block(2)), 0u);
  }
}

TEST_P(CatalogConformanceTest, CommitIntoAnAbsentRevisionIsNotFound) {
  EXPECT_THAT(Commit("m", "gone", "t", {Block(1)}),
              StatusIs(absl::StatusCode::kNotFound));
  if (counts()) {
    EXPECT_EQ(*catalog_->RefCount(Block(1)), 0u);
  }
}

TEST_P(CatalogConformanceTest, DeletingLatestFallsBackToThePreviousPublish) {
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
  EXPECT_THAT(catalog_->DeleteRevision(RevisionName{"m", "v3"}),
              StatusIs(absl::StatusCode::kNotFound));
}

// The reference counts and staged marks of catalogs that keep them.
using CountingCatalogTest = CatalogConformanceTest;

TEST_P(CountingCatalogTest, ReferenceCountsFollowRecordsAndMarkZeroStaged) {
  BlockId shared = Block(1), only_a = Block(2);
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "b"}, {}));
  ASSERT_OK(Commit("m", "a", "t", {shared, only_a, shared}).status());
  ASSERT_OK(Commit("m", "b", "t", {shared}).status());
  EXPECT_EQ(*catalog_->RefCount(shared), 3u);
  EXPECT_EQ(*catalog_->RefCount(only_a), 1u);
  EXPECT_THAT(*catalog_->ListStaged(), IsEmpty());

  ASSERT_OK_AND_ASSIGN(std::vector<BlockId> unreferenced,
                       catalog_->DeleteRevision(RevisionName{"m", "a"}));
  EXPECT_THAT(unreferenced, ElementsAre(only_a));
  EXPECT_EQ(*catalog_->RefCount(shared), 1u);
  EXPECT_EQ(*catalog_->RefCount(only_a), 0u);
  // Marked staged in the same write, so a crash before the block is erased
  // leaves a mark the next open finds.
  EXPECT_THAT(*catalog_->ListStaged(), ElementsAre(only_a));
  ASSERT_OK(catalog_->ClearStaged(unreferenced));
  EXPECT_THAT(*catalog_->ListStaged(), IsEmpty());

  ASSERT_OK_AND_ASSIGN(unreferenced,
                       catalog_->DeleteTensor(TensorName{{"m", "b"}, "t"}));
  EXPECT_THAT(unreferenced, ElementsAre(shared));
  EXPECT_THAT(catalog_->DeleteTensor(TensorName{{"m", "b"}, "t"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(CountingCatalogTest, ReplacingATensorReleasesItsOldBlocks) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  ASSERT_OK(Commit("m", "a", "t", {Block(1), Block(2)}).status());
  ASSERT_OK_AND_ASSIGN(std::vector<BlockId> unreferenced,
                       Commit("m", "a", "t", {Block(2), Block(3)}));
  EXPECT_THAT(unreferenced, ElementsAre(Block(1)));
  EXPECT_EQ(*catalog_->RefCount(Block(2)), 1u);
  EXPECT_EQ(*catalog_->RefCount(Block(3)), 1u);
}

TEST_P(CountingCatalogTest, CommitClearsTheStagedMarksOfItsBlocks) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  ASSERT_OK(catalog_->MarkStaged(Block(1)));
  ASSERT_OK(catalog_->MarkStaged(Block(2)));
  ASSERT_OK(catalog_->MarkStaged(Block(1)));  // Twice is once.
  EXPECT_THAT(*catalog_->ListStaged(),
              UnorderedElementsAre(Block(1), Block(2)));
  ASSERT_OK(Commit("m", "a", "t", {Block(1)}).status());
  EXPECT_THAT(*catalog_->ListStaged(), ElementsAre(Block(2)));
  // Clearing absent marks is fine.
  ASSERT_OK(catalog_->ClearStaged(std::vector<BlockId>{Block(2), Block(9)}));
  EXPECT_THAT(*catalog_->ListStaged(), IsEmpty());
}

TEST_P(CatalogConformanceTest, ListsTensorsInPagesWithAPrefix) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  for (int i = 0; i < 25; ++i) {
    std::string name = absl::StrCat(i % 2 == 0 ? "even." : "odd.", 100 + i);
    ASSERT_OK(Commit("m", "a", name, {Block(i)}).status());
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
  EXPECT_THAT(
      catalog_->ListTensors(RevisionName{"m", "a"}, "even.", 5, "odd.101"),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(catalog_->ListTensors(RevisionName{"m", "zz"}, "", 5, ""),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(CatalogConformanceTest, ReadersSeeAPublishAllOrNothing) {
  // v1 has tensors a0..a9; v2 has b0..b9. A reader of the model's latest
  // manifest must see exactly one of the two sets, never a mix.
  for (const char* revision : {"v1", "v2"}) {
    ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", revision}, {}));
    for (int i = 0; i < 10; ++i) {
      std::string tensor =
          absl::StrCat(revision == std::string("v1") ? "a" : "b", i);
      ASSERT_OK(Commit("m", revision, tensor, {Block(i)}).status());
    }
  }
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "v1"}));
  std::atomic<bool> done{false};
  std::atomic<int> mixed{0}, reads{0};
  std::thread reader([&] {
    for (int i = 0; i < 20000 && !done; ++i) {
      absl::StatusOr<Manifest> manifest =
          catalog_->GetManifest(RevisionName{"m", ""});
      if (!manifest.ok()) {
        ++mixed;
        continue;
      }
      ++reads;
      char expected = manifest->revision.name.revision == "v1" ? 'a' : 'b';
      if (manifest->tensors.size() != 10) ++mixed;
      for (const TensorMeta& tensor : manifest->tensors) {
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

TEST_P(CatalogConformanceTest, TheLatestRevisionResolvesWhereItIsRead) {
  // Latest moves on while readers ask for the model's latest revision; each
  // answer must be a revision that was latest, read whole: never NotFound
  // for a revision resolved before a delete and read after it.
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "r0"}, {}));
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "r0"}));
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, not_latest{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 50000 && !done; ++i) {
        absl::StatusOr<RevisionInfo> info =
            catalog_->GetRevision(RevisionName{"m", ""});
        ++reads;
        if (!info.ok()) {
          ++failures;
        } else if (!info->latest || !info->published) {
          ++not_latest;
        }
      }
    });
  }
  for (int i = 1; i <= 150; ++i) {
    RevisionName next{"m", absl::StrCat("r", i)};
    ASSERT_OK(catalog_->CreateRevision(next, {}));
    ASSERT_OK(catalog_->PublishRevision(next));
    ASSERT_OK(
        catalog_->DeleteRevision(RevisionName{"m", absl::StrCat("r", i - 1)})
            .status());
  }
  done = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(not_latest.load(), 0) << "of " << reads.load() << " reads";
}

TEST_P(CatalogConformanceTest, PinRecordsNeedTheirRevisionAndGoWithIt) {
  RevisionName a{"m", "a"};
  EXPECT_THAT(catalog_->AddPinRecord(a), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(catalog_->CreateRevision(a, {}));
  ASSERT_OK(catalog_->AddPinRecord(a));
  ASSERT_OK_AND_ASSIGN(std::vector<RevisionName> pins,
                       catalog_->ListPinRecords());
  EXPECT_THAT(pins, ElementsAre(a));
  ASSERT_OK(catalog_->DeleteRevision(a).status());
  EXPECT_THAT(*catalog_->ListPinRecords(), IsEmpty());
  // Removing a record that is not there is fine.
  EXPECT_OK(catalog_->RemovePinRecord(a));
}

// Files and shard headers of a model directory keep their kind, read back
// at once and after a restart; records without one are tensors.
TEST_P(CatalogConformanceTest, EntriesKeepTheirKind) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {}));
  ASSERT_OK(Commit("m", "a", "w", {Block(1)}).status());
  for (auto [name, kind] :
       {std::pair{"config.json", EntryKind::kFile},
        std::pair{"model.safetensors", EntryKind::kShardHeader}}) {
    TensorMeta meta;
    meta.name = TensorName{RevisionName{"m", "a"}, name};
    meta.kind = kind;
    meta.dtype = DType::kU8;
    meta.block_bytes = 4096;
    meta.blocks = {Block(2)};
    meta.byte_length = 4096;
    meta.shape = {4096};
    ASSERT_OK(catalog_->CommitTensor(meta).status());
  }
  for (int pass = 0; pass < 2; ++pass) {
    EXPECT_EQ(catalog_->GetTensor(TensorName{{"m", "a"}, "w"})->kind,
              EntryKind::kTensor);
    EXPECT_EQ(catalog_->GetTensor(TensorName{{"m", "a"}, "config.json"})->kind,
              EntryKind::kFile);
    EXPECT_EQ(
        catalog_->GetTensor(TensorName{{"m", "a"}, "model.safetensors"})->kind,
        EntryKind::kShardHeader);
    Reopen();
  }
}

TEST_P(CatalogConformanceTest, ReopenKeepsEverything) {
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "a"}, {{"k", "v"}}));
  ASSERT_OK(Commit("m", "a", "t", {Block(1), Block(2)}).status());
  ASSERT_OK(catalog_->PublishRevision(RevisionName{"m", "a"}));
  ASSERT_OK(catalog_->AddPinRecord(RevisionName{"m", "a"}));
  if (counts()) {
    ASSERT_OK(catalog_->MarkStaged(Block(7)));
  }
  ASSERT_OK_AND_ASSIGN(TensorMeta before,
                       catalog_->GetTensor(TensorName{{"m", "a"}, "t"}));
  Reopen();
  ASSERT_OK_AND_ASSIGN(TensorMeta meta,
                       catalog_->GetTensor(TensorName{{"m", ""}, "t"}));
  EXPECT_THAT(meta, ::pstore::testing::EqualsMeta(before));
  if (counts()) {
    EXPECT_EQ(*catalog_->RefCount(Block(1)), 1u);
    EXPECT_THAT(*catalog_->ListStaged(), ElementsAre(Block(7)));
  }
  EXPECT_THAT(*catalog_->ListPinRecords(), ElementsAre(RevisionName{"m", "a"}));
  EXPECT_EQ(catalog_->GetRevision(RevisionName{"m", "a"})->metadata.at("k"),
            "v");
}

TEST_P(CatalogConformanceTest,
       MemoryOnlyReadsGiveWhatAnyReadGivesOrWouldBlock) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(Commit("m", "v1", "t", {Block(1)}).status());
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

TEST_P(CatalogConformanceTest,
       MemoryOnlyReadOfAnAbsentTensorIsNotFoundOrWouldBlock) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(Commit("m", "v1", "t", {Block(1)}).status());
  ASSERT_OK(catalog_->PublishRevision(v1));
  const std::vector<TensorName> absent = {
      TensorName{v1, "other"},                         // No such tensor.
      TensorName{RevisionName{"m", "v9"}, "t"},        // No such revision.
      TensorName{RevisionName{"m", ""}, "other"},      // Latest lacks it.
      TensorName{RevisionName{"nomodel", ""}, "t"},    // Resolve fails.
      TensorName{RevisionName{"nomodel", "v1"}, "t"},  // No such model.
  };
  // Fresh, then after a reopen.
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

INSTANTIATE_TEST_SUITE_P(
    AllCatalogs, CatalogConformanceTest, ::testing::ValuesIn(Factories()),
    [](const ::testing::TestParamInfo<CatalogFactory>& info) {
      return info.param.name;
    });
INSTANTIATE_TEST_SUITE_P(
    CountingCatalogs, CountingCatalogTest,
    ::testing::ValuesIn(CountingFactories()),
    [](const ::testing::TestParamInfo<CatalogFactory>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace pstore
