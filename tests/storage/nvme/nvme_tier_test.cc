#include "storage/nvme/nvme_tier.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/nvme/device.h"
#include "storage/nvme/nvme_format.h"
#include "tests/storage/nvme/nvme_test_util.h"
#include "tests/testing/fault_injecting_device.h"
#include "tests/testing/io_uring_available.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "util/status.h"

namespace pstore {
namespace {

using ::pstore::nvme_format::EntryBytes;
using ::pstore::nvme_format::kPageBytes;
using ::pstore::testing::EngineName;
using ::pstore::testing::Fault;
using ::pstore::testing::FaultInjectingDevice;
using ::pstore::testing::FlipFileByte;
using ::pstore::testing::IoUringAvailable;
using ::pstore::testing::MakeTestBlock;
using ::pstore::testing::ReadFileBytes;
using ::pstore::testing::SameBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::pstore::testing::TestBlock;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kRegionBytes = kMiB;

class NvmeTierTest : public ::testing::TestWithParam<bool> {
 protected:
  // Skips the io_uring case where the kernel refuses io_uring: the device
  // would fall back to pread/pwrite and test that engine twice.
  void SetUp() override {
    std::string why;
    if (GetParam() && !IoUringAvailable(&why)) {
      GTEST_SKIP() << "io_uring is not available here: " << why;
    }
  }

  // Returns options for `regions` regions of `region_bytes` in the test's
  // directory, on the engine under test.
  NvmeTierOptions Options(uint32_t regions = 4,
                          uint64_t region_bytes = kRegionBytes) {
    NvmeTierOptions options;
    options.dir = dir();
    options.region_bytes = region_bytes;
    options.capacity_bytes = region_bytes * regions;
    options.use_io_uring = GetParam();
    return options;
  }

  std::string dir() const { return temp_.Sub("nvme"); }
  std::string RegionPath(uint32_t region) const {
    return (std::filesystem::path(dir()) / RegionFileName(region)).string();
  }

  // Opens a tier whose device is a FaultInjectingDevice; sets `*faults` to
  // it (owned by the tier).
  absl::StatusOr<std::unique_ptr<NvmeTier>> OpenWithFaults(
      NvmeTierOptions options, FaultInjectingDevice** faults) {
    std::filesystem::create_directories(options.dir);
    PSTORE_ASSIGN_OR_RETURN(
        std::unique_ptr<Device> base,
        OpenDevice(DeviceOptions{
            .dir = options.dir,
            .num_regions = static_cast<uint32_t>(options.capacity_bytes /
                                                 options.region_bytes),
            .region_bytes = options.region_bytes,
            .use_io_uring = options.use_io_uring,
        }));
    auto wrapper = std::make_unique<FaultInjectingDevice>(std::move(base));
    *faults = wrapper.get();
    options.device = std::move(wrapper);
    return NvmeTier::Open(std::move(options));
  }

  // Returns success if `tier` reads back exactly `block`.
  static ::testing::AssertionResult Holds(NvmeTier& tier,
                                          const TestBlock& block) {
    absl::StatusOr<BlockRef> got = tier.Read(block.id);
    if (!got.ok()) {
      return ::testing::AssertionFailure() << got.status().ToString();
    }
    return SameBytes(*got, block);
  }

  TempDir temp_;
};

INSTANTIATE_TEST_SUITE_P(Engines, NvmeTierTest, ::testing::Bool(), EngineName);

TEST_P(NvmeTierTest, UsesTheRequestedEngine) {
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  EXPECT_EQ(tier->using_io_uring(), GetParam());
  EXPECT_EQ(tier->name(), "nvme");
}

TEST_P(NvmeTierTest, RoundTripsBlocksOfManySizes) {
  const std::vector<size_t> sizes = {0,    1,        4095,     4096,
                                     4097, 64 << 10, kMiB + 1, 4 * kMiB};
  std::vector<TestBlock> blocks;
  for (size_t i = 0; i < sizes.size(); ++i) {
    blocks.push_back(MakeTestBlock(sizes[i], i));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4, 8 * kMiB)));
    for (const TestBlock& block : blocks) {
      ASSERT_OK(tier->Write(block.id, block.block)) << block.bytes.size();
    }
    for (const TestBlock& block : blocks) {
      EXPECT_TRUE(tier->Contains(block.id));
      EXPECT_TRUE(Holds(*tier, block)) << block.bytes.size();
    }
    EXPECT_EQ(tier->Stats().blocks, sizes.size());
  }
  ASSERT_OK_AND_ASSIGN(auto reopened, NvmeTier::Open(Options(4, 8 * kMiB)));
  for (const TestBlock& block : blocks) {
    EXPECT_TRUE(Holds(*reopened, block)) << block.bytes.size();
  }
}

