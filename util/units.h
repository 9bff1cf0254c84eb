// Parsing and formatting of byte sizes ("4MiB", "512KiB", "1.5GiB").

#ifndef PSTORE_UTIL_UNITS_H_
#define PSTORE_UTIL_UNITS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;
inline constexpr uint64_t kTiB = uint64_t{1} << 40;

// Parses a byte size: a decimal number (fractions allowed with a suffix)
// optionally followed by B, KiB, MiB, GiB or TiB (case-insensitive; K, M, G,
// T and KB, MB, GB, TB are read as binary units too). Returns InvalidArgument
// for anything else, including negative values and overflow.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// Returns `bytes` in the largest binary unit that keeps it at or above 1,
// e.g. "4 MiB", "1.50 GiB", "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace pstore

#endif  // PSTORE_UTIL_UNITS_H_
