// Fuzzes the NVMe tier's page decoders (storage/nvme/nvme_format.h):
// DecodeRegionHeader and DecodeEntryHeader.
//
// Input: a page, as read from a region file (any length; a real one is
// kPageBytes). Each decoder reads it twice: as it is (almost always a bad
// magic or checksum, as on a torn or foreign page), and "sealed": padded
// or cut to kPageBytes, with the decoder's magic and a correct checksum
// stamped on, so that the fields behind the checksum get decoded.
//
// Checks: a decoder returns a header or DataLoss; it accepts a page exactly
// when the page is long enough, starts with the magic and its checksum
// covers the bytes before it; a decoded header encodes back to the same
// covered bytes (but for the entry's reserved word, which the encoder
// zeroes) and decodes again to the same header; and flipping a covered bit
// of an accepted page (two bits picked by the input) makes the decoder
// refuse it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "codec/hash.h"
#include "storage/nvme/nvme_format.h"
#include "tests/fuzz/fuzz_util.h"

namespace pstore::nvme_format {
namespace {

uint64_t Load64(const uint8_t* at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{at[i]} << (8 * i);
  return value;
}

void Store64(uint8_t* at, uint64_t value) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

// Returns true if `page` is what a decoder with `magic` and
// `checksum_offset` must accept.
bool Valid(std::span<const uint8_t> page, uint64_t magic,
           size_t checksum_offset) {
  return page.size() >= checksum_offset + 8 && Load64(page.data()) == magic &&
         Load64(page.data() + checksum_offset) ==
             Xxh3_64(page.data(), checksum_offset);
}

bool SameRegion(const RegionHeader& a, const RegionHeader& b) {
  return a.version == b.version && a.region == b.region &&
         a.region_bytes == b.region_bytes && a.generation == b.generation;
}

bool SameEntry(const EntryHeader& a, const EntryHeader& b) {
  return a.version == b.version && a.generation == b.generation &&
         a.id == b.id && a.length == b.length;
}

void CheckRegion(std::span<const uint8_t> page, std::span<const size_t> flips) {
  absl::StatusOr<RegionHeader> header = DecodeRegionHeader(page);
  const bool valid = Valid(page, kRegionMagic, kRegionChecksumOffset);
  FUZZ_CHECK(header.ok() == valid);
  if (!header.ok()) {
    FUZZ_CHECK(absl::IsDataLoss(header.status()));
    return;
  }
  std::vector<uint8_t> encoded(kPageBytes, 0xEE);
  EncodeRegionHeader(*header, encoded);
  FUZZ_CHECK(
      std::memcmp(encoded.data(), page.data(), kRegionChecksumOffset + 8) == 0);
  for (size_t i = kRegionChecksumOffset + 8; i < kPageBytes; ++i) {
    FUZZ_CHECK(encoded[i] == 0);
  }
  absl::StatusOr<RegionHeader> again = DecodeRegionHeader(encoded);
  FUZZ_CHECK(again.ok() && SameRegion(*again, *header));
  for (size_t bit : flips) {
    bit %= 8 * (kRegionChecksumOffset + 8);
    encoded[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    FUZZ_CHECK(absl::IsDataLoss(DecodeRegionHeader(encoded).status()));
    encoded[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
  }
}

void CheckEntry(std::span<const uint8_t> page, std::span<const size_t> flips) {
  absl::StatusOr<EntryHeader> header = DecodeEntryHeader(page);
  const bool valid = Valid(page, kEntryMagic, kEntryChecksumOffset);
  FUZZ_CHECK(header.ok() == valid);
  if (!header.ok()) {
    FUZZ_CHECK(absl::IsDataLoss(header.status()));
    return;
  }
  std::array<uint8_t, BlockId::kSize> id = header->id.ToBytes();
  FUZZ_CHECK(std::memcmp(id.data(), page.data() + 24, id.size()) == 0);
  std::vector<uint8_t> encoded(kPageBytes, 0xEE);
  EncodeEntryHeader(*header, encoded);
  // Bytes 12..15 are reserved: written as zero, not read.
  FUZZ_CHECK(std::memcmp(encoded.data(), page.data(), 12) == 0);
  FUZZ_CHECK(Load64(encoded.data() + 8) >> 32 == 0);
  FUZZ_CHECK(std::memcmp(encoded.data() + 16, page.data() + 16,
                         kEntryChecksumOffset - 16) == 0);
  for (size_t i = kEntryChecksumOffset + 8; i < kPageBytes; ++i) {
    FUZZ_CHECK(encoded[i] == 0);
  }
  absl::StatusOr<EntryHeader> again = DecodeEntryHeader(encoded);
  FUZZ_CHECK(again.ok() && SameEntry(*again, *header));
  // EntryBytes wraps within 2 pages of 2^64; NvmeTier refuses any length
  // above region_bytes before it asks.
  if (header->length <= UINT64_MAX - 2 * kPageBytes) {
    const uint64_t bytes = EntryBytes(header->length);
    FUZZ_CHECK(bytes % kPageBytes == 0);
    FUZZ_CHECK(bytes >= kPageBytes + header->length &&
               bytes < 2 * kPageBytes + header->length);
  }
  for (size_t bit : flips) {
    bit %= 8 * (kEntryChecksumOffset + 8);
    encoded[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    FUZZ_CHECK(absl::IsDataLoss(DecodeEntryHeader(encoded).status()));
    encoded[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
  }
}

// Returns `input` padded with zeros or cut to kPageBytes, with `magic` at
// its start and the checksum at `checksum_offset` made right.
std::vector<uint8_t> Seal(std::span<const uint8_t> input, uint64_t magic,
                          size_t checksum_offset) {
  std::vector<uint8_t> page(kPageBytes, 0);
  std::memcpy(page.data(), input.data(),
              std::min<size_t>(input.size(), kPageBytes));
  Store64(page.data(), magic);
  Store64(page.data() + checksum_offset, Xxh3_64(page.data(), checksum_offset));
  return page;
}

}  // namespace
}  // namespace pstore::nvme_format

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pstore::nvme_format;
  // An exact-size copy: ASan sees any read past the page's end.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[size]);
  if (size > 0) std::memcpy(copy.get(), data, size);
  const std::span<const uint8_t> page(copy.get(), size);
  CheckRegion(page, {});
  CheckEntry(page, {});
  // Covered bits to flip in sealed pages: two, picked by the input's last
  // bytes (tests/storage/nvme/nvme_format_test.cc flips every one).
  const size_t flips[] = {
      size > 0 ? data[size - 1] * size_t{7} : 0,
      size > 1 ? data[size - 2] * size_t{3} + 1 : 1,
  };
  CheckRegion(Seal(page, kRegionMagic, kRegionChecksumOffset), flips);
  CheckEntry(Seal(page, kEntryMagic, kEntryChecksumOffset), flips);
  return 0;
}
