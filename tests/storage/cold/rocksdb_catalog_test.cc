// What the RocksDB catalog does beyond the Catalog contract (which
// tests/storage/catalog_conformance_test.cc checks): memory-only reads are
// reads of RocksDB's memtables and block cache, and records damaged on disk
// are DataLoss wherever they are read.

#include "storage/cold/rocksdb_catalog.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/cold/catalog_codec.h"
#include "storage/cold/cold_database.h"
#include "tests/testing/catalog_matchers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::EqualsMeta;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::pstore::testing::WouldBlock;
using ::testing::HasSubstr;

class RocksDbCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    catalog_.reset();
    database_.reset();
    ColdTierOptions options;
    options.dir = dir_.Sub("cold");
    options.sync_commits = false;
    ASSERT_OK_AND_ASSIGN(database_, ColdDatabase::Open(options));
    catalog_ = std::make_unique<RocksDbCatalog>(database_);
  }

  absl::Status CommitOneBlockTensor(const RevisionName& revision,
                                    const std::string& tensor) {
    TensorMeta meta;
    meta.name = TensorName{revision, tensor};
    meta.dtype = DType::kU8;
    meta.block_bytes = 4096;
    meta.byte_length = 4096;
    meta.shape = {4096};
    meta.blocks = {BlockId::Of(std::span<const uint8_t>())};
    return catalog_->CommitTensor(meta).status();
  }

  // Overwrites catalog key `key` with bytes that are no record.
  void Corrupt(const std::string& key) {
    ASSERT_TRUE(database_->db()
                    ->Put(rocksdb::WriteOptions(),
                          database_->family(ColdDatabase::kCatalog), key,
                          "\xff\xff\xff not a record")
                    .ok());
  }

  TempDir dir_;
  std::shared_ptr<ColdDatabase> database_;
  std::unique_ptr<RocksDbCatalog> catalog_;
};

TEST_F(RocksDbCatalogTest,
       MemoryOnlyReadAfterReopenWouldBlockUntilAReadCachesIt) {
  RevisionName v1{"m", "v1"};
  TensorName named{v1, "t"};
  TensorName latest{RevisionName{"m", ""}, "t"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(CommitOneBlockTensor(v1, "t"));
  ASSERT_OK(catalog_->PublishRevision(v1));
  ASSERT_OK_AND_ASSIGN(TensorMeta expected, catalog_->GetTensor(named));

  // Deterministic: ColdDatabase's destructor flushes the memtables (and
  // were the flush lost, RocksDB's recovery writes the replayed WAL to an
  // SST file too), and the reopened database has a new, empty block cache.
  // A kBlockCacheTier Get of a present key then needs a data block it may
  // not read: Incomplete, which the catalog reports as WouldBlockError.
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

TEST_F(RocksDbCatalogTest, ACorruptModelRecordIsDataLossWhereverItIsRead) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(CommitOneBlockTensor(v1, "t"));
  ASSERT_OK(catalog_->PublishRevision(v1));
  ASSERT_OK(catalog_->CreateRevision(RevisionName{"m", "v2"}, {}));
  Corrupt(std::string("M\0m", 3));

  auto data_loss = StatusIs(absl::StatusCode::kDataLoss, HasSubstr("model m"));
  // Named revisions read the model record for `latest`; unnamed ones
  // resolve through it. One rule for both: DataLoss.
  EXPECT_THAT(catalog_->GetRevision(v1), data_loss);
  EXPECT_THAT(catalog_->GetRevision(RevisionName{"m", ""}), data_loss);
  EXPECT_THAT(catalog_->GetManifest(v1), data_loss);
  EXPECT_THAT(catalog_->GetManifest(RevisionName{"m", ""}), data_loss);
  EXPECT_THAT(catalog_->Resolve(RevisionName{"m", ""}), data_loss);
  EXPECT_THAT(catalog_->GetTensor(TensorName{{"m", ""}, "t"}), data_loss);
  EXPECT_THAT(catalog_->ListTensors(RevisionName{"m", ""}, "", 10, ""),
              data_loss);
  EXPECT_THAT(catalog_->ListModels(), data_loss);
  EXPECT_THAT(catalog_->PublishRevision(RevisionName{"m", "v2"}), data_loss);
  EXPECT_THAT(catalog_->CreateRevision(RevisionName{"m", "v3"}, {}), data_loss);
  EXPECT_THAT(catalog_->DeleteRevision(RevisionName{"m", "v2"}), data_loss);
  // Nothing was changed by the refused writes.
  ASSERT_OK_AND_ASSIGN(
      TensorPage page,
      catalog_->ListTensors(RevisionName{"m", "v1"}, "", 10, ""));
  EXPECT_EQ(page.tensors.size(), 1u);
}

TEST_F(RocksDbCatalogTest, ACorruptRevisionOrTensorRecordIsDataLoss) {
  RevisionName v1{"m", "v1"}, v2{"m", "v2"};
  ASSERT_OK(catalog_->CreateRevision(v1, {}));
  ASSERT_OK(catalog_->CreateRevision(v2, {}));
  ASSERT_OK(CommitOneBlockTensor(v2, "t"));
  Corrupt(std::string("R\0m\0v1", 6));
  EXPECT_THAT(catalog_->GetRevision(v1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("m@v1")));
  // Deleting another revision reads every revision of the model to find
  // the next latest: it refuses rather than guess.
  EXPECT_THAT(catalog_->DeleteRevision(v2),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("m@v1")));
  Corrupt(std::string("T\0m\0v2\0t", 8));
  EXPECT_THAT(catalog_->GetTensor(TensorName{v2, "t"}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("m@v2/t")));
  EXPECT_THAT(catalog_->GetManifest(v2),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("m@v2/t")));
}

