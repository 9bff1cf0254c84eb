#include "storage/cold/cold_tier.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

absl::StatusOr<std::unique_ptr<ColdTier>> OpenCold(const TempDir& dir,
                                                   bool blob_files = false) {
  ColdTierOptions options;
  options.dir = dir.Sub("cold");
  options.blob_files = blob_files;
  return ColdTier::Open(std::move(options));
}

TEST(ColdTierTest, ReopenKeepsEveryBlock) {
  TempDir dir;
  std::vector<std::pair<BlockId, std::vector<uint8_t>>> blocks;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ColdTier> cold, OpenCold(dir));
    for (int i = 0; i < 20; ++i) {
      std::vector<uint8_t> bytes = RandomBytes(1000 + 50000 * i, i);
      BlockId id = BlockId::Of(bytes);
      ASSERT_OK(cold->Write(id, CopyBlock(bytes)));
      blocks.emplace_back(id, std::move(bytes));
    }
    ASSERT_OK(cold->Sync());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ColdTier> cold, OpenCold(dir));
  for (const auto& [id, bytes] : blocks) {
    ASSERT_OK_AND_ASSIGN(BlockRef block, cold->Read(id));
    EXPECT_EQ(block->view(), std::string(bytes.begin(), bytes.end()));
  }
}

TEST(ColdTierTest, BlobFilesHoldTheSameBytes) {
  TempDir dir;
  ColdTierOptions options;
  options.dir = dir.Sub("cold");
  options.blob_files = true;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<ColdDatabase> database,
                       ColdDatabase::Open(options));
  ColdTier cold(database);
  std::vector<uint8_t> bytes = RandomBytes(4 << 20, 3);
  BlockId id = BlockId::Of(bytes);
  ASSERT_OK(cold.Write(id, CopyBlock(bytes)));
  // Blobs are written at flush: read back from the blob file.
  ASSERT_TRUE(database->db()
                  ->Flush(rocksdb::FlushOptions(),
                          database->family(ColdDatabase::kBlocks))
                  .ok());
  ASSERT_OK_AND_ASSIGN(BlockRef block, cold.Read(id));
  EXPECT_EQ(block->view(), std::string(bytes.begin(), bytes.end()));
}

TEST(ColdTierTest, AValueThatFailsItsHashIsDataLoss) {
  TempDir dir;
  ColdTierOptions options;
  options.dir = dir.Sub("cold");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<ColdDatabase> database,
                       ColdDatabase::Open(options));
  ColdTier cold(database);
  std::vector<uint8_t> bytes = RandomBytes(8192, 1);
  BlockId id = BlockId::Of(bytes);
  bytes[100] ^= 1;  // Stored under the id of other bytes: a corrupt value.
  ASSERT_TRUE(database->db()
                  ->Put(rocksdb::WriteOptions(),
                        database->family(ColdDatabase::kBlocks), BlockKey(id),
                        rocksdb::Slice(reinterpret_cast<char*>(bytes.data()),
                                       bytes.size()))
                  .ok());
  EXPECT_THAT(cold.Read(id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(cold.Stats().checksum_failures, 1u);
}

TEST(ColdTierTest, RocksStatusesMapToCanonicalCodes) {
  EXPECT_THAT(RocksToStatus(rocksdb::Status::NotFound(), "x"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(RocksToStatus(rocksdb::Status::Corruption(), "x"),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(RocksToStatus(rocksdb::Status::NoSpace(), "x"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(RocksToStatus(rocksdb::Status::IOError(), "x"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(RocksToStatus(rocksdb::Status::InvalidArgument(), "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(RocksToStatus(rocksdb::Status::OK(), "x"));
}

TEST(ColdTierTest, RefusesAMissingDirectoryOption) {
  EXPECT_THAT(ColdTier::Open(ColdTierOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace pstore
