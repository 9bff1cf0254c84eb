#include "util/units.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pstore {
namespace {

struct Suffix {
  absl::string_view name;
  uint64_t multiplier;
};

constexpr Suffix kSuffixes[] = {
    {"tib", kTiB}, {"gib", kGiB}, {"mib", kMiB}, {"kib", kKiB}, {"tb", kTiB},
    {"gb", kGiB},  {"mb", kMiB},  {"kb", kKiB},  {"t", kTiB},   {"g", kGiB},
    {"m", kMiB},   {"k", kKiB},   {"b", 1},
};

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  absl::string_view number = lower;
  uint64_t multiplier = 1;
  for (const Suffix& suffix : kSuffixes) {
    if (number.size() > suffix.name.size() &&
        number.substr(number.size() - suffix.name.size()) == suffix.name) {
      number.remove_suffix(suffix.name.size());
      multiplier = suffix.multiplier;
      break;
    }
  }
  number = absl::StripTrailingAsciiWhitespace(number);
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad byte size '", text, "': want a number with an optional unit ",
        "B, KiB, MiB, GiB or TiB, e.g. 512MiB"));
  };
  if (number.empty() || number[0] == '-' || number[0] == '+') return invalid();
  uint64_t whole = 0;
  if (absl::SimpleAtoi(number, &whole)) {
    if (whole > UINT64_MAX / multiplier) return invalid();
    return whole * multiplier;
  }
  double fractional = 0;
  if (multiplier == 1 || !absl::SimpleAtod(number, &fractional) ||
      !std::isfinite(fractional) || fractional < 0) {
    return invalid();
  }
  double bytes = fractional * static_cast<double>(multiplier);
  if (bytes >= 18446744073709551615.0) return invalid();
  return static_cast<uint64_t>(bytes);
}

std::string FormatBytes(uint64_t bytes) {
  constexpr std::pair<uint64_t, absl::string_view> kUnits[] = {
      {kTiB, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  for (const auto& [unit, name] : kUnits) {
    if (bytes >= unit) {
      if (bytes % unit == 0) return absl::StrCat(bytes / unit, " ", name);
      return absl::StrFormat("%.2f %s", static_cast<double>(bytes) / unit,
                             name);
    }
  }
  return absl::StrCat(bytes, " B");
}

}  // namespace pstore
