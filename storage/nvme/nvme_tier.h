// NvmeTier: the warm tier. Blocks spilled from DRAM are appended, log
// structured, to preallocated region files in one directory, with O_DIRECT
// through io_uring (liburing), 4 KiB aligned; regions are reclaimed oldest
// first, which simply drops their blocks (the cold tier has every block).
// The on-disk layout is in storage/nvme/nvme_format.md.
//
// The index (block id -> region, offset, length) lives in memory and is
// rebuilt at Open by scanning the entry headers of every region, so a
// restart keeps the warm cache. Reads verify the XXH3-128 of the bytes read
// against the block id; a mismatch drops the entry and returns DataLoss.
//
// I/O goes through a Device (storage/nvme/device.h): io_uring with many
// reads in flight and batched submissions, or, where io_uring_queue_init
// fails or Options::use_io_uring is false, pread/pwrite on a thread pool
// (logged once). Read buffers come from the BufferPool, so a read that hits
// lands in pre-faulted memory and is handed out without a copy.
//
// Thread-safe. ReadAsync never blocks: its callback runs on the device's
// completion thread (or at once on the caller's thread for NotFound and
// refused I/O), so a callback must not call Read or destroy the tier. Write
// blocks until the entry is on the device; callers on latency-sensitive
// threads hand spills to a background thread.

#ifndef PSTORE_STORAGE_NVME_NVME_TIER_H_
#define PSTORE_STORAGE_NVME_NVME_TIER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/nvme/device.h"
#include "storage/tier.h"

namespace pstore {

struct NvmeTierOptions {
  // Directory holding the region files; created if missing.
  // Default: none (required).
  std::string dir;

  // Bytes of disk the tier may use: the number of regions is
  // capacity_bytes / region_bytes, at least 2.
  // Default: 16 GiB.
  uint64_t capacity_bytes = uint64_t{16} << 30;

  // Size of one region file; a multiple of 4 KiB, at least 1 MiB. A block
  // larger than region_bytes less 8 KiB (the region header page and its
  // entry header page) is refused with InvalidArgument.
  // Default: 256 MiB.
  uint64_t region_bytes = uint64_t{256} << 20;

  // io_uring submission queue entries; also the most reads in flight.
  // Default: 64.
  uint32_t queue_depth = 64;

  // Use io_uring when the kernel allows it; false forces the pread/pwrite
  // path (tests run the same suite on both).
  // Default: true.
  bool use_io_uring = true;

  // Threads of the pread/pwrite path.
  // Default: 4.
  int sync_io_threads = 4;

  // A device to use instead of opening one (fault injection in tests). The
  // tier takes ownership. Default: none.
  std::unique_ptr<Device> device;
};

class NvmeTier : public CacheTier {
 public:
  // Opens or creates the region files under options.dir and rebuilds the
  // index from them. Region files written with another region size or
  // format version are discarded (the warm cache starts empty) and a
  // warning is logged. Codes: InvalidArgument for bad options; the errno
  // status of a directory or file that cannot be created.
  static absl::StatusOr<std::unique_ptr<NvmeTier>> Open(
      NvmeTierOptions options);

  ~NvmeTier() override;

  absl::string_view name() const override {
    return TierKindName(TierKind::kNvme);
  }
  bool Contains(const BlockId& id) const override;
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  void ReadAsync(const BlockId& id, ReadCallback done) override;
  // Appends `block` at the head of the active region, reclaiming the oldest
  // region when the active one is full. ResourceExhausted if the disk is
  // full (ENOSPC); the tier stays readable.
  absl::Status Write(const BlockId& id, const BlockRef& block) override;
  // Drops `id` from the index; the entry stays on disk until its region is
  // reclaimed, so it may be found again after a restart.
  absl::Status Erase(const BlockId& id) override;
  // Drops every entry and resets every region.
  absl::Status Clear() override;
  TierStats Stats() const override;

  // Returns true if I/O goes through io_uring, false on the pread path.
  bool using_io_uring() const;

 private:
  class Impl;
  explicit NvmeTier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_NVME_NVME_TIER_H_
