#include "storage/nvme/device.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/buffer_pool.h"
#include "tests/storage/nvme/nvme_test_util.h"
#include "tests/testing/fault_injecting_device.h"
#include "tests/testing/io_uring_available.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::EngineName;
using ::pstore::testing::Fault;
using ::pstore::testing::FaultInjectingDevice;
using ::pstore::testing::IoUringAvailable;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

constexpr uint64_t kRegionBytes = uint64_t{1} << 20;

class DeviceTest : public ::testing::TestWithParam<bool> {
 protected:
  // Skips the io_uring case where the kernel refuses io_uring: the device
  // would fall back to pread/pwrite and test that engine twice.
  void SetUp() override {
    std::string why;
    if (GetParam() && !IoUringAvailable(&why)) {
      GTEST_SKIP() << "io_uring is not available here: " << why;
    }
  }

  DeviceOptions Options(uint32_t queue_depth = 64) {
    return DeviceOptions{.dir = temp_.path().string(),
                         .num_regions = 3,
                         .region_bytes = kRegionBytes,
                         .queue_depth = queue_depth,
                         .use_io_uring = GetParam()};
  }

  // Returns a pool buffer holding `bytes` (a multiple of 4 KiB).
  static Buffer Filled(const std::vector<uint8_t>& bytes) {
    Buffer buffer = BufferPool::Default().Allocate(bytes.size());
    std::memcpy(buffer.data(), bytes.data(), bytes.size());
    return buffer;
  }

  TempDir temp_;
};

INSTANTIATE_TEST_SUITE_P(Engines, DeviceTest, ::testing::Bool(), EngineName);

TEST_P(DeviceTest, CreatesPreallocatedRegionFiles) {
  ASSERT_OK_AND_ASSIGN(auto device, OpenDevice(Options()));
  EXPECT_EQ(device->uses_io_uring(), GetParam());
  EXPECT_EQ(device->num_regions(), 3u);
  for (uint32_t r = 0; r < 3; ++r) {
    struct stat st;
    std::string path = temp_.Sub(RegionFileName(r));
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(uint64_t(st.st_size), kRegionBytes);
    // Preallocated: the blocks are there, not a sparse file.
    EXPECT_GE(uint64_t(st.st_blocks) * 512, kRegionBytes);
  }
  EXPECT_EQ(RegionFileName(42), "region-000042.dat");
}

TEST_P(DeviceTest, VectoredWriteReadsBackInBatches) {
  ASSERT_OK_AND_ASSIGN(auto device, OpenDevice(Options()));
  std::vector<uint8_t> a = RandomBytes(4096, 1);
  std::vector<uint8_t> b = RandomBytes(3 * 4096, 2);
  Buffer buffer_a = Filled(a);
  Buffer buffer_b = Filled(b);
  const std::span<const uint8_t> spans[] = {{buffer_a.data(), a.size()},
                                            {buffer_b.data(), b.size()}};
  ASSERT_OK(device->Write(2, 8192, spans));

  // The whole write, and each page on its own, in one batch.
  std::vector<Buffer> buffers;
  std::vector<DeviceRead> reads;
  std::vector<absl::Status> statuses(5);
  absl::BlockingCounter pending(5);
  buffers.push_back(BufferPool::Default().Allocate(4 * 4096));
  for (int i = 0; i < 4; ++i) {
    buffers.push_back(BufferPool::Default().Allocate(4096));
  }
  for (int i = 0; i < 5; ++i) {
    reads.push_back(
        DeviceRead{.region = 2,
                   .offset = i == 0 ? 8192 : 8192 + uint64_t(i - 1) * 4096,
                   .dest = {buffers[i].data(), i == 0 ? 4 * 4096u : 4096u},
                   .done = [&statuses, &pending, i](absl::Status status) {
                     statuses[i] = status;
                     pending.DecrementCount();
                   }});
  }
  device->ReadAsync(std::move(reads));
  pending.Wait();
  std::vector<uint8_t> all = a;
  all.insert(all.end(), b.begin(), b.end());
  for (int i = 0; i < 5; ++i) ASSERT_OK(statuses[i]) << i;
  EXPECT_EQ(0, std::memcmp(buffers[0].data(), all.data(), all.size()));
  for (int i = 1; i < 5; ++i) {
    EXPECT_EQ(0,
              std::memcmp(buffers[i].data(), all.data() + (i - 1) * 4096, 4096))
        << i;
  }
  DeviceStats stats = device->stats();
  EXPECT_EQ(stats.writes, 1u);
  EXPECT_EQ(stats.write_bytes, 4u * 4096);
  EXPECT_EQ(stats.reads, 5u);
  EXPECT_EQ(stats.read_bytes, 8u * 4096);
  EXPECT_EQ(stats.read_errors, 0u);
}

