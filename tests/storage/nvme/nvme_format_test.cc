#include "storage/nvme/nvme_format.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore::nvme_format {
namespace {

using ::pstore::testing::StatusIs;

TEST(NvmeFormatTest, RegionHeaderRoundTrips) {
  std::vector<uint8_t> page(kPageBytes, 0xAA);
  EncodeRegionHeader(RegionHeader{.region = 7,
                                  .region_bytes = uint64_t{256} << 20,
                                  .generation = 12345},
                     page);
  for (size_t i = kRegionChecksumOffset + 8; i < kPageBytes; ++i) {
    ASSERT_EQ(page[i], 0) << i;
  }
  ASSERT_OK_AND_ASSIGN(RegionHeader header, DecodeRegionHeader(page));
  EXPECT_EQ(header.version, kFormatVersion);
  EXPECT_EQ(header.region, 7u);
  EXPECT_EQ(header.region_bytes, uint64_t{256} << 20);
  EXPECT_EQ(header.generation, 12345u);
  // The magic reads "pstoreRG" on disk.
  EXPECT_EQ(std::string(page.begin(), page.begin() + 8), "pstoreRG");
}

TEST(NvmeFormatTest, EntryHeaderRoundTrips) {
  std::vector<uint8_t> page(kPageBytes);
  const BlockId id = BlockId::Of(std::vector<uint8_t>{1, 2, 3});
  EncodeEntryHeader(EntryHeader{.generation = 9, .id = id, .length = 3}, page);
  ASSERT_OK_AND_ASSIGN(EntryHeader header, DecodeEntryHeader(page));
  EXPECT_EQ(header.version, kFormatVersion);
  EXPECT_EQ(header.generation, 9u);
  EXPECT_EQ(header.id, id);
  EXPECT_EQ(header.length, 3u);
  EXPECT_EQ(std::string(page.begin(), page.begin() + 8), "pstoreEN");
  // The id is stored in its canonical form.
  std::array<uint8_t, BlockId::kSize> canonical = id.ToBytes();
  EXPECT_TRUE(
      std::equal(canonical.begin(), canonical.end(), page.begin() + 24));
}

TEST(NvmeFormatTest, EveryCoveredByteIsChecked) {
  std::vector<uint8_t> page(kPageBytes);
  EncodeEntryHeader(EntryHeader{.generation = 1, .length = 100}, page);
  for (size_t i = 0; i < kEntryChecksumOffset + 8; ++i) {
    std::vector<uint8_t> bad = page;
    bad[i] ^= 0x01;
    EXPECT_THAT(DecodeEntryHeader(bad), StatusIs(absl::StatusCode::kDataLoss))
        << i;
  }
  EncodeRegionHeader(RegionHeader{.region = 1, .generation = 1}, page);
  for (size_t i = 0; i < kRegionChecksumOffset + 8; ++i) {
    std::vector<uint8_t> bad = page;
    bad[i] ^= 0x01;
    EXPECT_THAT(DecodeRegionHeader(bad), StatusIs(absl::StatusCode::kDataLoss))
        << i;
  }
}

TEST(NvmeFormatTest, ZeroPageIsNotAHeader) {
  std::vector<uint8_t> page(kPageBytes, 0);
  EXPECT_THAT(DecodeRegionHeader(page), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeEntryHeader(page), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(NvmeFormatTest, EntryBytesPadsDataToPages) {
  EXPECT_EQ(EntryBytes(0), 4096u);
  EXPECT_EQ(EntryBytes(1), 8192u);
  EXPECT_EQ(EntryBytes(4096), 8192u);
  EXPECT_EQ(EntryBytes(4097), 12288u);
  EXPECT_EQ(EntryBytes(uint64_t{4} << 20), (uint64_t{4} << 20) + 4096);
}

}  // namespace
}  // namespace pstore::nvme_format
