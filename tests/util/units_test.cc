#include "util/units.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;

TEST(ParseByteSizeTest, AcceptsPlainNumbersAndBinaryUnits) {
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("512B"), 512u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 64 * kKiB);
  EXPECT_EQ(*ParseByteSize("4MiB"), 4 * kMiB);
  EXPECT_EQ(*ParseByteSize("4mib"), 4 * kMiB);
  EXPECT_EQ(*ParseByteSize("2 GiB"), 2 * kGiB);
  EXPECT_EQ(*ParseByteSize("1TiB"), kTiB);
  EXPECT_EQ(*ParseByteSize("3G"), 3 * kGiB);
  EXPECT_EQ(*ParseByteSize("1.5GiB"), 3 * kGiB / 2);
}

TEST(ParseByteSizeTest, RefusesGarbageNegativeAndOverflow) {
  for (const char* bad : {"", "MiB", "-1", "-4MiB", "+4", "4XB", "four", "1.5",
                          "99999999999TiB", "nanGiB", "1e400GiB"}) {
    EXPECT_THAT(ParseByteSize(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(FormatBytesTest, PicksTheLargestUnit) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(4 * kMiB), "4 MiB");
  EXPECT_EQ(FormatBytes(3 * kGiB / 2), "1.50 GiB");
}

}  // namespace
}  // namespace pstore