TEST_P(NvmeTierTest, BlockThatExactlyFillsTheRegionStaysInIt) {
  const TestBlock first = MakeTestBlock(100000, 1);
  const uint64_t head = kPageBytes + EntryBytes(first.bytes.size());
  // Padded to the page, this block ends exactly at the end of the region.
  const size_t fill = kRegionBytes - head - kPageBytes - 100;
  const TestBlock filler = MakeTestBlock(fill, 2);
  const TestBlock next = MakeTestBlock(5000, 3);
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(2)));
    ASSERT_OK(tier->Write(first.id, first.block));
    ASSERT_OK(tier->Write(filler.id, filler.block));
    ASSERT_OK(tier->Write(next.id, next.block));
    EXPECT_EQ(tier->Stats().reclaimed_regions, 0u);
    EXPECT_TRUE(Holds(*tier, first));
    EXPECT_TRUE(Holds(*tier, filler));
    EXPECT_TRUE(Holds(*tier, next));
  }
  // The filler's header and bytes are the tail of region 0.
  std::vector<uint8_t> page = ReadFileBytes(RegionPath(0), head, kPageBytes);
  ASSERT_OK_AND_ASSIGN(nvme_format::EntryHeader header,
                       nvme_format::DecodeEntryHeader(page));
  EXPECT_EQ(header.id, filler.id);
  EXPECT_EQ(header.length, fill);
  EXPECT_EQ(ReadFileBytes(RegionPath(0), head + kPageBytes, fill),
            filler.bytes);

  ASSERT_OK_AND_ASSIGN(auto reopened, NvmeTier::Open(Options(2)));
  EXPECT_TRUE(Holds(*reopened, first));
  EXPECT_TRUE(Holds(*reopened, filler));
  EXPECT_TRUE(Holds(*reopened, next));
}

TEST_P(NvmeTierTest, RejectsBlocksLargerThanARegionHolds) {
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(2)));
  const TestBlock largest = MakeTestBlock(kRegionBytes - 2 * kPageBytes, 1);
  const TestBlock too_large =
      MakeTestBlock(kRegionBytes - 2 * kPageBytes + 1, 2);
  EXPECT_THAT(tier->Write(too_large.id, too_large.block),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(tier->Write(largest.id, largest.block));
  EXPECT_TRUE(Holds(*tier, largest));
  EXPECT_FALSE(tier->Contains(too_large.id));
}

