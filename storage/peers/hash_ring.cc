#include "storage/peers/hash_ring.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pstore {

HashRing::HashRing(std::vector<std::string> addresses, int virtual_nodes)
    : addresses_(std::move(addresses)), virtual_nodes_(virtual_nodes) {
  std::sort(addresses_.begin(), addresses_.end());
  addresses_.erase(std::unique(addresses_.begin(), addresses_.end()),
                   addresses_.end());
  points_.reserve(addresses_.size() * virtual_nodes_);
  for (uint32_t node = 0; node < addresses_.size(); ++node) {
    for (int i = 0; i < virtual_nodes_; ++i) {
      std::string key = absl::StrCat(addresses_[node], "#", i);
      points_.push_back(Point{Xxh3_64(key.data(), key.size()), node});
    }
  }
  // Ties (vanishingly rare) go to the smaller address, the same on every
  // node.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.position != b.position ? a.position < b.position : a.node < b.node;
  });
}

const std::string& HashRing::Owner(const BlockId& id) const {
  static const std::string* const kNone = new std::string();
  if (points_.empty()) return *kNone;
  uint64_t position = id.hash().low;
  auto it = std::lower_bound(
      points_.begin(), points_.end(), position,
      [](const Point& point, uint64_t p) { return point.position < p; });
  if (it == points_.end()) it = points_.begin();
  return addresses_[it->node];
}

}  // namespace pstore
