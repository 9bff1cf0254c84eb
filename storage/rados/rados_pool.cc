#include "storage/rados/rados_pool.h"

#include <cerrno>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace pstore {
namespace {

// Returns `duration` in whole seconds, at least 1, as librados reads it.
std::string Seconds(absl::Duration duration) {
  return absl::StrCat(std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(duration)))));
}

}  // namespace

absl::Status RadosStatus(int result, absl::string_view context) {
  if (result >= 0) return absl::OkStatus();
  const int error = -result;
  switch (error) {
    case ETIMEDOUT:
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return absl::UnavailableError(
          absl::StrCat(context, ": Ceph did not answer (", strerror(error),
                       "); the cluster or the pool's OSDs are unreachable"));
    case ECANCELED:
      return absl::AbortedError(
          absl::StrCat(context, ": a guard did not hold (", strerror(error),
                       "): another writer changed the object first"));
    default:
      return pstore::ErrnoToStatus(error, context);
  }
}

absl::StatusOr<std::shared_ptr<RadosPool>> RadosPool::Connect(
    RadosOptions options) {
  if (options.ceph_conf.empty()) {
    return absl::InvalidArgumentError("rados: no ceph.conf given");
  }
  if (options.pool.empty()) {
    return absl::InvalidArgumentError("rados: no pool given");
  }
  std::shared_ptr<RadosPool> pool(new RadosPool(std::move(options)));
  const RadosOptions& o = pool->options_;
  const std::string who = absl::StrCat("client.", o.user);
  if (int r = pool->rados_.init2(who.c_str(), "ceph", 0); r < 0) {
    return RadosStatus(r, absl::StrCat("rados: init as ", who));
  }
  if (int r = pool->rados_.conf_read_file(o.ceph_conf.c_str()); r < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rados: cannot read ceph.conf '", o.ceph_conf, "': ", strerror(-r)));
  }
  const std::string connect = Seconds(o.connect_timeout);
  const std::string op = Seconds(o.op_timeout);
  const std::string kInflightBytes = absl::StrCat(uint64_t{1} << 30);
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string&>{"client_mount_timeout",
                                                   connect},
        {"rados_mon_op_timeout", op},
        {"rados_osd_op_timeout", op},
        // The store bounds its reads in flight itself (its read-ahead
        // budget); librados' own bound (100 MiB) would stall deep
        // read-ahead of 4 MiB blocks.
        {"objecter_inflight_op_bytes", kInflightBytes}}) {
    if (int r = pool->rados_.conf_set(name, value.c_str()); r < 0) {
      return RadosStatus(r, absl::StrCat("rados: set ", name));
    }
  }
  if (int r = pool->rados_.connect(); r < 0) {
    if (r == -ETIMEDOUT || r == -ENOENT || r == -ENOTCONN) {
      return absl::UnavailableError(absl::StrCat(
          "rados: no Ceph monitor of '", o.ceph_conf, "' answered within ",
          connect, " s (", strerror(-r), ")"));
    }
    return RadosStatus(r, absl::StrCat("rados: connect as ", who, " with '",
                                       o.ceph_conf, "'"));
  }
  pool->connected_ = true;
  if (int r = pool->rados_.ioctx_create(o.pool.c_str(), pool->io_); r < 0) {
    if (r == -ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("rados: pool '", o.pool, "' does not exist"));
    }
    return RadosStatus(r, absl::StrCat("rados: open pool '", o.pool, "'"));
  }
  pool->io_.set_namespace(o.name_space);
  // The monitors answered; an OSD of the pool must answer too.
  uint64_t size = 0;
  time_t mtime = 0;
  int r = pool->io_.stat("pstore.probe", &size, &mtime);
  if (r < 0 && r != -ENOENT) {
    return RadosStatus(r, absl::StrCat("rados: probe of pool '", o.pool,
                                       "' within ", op, " s"));
  }
  return pool;
}

RadosPool::~RadosPool() {
  io_.close();
  if (connected_) rados_.shutdown();
}

}  // namespace pstore
