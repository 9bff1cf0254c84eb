// OpenRocksDbBackend: the embedded, single-machine Backend: a
// RocksDbCatalog in one ColdDatabase and, as the durable tier, block files
// beside it (BlockFileTier, which also serves blocks that earlier stores
// kept in the database), or with ColdTierOptions::block_files false a
// ColdTier in the database itself.

#ifndef PSTORE_STORAGE_COLD_ROCKSDB_BACKEND_H_
#define PSTORE_STORAGE_COLD_ROCKSDB_BACKEND_H_

#include "absl/status/statusor.h"
#include "storage/backend.h"
#include "storage/cold/cold_database.h"

namespace pstore {

// Opens or creates the database under options.dir. Codes of
// ColdDatabase::Open.
absl::StatusOr<Backend> OpenRocksDbBackend(ColdTierOptions options);

}  // namespace pstore

#endif  // PSTORE_STORAGE_COLD_ROCKSDB_BACKEND_H_
