// RegionFiles: the open file descriptors of a device's region files, and the
// engine constructors that take them. Internal to storage/nvme/.
//
// Not thread-safe to move; the descriptors themselves may be used from any
// thread.

#ifndef PSTORE_STORAGE_NVME_INTERNAL_REGION_FILES_H_
#define PSTORE_STORAGE_NVME_INTERNAL_REGION_FILES_H_

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/nvme/device.h"

namespace pstore::nvme_internal {

class RegionFiles {
 public:
  RegionFiles() = default;
  ~RegionFiles();
  RegionFiles(RegionFiles&& other) noexcept;
  RegionFiles& operator=(RegionFiles&& other) noexcept;

  // Opens or creates region files 0 .. options.num_regions - 1 under
  // options.dir with O_DIRECT (without it, logged once, where the
  // filesystem refuses it), sizes each to options.region_bytes and deletes
  // region files numbered past them.
  static absl::StatusOr<RegionFiles> Open(const DeviceOptions& options);

  int fd(uint32_t region) const { return fds_[region]; }
  const std::vector<int>& fds() const { return fds_; }
  // Returns the path of region file `region`, for error messages.
  const std::string& path(uint32_t region) const { return paths_[region]; }

  // Runs fdatasync on every file; returns the first error.
  absl::Status SyncAll() const;

 private:
  void Close();

  std::vector<int> fds_;
  std::vector<std::string> paths_;
};

// Returns one iovec per span of `spans`.
std::vector<iovec> ToIovecs(std::span<const std::span<const uint8_t>> spans);

// Drops the first `bytes` bytes from `iovecs` (a partial transfer), removing
// the vectors that are done and shortening the first one left.
void AdvanceIovecs(std::vector<iovec>& iovecs, size_t bytes);

// Returns an io_uring device over `files`, which it takes only on success.
// The errno status of io_uring_queue_init if the kernel refuses io_uring.
absl::StatusOr<std::unique_ptr<Device>> MakeIoUringDevice(
    RegionFiles& files, const DeviceOptions& options);

// Returns a pread/pwrite device over `files`.
std::unique_ptr<Device> MakeSyncDevice(RegionFiles files,
                                       const DeviceOptions& options);

}  // namespace pstore::nvme_internal

#endif  // PSTORE_STORAGE_NVME_INTERNAL_REGION_FILES_H_
