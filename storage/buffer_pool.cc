#include "storage/buffer_pool.h"

#include <sys/mman.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pstore {
namespace {

// Buffers at least this large come from mmap, faulted in up front; smaller
// ones come from the heap.
constexpr size_t kMmapThreshold = size_t{64} << 10;

// Buffers at least this large are mapped on 2 MiB boundaries and backed by
// transparent huge pages where the kernel allows it (THP "always" or
// "madvise"): a fresh 4 MiB block then costs two page faults instead of
// 1024 (bench/README.md, "Figures behind choices in the code"), O_DIRECT
// pins two pages per block, and hashing and copying miss the TLB less.
constexpr size_t kHugePage = size_t{2} << 20;

// madvise advice that faults pages in for writing (Linux 5.14); older
// kernels refuse it and the pages are touched instead.
constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE

// Faults in [data, data + size) for writing.
void Populate(uint8_t* data, size_t size) {
  if (madvise(data, size, kPopulateWrite) == 0) return;
  for (size_t i = 0; i < size; i += 4096) data[i] = 0;
}

// Maps `capacity` bytes at a 2 MiB boundary, asking for huge pages.
uint8_t* MapHuge(size_t capacity) {
  void* raw = mmap(nullptr, capacity + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uint8_t* start = static_cast<uint8_t*>(raw);
  uint8_t* data = reinterpret_cast<uint8_t*>(
      (reinterpret_cast<uintptr_t>(start) + kHugePage - 1) & ~(kHugePage - 1));
  // Give back the unaligned head and the tail past the buffer.
  if (data > start) munmap(start, data - start);
  size_t tail = (start + capacity + kHugePage) - (data + capacity);
  if (tail > 0) munmap(data + capacity, tail);
  madvise(data, capacity, MADV_HUGEPAGE);
  Populate(data, capacity);
  return data;
}

// Ends the process, as operator new does when memory runs out.
[[noreturn]] void OutOfMemory(size_t capacity) {
  std::fprintf(stderr, "pstore: out of memory allocating %zu bytes\n",
               capacity);
  std::abort();
}

}  // namespace

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Reset();
    pool_ = other.pool_;
    data_ = other.data_;
    capacity_ = other.capacity_;
    other.pool_ = nullptr;
    other.data_ = nullptr;
    other.capacity_ = 0;
  }
  return *this;
}

void Buffer::Reset() {
  if (data_ != nullptr) pool_->Release(data_, capacity_);
  pool_ = nullptr;
  data_ = nullptr;
  capacity_ = 0;
}

BufferPool::BufferPool(Options options)
    : max_retained_bytes_(options.max_retained_bytes) {}

BufferPool::~BufferPool() { Trim(); }

BufferPool& BufferPool::Default() {
  // Never destroyed: buffers may be released by static destructors.
  static BufferPool* pool = new BufferPool(Options());
  return *pool;
}

size_t BufferPool::CapacityFor(size_t size) {
  if (size <= kIoAlignment) return kIoAlignment;
  if (size <= kMmapThreshold) return AlignUp(size);
  // Eight classes between consecutive powers of two.
  size_t floor_pow2 = std::bit_floor(size - 1);
  size_t step = floor_pow2 / 8;
  return (size + step - 1) / step * step;
}

uint8_t* BufferPool::SystemAllocate(size_t capacity) {
  if (capacity < kMmapThreshold) {
    void* data = std::aligned_alloc(kIoAlignment, capacity);
    if (data == nullptr) OutOfMemory(capacity);
    return static_cast<uint8_t*>(data);
  }
  if (capacity >= kHugePage) {
    uint8_t* data = MapHuge(capacity);
    if (data == nullptr) OutOfMemory(capacity);
    return data;
  }
  void* data = mmap(nullptr, capacity, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (data == MAP_FAILED) OutOfMemory(capacity);
  return static_cast<uint8_t*>(data);
}

void BufferPool::SystemFree(uint8_t* data, size_t capacity) {
  if (capacity < kMmapThreshold) {
    std::free(data);
  } else {
    munmap(data, capacity);
  }
}

Buffer BufferPool::Allocate(size_t size) {
  size_t capacity = CapacityFor(size);
  {
    absl::MutexLock lock(&mu_);
    stats_.allocated_bytes += capacity;
    auto it = free_.find(capacity);
    if (it != free_.end() && !it->second.empty()) {
      uint8_t* data = it->second.back();
      it->second.pop_back();
      stats_.retained_bytes -= capacity;
      ++stats_.reused_allocations;
      return Buffer(this, data, capacity);
    }
    ++stats_.fresh_allocations;
  }
  return Buffer(this, SystemAllocate(capacity), capacity);
}

void BufferPool::Release(uint8_t* data, size_t capacity) {
  {
    absl::MutexLock lock(&mu_);
    stats_.allocated_bytes -= capacity;
    if (stats_.retained_bytes + capacity <= max_retained_bytes_) {
      free_[capacity].push_back(data);
      stats_.retained_bytes += capacity;
      return;
    }
  }
  SystemFree(data, capacity);
}

void BufferPool::SetMaxRetainedBytes(size_t bytes) {
  absl::MutexLock lock(&mu_);
  max_retained_bytes_ = bytes;
  TrimLocked(bytes);
}

void BufferPool::Trim() {
  absl::MutexLock lock(&mu_);
  TrimLocked(0);
}

void BufferPool::TrimLocked(size_t limit) {
  for (auto& [capacity, buffers] : free_) {
    while (stats_.retained_bytes > limit && !buffers.empty()) {
      SystemFree(buffers.back(), capacity);
      buffers.pop_back();
      stats_.retained_bytes -= capacity;
    }
  }
}

BufferPool::Stats BufferPool::GetStats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace pstore
