// Device: the NVMe tier's view of its disk, a fixed number of equally sized
// region files addressed as (region, offset). In the manner of CacheLib
// navy's Device, the public methods are non-virtual: they check the request,
// count it in DeviceStats and then call the protected ReadImpl/WriteImpl of
// an engine, so that statistics and fault injection live in one place. A
// wrapper device (tests/testing/fault_injecting_device.h) forwards to another
// device and fails or corrupts chosen I/Os.
//
// Two engines, made by factory functions: io_uring (liburing; one ring, a
// completion thread, many reads in flight, batched submissions) and
// pread/pwrite on a util/ThreadPool. OpenDevice picks io_uring and falls back
// to pread/pwrite, logging once, where the kernel refuses io_uring.
//
// Every offset, length and buffer address must be a multiple of
// kIoAlignment (4 KiB), because region files are opened with O_DIRECT (where
// the filesystem allows it; elsewhere, e.g. tmpfs, without, logged once).
//
// Thread-safe: any thread may call any method. Read callbacks run exactly
// once, on a device thread, or on the caller's thread when the request is
// refused before any I/O; they must not block and must not destroy the
// device. Destroying the device waits for every I/O already queued and runs
// its callback.

#ifndef PSTORE_STORAGE_NVME_DEVICE_H_
#define PSTORE_STORAGE_NVME_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore {

namespace nvme_internal {

// Tests only: a seam in the io_uring engine for faults the kernel cannot be
// made to produce. A hook that is set runs before each call of the system
// call it names, on the thread about to make it, and returns 0 to let the
// call go ahead or a negative errno value that the call then returns without
// reaching the kernel. Hooks must be thread-safe.
struct IoUringFaults {
  std::function<int()> before_submit;  // io_uring_submit
  std::function<int()> before_wait;    // io_uring_wait_cqe
};

}  // namespace nvme_internal

// Receives the outcome of one asynchronous I/O.
using IoCallback = absl::AnyInvocable<void(absl::Status) &&>;

// One read of `dest.size()` bytes at `offset` of region `region`.
struct DeviceRead {
  uint32_t region = 0;
  uint64_t offset = 0;
  std::span<uint8_t> dest;
  IoCallback done;
};

// Counters since the device was made. An I/O refused before reaching the
// engine (bad arguments) counts as an error only.
struct DeviceStats {
  uint64_t reads = 0;
  uint64_t read_bytes = 0;
  uint64_t read_errors = 0;
  uint64_t writes = 0;
  uint64_t write_bytes = 0;
  uint64_t write_errors = 0;
};

struct DeviceOptions {
  // Directory of the region files `region-000000.dat`, ...; it must exist.
  // Default: none (required).
  std::string dir;

  // Number of region files. Region files numbered past it are deleted.
  // Default: 2.
  uint32_t num_regions = 2;

  // Size of each region file, a multiple of 4 KiB; files are preallocated
  // (fallocate) or cut to this size.
  // Default: 256 MiB.
  uint64_t region_bytes = uint64_t{256} << 20;

  // io_uring only: ring entries, and the most I/Os in flight; more wait in a
  // queue without blocking the caller.
  // Default: 64.
  uint32_t queue_depth = 64;

  // pread/pwrite only: worker threads.
  // Default: 4.
  int sync_io_threads = 4;

  // OpenDevice only: try io_uring first.
  // Default: true.
  bool use_io_uring = true;

  // io_uring only, tests only: injected faults.
  // Default: none.
  nvme_internal::IoUringFaults io_uring_faults = {};
};

class Device {
 public:
  virtual ~Device() = default;

  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  uint32_t num_regions() const { return num_regions_; }
  uint64_t region_bytes() const { return region_bytes_; }

  // Returns true if this device (or the one it wraps) uses io_uring.
  virtual bool uses_io_uring() const = 0;

  // Queues every read of `reads` (the io_uring engine submits them with one
  // system call) and returns at once. Each callback gets OK once all of its
  // bytes are in `dest`; InvalidArgument for a read that is out of bounds or
  // not aligned; DataLoss if the file ends early; the errno status of a
  // failed read (EIO is Unavailable). REQUIRES: every `dest` stays valid
  // until its callback runs.
  void ReadAsync(std::vector<DeviceRead> reads);
  // Queues one read, as above.
  void ReadAsync(uint32_t region, uint64_t offset, std::span<uint8_t> dest,
                 IoCallback done);
  // Reads as ReadAsync does and waits for the outcome. REQUIRES: not called
  // from a read callback.
  absl::Status Read(uint32_t region, uint64_t offset, std::span<uint8_t> dest);

  // Writes the concatenation of `spans` at `offset` of region `region`, as
  // one vectored write, and returns when it is done. Codes: InvalidArgument
  // (out of bounds, not aligned); ResourceExhausted (ENOSPC); the errno
  // status of a failed write otherwise.
  absl::Status Write(uint32_t region, uint64_t offset,
                     std::span<const std::span<const uint8_t>> spans);

  // Flushes written data of every region file to stable storage
  // (fdatasync). Returns the first error.
  absl::Status Sync();

  DeviceStats stats() const;

 protected:
  Device(uint32_t num_regions, uint64_t region_bytes)
      : num_regions_(num_regions), region_bytes_(region_bytes) {}

  // Performs checked reads; each callback runs exactly once.
  virtual void ReadImpl(std::vector<DeviceRead> reads) = 0;
  // Performs a checked write; `spans` is not empty and no span is empty.
  virtual absl::Status WriteImpl(
      uint32_t region, uint64_t offset,
      std::span<const std::span<const uint8_t>> spans) = 0;
  virtual absl::Status SyncImpl() = 0;

 private:
  // Returns OK if [offset, offset + size) lies in a region and is aligned.
  absl::Status CheckRange(absl::string_view what, uint32_t region,
                          uint64_t offset, uint64_t size) const;

  const uint32_t num_regions_;
  const uint64_t region_bytes_;
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> read_errors_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> write_bytes_{0};
  std::atomic<uint64_t> write_errors_{0};
};

// Returns the name of region file `region`: "region-000042.dat".
std::string RegionFileName(uint32_t region);

// Opens (creating and preallocating as needed) the region files of
// `options` and returns an io_uring device. Unimplemented or the errno status
// of io_uring_queue_init if the kernel refuses io_uring; the errno status of
// a file that cannot be opened or sized.
absl::StatusOr<std::unique_ptr<Device>> OpenIoUringDevice(
    const DeviceOptions& options);

// Opens the region files of `options` and returns a pread/pwrite device.
absl::StatusOr<std::unique_ptr<Device>> OpenSyncDevice(
    const DeviceOptions& options);

// Returns an io_uring device if options.use_io_uring and the kernel allows
// it, else a pread/pwrite device; the fallback is logged once per process.
absl::StatusOr<std::unique_ptr<Device>> OpenDevice(
    const DeviceOptions& options);

}  // namespace pstore

#endif  // PSTORE_STORAGE_NVME_DEVICE_H_
