#include "storage/buffer_pool.h"

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
  BufferPool pool(BufferPool::Options{.max_retained_bytes = 64 << 20});
  uint8_t* first;
  {
    Buffer buffer = pool.Allocate(1 << 20);
    first = buffer.data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % kIoAlignment, 0u);
    EXPECT_EQ(pool.GetStats().allocated_bytes, 1u << 20);
  }
  EXPECT_EQ(pool.GetStats().retained_bytes, 1u << 20);
  Buffer again = pool.Allocate(1 << 20);
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(pool.GetStats().reused_allocations, 1u);
  EXPECT_EQ(pool.GetStats().retained_bytes, 0u);
}

TEST(BufferPoolTest, RetainsNoMoreThanTheLimit) {
  BufferPool pool(BufferPool::Options{.max_retained_bytes = 2 << 20});
  {
    std::vector<Buffer> buffers;
    for (int i = 0; i < 8; ++i) buffers.push_back(pool.Allocate(1 << 20));
  }
  EXPECT_EQ(pool.GetStats().retained_bytes, 2u << 20);
  EXPECT_EQ(pool.GetStats().allocated_bytes, 0u);
  pool.Trim();
  EXPECT_EQ(pool.GetStats().retained_bytes, 0u);
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
