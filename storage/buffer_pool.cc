#include "storage/buffer_pool.h"

#include <sanitizer/asan_interface.h>
#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>

namespace pstore {
namespace {

// Capacities up to this step by 4 KiB.
constexpr size_t kFineClassLimit = size_t{64} << 10;

// Every mapping starts on a 2 MiB boundary and is backed by transparent huge
// pages where the kernel allows it (THP "always" or "madvise"): a fresh 4 MiB
// block then costs two page faults instead of 1024 (bench/README.md,
// "Figures behind choices in the code"), O_DIRECT pins two pages per block,
// and hashing and copying miss the TLB less. Buffers smaller than this are
// slots of slabs.
constexpr size_t kHugePage = size_t{2} << 20;

// A slab holds at least this many slots, so that the tail it wastes is at
// most an eighth of it.
constexpr size_t kMinSlabSlots = 8;

// Returns the bytes of a slab for buffers of `capacity` (< kHugePage).
size_t SlabBytesFor(size_t capacity) {
  size_t bytes = capacity * kMinSlabSlots;
  return (bytes + kHugePage - 1) / kHugePage * kHugePage;
}

// Returns the slots of a slab for buffers of `capacity`.
size_t SlotsFor(size_t capacity) { return SlabBytesFor(capacity) / capacity; }

// madvise advice that faults pages in for writing (Linux 5.14); older
// kernels refuse it and the pages are touched instead.
constexpr int kPopulateWrite = 23;  // MADV_POPULATE_WRITE

// Faults in [data, data + size) for writing.
void Populate(uint8_t* data, size_t size) {
  if (madvise(data, size, kPopulateWrite) == 0) return;
  for (size_t i = 0; i < size; i += 4096) data[i] = 0;
}

// Maps `capacity` bytes at a 2 MiB boundary, asking for huge pages, and
// faults them in. Returns null if the system is out of memory.
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

// Marks [data, data + size) as not to be touched (a free buffer) or as usable
// again, for AddressSanitizer; nothing in other builds.
void Poison([[maybe_unused]] uint8_t* data, [[maybe_unused]] size_t size) {
  ASAN_POISON_MEMORY_REGION(data, size);
}
void Unpoison([[maybe_unused]] uint8_t* data, [[maybe_unused]] size_t size) {
  ASAN_UNPOISON_MEMORY_REGION(data, size);
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

BufferPool::BufferPool(Options options) : options_(options) {}

BufferPool::~BufferPool() { Trim(); }

BufferPool& BufferPool::Default() {
  // Never destroyed: buffers may be released by static destructors.
  static BufferPool* pool = new BufferPool(Options());
  return *pool;
}

size_t BufferPool::CapacityFor(size_t size) {
  if (size <= kIoAlignment) return kIoAlignment;
  if (size <= kFineClassLimit) return AlignUp(size);
  // Eight classes between consecutive powers of two.
  size_t floor_pow2 = std::bit_floor(size - 1);
  size_t step = floor_pow2 / 8;
  return (size + step - 1) / step * step;
}

Buffer BufferPool::Allocate(size_t size) {
  const size_t capacity = CapacityFor(size);
  if (capacity >= kHugePage) {
    {
      absl::MutexLock lock(&mu_);
      stats_.allocated_bytes += capacity;
      auto it = free_.find(capacity);
      if (it != free_.end() && !it->second.empty()) {
        uint8_t* data = it->second.back();
        it->second.pop_back();
        stats_.retained_bytes -= capacity;
        ++stats_.reused_allocations;
        Unpoison(data, capacity);
        return Buffer(this, data, capacity);
      }
      ++stats_.fresh_allocations;
    }
    uint8_t* data = MapHuge(capacity);
    if (data == nullptr) OutOfMemory(capacity);
    return Buffer(this, data, capacity);
  }
  {
    absl::MutexLock lock(&mu_);
    stats_.allocated_bytes += capacity;
    auto it = partial_.find(capacity);
    if (it != partial_.end() && !it->second.empty()) {
      ++stats_.reused_allocations;
      return Buffer(this, TakeSlot(*it->second.back()), capacity);
    }
    ++stats_.fresh_allocations;
  }
  // Map outside the lock: populating a slab takes a while.
  const size_t slab_bytes = SlabBytesFor(capacity);
  uint8_t* base = MapHuge(slab_bytes);
  if (base == nullptr) OutOfMemory(slab_bytes);
  Poison(base, slab_bytes);
  absl::MutexLock lock(&mu_);
  Slab& slab = slabs_[reinterpret_cast<uintptr_t>(base)];
  slab.base = base;
  slab.capacity = capacity;
  const size_t slots = SlotsFor(capacity);
  slab.free.reserve(slots);
  // Slot 0 last, so that it is taken first.
  for (size_t i = slots; i-- > 0;) slab.free.push_back(base + i * capacity);
  stats_.slab_bytes += slab_bytes;
  stats_.retained_bytes += slots * capacity;
  AddPartial(slab);
  return Buffer(this, TakeSlot(slab), capacity);
}

uint8_t* BufferPool::TakeSlot(Slab& slab) {
  uint8_t* data = slab.free.back();
  slab.free.pop_back();
  stats_.retained_bytes -= slab.capacity;
  if (slab.free.empty()) RemovePartial(slab);
  Unpoison(data, slab.capacity);
  return data;
}

void BufferPool::AddPartial(Slab& slab) {
  std::vector<Slab*>& partial = partial_[slab.capacity];
  slab.partial_index = partial.size();
  partial.push_back(&slab);
}

void BufferPool::RemovePartial(Slab& slab) {
  std::vector<Slab*>& partial = partial_[slab.capacity];
  Slab* last = partial.back();
  partial[slab.partial_index] = last;
  last->partial_index = slab.partial_index;
  partial.pop_back();
}

bool BufferPool::KeepsFreed(size_t extra) const {
  return stats_.retained_bytes + extra <= options_.min_retained_bytes ||
         stats_.retained_bytes + stats_.allocated_bytes + extra <=
             options_.max_pool_bytes;
}

void BufferPool::DropSlabLocked(Slab& slab) {
  const size_t slab_bytes = SlabBytesFor(slab.capacity);
  RemovePartial(slab);
  stats_.retained_bytes -= SlotsFor(slab.capacity) * slab.capacity;
  stats_.slab_bytes -= slab_bytes;
  Unpoison(slab.base, slab_bytes);
  munmap(slab.base, slab_bytes);
  slabs_.erase(reinterpret_cast<uintptr_t>(slab.base));
}

void BufferPool::Release(uint8_t* data, size_t capacity) {
  Poison(data, capacity);
  {
    absl::MutexLock lock(&mu_);
    stats_.allocated_bytes -= capacity;
    if (capacity < kHugePage) {
      auto it = slabs_.upper_bound(reinterpret_cast<uintptr_t>(data));
      // The slab that holds `data`: the last one that starts at or before.
      Slab& slab = std::prev(it)->second;
      slab.free.push_back(data);
      stats_.retained_bytes += capacity;
      if (slab.free.size() == 1) AddPartial(slab);
      if (slab.free.size() == SlotsFor(capacity) && !KeepsFreed(0)) {
        DropSlabLocked(slab);
      }
      return;
    }
    if (KeepsFreed(capacity)) {
      free_[capacity].push_back(data);
      stats_.retained_bytes += capacity;
      return;
    }
  }
  Unpoison(data, capacity);
  munmap(data, capacity);
}

void BufferPool::SetRetention(Options options) {
  absl::MutexLock lock(&mu_);
  options_ = options;
  TrimLocked(/*all=*/false);
}

void BufferPool::Trim() {
  absl::MutexLock lock(&mu_);
  TrimLocked(/*all=*/true);
}

void BufferPool::TrimLocked(bool all) {
  auto over = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stats_.retained_bytes > 0 && (all || !KeepsFreed(0));
  };
  for (auto& [capacity, buffers] : free_) {
    while (over() && !buffers.empty()) {
      Unpoison(buffers.back(), capacity);
      munmap(buffers.back(), capacity);
      buffers.pop_back();
      stats_.retained_bytes -= capacity;
    }
  }
  for (auto it = slabs_.begin(); it != slabs_.end() && over();) {
    Slab& slab = (it++)->second;  // DropSlabLocked erases it.
    if (slab.free.size() == SlotsFor(slab.capacity)) DropSlabLocked(slab);
  }
}

BufferPool::Stats BufferPool::GetStats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace pstore
