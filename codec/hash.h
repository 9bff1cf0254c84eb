// XXH3 hashes (64- and 128-bit, one-shot and streaming) and BlockId, the
// content address of a block: the XXH3-128 of its bytes.
//
// One-shot functions are thread-safe. A streaming hasher is owned by one
// thread at a time.

#ifndef PSTORE_CODEC_HASH_H_
#define PSTORE_CODEC_HASH_H_

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore {

// Returns the XXH3-64 (seed 0) of `bytes`.
uint64_t Xxh3_64(std::span<const uint8_t> bytes);
uint64_t Xxh3_64(const void* data, size_t size);

// A 128-bit XXH3 value.
struct Hash128 {
  uint64_t low = 0;
  uint64_t high = 0;
  friend auto operator<=>(const Hash128&, const Hash128&) = default;
};

// Returns the XXH3-128 (seed 0) of `bytes`.
Hash128 Xxh3_128(std::span<const uint8_t> bytes);
Hash128 Xxh3_128(const void* data, size_t size);

// Streaming XXH3-64: Update any number of times, Digest at any point.
class Xxh3_64Hasher {
 public:
  Xxh3_64Hasher();
  ~Xxh3_64Hasher();
  Xxh3_64Hasher(Xxh3_64Hasher&&) noexcept;
  Xxh3_64Hasher& operator=(Xxh3_64Hasher&&) noexcept;

  void Update(std::span<const uint8_t> bytes);
  // Returns the hash of every byte given so far.
  uint64_t Digest() const;
  // Forgets every byte given so far.
  void Reset();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Streaming XXH3-128, as Xxh3_64Hasher.
class Xxh3_128Hasher {
 public:
  Xxh3_128Hasher();
  ~Xxh3_128Hasher();
  Xxh3_128Hasher(Xxh3_128Hasher&&) noexcept;
  Xxh3_128Hasher& operator=(Xxh3_128Hasher&&) noexcept;

  void Update(std::span<const uint8_t> bytes);
  Hash128 Digest() const;
  void Reset();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The name of an immutable block: the XXH3-128 of its bytes. Ordered and
// hashable; its 16-byte form is XXH3's canonical (big-endian) encoding, so
// the hex form matches `xxhsum -H128`.
class BlockId {
 public:
  static constexpr size_t kSize = 16;

  BlockId() = default;
  explicit BlockId(Hash128 hash) : hash_(hash) {}

  // Returns the id of `bytes`.
  static BlockId Of(std::span<const uint8_t> bytes) {
    return BlockId(Xxh3_128(bytes));
  }
  // Parses the 16-byte canonical form. InvalidArgument if the size is wrong.
  static absl::StatusOr<BlockId> FromBytes(absl::string_view bytes);
  // Parses the 32-character lower- or upper-case hex form.
  static absl::StatusOr<BlockId> FromHex(absl::string_view hex);

  const Hash128& hash() const { return hash_; }
  // Returns the 16-byte canonical form.
  std::array<uint8_t, kSize> ToBytes() const;
  std::string ToByteString() const;
  // Returns 32 lower-case hex digits.
  std::string ToHex() const;

  friend auto operator<=>(const BlockId&, const BlockId&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const BlockId& id) {
    return H::combine(std::move(h), id.hash_.low, id.hash_.high);
  }

 private:
  Hash128 hash_;
};

}  // namespace pstore

#endif  // PSTORE_CODEC_HASH_H_
