// The pread/pwrite engine: reads run on a util/ThreadPool, writes on the
// caller's thread.

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/nvme/device.h"
#include "storage/nvme/internal/region_files.h"
#include "util/status.h"
#include "util/thread_pool.h"

namespace pstore::nvme_internal {
namespace {

// Retries of a call that failed with EAGAIN before giving up.
constexpr int kMaxAgainRetries = 100;

class SyncDevice final : public Device {
 public:
  SyncDevice(RegionFiles files, const DeviceOptions& options)
      : Device(options.num_regions, options.region_bytes),
        files_(std::move(files)),
        pool_(std::make_unique<ThreadPool>(
            "nvme-pread", std::max(1, options.sync_io_threads))) {}

  ~SyncDevice() override {
    // Runs the reads already queued (and their callbacks) before the files
    // close.
    pool_.reset();
  }

  bool uses_io_uring() const override { return false; }

 protected:
  void ReadImpl(std::vector<DeviceRead> reads) override {
    for (DeviceRead& read : reads) {
      // ThreadPool takes copyable closures; the callback is move-only.
      auto shared = std::make_shared<DeviceRead>(std::move(read));
      pool_->Schedule([this, shared] {
        absl::Status status =
            ReadFully(shared->region, shared->offset, shared->dest);
        std::move(shared->done)(std::move(status));
      });
    }
  }

  absl::Status WriteImpl(
      uint32_t region, uint64_t offset,
      std::span<const std::span<const uint8_t>> spans) override {
    std::vector<iovec> iovecs = ToIovecs(spans);
    int again = 0;
    while (!iovecs.empty()) {
      int count = static_cast<int>(std::min<size_t>(iovecs.size(), IOV_MAX));
      ssize_t n = pwritev(files_.fd(region), iovecs.data(), count,
                          static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN && ++again < kMaxAgainRetries) continue;
        return ErrnoToStatus(
            errno,
            absl::StrCat("pwritev ", files_.path(region), " at ", offset));
      }
      if (n == 0) {
        return ErrnoToStatus(
            EIO, absl::StrCat("pwritev ", files_.path(region), " at ", offset,
                              " wrote nothing"));
      }
      offset += static_cast<uint64_t>(n);
      AdvanceIovecs(iovecs, static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status SyncImpl() override { return files_.SyncAll(); }

 private:
  // Reads all of `dest` from `offset` of `region`, resuming short reads.
  absl::Status ReadFully(uint32_t region, uint64_t offset,
                         std::span<uint8_t> dest) {
    size_t done = 0;
    int again = 0;
    while (done < dest.size()) {
      ssize_t n = pread(files_.fd(region), dest.data() + done,
                        dest.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN && ++again < kMaxAgainRetries) continue;
        return ErrnoToStatus(errno, absl::StrCat("pread ", files_.path(region),
                                                 " at ", offset + done));
      }
      if (n == 0) {
        return absl::DataLossError(absl::StrCat(
            "pread ", files_.path(region), ": file ends at ", offset + done));
      }
      done += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  RegionFiles files_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace

std::unique_ptr<Device> MakeSyncDevice(RegionFiles files,
                                       const DeviceOptions& options) {
  return std::make_unique<SyncDevice>(std::move(files), options);
}

}  // namespace pstore::nvme_internal
