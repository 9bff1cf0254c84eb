// The io_uring engine when its own system calls fail: a submission the
// kernel refuses for good, and a completion wait that keeps failing. Real
// kernels do not fail these on demand, so the faults come through the
// engine's test seam (DeviceOptions::io_uring_faults); the I/O itself is
// real, on real region files.

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "storage/buffer_pool.h"
#include "storage/nvme/device.h"
#include "tests/storage/nvme/nvme_test_util.h"
#include "tests/testing/io_uring_available.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::IoUringAvailable;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::ReadFileBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

constexpr uint64_t kRegionBytes = uint64_t{1} << 20;
constexpr size_t kPage = 4096;

// Bound on every wait for an I/O: far beyond what one takes, so that a test
// fails there instead of hanging.
constexpr absl::Duration kBound = absl::Seconds(10);

// Sends the default spdlog logger's lines to a string while in scope.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("captured", std::move(sink)));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }

  // Returns the number of lines logged so far that contain `text`.
  // REQUIRES: no thread logs meanwhile.
  int Count(const std::string& text) const {
    std::istringstream lines(stream_.str());
    int count = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find(text) != std::string::npos) ++count;
    }
    return count;
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

class IoUringDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!IoUringAvailable(&why)) {
      GTEST_SKIP() << "io_uring is not available here: " << why;
    }
  }

  // Returns options for an io_uring device whose submissions fail with
  // EBADF while failing_submits_ is above zero (each counts one down) and
  // whose waits fail likewise with failing_waits_.
  DeviceOptions Options(uint32_t queue_depth = 64) {
    DeviceOptions options{.dir = temp_.path().string(),
                          .num_regions = 1,
                          .region_bytes = kRegionBytes,
                          .queue_depth = queue_depth,
                          .use_io_uring = true};
    options.io_uring_faults.before_submit = [this] {
      return TakeFault(failing_submits_, submit_faults_);
    };
    options.io_uring_faults.before_wait = [this] {
      return TakeFault(failing_waits_, wait_faults_);
    };
    return options;
  }

  // Returns a pool buffer of `size` bytes, each `value`.
  static Buffer Filled(size_t size, uint8_t value) {
    Buffer buffer = BufferPool::Default().Allocate(size);
    std::memset(buffer.data(), value, size);
    return buffer;
  }

  // Returns -EBADF and counts it in `taken` if `budget` is above zero,
  // taking one from it; else 0.
  static int TakeFault(std::atomic<int>& budget, std::atomic<int>& taken) {
    int left = budget.load();
    while (left > 0) {
      if (budget.compare_exchange_weak(left, left - 1)) {
        ++taken;
        return -EBADF;
      }
    }
    return 0;
  }

  TempDir temp_;
  std::atomic<int> failing_submits_{0};
  std::atomic<int> submit_faults_{0};
  std::atomic<int> failing_waits_{0};
  std::atomic<int> wait_faults_{0};
};

// The outcomes of a batch of reads, collected as their callbacks run.
class ReadOutcomes {
 public:
  explicit ReadOutcomes(int expected) : expected_(expected) {}

  IoCallback Callback(int i) {
    return [this, i](absl::Status status) {
      absl::MutexLock lock(&mu_);
      statuses_.emplace_back(i, std::move(status));
    };
  }

  // Waits up to kBound for every expected callback; returns true if all ran.
  bool Wait() {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(statuses_.size()) >= expected_;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&all), kBound);
  }

  std::vector<std::pair<int, absl::Status>> statuses() {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }

 private:
  const int expected_;
  absl::Mutex mu_;
  std::vector<std::pair<int, absl::Status>> statuses_ ABSL_GUARDED_BY(mu_);
};

