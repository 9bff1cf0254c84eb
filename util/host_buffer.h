// HostBuffer: memory for one tensor that a client is about to fill, as the
// Python module hands it out (and pstore-bench allocates it to compare):
// from 4 MiB up a 2 MiB-aligned anonymous mapping of its own advised
// MADV_HUGEPAGE, so that filling it faults once per 2 MiB where the kernel
// grants huge pages; below, 64-byte aligned heap memory. Never zeroed by us
// (the kernel zeroes fresh pages; whoever fills it writes every byte), and
// never null, an empty buffer included. Freed on destruction.
//
// Not thread-safe; distinct buffers may be used from distinct threads.

#ifndef PSTORE_UTIL_HOST_BUFFER_H_
#define PSTORE_UTIL_HOST_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/statusor.h"

namespace pstore {

class HostBuffer {
 public:
  // Returns a buffer of `size` bytes; ResourceExhausted if the memory
  // cannot be had.
  static absl::StatusOr<std::unique_ptr<HostBuffer>> Allocate(size_t size);
  ~HostBuffer();

  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() const { return {data_, size_}; }

 private:
  HostBuffer() = default;

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_bytes_ = 0;  // 0: from aligned_alloc.
};

}  // namespace pstore

#endif  // PSTORE_UTIL_HOST_BUFFER_H_
