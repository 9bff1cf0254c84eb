// OpenRadosBackend: the Backend of a store shared by many pstored nodes: a
// RadosCatalog and a RadosTier on one connection to the pool
// (storage/rados/rados_format.md).

#ifndef PSTORE_STORAGE_RADOS_RADOS_BACKEND_H_
#define PSTORE_STORAGE_RADOS_RADOS_BACKEND_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "storage/backend.h"
#include "storage/rados/rados_options.h"

namespace pstore {

// Connects to the pool of `options`, for a store of `block_bytes` blocks.
// Codes of RadosPool::Connect.
absl::StatusOr<Backend> OpenRadosBackend(RadosOptions options,
                                         uint64_t block_bytes);

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_BACKEND_H_
