#include "storage/tier.h"

namespace pstore {

absl::string_view TierKindName(TierKind kind) {
  switch (kind) {
    case TierKind::kDram:
      return "dram";
    case TierKind::kNvme:
      return "nvme";
    case TierKind::kCold:
      return "cold";
  }
  return "unknown";
}

}  // namespace pstore
