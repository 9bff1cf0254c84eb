#include "storage/rados/rados_backend.h"

#include <memory>
#include <utility>

#include "storage/rados/rados_catalog.h"
#include "storage/rados/rados_gc.h"
#include "storage/rados/rados_pool.h"
#include "storage/rados/rados_tier.h"
#include "util/status.h"

namespace pstore {

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
  return backend;
}

}  // namespace pstore
