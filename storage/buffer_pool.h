// BufferPool hands out 4 KiB-aligned, pre-faulted memory and takes it back
// for reuse, so that the read path never pays a page fault per page of a
// fresh multi-MiB allocation. Buffers of 2 MiB and more are 2 MiB-aligned
// and backed by transparent huge pages where the kernel allows. Every block in
// pstore lives in such a buffer, which also makes every block directly usable
// for O_DIRECT I/O.
//
// Capacities come in size classes: 4 KiB steps up to 64 KiB, then eight
// classes per power of two (at most 12.5% slack; 4 MiB is exact). Freed
// buffers are kept per class up to `max_retained_bytes` in all and released
// to the system past that.
//
// Thread-safe. A Buffer may be freed on any thread.

#ifndef PSTORE_STORAGE_BUFFER_POOL_H_
#define PSTORE_STORAGE_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace pstore {

inline constexpr size_t kIoAlignment = 4096;

// Returns `size` rounded up to a multiple of kIoAlignment.
constexpr uint64_t AlignUp(uint64_t size) {
  return (size + kIoAlignment - 1) & ~uint64_t{kIoAlignment - 1};
}

class BufferPool;

// A move-only owner of one pool buffer. Returns the memory to its pool on
// destruction.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { Reset(); }
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept;

  uint8_t* data() const { return data_; }
  // Returns the usable size: a multiple of kIoAlignment, at least what was
  // asked for.
  size_t capacity() const { return capacity_; }
  std::span<uint8_t> span() const { return {data_, capacity_}; }
  bool empty() const { return data_ == nullptr; }

  // Returns the memory to the pool now.
  void Reset();

 private:
  friend class BufferPool;
  Buffer(BufferPool* pool, uint8_t* data, size_t capacity)
      : pool_(pool), data_(data), capacity_(capacity) {}

  BufferPool* pool_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

class BufferPool {
 public:
  struct Options {
    // Freed bytes kept for reuse, over all size classes.
    // Default: 128 MiB.
    size_t max_retained_bytes = size_t{128} << 20;
  };

  struct Stats {
    uint64_t allocated_bytes = 0;  // Held by live Buffers.
    uint64_t retained_bytes = 0;   // Free, kept for reuse.
    uint64_t fresh_allocations = 0;
    uint64_t reused_allocations = 0;
  };

  explicit BufferPool(Options options);
  ~BufferPool();

  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Returns the process-wide pool, which lives until exit.
  static BufferPool& Default();

  // Returns a buffer of at least `size` bytes (at least 4 KiB), 4 KiB
  // aligned. Memory that is new to the pool is faulted in before return.
  // Ends the process if the system is out of memory, like operator new.
  Buffer Allocate(size_t size);

  // Returns the capacity Allocate(size) would give.
  static size_t CapacityFor(size_t size);

  // Sets the retention limit; frees retained buffers past it.
  void SetMaxRetainedBytes(size_t bytes);

  // Frees every retained buffer.
  void Trim();

  Stats GetStats() const;

 private:
  friend class Buffer;
  void Release(uint8_t* data, size_t capacity);
  void TrimLocked(size_t limit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static uint8_t* SystemAllocate(size_t capacity);
  static void SystemFree(uint8_t* data, size_t capacity);

  mutable absl::Mutex mu_;
  size_t max_retained_bytes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<size_t, std::vector<uint8_t*>> free_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_BUFFER_POOL_H_
