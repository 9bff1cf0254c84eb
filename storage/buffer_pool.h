// BufferPool hands out 4 KiB-aligned, pre-faulted memory and takes it back
// for reuse, so that the read path never pays a page fault, nor the zeroing
// of a fresh page, per page of a block. Every block in pstore lives in such a
// buffer, which also makes every block directly usable for O_DIRECT I/O.
//
// All of it is backed by transparent huge pages where the kernel allows
// (THP "always" or "madvise"). Buffers of 2 MiB and more are mappings of
// their own on 2 MiB boundaries. Smaller ones are slots of slabs: 2 MiB-
// aligned mappings of 2 MiB or more cut into equal slots of one capacity.
// Memory on 4 KiB pages is dear to touch where a TLB miss is dear (under a
// paravirtualized guest, each first touch of a 4 KiB page after an O_DIRECT
// read into it cost about 2.4 us here; bench/README.md, "Figures behind
// choices in the code"), and a 64 KiB block on huge pages costs none.
//
// Capacities come in size classes: 4 KiB steps up to 64 KiB, then eight
// classes per power of two (at most 12.5% slack; 4 MiB is exact).
//
// Freed buffers are kept for reuse while the freed bytes are within
// `min_retained_bytes`, or while live and freed bytes together are within
// `max_pool_bytes`; past both, a freed buffer of its own mapping goes back
// to the system, and so does a slab once all its slots are free. A slab with
// one live slot stays mapped whole.
//
// Thread-safe. A Buffer may be freed on any thread.

#ifndef PSTORE_STORAGE_BUFFER_POOL_H_
#define PSTORE_STORAGE_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <map>
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
    // Freed bytes kept for reuse whatever else is live. Default: 128 MiB.
    size_t min_retained_bytes = size_t{128} << 20;
    // Freed bytes are also kept while live and freed bytes together stay
    // within this. Default: 0 (only min_retained_bytes).
    size_t max_pool_bytes = 0;
  };

  struct Stats {
    uint64_t allocated_bytes = 0;  // Held by live Buffers.
    uint64_t retained_bytes = 0;   // Free, kept for reuse.
    uint64_t slab_bytes = 0;       // Mapped for slabs, live and free.
    // Allocations that mapped memory, and those served from memory the
    // pool had mapped before.
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

  // Sets the retention limits; frees what is retained past them.
  void SetRetention(Options options);

  // Frees every retained buffer and every slab with no live slot.
  void Trim();

  Stats GetStats() const;

 private:
  friend class Buffer;

  // One mapping of SlabBytesFor(capacity) bytes, cut into slots of
  // `capacity` bytes.
  struct Slab {
    uint8_t* base = nullptr;
    size_t capacity = 0;
    std::vector<uint8_t*> free;  // Free slots.
    size_t partial_index = 0;    // In partial_[capacity], while free is not
                                 // empty.
  };

  void Release(uint8_t* data, size_t capacity);
  uint8_t* TakeSlot(Slab& slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddPartial(Slab& slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemovePartial(Slab& slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns whether `extra` more freed bytes may be kept.
  bool KeepsFreed(size_t extra) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unmaps `slab`, whose slots are all free, and forgets it.
  void DropSlabLocked(Slab& slab) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees retained buffers and slabs with no live slot: all of them, or
  // (`all` false) until what is left may be kept (KeepsFreed(0)).
  void TrimLocked(bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  Options options_ ABSL_GUARDED_BY(mu_);
  // Free buffers of their own mapping, by capacity.
  absl::flat_hash_map<size_t, std::vector<uint8_t*>> free_ ABSL_GUARDED_BY(mu_);
  // Every slab by base address (std::map: a Slab never moves).
  std::map<uintptr_t, Slab> slabs_ ABSL_GUARDED_BY(mu_);
  // Slabs with a free slot, by capacity.
  absl::flat_hash_map<size_t, std::vector<Slab*>> partial_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_BUFFER_POOL_H_
