#include "storage/nvme/nvme_format.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pstore::nvme_format {
namespace {

void PutU32(uint8_t* at, uint32_t value) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

void PutU64(uint8_t* at, uint64_t value) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint32_t GetU32(const uint8_t* at) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= uint32_t{at[i]} << (8 * i);
  return value;
}

uint64_t GetU64(const uint8_t* at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{at[i]} << (8 * i);
  return value;
}

// Returns OK if `page` starts with `magic` and its checksum at
// `checksum_offset` matches the bytes before it.
absl::Status CheckPage(std::span<const uint8_t> page, uint64_t magic,
                       size_t checksum_offset, absl::string_view what) {
  if (page.size() < checksum_offset + 8) {
    return absl::DataLossError(absl::StrCat(what, ": page too short"));
  }
  if (GetU64(page.data()) != magic) {
    return absl::DataLossError(absl::StrCat(what, ": bad magic"));
  }
  if (GetU64(page.data() + checksum_offset) !=
      Xxh3_64(page.data(), checksum_offset)) {
    return absl::DataLossError(absl::StrCat(what, ": bad checksum"));
  }
  return absl::OkStatus();
}

}  // namespace

void EncodeRegionHeader(const RegionHeader& header, std::span<uint8_t> page) {
  std::fill(page.begin(), page.end(), 0);
  uint8_t* p = page.data();
  PutU64(p + 0, kRegionMagic);
  PutU32(p + 8, header.version);
  PutU32(p + 12, header.region);
  PutU64(p + 16, header.region_bytes);
  PutU64(p + 24, header.generation);
  PutU64(p + kRegionChecksumOffset, Xxh3_64(p, kRegionChecksumOffset));
}

absl::StatusOr<RegionHeader> DecodeRegionHeader(std::span<const uint8_t> page) {
  absl::Status status =
      CheckPage(page, kRegionMagic, kRegionChecksumOffset, "region header");
  if (!status.ok()) return status;
  const uint8_t* p = page.data();
  RegionHeader header;
  header.version = GetU32(p + 8);
  header.region = GetU32(p + 12);
  header.region_bytes = GetU64(p + 16);
  header.generation = GetU64(p + 24);
  return header;
}

void EncodeEntryHeader(const EntryHeader& header, std::span<uint8_t> page) {
  std::fill(page.begin(), page.end(), 0);
  uint8_t* p = page.data();
  PutU64(p + 0, kEntryMagic);
  PutU32(p + 8, header.version);
  PutU32(p + 12, 0);  // Reserved.
  PutU64(p + 16, header.generation);
  std::array<uint8_t, BlockId::kSize> id = header.id.ToBytes();
  std::memcpy(p + 24, id.data(), id.size());
  PutU64(p + 40, header.length);
  PutU64(p + kEntryChecksumOffset, Xxh3_64(p, kEntryChecksumOffset));
}

absl::StatusOr<EntryHeader> DecodeEntryHeader(std::span<const uint8_t> page) {
  absl::Status status =
      CheckPage(page, kEntryMagic, kEntryChecksumOffset, "entry header");
  if (!status.ok()) return status;
  const uint8_t* p = page.data();
  EntryHeader header;
  header.version = GetU32(p + 8);
  header.generation = GetU64(p + 16);
  absl::StatusOr<BlockId> id = BlockId::FromBytes(
      absl::string_view(reinterpret_cast<const char*>(p + 24), BlockId::kSize));
  if (!id.ok()) return id.status();
  header.id = *id;
  header.length = GetU64(p + 40);
  return header;
}

}  // namespace pstore::nvme_format
