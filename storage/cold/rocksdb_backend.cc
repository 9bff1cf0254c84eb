#include "storage/cold/rocksdb_backend.h"

#include <memory>
#include <utility>

#include "storage/cold/cold_tier.h"
#include "storage/cold/rocksdb_catalog.h"
#include "util/status.h"

namespace pstore {

absl::StatusOr<Backend> OpenRocksDbBackend(ColdTierOptions options) {
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<ColdDatabase> database,
                          ColdDatabase::Open(std::move(options)));
  Backend backend;
  backend.catalog = std::make_unique<RocksDbCatalog>(database);
  backend.blocks = std::make_unique<ColdTier>(std::move(database));
  return backend;
}

}  // namespace pstore
