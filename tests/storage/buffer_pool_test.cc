#include "storage/buffer_pool.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "storage/block.h"

namespace pstore {
namespace {

TEST(BufferPoolTest, CapacitiesAreAlignedAndTight) {
  EXPECT_EQ(BufferPool::CapacityFor(0), 4096u);
  EXPECT_EQ(BufferPool::CapacityFor(1), 4096u);
  EXPECT_EQ(BufferPool::CapacityFor(4097), 8192u);
  EXPECT_EQ(BufferPool::CapacityFor(65536), 65536u);
  EXPECT_EQ(BufferPool::CapacityFor(4 << 20), size_t{4} << 20);
  for (size_t size = 1; size < (size_t{64} << 20); size = size * 3 / 2 + 1) {
    size_t capacity = BufferPool::CapacityFor(size);
    EXPECT_GE(capacity, size);
    EXPECT_EQ(capacity % kIoAlignment, 0u);
    EXPECT_LE(capacity, size + size / 8 + kIoAlignment) << size;
  }
}

TEST(BufferPoolTest, BuffersAreAlignedAndReused) {
  BufferPool pool(BufferPool::Options{.min_retained_bytes = 64 << 20});
  uint64_t reused = 0;
  for (size_t size : {size_t{4096}, size_t{65536}, size_t{1} << 20,
                      size_t{3} << 20, size_t{4} << 20}) {
    SCOPED_TRACE(size);
    uint8_t* first;
    {
      Buffer buffer = pool.Allocate(size);
      first = buffer.data();
      EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % kIoAlignment, 0u);
      if (size >= (size_t{2} << 20)) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (2 << 20), 0u);
      }
      EXPECT_EQ(pool.GetStats().allocated_bytes, BufferPool::CapacityFor(size));
      std::fill(first, first + buffer.capacity(), 0x5A);
    }
    EXPECT_EQ(pool.GetStats().allocated_bytes, 0u);
    Buffer again = pool.Allocate(size);
    EXPECT_EQ(again.data(), first);
    EXPECT_EQ(pool.GetStats().reused_allocations, ++reused);
  }
}

TEST(BufferPoolTest, SlotsOfASlabHoldTheirOwnBytes) {
  BufferPool pool(BufferPool::Options{});
  std::vector<Buffer> buffers;
  for (int i = 0; i < 100; ++i) {
    buffers.push_back(pool.Allocate(65536));
    std::fill(buffers.back().data(), buffers.back().data() + 65536,
              static_cast<uint8_t>(i));
  }
  // 32 slots of 64 KiB to a 2 MiB slab: four slabs, one mapping each.
  EXPECT_EQ(pool.GetStats().slab_bytes, uint64_t{8} << 20);
  EXPECT_EQ(pool.GetStats().fresh_allocations, 4u);
  for (int i = 0; i < 100; ++i) {
    const uint8_t* data = buffers[i].data();
    for (size_t j = 0; j < 65536; j += 512) {
      ASSERT_EQ(data[j], static_cast<uint8_t>(i)) << i << " " << j;
    }
  }
}

TEST(BufferPoolTest, RetainsNoMoreThanTheLimits) {
  BufferPool pool(BufferPool::Options{.min_retained_bytes = 8 << 20});
  {
    std::vector<Buffer> buffers;
    for (int i = 0; i < 8; ++i) buffers.push_back(pool.Allocate(4 << 20));
  }
  EXPECT_EQ(pool.GetStats().retained_bytes, 8u << 20);
  EXPECT_EQ(pool.GetStats().allocated_bytes, 0u);
  pool.Trim();
  EXPECT_EQ(pool.GetStats().retained_bytes, 0u);

  // Slabs go back whole once all their slots are free and the limit is
  // passed.
  pool.SetRetention(BufferPool::Options{.min_retained_bytes = 0});
  {
    std::vector<Buffer> buffers;
    for (int i = 0; i < 64; ++i) buffers.push_back(pool.Allocate(65536));
    EXPECT_EQ(pool.GetStats().slab_bytes, 4u << 20);
  }
  EXPECT_EQ(pool.GetStats().slab_bytes, 0u);
  EXPECT_EQ(pool.GetStats().retained_bytes, 0u);
}

TEST(BufferPoolTest, KeepsFreedBuffersWithinThePoolBound) {
  BufferPool pool(
      BufferPool::Options{.min_retained_bytes = 0, .max_pool_bytes = 16 << 20});
  std::vector<Buffer> buffers;
  for (int i = 0; i < 4; ++i) buffers.push_back(pool.Allocate(4 << 20));
  buffers.clear();
  EXPECT_EQ(pool.GetStats().retained_bytes, 16u << 20);
  for (int i = 0; i < 5; ++i) buffers.push_back(pool.Allocate(4 << 20));
  EXPECT_EQ(pool.GetStats().reused_allocations, 4u);
  EXPECT_EQ(pool.GetStats().fresh_allocations, 5u);
  buffers.clear();
  EXPECT_EQ(pool.GetStats().retained_bytes, 16u << 20);

  pool.SetRetention(
      BufferPool::Options{.min_retained_bytes = 4 << 20, .max_pool_bytes = 0});
  EXPECT_EQ(pool.GetStats().retained_bytes, 4u << 20);
}

TEST(BlockDataTest, PadsWithZerosToTheAlignment) {
  BufferPool pool(BufferPool::Options{});
  Buffer buffer = pool.Allocate(10000);
  std::fill(buffer.data(), buffer.data() + buffer.capacity(), 0xAB);
  BlockData block(std::move(buffer), 10000);
  ASSERT_EQ(block.aligned_bytes().size(), 12288u);
  for (size_t i = 10000; i < 12288; ++i) ASSERT_EQ(block.data()[i], 0) << i;
  EXPECT_EQ(block.data()[9999], 0xAB);
}

}  // namespace
}  // namespace pstore
