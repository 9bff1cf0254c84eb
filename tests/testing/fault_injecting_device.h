// FaultInjectingDevice: a Device that forwards to another and fails, drops
// or corrupts the I/Os that match the faults injected into it, in the
// manner of leveldb's fault-injection Env. For tests of the NVMe tier's
// behaviour under disk-full, I/O errors and bit rot, which a real disk
// cannot be made to produce on demand.
//
// Thread-safe: faults may be injected and cleared while I/O runs.

#ifndef PSTORE_TESTS_TESTING_FAULT_INJECTING_DEVICE_H_
#define PSTORE_TESTS_TESTING_FAULT_INJECTING_DEVICE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/nvme/device.h"

namespace pstore::testing {

// One fault and the I/Os it applies to.
struct Fault {
  enum class Op { kRead, kWrite };
  Op op = Op::kRead;
  // Applies to this region only; to every region if unset.
  std::optional<uint32_t> region = std::nullopt;
  // Applies to I/Os starting at this offset only; to any if unset.
  std::optional<uint64_t> offset = std::nullopt;
  // Fails the I/O with ErrnoToStatus(error) without doing it (ENOSPC, EIO).
  int error = 0;
  // Flips every bit of one byte: of what a read returns, or of what a write
  // stores (the caller's buffer is left alone).
  bool corrupt = false;
  // Offset within the I/O of the byte that `corrupt` flips.
  uint64_t corrupt_at = 0;
  // Writes only: reports success without writing (a lost write).
  bool drop = false;
  // Number of matching I/Os the fault applies to; -1 for all of them.
  int times = -1;
};

class FaultInjectingDevice : public Device {
 public:
  // Wraps `base`, taking ownership; reports base's geometry.
  explicit FaultInjectingDevice(std::unique_ptr<Device> base);

  // Adds `fault`; the first fault that matches an I/O applies to it.
  void Inject(Fault fault);
  // Removes every fault.
  void ClearFaults();
  // Returns the number of I/Os a fault has applied to.
  uint64_t faults_applied() const;

  Device& base() { return *base_; }
  bool uses_io_uring() const override { return base_->uses_io_uring(); }

 protected:
  void ReadImpl(std::vector<DeviceRead> reads) override;
  absl::Status WriteImpl(
      uint32_t region, uint64_t offset,
      std::span<const std::span<const uint8_t>> spans) override;
  absl::Status SyncImpl() override { return base_->Sync(); }

 private:
  // Returns the fault that applies to an I/O and counts it, or nullopt.
  std::optional<Fault> Match(Fault::Op op, uint32_t region, uint64_t offset);

  std::unique_ptr<Device> base_;
  mutable absl::Mutex mu_;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_FAULT_INJECTING_DEVICE_H_