TEST_P(NvmeTierTest, RejectsBlocksThatDoNotMatchTheirId) {
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  const TestBlock block = MakeTestBlock(1000, 1);
  const TestBlock other = MakeTestBlock(1000, 2);
  EXPECT_THAT(tier->Write(block.id, other.block),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(tier->Write(block.id, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(tier->Contains(block.id));
}

TEST_P(NvmeTierTest, RejectsBadOptions) {
  NvmeTierOptions odd_region = Options();
  odd_region.region_bytes = kRegionBytes + 1;
  EXPECT_THAT(NvmeTier::Open(std::move(odd_region)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  NvmeTierOptions small_region = Options();
  small_region.region_bytes = 512 << 10;
  EXPECT_THAT(NvmeTier::Open(std::move(small_region)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  NvmeTierOptions one_region = Options();
  one_region.capacity_bytes = kRegionBytes * 2 - 1;
  EXPECT_THAT(NvmeTier::Open(std::move(one_region)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  NvmeTierOptions no_dir = Options();
  no_dir.dir.clear();
  EXPECT_THAT(NvmeTier::Open(std::move(no_dir)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(NvmeTierTest, ServesManyConcurrentReadsInFlight) {
  constexpr int kBlocks = 64;
  constexpr int kThreads = 4;
  constexpr int kReadsPerThread = 64;
  NvmeTierOptions options = Options(4, 4 * kMiB);
  options.queue_depth = 8;  // Fewer slots than reads: most wait their turn.
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(std::move(options)));
  std::vector<TestBlock> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(MakeTestBlock(1000 + i * 2311, i));
    ASSERT_OK(tier->Write(blocks.back().id, blocks.back().block));
  }

  absl::BlockingCounter finished(kThreads * kReadsPerThread);
  std::atomic<int> good{0};
  absl::Mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kReadsPerThread; ++i) {
        const TestBlock& want = blocks[(t * 17 + i * 5) % kBlocks];
        tier->ReadAsync(want.id, [&](absl::StatusOr<BlockRef> got) {
          ::testing::AssertionResult same =
              got.ok()
                  ? SameBytes(*got, want)
                  : ::testing::AssertionFailure() << got.status().ToString();
          if (same) {
            good.fetch_add(1);
          } else {
            absl::MutexLock lock(&mu);
            failures.push_back(same.message());
          }
          finished.DecrementCount();
        });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  finished.Wait();
  EXPECT_EQ(good.load(), kThreads * kReadsPerThread);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_EQ(tier->Stats().hits, uint64_t{kThreads * kReadsPerThread});
}

// Blocks of 100 000 bytes take 104 KiB each with their header page; nine fit
// in a 1 MiB region after its header page.
constexpr size_t kReclaimBlockBytes = 100000;
constexpr int kPerRegion =
    (kRegionBytes - kPageBytes) / EntryBytes(kReclaimBlockBytes);
static_assert(kPerRegion == 9);

// Returns the first of `written` blocks that a tier of `regions` regions
// still holds after writing them in order.
int FirstLive(int written, int regions) {
  int regions_used = (written + kPerRegion - 1) / kPerRegion;
  return std::max(0, regions_used - regions) * kPerRegion;
}

TEST_P(NvmeTierTest, ReclaimsTheOldestRegionWhenFull) {
  constexpr int kWritten = 50;
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4)));
  std::vector<TestBlock> blocks;
  for (int i = 0; i < kWritten; ++i) {
    blocks.push_back(MakeTestBlock(kReclaimBlockBytes, i));
    ASSERT_OK(tier->Write(blocks.back().id, blocks.back().block));
  }
  const int first_live = FirstLive(kWritten, 4);
  ASSERT_EQ(first_live, 18);
  for (int i = 0; i < kWritten; ++i) {
    if (i < first_live) {
      EXPECT_FALSE(tier->Contains(blocks[i].id)) << i;
      EXPECT_THAT(tier->Read(blocks[i].id),
                  StatusIs(absl::StatusCode::kNotFound));
    } else {
      EXPECT_TRUE(Holds(*tier, blocks[i])) << i;
    }
  }
  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.reclaimed_regions, 2u);
  EXPECT_EQ(stats.evictions, uint64_t(first_live));
  EXPECT_EQ(stats.blocks, uint64_t(kWritten - first_live));
  EXPECT_EQ(stats.used_bytes,
            (kWritten - first_live) * EntryBytes(kReclaimBlockBytes));
  EXPECT_EQ(stats.capacity_bytes, 4 * kRegionBytes);
}

TEST_P(NvmeTierTest, RebuildsTheIndexOnReopenAndAppendsWhereItStopped) {
  std::vector<TestBlock> blocks;
  for (int i = 0; i < 70; ++i) {
    blocks.push_back(MakeTestBlock(kReclaimBlockBytes, i));
  }
  TierStats before;
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4)));
    for (int i = 0; i < 50; ++i) {
      ASSERT_OK(tier->Write(blocks[i].id, blocks[i].block));
    }
    before = tier->Stats();
  }
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4)));
    TierStats after = tier->Stats();
    EXPECT_EQ(after.blocks, before.blocks);
    EXPECT_EQ(after.used_bytes, before.used_bytes);
    for (int i = 0; i < 50; ++i) {
      if (i < FirstLive(50, 4)) {
        EXPECT_FALSE(tier->Contains(blocks[i].id)) << i;
      } else {
        EXPECT_TRUE(Holds(*tier, blocks[i])) << i;
      }
    }
    // Appends go on in the region that was active, then reclaim in the
    // order of the first run: the same blocks survive as without a restart.
    for (int i = 50; i < 70; ++i) {
      ASSERT_OK(tier->Write(blocks[i].id, blocks[i].block));
    }
    for (int i = 0; i < 70; ++i) {
      EXPECT_EQ(tier->Contains(blocks[i].id), i >= FirstLive(70, 4)) << i;
    }
  }
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4)));
  EXPECT_EQ(tier->Stats().blocks, uint64_t(70 - FirstLive(70, 4)));
  for (int i = 0; i < 70; ++i) {
    if (i < FirstLive(70, 4)) {
      EXPECT_FALSE(tier->Contains(blocks[i].id)) << i;
    } else {
      EXPECT_TRUE(Holds(*tier, blocks[i])) << i;
    }
  }
}

