#include "storage/cold/rocksdb_backend.h"

#include <memory>
#include <utility>

#include "storage/cold/block_files.h"
#include "storage/cold/cold_tier.h"
#include "storage/cold/rocksdb_catalog.h"
#include "util/status.h"

namespace pstore {

absl::StatusOr<Backend> OpenRocksDbBackend(ColdTierOptions options) {
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<ColdDatabase> database,
                          ColdDatabase::Open(std::move(options)));
  Backend backend;
  backend.catalog = std::make_unique<RocksDbCatalog>(database);
  if (database->options().block_files) {
    PSTORE_ASSIGN_OR_RETURN(backend.blocks,
                            BlockFileTier::Open(std::move(database)));
  } else {
    backend.blocks = std::make_unique<ColdTier>(std::move(database));
  }
  return backend;
}

}  // namespace pstore
