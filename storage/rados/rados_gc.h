// CollectGarbage: mark and sweep of the block objects of a RADOS-backed
// store, run by any node, one at a time (a RADOS lock on catalog.gc).
//
// Mark: every block a tensor record of any revision names (read from the
// pool, nothing cached). Sweep: every block object in the store's
// namespace that is not marked and whose touched time (xattr
// pstore.touched, set by each put that writes or reuses the block) is
// older than the grace period is removed, guarded on that touched time: a
// put that touches the block after the sweep read it makes the removal
// fail, and the block stays. Why no committed record can lose its block:
// storage/rados/rados_format.md, "Garbage".

#ifndef PSTORE_STORAGE_RADOS_RADOS_GC_H_
#define PSTORE_STORAGE_RADOS_RADOS_GC_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "storage/rados/rados_catalog.h"
#include "storage/rados/rados_pool.h"
#include "storage/store_stats.h"

namespace pstore {

// Runs one mark and sweep; with `dry_run`, removes nothing and counts what
// it would remove. FailedPrecondition if another node holds the lock;
// Unavailable if the cluster is unreachable.
absl::StatusOr<GcReport> CollectRadosGarbage(RadosPool& pool,
                                             const RadosCatalog& catalog,
                                             bool dry_run);

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_GC_H_
