// One suite that every Tier implementation passes: the contract of
// storage/tier.h, run against DRAM, NVMe on io_uring, NVMe on pread/pwrite,
// cold RocksDB and block files, and RADOS objects, each on real memory,
// files, databases and a real Ceph (the suite's, tests/testing/test_ceph.h).

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "storage/cold/block_files.h"
#include "storage/cold/cold_tier.h"
#include "storage/dram/dram_tier.h"
#include "storage/nvme/device.h"
#include "storage/nvme/nvme_tier.h"
#include "storage/rados/rados_pool.h"
#include "storage/rados/rados_tier.h"
#include "storage/tier.h"
#include "tests/testing/io_uring_available.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_ceph.h"
#include "util/status.h"

namespace pstore {
namespace {

using ::pstore::testing::IoUringAvailable;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::pstore::testing::TestCephConfigured;
using ::pstore::testing::TestRadosOptions;

// Name of the case that runs NVMe on io_uring.
constexpr char kIoUringCase[] = "nvme_io_uring";
// Name of the case that runs on the suite's Ceph.
constexpr char kRadosCase[] = "rados";

struct TierFactory {
  std::string name;
  bool is_cache;  // A CacheTier; false for the durable tier.
  std::function<absl::StatusOr<std::unique_ptr<Tier>>(const TempDir&)> open;
};

std::ostream& operator<<(std::ostream& os, const TierFactory& factory) {
  return os << factory.name;
}

std::vector<TierFactory> Factories() {
  std::vector<TierFactory> factories;
  factories.push_back(
      {"dram", true,
       [](const TempDir&) -> absl::StatusOr<std::unique_ptr<Tier>> {
         DramTierOptions options;
         options.capacity_bytes = uint64_t{256} << 20;
         return DramTier::Open(std::move(options));
       }});
  for (bool uring : {true, false}) {
    factories.push_back(
        {uring ? kIoUringCase : "nvme_pread", true,
         [uring](const TempDir& dir) -> absl::StatusOr<std::unique_ptr<Tier>> {
           NvmeTierOptions options;
           options.dir = dir.Sub("nvme");
           options.capacity_bytes = uint64_t{256} << 20;
           options.region_bytes = uint64_t{32} << 20;
           options.use_io_uring = uring;
           absl::StatusOr<std::unique_ptr<NvmeTier>> tier =
               NvmeTier::Open(std::move(options));
           if (tier.ok() && (*tier)->using_io_uring() != uring) {
             return absl::FailedPreconditionError(
                 "the NVMe tier runs on another engine than asked for");
           }
           return tier;
         }});
  }
  factories.push_back(
      {"cold_block_files", false,
       [](const TempDir& dir) -> absl::StatusOr<std::unique_ptr<Tier>> {
         ColdTierOptions options;
         options.dir = dir.Sub("cold");
         options.sync_commits = false;
         PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<ColdDatabase> database,
                                 ColdDatabase::Open(std::move(options)));
         PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<BlockFileTier> tier,
                                 BlockFileTier::Open(std::move(database)));
         return std::unique_ptr<Tier>(std::move(tier));
       }});
  factories.push_back(
      {"cold", false,
       [](const TempDir& dir) -> absl::StatusOr<std::unique_ptr<Tier>> {
         ColdTierOptions options;
         options.dir = dir.Sub("cold");
         options.sync_commits = false;
         return ColdTier::Open(std::move(options));
       }});
  factories.push_back(
      {kRadosCase, false,
       [](const TempDir&) -> absl::StatusOr<std::unique_ptr<Tier>> {
         PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<RadosPool> pool,
                                 RadosPool::Connect(TestRadosOptions()));
         return std::unique_ptr<Tier>(
             std::make_unique<RadosTier>(std::move(pool), uint64_t{4} << 20));
       }});
  return factories;
}