TEST_P(NvmeTierTest, FlippedByteOnDiskGivesDataLossThenNotFound) {
  const TestBlock block = MakeTestBlock(10000, 1);
  const TestBlock other = MakeTestBlock(10000, 2);
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
    ASSERT_OK(tier->Write(block.id, block.block));
    ASSERT_OK(tier->Write(other.id, other.block));
  }
  // The first entry's data starts after the region and entry header pages.
  FlipFileByte(RegionPath(0), 2 * kPageBytes + 5000);
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  EXPECT_TRUE(tier->Contains(block.id));
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(tier->Contains(block.id));
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(Holds(*tier, other));
  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.checksum_failures, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.blocks, 1u);
  EXPECT_EQ(stats.used_bytes, EntryBytes(10000));
}

TEST_P(NvmeTierTest, ByteFlippedWhileOpenGivesDataLoss) {
  const TestBlock block = MakeTestBlock(3 * kPageBytes, 1);
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  ASSERT_OK(tier->Write(block.id, block.block));
  FlipFileByte(RegionPath(0), 2 * kPageBytes + 3 * kPageBytes - 1);
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kNotFound));
  // The id can be written again, to a fresh place.
  ASSERT_OK(tier->Write(block.id, block.block));
  EXPECT_TRUE(Holds(*tier, block));
}

TEST_P(NvmeTierTest, CorruptEntryHeaderEndsTheRegionAtReopen) {
  std::vector<TestBlock> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(MakeTestBlock(10000, i));
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
    for (const TestBlock& block : blocks) {
      ASSERT_OK(tier->Write(block.id, block.block));
    }
  }
  // A byte of the block id in the third entry's header.
  const uint64_t third = kPageBytes + 2 * EntryBytes(10000);
  FlipFileByte(RegionPath(0), third + 30);
  const TestBlock fresh = MakeTestBlock(20000, 99);
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
    EXPECT_TRUE(Holds(*tier, blocks[0]));
    EXPECT_TRUE(Holds(*tier, blocks[1]));
    for (int i = 2; i < 5; ++i) EXPECT_FALSE(tier->Contains(blocks[i].id)) << i;
    EXPECT_EQ(tier->Stats().blocks, 2u);
    // Appends resume where the valid entries end.
    ASSERT_OK(tier->Write(fresh.id, fresh.block));
    EXPECT_TRUE(Holds(*tier, fresh));
  }
  ASSERT_OK_AND_ASSIGN(nvme_format::EntryHeader header,
                       nvme_format::DecodeEntryHeader(
                           ReadFileBytes(RegionPath(0), third, kPageBytes)));
  EXPECT_EQ(header.id, fresh.id);
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  EXPECT_TRUE(Holds(*tier, blocks[0]));
  EXPECT_TRUE(Holds(*tier, blocks[1]));
  EXPECT_TRUE(Holds(*tier, fresh));
}

TEST_P(NvmeTierTest, CorruptRegionHeaderDiscardsOnlyThatRegion) {
  std::vector<TestBlock> blocks;
  for (int i = 0; i < 12; ++i) {
    blocks.push_back(MakeTestBlock(kReclaimBlockBytes, i));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
    for (const TestBlock& block : blocks) {
      ASSERT_OK(tier->Write(block.id, block.block));
    }
  }
  FlipFileByte(RegionPath(0), 20);  // In region_bytes.
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  for (int i = 0; i < 12; ++i) {
    if (i < kPerRegion) {
      EXPECT_FALSE(tier->Contains(blocks[i].id)) << i;
    } else {
      EXPECT_TRUE(Holds(*tier, blocks[i])) << i;
    }
  }
}

