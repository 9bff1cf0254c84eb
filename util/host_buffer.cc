#include "util/host_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr size_t kHugePageBytes = size_t{2} << 20;
// From this size up, a buffer is a mapping of its own.
constexpr size_t kMappedBytes = size_t{4} << 20;
constexpr size_t kAlignment = 64;

}  // namespace

absl::StatusOr<std::unique_ptr<HostBuffer>> HostBuffer::Allocate(size_t size) {
  auto buffer = std::unique_ptr<HostBuffer>(new HostBuffer());
  buffer->size_ = size;
  if (size < kMappedBytes) {
    size_t rounded =
        std::max(kAlignment, (size + kAlignment - 1) / kAlignment * kAlignment);
    buffer->data_ =
        static_cast<uint8_t*>(std::aligned_alloc(kAlignment, rounded));
    if (buffer->data_ == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", size, " bytes"));
    }
    return buffer;
  }
  // Map a huge page more than needed, then unmap what lies before the
  // first 2 MiB boundary and after the buffer.
  const size_t mapped =
      (size + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const size_t span = mapped + kHugePageBytes;
  void* at = mmap(nullptr, span, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (at == MAP_FAILED) {
    absl::Status error =
        ErrnoToStatus(errno, absl::StrCat("map ", size, " bytes"));
    return absl::ResourceExhaustedError(error.message());
  }
  const uintptr_t begin = reinterpret_cast<uintptr_t>(at);
  const uintptr_t aligned =
      (begin + kHugePageBytes - 1) & ~(uintptr_t{kHugePageBytes} - 1);
  const uintptr_t end = aligned + mapped;
  // Ignored: unmapping a part of a mapping just made cannot fail but for
  // bad arguments, and a part left mapped would only waste address space.
  if (aligned > begin) (void)munmap(at, aligned - begin);
  if (begin + span > end) {
    (void)munmap(reinterpret_cast<void*>(end), begin + span - end);
  }
  buffer->data_ = reinterpret_cast<uint8_t*>(aligned);
  buffer->mapped_bytes_ = mapped;
  // Advice only: where the kernel declines, pages stay 4 KiB.
  (void)madvise(buffer->data_, mapped, MADV_HUGEPAGE);
  return buffer;
}

HostBuffer::~HostBuffer() {
  if (mapped_bytes_ != 0) {
    // Ignored: a destructor cannot report it, and munmap of our own
    // mapping fails only for bad arguments.
    (void)munmap(data_, mapped_bytes_);
  } else {
    std::free(data_);
  }
}

}  // namespace pstore
