// Deterministic pseudo-random bytes for tests.

#ifndef PSTORE_TESTS_TESTING_RANDOM_BYTES_H_
#define PSTORE_TESTS_TESTING_RANDOM_BYTES_H_

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace pstore::testing {

// Returns `size` bytes from a generator seeded with `seed`.
inline std::vector<uint8_t> RandomBytes(size_t size, uint64_t seed) {
  std::vector<uint8_t> bytes(size);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word = rng();
    std::memcpy(bytes.data() + i, &word, 8);
  }
  for (; i < size; ++i) bytes[i] = static_cast<uint8_t>(rng());
  return bytes;
}

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_RANDOM_BYTES_H_