TEST_P(NvmeTierTest, DiscardsRegionFilesOfAnotherRegionSize) {
  const TestBlock block = MakeTestBlock(5000, 1);
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4, kRegionBytes)));
    ASSERT_OK(tier->Write(block.id, block.block));
  }
  const TestBlock fresh = MakeTestBlock(6000, 2);
  {
    ASSERT_OK_AND_ASSIGN(auto tier,
                         NvmeTier::Open(Options(4, 2 * kRegionBytes)));
    EXPECT_FALSE(tier->Contains(block.id));
    EXPECT_EQ(tier->Stats().blocks, 0u);
    ASSERT_OK(tier->Write(fresh.id, fresh.block));
    EXPECT_TRUE(Holds(*tier, fresh));
  }
  struct stat st;
  ASSERT_EQ(stat(RegionPath(3).c_str(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), 2 * kRegionBytes);
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4, 2 * kRegionBytes)));
  EXPECT_TRUE(Holds(*tier, fresh));
  EXPECT_FALSE(tier->Contains(block.id));
}

TEST_P(NvmeTierTest, DiscardsRegionsOfAnotherFormatVersion) {
  const TestBlock block = MakeTestBlock(5000, 1);
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
    ASSERT_OK(tier->Write(block.id, block.block));
  }
  ASSERT_OK_AND_ASSIGN(nvme_format::RegionHeader header,
                       nvme_format::DecodeRegionHeader(
                           ReadFileBytes(RegionPath(0), 0, kPageBytes)));
  header.version = nvme_format::kFormatVersion + 1;
  std::vector<uint8_t> page(kPageBytes);
  nvme_format::EncodeRegionHeader(header, page);
  testing::WriteFileBytes(RegionPath(0), 0, page);
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  EXPECT_FALSE(tier->Contains(block.id));
}

TEST_P(NvmeTierTest, FewerRegionsDeleteTheFilesPastThem) {
  { ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(4))); }
  EXPECT_TRUE(std::filesystem::exists(RegionPath(3)));
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(2)));
  EXPECT_TRUE(std::filesystem::exists(RegionPath(1)));
  EXPECT_FALSE(std::filesystem::exists(RegionPath(2)));
  EXPECT_FALSE(std::filesystem::exists(RegionPath(3)));
}

TEST_P(NvmeTierTest, EraseDropsOneBlock) {
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  const TestBlock gone = MakeTestBlock(7000, 1);
  const TestBlock kept = MakeTestBlock(7000, 2);
  ASSERT_OK(tier->Write(gone.id, gone.block));
  ASSERT_OK(tier->Write(kept.id, kept.block));
  ASSERT_OK(tier->Erase(gone.id));
  EXPECT_FALSE(tier->Contains(gone.id));
  EXPECT_THAT(tier->Read(gone.id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(Holds(*tier, kept));
  ASSERT_OK(tier->Erase(gone.id));  // Absent: still OK.
  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.erases, 1u);
  EXPECT_EQ(stats.blocks, 1u);
  EXPECT_EQ(stats.used_bytes, EntryBytes(7000));
  // An erased block may be written again.
  ASSERT_OK(tier->Write(gone.id, gone.block));
  EXPECT_TRUE(Holds(*tier, gone));
}

TEST_P(NvmeTierTest, ClearDropsEverythingAndStaysCleared) {
  std::vector<TestBlock> blocks;
  for (int i = 0; i < 20; ++i) {
    blocks.push_back(MakeTestBlock(kReclaimBlockBytes, i));
  }
  const TestBlock after = MakeTestBlock(3000, 100);
  {
    ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
    for (const TestBlock& block : blocks) {
      ASSERT_OK(tier->Write(block.id, block.block));
    }
    ASSERT_OK(tier->Clear());
    TierStats stats = tier->Stats();
    EXPECT_EQ(stats.blocks, 0u);
    EXPECT_EQ(stats.used_bytes, 0u);
    for (const TestBlock& block : blocks) {
      EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kNotFound));
    }
    ASSERT_OK(tier->Write(after.id, after.block));
    EXPECT_TRUE(Holds(*tier, after));
  }
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  EXPECT_EQ(tier->Stats().blocks, 1u);
  EXPECT_TRUE(Holds(*tier, after));
  for (const TestBlock& block : blocks) {
    EXPECT_FALSE(tier->Contains(block.id));
  }
  // Every region is usable again: fill them all.
  for (int i = 0; i < 4 * kPerRegion - 1; ++i) {
    TestBlock block = MakeTestBlock(kReclaimBlockBytes, 1000 + i);
    ASSERT_OK(tier->Write(block.id, block.block));
  }
  EXPECT_EQ(tier->Stats().reclaimed_regions, 0u);
  EXPECT_TRUE(Holds(*tier, after));
}

