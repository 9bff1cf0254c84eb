// OpenRocksDbBackend: the embedded, single-machine Backend: a ColdTier and
// a RocksDbCatalog over one ColdDatabase, so the catalog's synced commits
// make earlier block writes durable too (one write-ahead log).

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