class TierConformanceTest : public ::testing::TestWithParam<TierFactory> {
 protected:
  void SetUp() override {
    std::string why;
    if (GetParam().name == kIoUringCase && !IoUringAvailable(&why)) {
      GTEST_SKIP() << "io_uring is not available here: " << why;
    }
    if (GetParam().name == kRadosCase && !TestCephConfigured(&why)) {
      GTEST_SKIP() << why;
    }
    absl::StatusOr<std::unique_ptr<Tier>> tier = GetParam().open(dir_);
    ASSERT_TRUE(tier.ok()) << tier.status();
    tier_ = *std::move(tier);
  }

  // Returns a block of `size` random bytes and its id.
  static std::pair<BlockId, BlockRef> MakeRandomBlock(size_t size,
                                                      uint64_t seed) {
    std::vector<uint8_t> bytes = RandomBytes(size, seed);
    return {BlockId::Of(bytes), CopyBlock(bytes)};
  }

  TempDir dir_;
  std::unique_ptr<Tier> tier_;
};

TEST_P(TierConformanceTest, ReadsBackWhatWasWrittenAtManySizes) {
  uint64_t seed = 0;
  for (size_t size : {size_t{1}, size_t{4095}, size_t{4096}, size_t{4097},
                      size_t{65536}, size_t{(1 << 20) + 1}, size_t{4 << 20}}) {
    auto [id, block] = MakeRandomBlock(size, ++seed);
    ASSERT_OK(tier_->Write(id, block));
    ASSERT_OK_AND_ASSIGN(BlockRef read, tier_->Read(id));
    ASSERT_EQ(read->size(), size);
    EXPECT_EQ(read->view(), block->view()) << size;
  }
}

TEST_P(TierConformanceTest, AbsentBlockIsNotFound) {
  BlockId id = BlockId::Of(RandomBytes(100, 1));
  EXPECT_FALSE(tier_->Contains(id));
  EXPECT_THAT(tier_->Read(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(tier_->Stats().misses, 1u);
}

TEST_P(TierConformanceTest, ContainsAfterWriteAndCountsHits) {
  auto [id, block] = MakeRandomBlock(10000, 2);
  EXPECT_FALSE(tier_->Contains(id));
  ASSERT_OK(tier_->Write(id, block));
  EXPECT_TRUE(tier_->Contains(id));
  ASSERT_OK(tier_->Read(id).status());
  ASSERT_OK(tier_->Read(id).status());
  TierStats stats = tier_->Stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.read_bytes, 20000u);
}

TEST_P(TierConformanceTest, WritingAPresentBlockAgainIsANoOp) {
  auto [id, block] = MakeRandomBlock(8192, 3);
  ASSERT_OK(tier_->Write(id, block));
  ASSERT_OK(tier_->Write(id, block));
  ASSERT_OK_AND_ASSIGN(BlockRef read, tier_->Read(id));
  EXPECT_EQ(read->view(), block->view());
}

TEST_P(TierConformanceTest, EraseMakesTheBlockNotFound) {
  auto [id, block] = MakeRandomBlock(5000, 4);
  ASSERT_OK(tier_->Write(id, block));
  ASSERT_OK(tier_->Erase(id));
  EXPECT_FALSE(tier_->Contains(id));
  EXPECT_THAT(tier_->Read(id), StatusIs(absl::StatusCode::kNotFound));
  // Erasing an absent block is fine.
  EXPECT_OK(tier_->Erase(id));
}

TEST_P(TierConformanceTest, ReadAsyncCallsBackExactlyOnce) {
  auto [id, block] = MakeRandomBlock(70000, 5);
  ASSERT_OK(tier_->Write(id, block));
  BlockId absent = BlockId::Of(RandomBytes(10, 99));
  std::atomic<int> calls{0};
  absl::Notification found_done, absent_done;
  absl::StatusOr<BlockRef> found, missing;
  tier_->ReadAsync(id, [&](absl::StatusOr<BlockRef> result) {
    found = std::move(result);
    ++calls;
    found_done.Notify();
  });
  tier_->ReadAsync(absent, [&](absl::StatusOr<BlockRef> result) {
    missing = std::move(result);
    ++calls;
    absent_done.Notify();
  });
  found_done.WaitForNotification();
  absent_done.WaitForNotification();
  ASSERT_OK(found.status());
  EXPECT_EQ((*found)->view(), block->view());
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(calls.load(), 2);
}

TEST_P(TierConformanceTest, WriteAsyncStoresManyAndCallsBackOnceEach) {
  // New blocks, and the same blocks again (a no-op), all in flight at once.
  constexpr int kBlocks = 12;
  std::vector<std::pair<BlockId, BlockRef>> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(MakeRandomBlock(30000 + 1000 * i, 200 + i));
  }
  absl::Mutex mu;
  int calls = 0;
  std::vector<absl::Status> results;
  for (int round = 0; round < 2; ++round) {
    for (const auto& [id, block] : blocks) {
      tier_->WriteAsync(id, block, [&](absl::Status status) {
        absl::MutexLock lock(&mu);
        ++calls;
        results.push_back(std::move(status));
      });
    }
  }
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(
        absl::Condition(
            +[](int* n) { return *n == 2 * kBlocks; }, &calls),
        absl::Seconds(60)));
  }
  for (const absl::Status& status : results) EXPECT_OK(status);
  for (const auto& [id, block] : blocks) {
    ASSERT_OK_AND_ASSIGN(BlockRef read, tier_->Read(id));
    EXPECT_EQ(read->view(), block->view());
  }
}