TEST_P(NvmeTierTest, DiskFullFailsWritesButReadsGoOn) {
  FaultInjectingDevice* faults = nullptr;
  ASSERT_OK_AND_ASSIGN(auto tier, OpenWithFaults(Options(), &faults));
  const TestBlock stored = MakeTestBlock(9000, 1);
  const TestBlock refused = MakeTestBlock(9000, 2);
  ASSERT_OK(tier->Write(stored.id, stored.block));

  faults->Inject(Fault{.op = Fault::Op::kWrite, .error = ENOSPC});
  EXPECT_THAT(tier->Write(refused.id, refused.block),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(tier->Contains(refused.id));
  EXPECT_TRUE(Holds(*tier, stored));
  EXPECT_EQ(tier->Stats().io_errors, 1u);

  faults->ClearFaults();
  ASSERT_OK(tier->Write(refused.id, refused.block));
  EXPECT_TRUE(Holds(*tier, refused));
  EXPECT_TRUE(Holds(*tier, stored));
}

TEST_P(NvmeTierTest, DiskFullWhileStartingARegionFailsWritesOnly) {
  FaultInjectingDevice* faults = nullptr;
  ASSERT_OK_AND_ASSIGN(auto tier, OpenWithFaults(Options(2), &faults));
  std::vector<TestBlock> blocks;
  for (int i = 0; i < 2 * kPerRegion; ++i) {
    blocks.push_back(MakeTestBlock(kReclaimBlockBytes, i));
    ASSERT_OK(tier->Write(blocks.back().id, blocks.back().block));
  }
  // Both regions are full; the next write must recycle region 0 and write
  // its header first.
  faults->Inject(Fault{.op = Fault::Op::kWrite, .offset = 0, .error = ENOSPC});
  const TestBlock next = MakeTestBlock(kReclaimBlockBytes, 1000);
  EXPECT_THAT(tier->Write(next.id, next.block),
              StatusIs(absl::StatusCode::kResourceExhausted));
  for (int i = kPerRegion; i < 2 * kPerRegion; ++i) {
    EXPECT_TRUE(Holds(*tier, blocks[i])) << i;
  }
  faults->ClearFaults();
  ASSERT_OK(tier->Write(next.id, next.block));
  EXPECT_TRUE(Holds(*tier, next));
  EXPECT_TRUE(Holds(*tier, blocks.back()));
}

TEST_P(NvmeTierTest, ReadIoErrorIsUnavailableAndKeepsTheEntry) {
  FaultInjectingDevice* faults = nullptr;
  ASSERT_OK_AND_ASSIGN(auto tier, OpenWithFaults(Options(), &faults));
  const TestBlock block = MakeTestBlock(20000, 1);
  ASSERT_OK(tier->Write(block.id, block.block));
  faults->Inject(Fault{.op = Fault::Op::kRead, .error = EIO, .times = 1});
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(tier->Contains(block.id));
  EXPECT_EQ(tier->Stats().io_errors, 1u);
  EXPECT_TRUE(Holds(*tier, block));
}

TEST_P(NvmeTierTest, CorruptedReadIsDataLoss) {
  FaultInjectingDevice* faults = nullptr;
  ASSERT_OK_AND_ASSIGN(auto tier, OpenWithFaults(Options(), &faults));
  const TestBlock block = MakeTestBlock(20000, 1);
  ASSERT_OK(tier->Write(block.id, block.block));
  faults->Inject(Fault{.op = Fault::Op::kRead,
                       .corrupt = true,
                       .corrupt_at = 19999,
                       .times = 1});
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(tier->Stats().checksum_failures, 1u);
}

TEST_P(NvmeTierTest, LostWriteIsCaughtByTheChecksum) {
  FaultInjectingDevice* faults = nullptr;
  ASSERT_OK_AND_ASSIGN(auto tier, OpenWithFaults(Options(), &faults));
  const TestBlock first = MakeTestBlock(20000, 1);
  ASSERT_OK(tier->Write(first.id, first.block));
  const TestBlock lost = MakeTestBlock(20000, 2);
  faults->Inject(Fault{.op = Fault::Op::kWrite, .drop = true, .times = 1});
  ASSERT_OK(tier->Write(lost.id, lost.block));
  EXPECT_THAT(tier->Read(lost.id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(tier->Contains(lost.id));
  EXPECT_TRUE(Holds(*tier, first));
}

TEST_P(NvmeTierTest, CountsStats) {
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options()));
  const std::vector<size_t> sizes = {1, 5000, 8192};
  std::vector<TestBlock> blocks;
  uint64_t bytes = 0;
  uint64_t used = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    blocks.push_back(MakeTestBlock(sizes[i], i));
    ASSERT_OK(tier->Write(blocks[i].id, blocks[i].block));
    bytes += sizes[i];
    used += EntryBytes(sizes[i]);
  }
  ASSERT_OK(tier->Write(blocks[0].id, blocks[0].block));  // A no-op.
  for (const TestBlock& block : blocks) EXPECT_TRUE(Holds(*tier, block));
  const TestBlock absent = MakeTestBlock(10, 77);
  EXPECT_THAT(tier->Read(absent.id), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(tier->Erase(blocks[2].id));

  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.capacity_bytes, 4 * kRegionBytes);
  EXPECT_EQ(stats.writes, 3u);
  EXPECT_EQ(stats.write_bytes, bytes);
  EXPECT_EQ(stats.hits, 3u);
  EXPECT_EQ(stats.read_bytes, bytes);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.erases, 1u);
  EXPECT_EQ(stats.blocks, 2u);
  EXPECT_EQ(stats.used_bytes, used - EntryBytes(8192));
  EXPECT_EQ(stats.evictions, 0u);
  EXPECT_EQ(stats.checksum_failures, 0u);
  EXPECT_EQ(stats.io_errors, 0u);
  EXPECT_EQ(stats.reclaimed_regions, 0u);
}