TEST_F(IoUringDeviceTest, IoWhoseSubmissionFailsForGoodFailsAndNeverRuns) {
  const std::vector<uint8_t> old_bytes = RandomBytes(4 * kPage, 1);
  const std::vector<uint8_t> new_bytes = RandomBytes(kPage, 2);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Device> device,
                         OpenIoUringDevice(Options()));
    Buffer source = BufferPool::Default().Allocate(old_bytes.size());
    std::memcpy(source.data(), old_bytes.data(), old_bytes.size());
    const std::span<const uint8_t> old_spans[] = {
        {source.data(), old_bytes.size()}};
    ASSERT_OK(device->Write(0, 0, old_spans));

    // A batch of reads whose one submission fails.
    constexpr int kReads = 3;
    std::vector<Buffer> dests;
    std::vector<DeviceRead> reads;
    ReadOutcomes outcomes(kReads);
    for (int i = 0; i < kReads; ++i) {
      dests.push_back(Filled(kPage, 0xEE));
      reads.push_back(DeviceRead{.region = 0,
                                 .offset = uint64_t(i) * kPage,
                                 .dest = {dests.back().data(), kPage},
                                 .done = outcomes.Callback(i)});
    }
    failing_submits_ = 1;
    device->ReadAsync(std::move(reads));
    const bool reads_done = outcomes.Wait();
    EXPECT_TRUE(reads_done) << "reads whose submission failed never completed";

    // A write whose submission fails, on another thread so that a write
    // that never returns fails the test instead of hanging it.
    Buffer update = BufferPool::Default().Allocate(kPage);
    std::memcpy(update.data(), new_bytes.data(), kPage);
    const std::span<const uint8_t> new_spans[] = {{update.data(), kPage}};
    absl::Status write_status;
    absl::Notification write_done;
    failing_submits_ = 1;
    std::thread writer([&] {
      write_status = device->Write(0, kPage, new_spans);
      write_done.Notify();
    });
    const bool write_returned =
        write_done.WaitForNotificationWithTimeout(kBound);
    EXPECT_TRUE(write_returned) << "a write whose submission failed never "
                                   "returned";

    // The device goes on working; this submission would also carry any
    // entry left over from the failed ones.
    failing_submits_ = 0;
    Buffer check = BufferPool::Default().Allocate(kPage);
    ASSERT_OK(device->Read(0, 3 * kPage, {check.data(), kPage}));
    EXPECT_EQ(0,
              std::memcmp(check.data(), old_bytes.data() + 3 * kPage, kPage));
    ASSERT_TRUE(outcomes.Wait());
    write_done.WaitForNotification();
    writer.join();

    EXPECT_EQ(submit_faults_.load(), 2);
    std::vector<std::pair<int, absl::Status>> statuses = outcomes.statuses();
    ASSERT_EQ(statuses.size(), size_t{kReads});
    for (const auto& [i, status] : statuses) {
      EXPECT_THAT(status, StatusIs(absl::StatusCode::kInternal,
                                   ::testing::HasSubstr("io_uring_submit")))
          << "read " << i;
      // Told it failed, the read must not land in its buffer later.
      EXPECT_EQ(dests[i].data()[0], 0xEE) << "read " << i;
      EXPECT_EQ(dests[i].data()[kPage - 1], 0xEE) << "read " << i;
    }
    EXPECT_THAT(write_status,
                StatusIs(absl::StatusCode::kInternal,
                         ::testing::HasSubstr("io_uring_submit")));
    DeviceStats stats = device->stats();
    EXPECT_EQ(stats.read_errors, uint64_t{kReads});
    EXPECT_EQ(stats.write_errors, 1u);
  }
  // The device waited for everything it had queued when destroyed; the
  // failed write never reached the file.
  std::vector<uint8_t> on_disk =
      ReadFileBytes(temp_.Sub(RegionFileName(0)), 0, old_bytes.size());
  EXPECT_TRUE(on_disk == old_bytes);
}

TEST_F(IoUringDeviceTest, ReadsWaitingBehindAFailedSubmissionFailToo) {
  // Two entries fit in the ring; the other reads wait behind them.
  constexpr int kReads = 7;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Device> device,
                       OpenIoUringDevice(Options(/*queue_depth=*/2)));
  std::vector<Buffer> dests;
  std::vector<DeviceRead> reads;
  ReadOutcomes outcomes(kReads);
  for (int i = 0; i < kReads; ++i) {
    dests.push_back(Filled(kPage, 0xEE));
    reads.push_back(DeviceRead{.region = 0,
                               .offset = uint64_t(i) * kPage,
                               .dest = {dests.back().data(), kPage},
                               .done = outcomes.Callback(i)});
  }
  failing_submits_ = 1;
  device->ReadAsync(std::move(reads));
  const bool reads_done = outcomes.Wait();
  EXPECT_TRUE(reads_done) << "reads queued behind a failed submission never "
                             "completed";

  failing_submits_ = 0;
  Buffer check = BufferPool::Default().Allocate(kPage);
  ASSERT_OK(device->Read(0, 0, {check.data(), kPage}));
  ASSERT_TRUE(outcomes.Wait());
  std::vector<std::pair<int, absl::Status>> statuses = outcomes.statuses();
  ASSERT_EQ(statuses.size(), size_t{kReads});
  for (const auto& [i, status] : statuses) {
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInternal)) << "read " << i;
    EXPECT_EQ(dests[i].data()[0], 0xEE) << "read " << i;
  }
  EXPECT_EQ(submit_faults_.load(), 1);
}

TEST_F(IoUringDeviceTest, FailingCompletionWaitsBackOffAndLogOncePerStreak) {
  constexpr int kFailures = 6;
  CapturedLog log;
  {
    failing_waits_ = kFailures;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Device> device,
                         OpenIoUringDevice(Options()));
    // The completion thread fails its first waits, then serves this I/O.
    const std::vector<uint8_t> bytes = RandomBytes(2 * kPage, 3);
    Buffer source = BufferPool::Default().Allocate(bytes.size());
    std::memcpy(source.data(), bytes.data(), bytes.size());
    const std::span<const uint8_t> spans[] = {{source.data(), bytes.size()}};
    ASSERT_OK(device->Write(0, 0, spans));
    Buffer dest = BufferPool::Default().Allocate(bytes.size());
    ASSERT_OK(device->Read(0, 0, {dest.data(), bytes.size()}));
    EXPECT_EQ(0, std::memcmp(dest.data(), bytes.data(), bytes.size()));
    EXPECT_EQ(wait_faults_.load(), kFailures);

    // A second streak, once that I/O is done, is logged again: it starts
    // after the next completion and ends with the device's shutdown.
    failing_waits_ = 2;
    ASSERT_OK(device->Read(0, 0, {dest.data(), kPage}));
  }
  EXPECT_EQ(wait_faults_.load(), kFailures + 2);
  EXPECT_EQ(log.Count("event=io_uring_wait_failed"), 2);
  EXPECT_EQ(log.Count("event=io_uring_wait_recovered failures=6"), 1);
  EXPECT_EQ(log.Count("event=io_uring_wait_recovered failures=2"), 1);
}

}  // namespace
}  // namespace pstore
