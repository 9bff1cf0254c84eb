#include "tests/testing/fault_injecting_device.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/buffer_pool.h"
#include "util/status.h"

namespace pstore::testing {

FaultInjectingDevice::FaultInjectingDevice(std::unique_ptr<Device> base)
    : Device(base->num_regions(), base->region_bytes()),
      base_(std::move(base)) {}

void FaultInjectingDevice::Inject(Fault fault) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(std::move(fault));
}

void FaultInjectingDevice::ClearFaults() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
}

uint64_t FaultInjectingDevice::faults_applied() const {
  absl::MutexLock lock(&mu_);
  return applied_;
}

std::optional<Fault> FaultInjectingDevice::Match(Fault::Op op, uint32_t region,
                                                 uint64_t offset) {
  absl::MutexLock lock(&mu_);
  for (Fault& fault : faults_) {
    if (fault.op != op || fault.times == 0) continue;
    if (fault.region.has_value() && *fault.region != region) continue;
    if (fault.offset.has_value() && *fault.offset != offset) continue;
    if (fault.times > 0) --fault.times;
    ++applied_;
    return fault;
  }
  return std::nullopt;
}

void FaultInjectingDevice::ReadImpl(std::vector<DeviceRead> reads) {
  std::vector<DeviceRead> forward;
  forward.reserve(reads.size());
  for (DeviceRead& read : reads) {
    std::optional<Fault> fault =
        Match(Fault::Op::kRead, read.region, read.offset);
    if (fault.has_value() && fault->error != 0) {
      std::move(read.done)(ErrnoToStatus(
          fault->error, absl::StrCat("injected read fault, region ",
                                     read.region, " at ", read.offset)));
      continue;
    }
    if (fault.has_value() && fault->corrupt &&
        fault->corrupt_at < read.dest.size()) {
      read.done = [dest = read.dest, at = fault->corrupt_at,
                   done = std::move(read.done)](absl::Status status) mutable {
        if (status.ok()) dest[at] ^= 0xFF;
        std::move(done)(std::move(status));
      };
    }
    forward.push_back(std::move(read));
  }
  if (!forward.empty()) base_->ReadAsync(std::move(forward));
}

absl::Status FaultInjectingDevice::WriteImpl(
    uint32_t region, uint64_t offset,
    std::span<const std::span<const uint8_t>> spans) {
  std::optional<Fault> fault = Match(Fault::Op::kWrite, region, offset);
  if (!fault.has_value()) return base_->Write(region, offset, spans);
  if (fault->error != 0) {
    return ErrnoToStatus(
        fault->error,
        absl::StrCat("injected write fault, region ", region, " at ", offset));
  }
  if (fault->drop) return absl::OkStatus();
  if (!fault->corrupt) return base_->Write(region, offset, spans);
  size_t total = 0;
  for (std::span<const uint8_t> span : spans) total += span.size();
  Buffer copy = BufferPool::Default().Allocate(total);
  size_t at = 0;
  for (std::span<const uint8_t> span : spans) {
    std::memcpy(copy.data() + at, span.data(), span.size());
    at += span.size();
  }
  if (fault->corrupt_at < total) copy.data()[fault->corrupt_at] ^= 0xFF;
  const std::span<const uint8_t> one[] = {{copy.data(), total}};
  return base_->Write(region, offset, one);
}

}  // namespace pstore::testing
