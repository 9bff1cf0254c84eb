// Helpers shared by the NVMe tier's tests: deterministic blocks, byte-level
// access to region files, and names for engine-parameterized suites.

#ifndef PSTORE_TESTS_STORAGE_NVME_NVME_TEST_UTIL_H_
#define PSTORE_TESTS_STORAGE_NVME_NVME_TEST_UTIL_H_

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "codec/hash.h"
#include "gtest/gtest.h"
#include "storage/block.h"
#include "tests/testing/random_bytes.h"

namespace pstore::testing {

// A block with its id and a copy of its bytes to compare against.
struct TestBlock {
  std::vector<uint8_t> bytes;
  BlockId id;
  BlockRef block;
};

// Returns a block of `size` pseudo-random bytes from `seed`.
inline TestBlock MakeTestBlock(size_t size, uint64_t seed) {
  TestBlock test;
  test.bytes = RandomBytes(size, seed);
  test.id = BlockId::Of(test.bytes);
  test.block = CopyBlock(test.bytes);
  return test;
}

// Returns success if `got` holds exactly the bytes of `want`.
inline ::testing::AssertionResult SameBytes(const BlockRef& got,
                                            const TestBlock& want) {
  if (got == nullptr) return ::testing::AssertionFailure() << "null block";
  if (got->size() != want.bytes.size()) {
    return ::testing::AssertionFailure()
           << "size " << got->size() << ", want " << want.bytes.size();
  }
  for (size_t i = 0; i < want.bytes.size(); ++i) {
    if (got->data()[i] != want.bytes[i]) {
      return ::testing::AssertionFailure() << "bytes differ at " << i;
    }
  }
  return ::testing::AssertionSuccess();
}

// Returns `size` bytes at `offset` of file `path`, read with plain pread.
inline std::vector<uint8_t> ReadFileBytes(const std::string& path,
                                          uint64_t offset, size_t size) {
  std::vector<uint8_t> bytes(size);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return {};
  ssize_t n = pread(fd, bytes.data(), size, static_cast<off_t>(offset));
  EXPECT_EQ(n, static_cast<ssize_t>(size)) << path;
  close(fd);
  return bytes;
}

// Writes `bytes` at `offset` of file `path` with plain pwrite.
inline void WriteFileBytes(const std::string& path, uint64_t offset,
                           std::span<const uint8_t> bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ssize_t n =
      pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
  EXPECT_EQ(n, static_cast<ssize_t>(bytes.size())) << path;
  close(fd);
}

// Inverts every bit of the byte at `offset` of file `path`.
inline void FlipFileByte(const std::string& path, uint64_t offset) {
  std::vector<uint8_t> byte = ReadFileBytes(path, offset, 1);
  ASSERT_EQ(byte.size(), 1u);
  byte[0] ^= 0xFF;
  WriteFileBytes(path, offset, byte);
}

// Names the engine of a test parameterized on use_io_uring.
inline std::string EngineName(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "IoUring" : "Pread";
}

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_STORAGE_NVME_NVME_TEST_UTIL_H_
