// RadosPool: one connection to a Ceph cluster (librados::Rados) and an I/O
// context on one pool and namespace, shared by the RADOS tier and catalog
// of a store (storage/rados/).
//
// Connect is bounded: the monitors must answer within connect_timeout, and
// a probe of the pool (a stat of an object that need not exist) must come
// back from an OSD within op_timeout, or Connect fails with Unavailable
// (NotFound for a pool that does not exist). Every later operation is
// bounded by op_timeout too (librados' rados_osd_op_timeout and
// rados_mon_op_timeout): an unreachable cluster gives Unavailable, never a
// call that hangs.
//
// Thread-safe: librados' I/O context may be used from many threads.

#ifndef PSTORE_STORAGE_RADOS_RADOS_POOL_H_
#define PSTORE_STORAGE_RADOS_RADOS_POOL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rados/librados.hpp"
#include "storage/rados/rados_options.h"

namespace pstore {

class RadosPool {
 public:
  // Connects and opens the pool. Unavailable if the cluster does not answer
  // in time; NotFound if the pool does not exist; PermissionDenied for a
  // key the cluster refuses; InvalidArgument for a conf that cannot be read.
  static absl::StatusOr<std::shared_ptr<RadosPool>> Connect(
      RadosOptions options);

  ~RadosPool();
  RadosPool(const RadosPool&) = delete;
  RadosPool& operator=(const RadosPool&) = delete;

  librados::IoCtx& io() { return io_; }
  const RadosOptions& options() const { return options_; }

 private:
  explicit RadosPool(RadosOptions options) : options_(std::move(options)) {}

  const RadosOptions options_;
  librados::Rados rados_;
  librados::IoCtx io_;
  bool connected_ = false;
};

// Returns the status of librados result `result` (0 or a negative errno),
// prefixed by `context`: timeouts and lost connections are Unavailable, a
// guard that did not hold (-ECANCELED) is Aborted, the rest as
// ErrnoToStatus (util/status.h).
absl::Status RadosStatus(int result, absl::string_view context);

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_POOL_H_