// A tensor record as every commit before kinds wrote it (fields 1-7, bytes
// spelled out) reads as a tensor; a file's record reads as a file; a kind
// this build does not know is a corrupt record, not a tensor.
TEST(CatalogCodecTest, RecordsFromBeforeKindsAreTensors) {
  const std::string block(16, '\x11');
  std::string old_record;
  old_record += std::string("\x08\x0b", 2);              // dtype 11 (U8)
  old_record += std::string("\x12\x01\x10", 3);          // shape [16]
  old_record += std::string("\x18\x10", 2);              // byte_length 16
  old_record += std::string("\x20\x2a", 2);              // xxh3_64 42
  old_record += std::string("\x28\x80\x80\x80\x02", 5);  // block_bytes 4 MiB
  old_record += std::string("\x32\x10", 2) + block;      // one block id
  old_record += std::string("\x38\x07", 2);              // created 7
  const TensorName name{{"m", "v1"}, "t"};
  ASSERT_OK_AND_ASSIGN(TensorMeta meta, DecodeTensor(name, old_record));
  EXPECT_EQ(meta.kind, EntryKind::kTensor);
  EXPECT_EQ(meta.dtype, DType::kU8);
  EXPECT_EQ(meta.byte_length, 16u);
  EXPECT_EQ(meta.block_bytes, uint64_t{4} << 20);
  ASSERT_EQ(meta.blocks.size(), 1u);
  EXPECT_EQ(meta.blocks[0].ToByteString(), block);

  meta.kind = EntryKind::kFile;
  const std::string file_record = EncodeTensor(meta);
  EXPECT_EQ(file_record.substr(0, old_record.size()), old_record);
  ASSERT_OK_AND_ASSIGN(TensorMeta file, DecodeTensor(name, file_record));
  EXPECT_EQ(file.kind, EntryKind::kFile);

  EXPECT_THAT(DecodeTensor(name, old_record + std::string("\x40\x09", 2)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("kind")));
}

}  // namespace
}  // namespace pstore
