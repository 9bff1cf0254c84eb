#include "storage/rados/rados_pool.h"

#include <cerrno>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
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
  if (int r = rados_create2(&pool->cluster_, "ceph", who.c_str(), 0); r < 0) {
    pool->cluster_ = nullptr;
    return RadosStatus(r, absl::StrCat("rados: init as ", who));
  }
  if (int r = rados_conf_read_file(pool->cluster_, o.ceph_conf.c_str());
      r < 0) {
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
    if (int r = rados_conf_set(pool->cluster_, name, value.c_str()); r < 0) {
      return RadosStatus(r, absl::StrCat("rados: set ", name));
    }
  }
  if (int r = rados_connect(pool->cluster_); r < 0) {
    if (r == -ETIMEDOUT || r == -ENOENT || r == -ENOTCONN) {
      return absl::UnavailableError(absl::StrCat(
          "rados: no Ceph monitor of '", o.ceph_conf, "' answered within ",
          connect, " s (", strerror(-r), ")"));
    }
    return RadosStatus(r, absl::StrCat("rados: connect as ", who, " with '",
                                       o.ceph_conf, "'"));
  }
  if (int r = rados_ioctx_create(pool->cluster_, o.pool.c_str(), &pool->io_);
      r < 0) {
    pool->io_ = nullptr;
    if (r == -ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("rados: pool '", o.pool, "' does not exist"));
    }
    return RadosStatus(r, absl::StrCat("rados: open pool '", o.pool, "'"));
  }
  rados_ioctx_set_namespace(pool->io_, o.name_space.c_str());
  // The monitors answered; an OSD of the pool must answer too.
  uint64_t size = 0;
  time_t mtime = 0;
  int r = rados_stat(pool->io_, "pstore.probe", &size, &mtime);
  if (r < 0 && r != -ENOENT) {
    return RadosStatus(r, absl::StrCat("rados: probe of pool '", o.pool,
                                       "' within ", op, " s"));
  }
  pool->prober_ = std::thread([raw = pool.get()] { raw->ProbeLoop(); });
  return pool;
}

RadosPool::~RadosPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (prober_.joinable()) prober_.join();
  if (io_ != nullptr) rados_ioctx_destroy(io_);
  // Also for a cluster handle that never connected.
  if (cluster_ != nullptr) rados_shutdown(cluster_);
}

std::string RadosPool::DegradedReason() const {
  if (!degraded()) return "";
  absl::MutexLock lock(&mu_);
  return degraded_reason_;
}

void RadosPool::SetDegraded(std::string reason) {
  absl::MutexLock lock(&mu_);
  if (!degraded_.load()) {
    spdlog::warn(
        "event=rados_degraded pool={} reason=\"{}\" action=\"serving cached "
        "blocks; cold misses and writes fail UNAVAILABLE until the cluster "
        "answers\"",
        options_.pool, reason);
  }
  degraded_reason_ = std::move(reason);
  degraded_.store(true);
}

absl::Status RadosPool::Note(absl::Status status) {
  if (absl::IsUnavailable(status)) SetDegraded(std::string(status.message()));
  return status;
}

absl::Status RadosPool::CheckReachable(absl::string_view what) const {
  if (!degraded()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      what, ": the Ceph cluster is unreachable (", DegradedReason(), ")"));
}

void RadosPool::ProbeLoop() {
  auto stopping = [this] {
    absl::MutexLock lock(&mu_);
    return stopping_;
  };
  auto wait = [this](absl::Duration duration) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), duration);
    return stopping_;
  };
  // A probe's completion is released by whichever lets go of it last: the
  // loop, or librados when an abandoned probe finally ends.
  struct Probe {
    rados_completion_t completion = nullptr;
    // Written by librados whenever the stat ends.
    uint64_t size = 0;
    time_t mtime = 0;
    std::atomic<int> holders{2};
    void Drop() {
      if (holders.fetch_sub(1) == 1) {
        rados_aio_release(completion);
        delete this;
      }
    }
  };
  while (!wait(options_.probe_period)) {
    auto* probe = new Probe;
    int result = rados_aio_create_completion2(
        probe,
        +[](rados_completion_t, void* arg) {
          static_cast<Probe*>(arg)->Drop();
        },
        &probe->completion);
    if (result < 0) {
      delete probe;
      SetDegraded(std::string(RadosStatus(result, "probe").message()));
      continue;
    }
    result = rados_aio_stat(io_, "pstore.probe", probe->completion,
                            &probe->size, &probe->mtime);
    if (result < 0) probe->Drop();  // No callback will come.
    const absl::Time deadline = absl::Now() + options_.probe_timeout;
    // Polled, so that a probe the cluster never answers cannot hold the
    // loop (or the destructor) longer than probe_timeout.
    while (result == 0 && !rados_aio_is_complete(probe->completion) &&
           absl::Now() < deadline && !stopping()) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    const bool answered =
        result == 0 && rados_aio_is_complete(probe->completion);
    if (answered) result = rados_aio_get_return_value(probe->completion);
    probe->Drop();
    if (answered && (result == 0 || result == -ENOENT)) {
      if (degraded_.exchange(false)) {
        spdlog::info("event=rados_recovered pool={}", options_.pool);
      }
    } else if (!stopping()) {
      SetDegraded(
          result < 0
              ? std::string(RadosStatus(result, "probe").message())
              : absl::StrCat("no answer to a probe within ",
                             absl::FormatDuration(options_.probe_timeout)));
    }
  }
}

}  // namespace pstore
