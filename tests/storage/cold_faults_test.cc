// The durable tier under faults its disk cannot be made to produce on
// demand: a full disk, read errors and torn writes, injected through the
// cold tier's file-system seam (ColdTierOptions::file_system) into a real
// RocksDB under a real store. Each fault gets the documented code, and
// nothing already stored is lost or half-written.

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/cold/rocksdb_backend.h"
#include "storage/dram/dram_tier.h"
#include "storage/tiered_store.h"
#include "tests/testing/fault_injecting_file_system.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_puts.h"
#include "tests/testing/temp_dir.h"
#include "util/status.h"

namespace pstore {
namespace {

using ::pstore::testing::FaultInjectingFileSystem;
using ::pstore::testing::FileFault;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::testing::IsEmpty;

constexpr uint64_t kMiB = uint64_t{1} << 20;

class ColdFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<FaultInjectingFileSystem>();
    Open();
  }

  ColdTierOptions ColdOptions(bool faulty) const {
    ColdTierOptions options;
    options.dir = dir_.Sub("cold");
    options.sync_commits = true;
    options.min_free_bytes = 16 * kMiB;
    if (faulty) options.file_system = fs_;
    return options;
  }

  // Opens a store over the RocksDB backend, through the faulty file system
  // unless `faulty` is false.
  void Open(bool faulty = true) {
    store_.reset();
    StoreParts parts;
    ASSERT_OK_AND_ASSIGN(parts.backend,
                         OpenRocksDbBackend(ColdOptions(faulty)));
    DramTierOptions dram;
    dram.capacity_bytes = 32 * kMiB;
    ASSERT_OK_AND_ASSIGN(parts.dram, DramTier::Open(dram));
    TieredStoreOptions options;
    options.block_bytes = 1 * kMiB;
    ASSERT_OK_AND_ASSIGN(
        store_, TieredStore::Open(std::move(options), std::move(parts)));
  }

  absl::StatusOr<TensorMeta> Put(const std::string& name,
                                 const std::vector<uint8_t>& bytes) {
    return ::pstore::testing::PutBytes(*store_, name, bytes);
  }

  std::string Read(const std::string& name) {
    absl::StatusOr<std::string> bytes =
        store_->ReadTensor(*ParseTensorName(name));
    return bytes.ok() ? *bytes : bytes.status().ToString();
  }

  static std::string AsString(const std::vector<uint8_t>& bytes) {
    return std::string(bytes.begin(), bytes.end());
  }

  // Restarts the store (without faults) and checks, on the backend alone,
  // that nothing is staged: every put that failed left nothing behind.
  void ExpectNothingStagedAfterRestart() {
    Open(/*faulty=*/false);
    store_.reset();
    {
      ASSERT_OK_AND_ASSIGN(Backend backend,
                           OpenRocksDbBackend(ColdOptions(false)));
      EXPECT_THAT(*backend.catalog->ListStaged(), IsEmpty());
    }
    Open(/*faulty=*/false);
  }

  TempDir dir_;
  std::shared_ptr<FaultInjectingFileSystem> fs_;
  std::unique_ptr<TieredStore> store_;
};

TEST_F(ColdFaultsTest, AFullDiskRefusesThePutAndKeepsWhatWasStored) {
  std::vector<uint8_t> a = RandomBytes(3 * kMiB, 1);
  ASSERT_OK(Put("m@v1/a", a).status());
  fs_->Inject({FileFault::Op::kWrite, FileFault::Kind::kNoSpace, "", -1});
  EXPECT_THAT(Put("m@v1/b", RandomBytes(3 * kMiB, 2)),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_GT(fs_->faults_applied(), 0u);
  // Space comes back: writes resume, and nothing was lost meanwhile.
  fs_->ClearFaults();
  std::vector<uint8_t> c = RandomBytes(2 * kMiB, 3);
  ASSERT_OK(Put("m@v1/c", c).status());
  EXPECT_EQ(Read("m@v1/a"), AsString(a));
  EXPECT_EQ(Read("m@v1/c"), AsString(c));
  EXPECT_THAT(store_->StatTensor(*ParseTensorName("m@v1/b")),
              StatusIs(absl::StatusCode::kNotFound));
  ExpectNothingStagedAfterRestart();
  EXPECT_EQ(Read("m@v1/a"), AsString(a));
}

TEST_F(ColdFaultsTest, AFailedSyncRefusesTheCommit) {
  std::vector<uint8_t> a = RandomBytes(2 * kMiB, 4);
  ASSERT_OK(Put("m@v1/a", a).status());
  fs_->Inject({FileFault::Op::kSync, FileFault::Kind::kIoError, ".log", 1});
  EXPECT_THAT(Put("m@v1/b", RandomBytes(2 * kMiB, 5)),
              StatusIs(absl::StatusCode::kUnavailable));
  fs_->ClearFaults();
  EXPECT_EQ(Read("m@v1/a"), AsString(a));
  ExpectNothingStagedAfterRestart();
  EXPECT_EQ(Read("m@v1/a"), AsString(a));
}

TEST_F(ColdFaultsTest, ReadErrorsAreUnavailableAndCountedAndPass) {
  std::vector<uint8_t> a = RandomBytes(4 * kMiB, 6);
  ASSERT_OK(Put("m@v1/a", a).status());
  // From the disk: reopen, read once to bring the catalog's records into
  // its cache, then drop DRAM.
  Open();
  EXPECT_EQ(Read("m@v1/a"), AsString(a));
  ASSERT_OK(store_->DropCache(TierKind::kDram));
  fs_->Inject(
      {FileFault::Op::kRead, FileFault::Kind::kIoError, "/blocks/", -1});
  EXPECT_THAT(store_->ReadTensor(*ParseTensorName("m@v1/a")),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_GT(store_->Stats().cold.io_errors, 0u);
  fs_->ClearFaults();
  EXPECT_EQ(Read("m@v1/a"), AsString(a));
}

TEST_F(ColdFaultsTest, ATornLogWriteLosesOnlyThePutItCut) {
  std::vector<uint8_t> a = RandomBytes(2 * kMiB, 7);
  ASSERT_OK(Put("m@v1/a", a).status());
  // The next write-ahead log append stores half its bytes and fails.
  fs_->Inject({FileFault::Op::kWrite, FileFault::Kind::kTorn, ".log", 1});
  EXPECT_THAT(Put("m@v1/b", RandomBytes(2 * kMiB, 8)),
              StatusIs(absl::StatusCode::kUnavailable));
  fs_->ClearFaults();
  // A restart replays the log up to the torn record.
  ExpectNothingStagedAfterRestart();
  EXPECT_EQ(Read("m@v1/a"), AsString(a));
  EXPECT_THAT(store_->StatTensor(*ParseTensorName("m@v1/b")),
              StatusIs(absl::StatusCode::kNotFound));
  std::vector<uint8_t> c = RandomBytes(1 * kMiB, 9);
  ASSERT_OK(Put("m@v1/c", c).status());
  EXPECT_EQ(Read("m@v1/c"), AsString(c));
}

}  // namespace
}  // namespace pstore
