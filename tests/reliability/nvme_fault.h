// InjectNvmeFault: damages the NVMe tier's region files of a stopped
// pstored the way a failing cache device would, so that the harness can
// check that the warm cache is discarded safely (never wrong bytes, never
// a failed read: the cold tier has every block). Works from the format in
// storage/nvme/nvme_format.md, without storage/ code.

#ifndef PSTORE_TESTS_RELIABILITY_NVME_FAULT_H_
#define PSTORE_TESTS_RELIABILITY_NVME_FAULT_H_

#include <cstdint>
#include <random>
#include <string>

#include "absl/status/status.h"

namespace pstore::reliability {

enum class NvmeFault {
  kNone,          // No region file with entries to damage.
  kRegionHeader,  // One byte of a region header: the region is discarded.
  kEntryHeader,   // One byte of an entry header: the scan ends there.
  kEntryData,     // One byte of an entry's data: its reads fail the hash.
};

// Returns "none", "region_header", "entry_header", "entry_data".
const char* NvmeFaultName(NvmeFault fault);

struct NvmeFaultResult {
  NvmeFault fault = NvmeFault::kNone;
  int region = -1;
  uint64_t offset = 0;  // Of the damaged byte in the region file.
};

// Flips one byte of a valid region header, entry header or entry data
// (chosen with `rng`) in the region files under `nvme_dir`, and syncs the
// file. REQUIRES: no process has the files open. Returns an error only if
// a file cannot be read or written.
absl::Status InjectNvmeFault(const std::string& nvme_dir, std::mt19937_64& rng,
                             NvmeFaultResult* result);

}  // namespace pstore::reliability

#endif  // PSTORE_TESTS_RELIABILITY_NVME_FAULT_H_
