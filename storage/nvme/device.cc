#include "storage/nvme/device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "spdlog/spdlog.h"
#include "storage/buffer_pool.h"
#include "storage/nvme/internal/region_files.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr absl::string_view kRegionFilePrefix = "region-";
constexpr absl::string_view kRegionFileSuffix = ".dat";

// Returns true and sets `region` if `name` is a region file name.
bool ParseRegionFileName(absl::string_view name, uint32_t* region) {
  if (name.size() != kRegionFilePrefix.size() + 6 + kRegionFileSuffix.size() ||
      !absl::StartsWith(name, kRegionFilePrefix) ||
      !absl::EndsWith(name, kRegionFileSuffix)) {
    return false;
  }
  absl::string_view digits = name.substr(kRegionFilePrefix.size(), 6);
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(digits, region);
}

// Logs once per process that a filesystem refused O_DIRECT.
void WarnNoDirectIoOnce(const std::string& path) {
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true)) {
    spdlog::warn(
        "event=nvme_no_o_direct path={} action=\"region files use the page "
        "cache\"",
        path);
  }
}

}  // namespace

std::string RegionFileName(uint32_t region) {
  return absl::StrFormat("region-%06u.dat", region);
}

absl::Status Device::CheckRange(absl::string_view what, uint32_t region,
                                uint64_t offset, uint64_t size) const {
  if (region >= num_regions_) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": region ", region, " out of range (", num_regions_, ")"));
  }
  if (offset % kIoAlignment != 0 || size % kIoAlignment != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": offset ", offset, " or length ", size,
                     " not a multiple of ", kIoAlignment));
  }
  if (offset > region_bytes_ || size > region_bytes_ - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": [", offset, ", ", offset + size, ") past the end of region ",
        region, " (", region_bytes_, " bytes)"));
  }
  return absl::OkStatus();
}

void Device::ReadAsync(std::vector<DeviceRead> reads) {
  std::vector<DeviceRead> checked;
  checked.reserve(reads.size());
  for (DeviceRead& read : reads) {
    absl::Status status =
        CheckRange("read", read.region, read.offset, read.dest.size());
    if (status.ok() &&
        reinterpret_cast<uintptr_t>(read.dest.data()) % kIoAlignment != 0) {
      status = absl::InvalidArgumentError("read: buffer not 4 KiB aligned");
    }
    if (!status.ok()) {
      read_errors_.fetch_add(1, std::memory_order_relaxed);
      std::move(read.done)(std::move(status));
      continue;
    }
    reads_.fetch_add(1, std::memory_order_relaxed);
    read_bytes_.fetch_add(read.dest.size(), std::memory_order_relaxed);
    read.done = [this,
                 done = std::move(read.done)](absl::Status status) mutable {
      if (!status.ok()) read_errors_.fetch_add(1, std::memory_order_relaxed);
      std::move(done)(std::move(status));
    };
    checked.push_back(std::move(read));
  }
  if (!checked.empty()) ReadImpl(std::move(checked));
}

void Device::ReadAsync(uint32_t region, uint64_t offset,
                       std::span<uint8_t> dest, IoCallback done) {
  std::vector<DeviceRead> reads;
  reads.push_back(DeviceRead{.region = region,
                             .offset = offset,
                             .dest = dest,
                             .done = std::move(done)});
  ReadAsync(std::move(reads));
}

