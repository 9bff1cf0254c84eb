#include "codec/hash.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "xxhash.h"
#if defined(__x86_64__)
// libxxhash's x86 dispatcher: XXH3's long-input loops built for SSE2, AVX2
// and AVX-512, chosen once by CPUID (bench/README.md gives their speeds);
// code built here would get the baseline ISA, SSE2. Other
// architectures call the plain entry points.
#define XXH_DISPATCH_DISABLE_REPLACE
#include "xxh_x86dispatch.h"
#define PSTORE_XXH3(name) name##_dispatch
#else
#define PSTORE_XXH3(name) name
#endif

namespace pstore {
namespace {

// Below this size XXH3 runs no vector loop: the plain entry point skips the
// dispatcher's indirection.
constexpr size_t kDispatchBytes = 1024;

}  // namespace

uint64_t Xxh3_64(const void* data, size_t size) {
  if (size >= kDispatchBytes) return PSTORE_XXH3(XXH3_64bits)(data, size);
  return XXH3_64bits(data, size);
}

uint64_t Xxh3_64(std::span<const uint8_t> bytes) {
  return Xxh3_64(bytes.data(), bytes.size());
}

Hash128 Xxh3_128(const void* data, size_t size) {
  XXH128_hash_t hash = size >= kDispatchBytes
                           ? PSTORE_XXH3(XXH3_128bits)(data, size)
                           : XXH3_128bits(data, size);
  return Hash128{hash.low64, hash.high64};
}

Hash128 Xxh3_128(std::span<const uint8_t> bytes) {
  return Xxh3_128(bytes.data(), bytes.size());
}

// The library allocates the state, so that its size is the library's, not
// that of the header this was built with.
struct Xxh3_64Hasher::State {
  State() : xxh(XXH3_createState()) {
    if (xxh == nullptr) std::abort();  // Out of memory, as operator new.
  }
  ~State() { XXH3_freeState(xxh); }
  XXH3_state_t* const xxh;
};

Xxh3_64Hasher::Xxh3_64Hasher() : state_(std::make_unique<State>()) { Reset(); }
Xxh3_64Hasher::~Xxh3_64Hasher() = default;
Xxh3_64Hasher::Xxh3_64Hasher(Xxh3_64Hasher&&) noexcept = default;
Xxh3_64Hasher& Xxh3_64Hasher::operator=(Xxh3_64Hasher&&) noexcept = default;

void Xxh3_64Hasher::Update(std::span<const uint8_t> bytes) {
  // XXH3_64bits_update only fails for a null state; ours never is.
  (void)PSTORE_XXH3(XXH3_64bits_update)(state_->xxh, bytes.data(),
                                        bytes.size());
}

uint64_t Xxh3_64Hasher::Digest() const {
  return XXH3_64bits_digest(state_->xxh);
}

void Xxh3_64Hasher::Reset() { (void)XXH3_64bits_reset(state_->xxh); }

struct Xxh3_128Hasher::State {
  State() : xxh(XXH3_createState()) {
    if (xxh == nullptr) std::abort();  // Out of memory, as operator new.
  }
  ~State() { XXH3_freeState(xxh); }
  XXH3_state_t* const xxh;
};

Xxh3_128Hasher::Xxh3_128Hasher() : state_(std::make_unique<State>()) {
  Reset();
}
Xxh3_128Hasher::~Xxh3_128Hasher() = default;
Xxh3_128Hasher::Xxh3_128Hasher(Xxh3_128Hasher&&) noexcept = default;
Xxh3_128Hasher& Xxh3_128Hasher::operator=(Xxh3_128Hasher&&) noexcept = default;

void Xxh3_128Hasher::Update(std::span<const uint8_t> bytes) {
  (void)PSTORE_XXH3(XXH3_128bits_update)(state_->xxh, bytes.data(),
                                         bytes.size());
}

Hash128 Xxh3_128Hasher::Digest() const {
  XXH128_hash_t hash = XXH3_128bits_digest(state_->xxh);
  return Hash128{hash.low64, hash.high64};
}

void Xxh3_128Hasher::Reset() { (void)XXH3_128bits_reset(state_->xxh); }

absl::StatusOr<BlockId> BlockId::FromBytes(absl::string_view bytes) {
  if (bytes.size() != kSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("block id must be ", kSize, " bytes, got ", bytes.size()));
  }
  XXH128_canonical_t canonical;
  std::memcpy(canonical.digest, bytes.data(), kSize);
  XXH128_hash_t hash = XXH128_hashFromCanonical(&canonical);
  return BlockId(Hash128{hash.low64, hash.high64});
}

absl::StatusOr<BlockId> BlockId::FromHex(absl::string_view hex) {
  if (hex.size() != 2 * kSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block id must be ", 2 * kSize, " hex digits, got '", hex, "'"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("block id '", hex, "' is not hex"));
    }
  }
  return FromBytes(absl::HexStringToBytes(hex));
}

std::array<uint8_t, BlockId::kSize> BlockId::ToBytes() const {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH128_hash_t{hash_.low, hash_.high});
  std::array<uint8_t, kSize> bytes;
  std::memcpy(bytes.data(), canonical.digest, kSize);
  return bytes;
}

std::string BlockId::ToByteString() const {
  std::array<uint8_t, kSize> bytes = ToBytes();
  return std::string(reinterpret_cast<const char*>(bytes.data()), kSize);
}

std::string BlockId::ToHex() const {
  return absl::BytesToHexString(ToByteString());
}

}  // namespace pstore
