// Backend: the durable half of a store: the Catalog and the Tier that holds
// every block's bytes. They are opened together because they must agree: a
// block written to the tier is durable no later than the catalog's next
// commit returns, and a block the catalog marks staged is in the tier or
// absent from both. cold/ opens the RocksDB backend (OpenRocksDbBackend).

#ifndef PSTORE_STORAGE_BACKEND_H_
#define PSTORE_STORAGE_BACKEND_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/catalog.h"
#include "storage/records.h"
#include "storage/store_stats.h"
#include "storage/tier.h"

namespace pstore {

struct Backend {
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<Tier> blocks;
  // Returns why the backend is degraded (its cluster unreachable: cached
  // blocks are served, the rest is Unavailable), or an empty string. Null
  // for a backend that is never degraded (RocksDB). Thread-safe, and
  // callable for as long as the caller keeps a copy.
  std::function<std::string()> degraded_reason;
  // Runs one mark and sweep of unreferenced blocks (dry run: counts only).
  // Null for a backend that collects each block as its last reference goes
  // (RocksDB). Callable while the backend's catalog lives.
  std::function<absl::StatusOr<GcReport>(bool dry_run)> collect_garbage;
  // Membership of a backend that many nodes share (RADOS): join registers
  // this node, serving at `address` with a ring of `ring_size` points per
  // node (storage/peers/), and keeps it registered until leave (or the
  // backend goes); members lists the nodes seen alive, this one first. All
  // null for a backend of one node (RocksDB).
  std::function<absl::Status(const std::string& address, uint32_t ring_size)>
      join;
  std::function<std::vector<NodeInfo>()> members;
  std::function<void()> leave;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_BACKEND_H_