absl::Status Device::Read(uint32_t region, uint64_t offset,
                          std::span<uint8_t> dest) {
  absl::Notification finished;
  absl::Status result;
  ReadAsync(region, offset, dest, [&](absl::Status status) {
    result = std::move(status);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

absl::Status Device::Write(uint32_t region, uint64_t offset,
                           std::span<const std::span<const uint8_t>> spans) {
  std::vector<std::span<const uint8_t>> nonempty;
  nonempty.reserve(spans.size());
  uint64_t total = 0;
  for (std::span<const uint8_t> span : spans) {
    if (span.empty()) continue;
    if (reinterpret_cast<uintptr_t>(span.data()) % kIoAlignment != 0 ||
        span.size() % kIoAlignment != 0) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      return absl::InvalidArgumentError(
          "write: buffer address or length not 4 KiB aligned");
    }
    total += span.size();
    nonempty.push_back(span);
  }
  absl::Status status = CheckRange("write", region, offset, total);
  if (!status.ok()) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    return status;
  }
  writes_.fetch_add(1, std::memory_order_relaxed);
  write_bytes_.fetch_add(total, std::memory_order_relaxed);
  if (nonempty.empty()) return absl::OkStatus();
  status = WriteImpl(region, offset, nonempty);
  if (!status.ok()) write_errors_.fetch_add(1, std::memory_order_relaxed);
  return status;
}

absl::Status Device::Sync() { return SyncImpl(); }

DeviceStats Device::stats() const {
  DeviceStats stats;
  stats.reads = reads_.load(std::memory_order_relaxed);
  stats.read_bytes = read_bytes_.load(std::memory_order_relaxed);
  stats.read_errors = read_errors_.load(std::memory_order_relaxed);
  stats.writes = writes_.load(std::memory_order_relaxed);
  stats.write_bytes = write_bytes_.load(std::memory_order_relaxed);
  stats.write_errors = write_errors_.load(std::memory_order_relaxed);
  return stats;
}

namespace nvme_internal {

RegionFiles::~RegionFiles() { Close(); }

RegionFiles::RegionFiles(RegionFiles&& other) noexcept
    : fds_(std::move(other.fds_)), paths_(std::move(other.paths_)) {
  other.fds_.clear();
  other.paths_.clear();
}

RegionFiles& RegionFiles::operator=(RegionFiles&& other) noexcept {
  if (this != &other) {
    Close();
    fds_ = std::move(other.fds_);
    paths_ = std::move(other.paths_);
    other.fds_.clear();
    other.paths_.clear();
  }
  return *this;
}

void RegionFiles::Close() {
  // A failed close of a file we only read and wrote with O_DIRECT or synced
  // loses nothing the tier relies on: it is a cache.
  for (int fd : fds_) (void)close(fd);
  fds_.clear();
  paths_.clear();
}

absl::StatusOr<RegionFiles> RegionFiles::Open(const DeviceOptions& options) {
  RegionFiles files;
  const std::filesystem::path dir(options.dir);
  for (uint32_t region = 0; region < options.num_regions; ++region) {
    std::string path = (dir / RegionFileName(region)).string();
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_DIRECT, 0644);
    if (fd < 0 && errno == EINVAL) {
      WarnNoDirectIoOnce(path);
      fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
    files.fds_.push_back(fd);
    files.paths_.push_back(path);

    struct stat st;
    if (fstat(fd, &st) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("fstat ", path));
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > options.region_bytes &&
        ftruncate(fd, static_cast<off_t>(options.region_bytes)) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("ftruncate ", path));
    }
    if (fallocate(fd, 0, 0, static_cast<off_t>(options.region_bytes)) != 0) {
      int error = errno;
      if (error != EOPNOTSUPP) {
        return ErrnoToStatus(error, absl::StrCat("fallocate ", path));
      }
      // The filesystem cannot preallocate: a sparse file of the right size
      // works the same, only with less warning before ENOSPC.
      if (size < options.region_bytes &&
          ftruncate(fd, static_cast<off_t>(options.region_bytes)) != 0) {
        return ErrnoToStatus(errno, absl::StrCat("ftruncate ", path));
      }
    }
  }

  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end;
       !error && it != end; it.increment(error)) {
    uint32_t region;
    if (!ParseRegionFileName(it->path().filename().string(), &region) ||
        region < options.num_regions) {
      continue;
    }
    spdlog::warn("event=nvme_region_deleted path={} regions_configured={}",
                 it->path().string(), options.num_regions);
    std::error_code remove_error;
    if (!std::filesystem::remove(it->path(), remove_error)) {
      spdlog::warn("event=nvme_region_delete_failed path={} error=\"{}\"",
                   it->path().string(), remove_error.message());
    }
  }
  if (error) {
    return ErrnoToStatus(error.value(), absl::StrCat("list ", options.dir));
  }
  return files;
}

std::vector<iovec> ToIovecs(std::span<const std::span<const uint8_t>> spans) {
  std::vector<iovec> iovecs;
  iovecs.reserve(spans.size());
  for (std::span<const uint8_t> span : spans) {
    // iovec has no const variant; the kernel only reads a write's buffers.
    iovecs.push_back(iovec{const_cast<uint8_t*>(span.data()), span.size()});
  }
  return iovecs;
}

void AdvanceIovecs(std::vector<iovec>& iovecs, size_t bytes) {
  size_t done = 0;
  while (done < iovecs.size() && bytes >= iovecs[done].iov_len) {
    bytes -= iovecs[done].iov_len;
    ++done;
  }
  iovecs.erase(iovecs.begin(), iovecs.begin() + done);
  if (!iovecs.empty() && bytes > 0) {
    iovecs.front().iov_base =
        static_cast<uint8_t*>(iovecs.front().iov_base) + bytes;
    iovecs.front().iov_len -= bytes;
  }
}

absl::Status RegionFiles::SyncAll() const {
  absl::Status first;
  for (size_t i = 0; i < fds_.size(); ++i) {
    if (fdatasync(fds_[i]) != 0 && first.ok()) {
      first = ErrnoToStatus(errno, absl::StrCat("fdatasync ", paths_[i]));
    }
  }
  return first;
}

}  // namespace nvme_internal

absl::StatusOr<std::unique_ptr<Device>> OpenIoUringDevice(
    const DeviceOptions& options) {
  PSTORE_ASSIGN_OR_RETURN(nvme_internal::RegionFiles files,
                          nvme_internal::RegionFiles::Open(options));
  return nvme_internal::MakeIoUringDevice(files, options);
}

absl::StatusOr<std::unique_ptr<Device>> OpenSyncDevice(
    const DeviceOptions& options) {
  PSTORE_ASSIGN_OR_RETURN(nvme_internal::RegionFiles files,
                          nvme_internal::RegionFiles::Open(options));
  return nvme_internal::MakeSyncDevice(std::move(files), options);
}

absl::StatusOr<std::unique_ptr<Device>> OpenDevice(
    const DeviceOptions& options) {
  PSTORE_ASSIGN_OR_RETURN(nvme_internal::RegionFiles files,
                          nvme_internal::RegionFiles::Open(options));
  if (options.use_io_uring) {
    absl::StatusOr<std::unique_ptr<Device>> device =
        nvme_internal::MakeIoUringDevice(files, options);
    if (device.ok()) return device;
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      spdlog::warn(
          "event=nvme_io_uring_unavailable action=\"using pread/pwrite\" "
          "status=\"{}\"",
          device.status().ToString());
    }
  }
  return nvme_internal::MakeSyncDevice(std::move(files), options);
}

}  // namespace pstore
