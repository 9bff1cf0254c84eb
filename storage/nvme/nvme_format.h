// Encoding of the NVMe tier's on-disk pages: the region header at the start
// of every region file and the entry header before every block. The layout
// is specified in storage/nvme/nvme_format.md; this header is its code.
// Integers are little-endian.
//
// All functions are pure and thread-safe.

#ifndef PSTORE_STORAGE_NVME_NVME_FORMAT_H_
#define PSTORE_STORAGE_NVME_NVME_FORMAT_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "codec/hash.h"

namespace pstore::nvme_format {

// Size of a header page; entries start on multiples of it.
inline constexpr uint64_t kPageBytes = 4096;

// Version written by this code; pages of another version are not read.
inline constexpr uint32_t kFormatVersion = 1;

// "pstoreRG" and "pstoreEN" as little-endian 64-bit words.
inline constexpr uint64_t kRegionMagic = 0x4752'6572'6f74'7370;
inline constexpr uint64_t kEntryMagic = 0x4e45'6572'6f74'7370;

// Byte offsets of the checksums: each covers the bytes before it.
inline constexpr size_t kRegionChecksumOffset = 32;
inline constexpr size_t kEntryChecksumOffset = 48;

struct RegionHeader {
  uint32_t version = kFormatVersion;
  uint32_t region = 0;        // Index of the region file.
  uint64_t region_bytes = 0;  // Size of every region file when written.
  uint64_t generation = 0;    // Monotonic over the whole tier.
};

struct EntryHeader {
  uint32_t version = kFormatVersion;
  uint64_t generation = 0;  // The region's generation when written.
  BlockId id = BlockId();
  uint64_t length = 0;  // Bytes of the block, before padding.
};

// Returns the bytes a block of `length` bytes takes in a region: its header
// page plus its data padded to kPageBytes.
constexpr uint64_t EntryBytes(uint64_t length) {
  return kPageBytes + ((length + kPageBytes - 1) & ~(kPageBytes - 1));
}

// Writes `header` into `page` (kPageBytes bytes), zeroing the rest.
void EncodeRegionHeader(const RegionHeader& header, std::span<uint8_t> page);

// Parses a region header page. DataLoss if the magic or the checksum is
// wrong. The version is returned, not checked.
absl::StatusOr<RegionHeader> DecodeRegionHeader(std::span<const uint8_t> page);

// Writes `header` into `page` (kPageBytes bytes), zeroing the rest.
void EncodeEntryHeader(const EntryHeader& header, std::span<uint8_t> page);

// Parses an entry header page. DataLoss if the magic or the checksum is
// wrong. The version is returned, not checked.
absl::StatusOr<EntryHeader> DecodeEntryHeader(std::span<const uint8_t> page);

}  // namespace pstore::nvme_format

#endif  // PSTORE_STORAGE_NVME_NVME_FORMAT_H_