TEST_P(TierConformanceTest, CachesClearAndTheDurableTierCannot) {
  auto [id, block] = MakeRandomBlock(4096, 6);
  ASSERT_OK(tier_->Write(id, block));
  auto* cache = dynamic_cast<CacheTier*>(tier_.get());
  if (GetParam().is_cache) {
    ASSERT_NE(cache, nullptr);
    ASSERT_OK(cache->Clear());
    EXPECT_FALSE(tier_->Contains(id));
    EXPECT_EQ(tier_->Stats().blocks, 0u);
  } else {
    // The durable tier holds the only copy: it offers no Clear at all.
    EXPECT_EQ(cache, nullptr);
    EXPECT_TRUE(tier_->Contains(id));
  }
}

TEST_P(TierConformanceTest, ABlockReadStaysValidAfterErase) {
  auto [id, block] = MakeRandomBlock(1 << 20, 7);
  ASSERT_OK(tier_->Write(id, block));
  ASSERT_OK_AND_ASSIGN(BlockRef read, tier_->Read(id));
  ASSERT_OK(tier_->Erase(id));
  EXPECT_EQ(BlockId::Of(read->bytes()), id);
}

TEST_P(TierConformanceTest, ConcurrentReadersAndWritersSeeCorrectBytes) {
  constexpr int kBlocks = 32;
  std::vector<std::pair<BlockId, BlockRef>> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    blocks.push_back(MakeRandomBlock(20000 + 4096 * i, 100 + i));
  }
  // Half written up front; the other half written while readers run.
  for (int i = 0; i < kBlocks / 2; ++i) {
    ASSERT_OK(tier_->Write(blocks[i].first, blocks[i].second));
  }
  std::atomic<int> wrong{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        int i = (t * 7 + round * 3) % kBlocks;
        if (t == 0 && round < kBlocks / 2) {
          int j = kBlocks / 2 + round;
          if (!tier_->Write(blocks[j].first, blocks[j].second).ok()) ++errors;
        }
        absl::StatusOr<BlockRef> read = tier_->Read(blocks[i].first);
        if (read.ok()) {
          if ((*read)->view() != blocks[i].second->view()) ++wrong;
        } else if (!absl::IsNotFound(read.status()) || i < kBlocks / 2) {
          ++errors;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllTiers, TierConformanceTest,
                         ::testing::ValuesIn(Factories()),
                         [](const ::testing::TestParamInfo<TierFactory>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace pstore