TEST_P(DeviceTest, RefusesUnalignedOrOutOfRangeIo) {
  ASSERT_OK_AND_ASSIGN(auto device, OpenDevice(Options()));
  Buffer buffer = BufferPool::Default().Allocate(8192);
  EXPECT_THAT(device->Read(0, 100, {buffer.data(), 4096}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(device->Read(0, 0, {buffer.data(), 100}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(device->Read(0, 0, {buffer.data() + 1, 4096}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(device->Read(3, 0, {buffer.data(), 4096}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(device->Read(0, kRegionBytes - 4096, {buffer.data(), 8192}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::span<const uint8_t> past_end[] = {{buffer.data(), 8192}};
  EXPECT_THAT(device->Write(1, kRegionBytes - 4096, past_end),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(device->Read(0, kRegionBytes - 4096, {buffer.data(), 4096}));
  DeviceStats stats = device->stats();
  EXPECT_EQ(stats.read_errors, 5u);
  EXPECT_EQ(stats.write_errors, 1u);
  EXPECT_EQ(stats.reads, 1u);
}

TEST_P(DeviceTest, QueuesReadsBeyondTheQueueDepth) {
  constexpr int kReads = 100;
  ASSERT_OK_AND_ASSIGN(auto device, OpenDevice(Options(/*queue_depth=*/2)));
  std::vector<uint8_t> bytes = RandomBytes(kRegionBytes, 7);
  Buffer source = Filled(bytes);
  const std::span<const uint8_t> spans[] = {{source.data(), bytes.size()}};
  ASSERT_OK(device->Write(1, 0, spans));

  std::vector<Buffer> buffers;
  std::vector<DeviceRead> reads;
  absl::BlockingCounter pending(kReads);
  absl::Mutex mu;
  std::vector<int> failed;
  for (int i = 0; i < kReads; ++i) {
    buffers.push_back(BufferPool::Default().Allocate(8192));
    uint64_t offset = (uint64_t(i) * 3 % 255) * 4096;
    reads.push_back(
        DeviceRead{.region = 1,
                   .offset = offset,
                   .dest = {buffers.back().data(), 8192},
                   .done = [&, i, offset,
                            dest = buffers.back().data()](absl::Status status) {
                     if (!status.ok() ||
                         std::memcmp(dest, bytes.data() + offset, 8192) != 0) {
                       absl::MutexLock lock(&mu);
                       failed.push_back(i);
                     }
                     pending.DecrementCount();
                   }});
  }
  device->ReadAsync(std::move(reads));
  pending.Wait();
  EXPECT_THAT(failed, ::testing::IsEmpty());
}

TEST_P(DeviceTest, ReadPastTheEndOfAShortenedFileIsDataLoss) {
  ASSERT_OK_AND_ASSIGN(auto device, OpenDevice(Options()));
  // The first page comes back as a short read; the rest finds the end.
  ASSERT_EQ(truncate(temp_.Sub(RegionFileName(1)).c_str(), 4096), 0);
  Buffer buffer = BufferPool::Default().Allocate(8192);
  EXPECT_THAT(device->Read(1, 0, {buffer.data(), 8192}),
              StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK(device->Read(1, 0, {buffer.data(), 4096}));
}

TEST_P(DeviceTest, FaultInjectingDeviceFailsAndCorruptsChosenIo) {
  ASSERT_OK_AND_ASSIGN(auto base, OpenDevice(Options()));
  FaultInjectingDevice device(std::move(base));
  std::vector<uint8_t> bytes = RandomBytes(8192, 3);
  Buffer source = Filled(bytes);
  const std::span<const uint8_t> spans[] = {{source.data(), bytes.size()}};

  device.Inject(Fault{.op = Fault::Op::kWrite, .region = 1, .error = ENOSPC});
  EXPECT_THAT(device.Write(1, 0, spans),
              StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_OK(device.Write(0, 0, spans));

  Buffer dest = BufferPool::Default().Allocate(8192);
  device.Inject(
      Fault{.op = Fault::Op::kRead, .offset = 0, .error = EIO, .times = 1});
  EXPECT_THAT(device.Read(0, 0, {dest.data(), 8192}),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(device.Read(0, 0, {dest.data(), 8192}));
  EXPECT_EQ(0, std::memcmp(dest.data(), bytes.data(), 8192));

  device.Inject(Fault{
      .op = Fault::Op::kRead, .corrupt = true, .corrupt_at = 5, .times = 1});
  ASSERT_OK(device.Read(0, 0, {dest.data(), 8192}));
  EXPECT_EQ(dest.data()[5], bytes[5] ^ 0xFF);
  EXPECT_EQ(device.faults_applied(), 3u);

  device.ClearFaults();
  ASSERT_OK(device.Write(1, 0, spans));
  DeviceStats stats = device.stats();
  EXPECT_EQ(stats.write_errors, 1u);
  EXPECT_EQ(stats.read_errors, 1u);
}

}  // namespace
}  // namespace pstore
