#include "storage/rados/rados_backend.h"

#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "storage/rados/rados_catalog.h"
#include "storage/rados/rados_gc.h"
#include "storage/rados/rados_members.h"
#include "storage/rados/rados_pool.h"
#include "storage/rados/rados_tier.h"
#include "util/status.h"

namespace pstore {
namespace {

// This node's membership, from its join until the backend goes.
struct Membership {
  absl::Mutex mu;
  std::unique_ptr<RadosMembers> members ABSL_GUARDED_BY(mu);
};

}  // namespace

absl::StatusOr<Backend> OpenRadosBackend(RadosOptions options,
                                         uint64_t block_bytes) {
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<RadosPool> pool,
                          RadosPool::Connect(std::move(options)));
  Backend backend;
  auto catalog = std::make_unique<RadosCatalog>(pool);
  RadosCatalog* raw = catalog.get();
  backend.catalog = std::move(catalog);
  backend.collect_garbage = [pool, raw](bool dry_run) {
    return CollectRadosGarbage(*pool, *raw, dry_run);
  };
  backend.blocks = std::make_unique<RadosTier>(pool, block_bytes);
  backend.degraded_reason = [pool] { return pool->DegradedReason(); };
  auto membership = std::make_shared<Membership>();
  backend.join = [pool, membership](const std::string& address,
                                    uint32_t ring_size) {
    absl::MutexLock lock(&membership->mu);
    if (membership->members != nullptr) {
      return absl::FailedPreconditionError("this node has joined already");
    }
    PSTORE_ASSIGN_OR_RETURN(membership->members,
                            RadosMembers::Join(pool, address, ring_size,
                                               pool->options().heartbeat_period,
                                               pool->options().peer_timeout));
    return absl::OkStatus();
  };
  backend.members = [membership] {
    absl::MutexLock lock(&membership->mu);
    return membership->members != nullptr ? membership->members->Members()
                                          : std::vector<NodeInfo>();
  };
  backend.leave = [membership] {
    absl::MutexLock lock(&membership->mu);
    membership->members.reset();
  };
  return backend;
}

}  // namespace pstore