TEST_P(NvmeTierTest, ReadsDuringReclaimSeeBytesOrNotFound) {
  constexpr int kBlocks = 120;
  constexpr int kReaders = 2;
  constexpr int kReadsPerReader = 400;
  std::vector<TestBlock> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(MakeTestBlock(60000 + i * 13, i));
  }
  ASSERT_OK_AND_ASSIGN(auto tier, NvmeTier::Open(Options(3)));
  std::atomic<int> written{0};
  std::atomic<int> bad{0};
  std::atomic<int> found{0};
  std::thread writer([&] {
    for (int i = 0; i < kBlocks; ++i) {
      if (!tier->Write(blocks[i].id, blocks[i].block).ok()) bad.fetch_add(1);
      written.store(i + 1);
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      for (int i = 0; i < kReadsPerReader; ++i) {
        int limit = std::max(1, written.load());
        const TestBlock& want = blocks[(i * 7 + r * 31) % limit];
        absl::StatusOr<BlockRef> got = tier->Read(want.id);
        if (got.ok()) {
          if (SameBytes(*got, want)) {
            found.fetch_add(1);
          } else {
            bad.fetch_add(1);
          }
        } else if (!absl::IsNotFound(got.status())) {
          bad.fetch_add(1);
        }
      }
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(bad.load(), 0);
  TierStats stats = tier->Stats();
  EXPECT_GT(stats.reclaimed_regions, 0u);
  EXPECT_EQ(stats.checksum_failures, 0u);
  EXPECT_EQ(stats.hits, uint64_t(found.load()));
}

}  // namespace
}  // namespace pstore
