// Block files: the embedded backend's durable tier, one file per block,
// and stores written before it (blocks in RocksDB) opening and serving
// unchanged.

#include "storage/cold/block_files.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/tiered_store.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_puts.h"
#include "tests/testing/temp_dir.h"
#include "util/file_io.h"

namespace pstore {
namespace {

using ::pstore::testing::PutBytes;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

constexpr uint64_t kMiB = uint64_t{1} << 20;

absl::StatusOr<std::unique_ptr<BlockFileTier>> OpenTier(
    const std::string& dir) {
  ColdTierOptions options;
  options.dir = dir;
  options.sync_commits = false;
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<ColdDatabase> database,
                          ColdDatabase::Open(options));
  return BlockFileTier::Open(std::move(database));
}

std::string AsString(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TEST(BlockFileTierTest, EachBlockIsAFileNamedByItsId) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BlockFileTier> tier,
                       OpenTier(dir.Sub("cold")));
  std::vector<BlockId> ids;
  for (int i = 0; i < 5; ++i) {
    std::vector<uint8_t> bytes = RandomBytes(100000 + 4096 * i, i);
    BlockId id = BlockId::Of(bytes);
    ASSERT_OK(tier->Write(id, CopyBlock(bytes)));
    ASSERT_OK(tier->Write(id, CopyBlock(bytes)));  // Stored: a no-op.
    ASSERT_OK_AND_ASSIGN(std::string file, ReadFileToString(tier->PathOf(id)));
    EXPECT_TRUE(file == AsString(bytes));
    EXPECT_EQ(tier->PathOf(id), dir.Sub("cold") + "/blocks/" +
                                    id.ToHex().substr(0, 2) + "/" + id.ToHex());
    ids.push_back(id);
  }
  EXPECT_EQ(tier->Stats().blocks, 5u);
  EXPECT_EQ(tier->Stats().writes, 5u);
  ASSERT_OK(tier->Erase(ids[0]));
  EXPECT_FALSE(std::filesystem::exists(tier->PathOf(ids[0])));
  EXPECT_EQ(tier->Stats().blocks, 4u);
  EXPECT_FALSE(tier->has_legacy_blocks());
}

TEST(BlockFileTierTest, OpenCountsBlocksAndRemovesWritesCutShort) {
  TempDir dir;
  std::vector<uint8_t> bytes = RandomBytes(65536, 1);
  BlockId id = BlockId::Of(bytes);
  std::string stray;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<BlockFileTier> tier,
                         OpenTier(dir.Sub("cold")));
    ASSERT_OK(tier->Write(id, CopyBlock(bytes)));
    stray = tier->PathOf(BlockId::Of(RandomBytes(10, 2))) + ".tmp.7";
    std::ofstream(stray) << "half a block";
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BlockFileTier> tier,
                       OpenTier(dir.Sub("cold")));
  EXPECT_FALSE(std::filesystem::exists(stray));
  EXPECT_EQ(tier->Stats().blocks, 1u);
  EXPECT_EQ(tier->Stats().used_bytes, 65536u);
  ASSERT_OK_AND_ASSIGN(BlockRef read, tier->Read(id));
  EXPECT_EQ(read->view(), AsString(bytes));
}

TEST(BlockFileTierTest, ADamagedOrCutFileIsDataLoss) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BlockFileTier> tier,
                       OpenTier(dir.Sub("cold")));
  std::vector<uint8_t> a = RandomBytes(1 * kMiB, 1);
  std::vector<uint8_t> b = RandomBytes(1 * kMiB, 2);
  BlockId a_id = BlockId::Of(a), b_id = BlockId::Of(b);
  ASSERT_OK(tier->Write(a_id, CopyBlock(a)));
  ASSERT_OK(tier->Write(b_id, CopyBlock(b)));
  a[12345] ^= 1;
  std::ofstream(tier->PathOf(a_id), std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(a.data()), a.size());
  std::filesystem::resize_file(tier->PathOf(b_id), 4096);
  EXPECT_THAT(tier->Read(a_id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(tier->Read(b_id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(tier->Stats().checksum_failures, 2u);
  EXPECT_THAT(tier->Read(BlockId::Of(RandomBytes(10, 3))),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(BlockFileTierTest, ReadsWhereTheFilesystemRefusesDirectIo) {
  if (!std::filesystem::is_directory("/dev/shm")) {
    GTEST_SKIP() << "no /dev/shm (tmpfs) to refuse O_DIRECT";
  }
  TempDir dir("/dev/shm");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BlockFileTier> tier,
                       OpenTier(dir.Sub("cold")));
  std::vector<uint8_t> bytes = RandomBytes(3 * kMiB + 17, 4);
  BlockId id = BlockId::Of(bytes);
  ASSERT_OK(tier->Write(id, CopyBlock(bytes)));
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(BlockRef read, tier->Read(id));
    EXPECT_EQ(read->view(), AsString(bytes));
  }
}

TEST(BlockFileTierTest, AStoreWrittenBeforeBlockFilesOpensAndServes) {
  TempDir dir;
  TieredStoreOptions options;
  options.cold_dir = dir.Sub("cold");
  options.dram_bytes = 64 * kMiB;
  options.block_bytes = 1 * kMiB;
  options.sync_commits = false;
  options.cold_min_free_bytes = 16 * kMiB;
  std::vector<uint8_t> old_a = RandomBytes(3 * kMiB, 5);
  std::vector<uint8_t> old_b = RandomBytes(2 * kMiB + 99, 6);
  {
    // The layout before block files: every block in RocksDB.
    TieredStoreOptions before = options;
    before.cold_block_files = false;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TieredStore> store,
                         TieredStore::Open(before));
    ASSERT_OK(PutBytes(*store, "old@v1/a", old_a).status());
    ASSERT_OK(PutBytes(*store, "old@v2/b", old_b).status());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TieredStore> store,
                       TieredStore::Open(options));
  EXPECT_EQ(*store->ReadTensor(*ParseTensorName("old@v1/a")), AsString(old_a));
  std::vector<uint8_t> fresh = RandomBytes(2 * kMiB, 7);
  ASSERT_OK_AND_ASSIGN(TensorMeta meta, PutBytes(*store, "new@v1/c", fresh));
  ASSERT_OK(store->DropCache(TierKind::kDram));
  EXPECT_EQ(*store->ReadTensor(*ParseTensorName("old@v2/b")), AsString(old_b));
  EXPECT_EQ(*store->ReadTensor(*ParseTensorName("new@v1/c")), AsString(fresh));
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("cold") + "/blocks/" +
                                      meta.blocks[0].ToHex().substr(0, 2) +
                                      "/" + meta.blocks[0].ToHex()));
  // Deleting an old revision erases its blocks from RocksDB.
  ASSERT_OK_AND_ASSIGN(TensorMeta old,
                       store->StatTensor(*ParseTensorName("old@v1/a")));
  ASSERT_OK(store->DeleteRevision(RevisionName{"old", "v1"}));
  for (const BlockId& id : old.blocks) {
    EXPECT_FALSE(store->cold()->Contains(id));
  }
  EXPECT_EQ(*store->ReadTensor(*ParseTensorName("old@v2/b")), AsString(old_b));
}

}  // namespace
}  // namespace pstore
