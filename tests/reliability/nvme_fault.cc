#include "tests/reliability/nvme_fault.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace pstore::reliability {
namespace {

constexpr uint64_t kPage = 4096;
constexpr char kRegionMagic[] = "pstoreRG";
constexpr char kEntryMagic[] = "pstoreEN";

uint64_t GetU64(const uint8_t* at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{at[i]} << (8 * i);
  return value;
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

struct Entry {
  uint64_t offset = 0;  // Of the header page.
  uint64_t length = 0;
};

struct Region {
  std::string path;
  int index = 0;
  std::vector<Entry> entries;  // Those a scan would accept, in order.
};

// Reads the region file at `path`; returns false if its header is not a
// valid-looking one.
absl::StatusOr<bool> ScanRegion(const std::string& path, Region* region) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return Errno("open", path);
  struct stat info;
  if (fstat(fd, &info) != 0) {
    close(fd);
    return Errno("stat", path);
  }
  uint64_t size = static_cast<uint64_t>(info.st_size);
  std::vector<uint8_t> page(kPage);
  auto read_page = [&](uint64_t offset) {
    return pread(fd, page.data(), kPage, static_cast<off_t>(offset)) ==
           static_cast<ssize_t>(kPage);
  };
  if (!read_page(0) || std::memcmp(page.data(), kRegionMagic, 8) != 0) {
    close(fd);
    return false;
  }
  uint64_t generation = GetU64(page.data() + 24);
  uint64_t offset = kPage;
  while (offset + kPage <= size && read_page(offset)) {
    if (std::memcmp(page.data(), kEntryMagic, 8) != 0 ||
        GetU64(page.data() + 16) != generation) {
      break;
    }
    uint64_t length = GetU64(page.data() + 40);
    uint64_t padded = (length + kPage - 1) / kPage * kPage;
    if (offset + kPage + padded > size) break;
    region->entries.push_back(Entry{offset, length});
    offset += kPage + padded;
  }
  close(fd);
  return true;
}

absl::Status FlipByte(const std::string& path, uint64_t offset, uint8_t mask) {
  int fd = open(path.c_str(), O_RDWR);
  if (fd < 0) return Errno("open", path);
  uint8_t byte = 0;
  absl::Status status = absl::OkStatus();
  if (pread(fd, &byte, 1, static_cast<off_t>(offset)) != 1) {
    status = Errno("read", path);
  } else {
    byte ^= mask;
    if (pwrite(fd, &byte, 1, static_cast<off_t>(offset)) != 1 ||
        fsync(fd) != 0) {
      status = Errno("write", path);
    }
  }
  close(fd);
  return status;
}

}  // namespace

const char* NvmeFaultName(NvmeFault fault) {
  switch (fault) {
    case NvmeFault::kNone:
      return "none";
    case NvmeFault::kRegionHeader:
      return "region_header";
    case NvmeFault::kEntryHeader:
      return "entry_header";
    case NvmeFault::kEntryData:
      return "entry_data";
  }
  return "?";
}

absl::Status InjectNvmeFault(const std::string& nvme_dir, std::mt19937_64& rng,
                             NvmeFaultResult* result) {
  *result = NvmeFaultResult();
  std::vector<Region> regions;
  std::error_code error;
  for (const auto& file :
       std::filesystem::directory_iterator(nvme_dir, error)) {
    std::string name = file.path().filename().string();
    int index = 0;
    if (std::sscanf(name.c_str(), "region-%d.dat", &index) != 1) continue;
    Region region;
    region.path = file.path().string();
    region.index = index;
    absl::StatusOr<bool> valid = ScanRegion(region.path, &region);
    if (!valid.ok()) return valid.status();
    if (*valid && !region.entries.empty()) regions.push_back(std::move(region));
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("list ", nvme_dir, ": ", error.message()));
  }
  if (regions.empty()) return absl::OkStatus();
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  const Region& region = regions[uniform(0, regions.size() - 1)];
  const Entry& entry = region.entries[uniform(0, region.entries.size() - 1)];
  uint8_t mask = static_cast<uint8_t>(uniform(1, 255));
  result->region = region.index;
  switch (uniform(0, 2)) {
    case 0:
      // The fields and checksum: bytes [0, 40).
      result->fault = NvmeFault::kRegionHeader;
      result->offset = uniform(0, 39);
      break;
    case 1:
      result->fault = NvmeFault::kEntryHeader;
      result->offset = entry.offset + uniform(0, 55);
      break;
    default:
      if (entry.length == 0) {
        result->fault = NvmeFault::kEntryHeader;
        result->offset = entry.offset + uniform(0, 55);
        break;
      }
      result->fault = NvmeFault::kEntryData;
      result->offset = entry.offset + kPage + uniform(0, entry.length - 1);
      break;
  }
  return FlipByte(region.path, result->offset, mask);
}

}  // namespace pstore::reliability
