// RadosPool: one connection to a Ceph cluster (librados' C API) and an I/O
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
// Health: a thread probes the pool every probe_period (a stat of one object,
// asynchronous, polled); a probe that does not come back within
// probe_timeout, or an operation that fails with Unavailable, makes the
// pool degraded until a probe succeeds again. While degraded, callers skip
// the cluster where they can (serve what they cached, fail the rest at once
// with Unavailable) instead of waiting op_timeout on each operation.
//
// Thread-safe: librados' I/O context may be used from many threads.

#ifndef PSTORE_STORAGE_RADOS_RADOS_POOL_H_
#define PSTORE_STORAGE_RADOS_RADOS_POOL_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "rados/librados.h"
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

  rados_ioctx_t io() const { return io_; }
  const RadosOptions& options() const { return options_; }

  // Returns why the cluster counts as unreachable now, or an empty string
  // when it does not.
  std::string DegradedReason() const;
  bool degraded() const { return degraded_.load(std::memory_order_relaxed); }

  // Returns `status` after noting it: an Unavailable status makes the pool
  // degraded until the next good probe.
  absl::Status Note(absl::Status status);

  // Waits until no watch callback runs (librados' watch_flush).
  void FlushWatches() { rados_watch_flush(cluster_); }

  // Returns Unavailable naming `what` if the pool is degraded, else OK.
  absl::Status CheckReachable(absl::string_view what) const;

 private:
  explicit RadosPool(RadosOptions options) : options_(std::move(options)) {}

  // Probes the pool until the pool is destroyed.
  void ProbeLoop();
  void SetDegraded(std::string reason);

  const RadosOptions options_;
  rados_t cluster_ = nullptr;
  rados_ioctx_t io_ = nullptr;

  std::atomic<bool> degraded_{false};
  mutable absl::Mutex mu_;
  std::string degraded_reason_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread prober_;
};

// Returns the status of librados result `result` (0 or a negative errno),
// prefixed by `context`: timeouts and lost connections are Unavailable, a
// guard that did not hold (-ECANCELED) is Aborted, the rest as
// ErrnoToStatus (util/status.h).
absl::Status RadosStatus(int result, absl::string_view context);

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_POOL_H_
