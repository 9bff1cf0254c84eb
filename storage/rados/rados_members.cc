#include "storage/rados/rados_members.h"

#include <errno.h>

#include <algorithm>
#include <random>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rados/librados.h"
#include "spdlog/spdlog.h"
#include "storage/cold/catalog.pb.h"
#include "storage/rados/rados_ops.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr char kMembersObject[] = "catalog.members";
// Entries read per operation.
constexpr uint64_t kOmapPage = 1024;
// A join or leave notice waits at most this for the others' acks (a node
// that died keeps its watch for a while and never acks; live ones ack at
// once). Nobody waits on it but a leaving node's destructor.
constexpr uint64_t kNotifyTimeoutMs = 1000;

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

std::string NewId() {
  std::random_device random;
  uint64_t id = (uint64_t{random()} << 32) ^ random() ^
                static_cast<uint64_t>(NowMicros());
  return absl::StrCat(absl::Hex(id, absl::kZeroPad16));
}

}  // namespace

// Counts notices in flight; shared with their completions, which may
// outlive the members object.
struct RadosMembers::Notices {
  absl::Mutex mu;
  int in_flight ABSL_GUARDED_BY(mu) = 0;
};

// Wakes the heartbeat thread when another node joins or leaves; callbacks
// run on librados' threads.
class RadosMembers::Watch {
 public:
  explicit Watch(RadosMembers* members) : members_(members) {}
  ~Watch() {
    if (handle_ != 0) rados_unwatch2(members_->pool_->io(), handle_);
    members_->pool_->FlushWatches();
  }

  absl::Status Start() {
    return RadosStatus(rados_watch2(members_->pool_->io(), kMembersObject,
                                    &handle_, &OnNotice, &OnError, this),
                       "members: watch");
  }

 private:
  static void OnNotice(void* arg, uint64_t notify_id, uint64_t cookie, uint64_t,
                       void*, size_t) {
    auto* watch = static_cast<Watch*>(arg);
    rados_notify_ack(watch->members_->pool_->io(), kMembersObject, notify_id,
                     cookie, nullptr, 0);
    absl::MutexLock lock(&watch->members_->mu_);
    watch->members_->wake_ = true;
  }
  static void OnError(void* arg, uint64_t, int) {
    // Notices may be missed now: the periodic re-read still comes.
    auto* watch = static_cast<Watch*>(arg);
    absl::MutexLock lock(&watch->members_->mu_);
    watch->members_->wake_ = true;
  }

  RadosMembers* const members_;
  uint64_t handle_ = 0;
};

RadosMembers::RadosMembers(std::shared_ptr<RadosPool> pool, std::string address,
                           uint32_t ring_size, absl::Duration heartbeat_period,
                           absl::Duration peer_timeout)
    : pool_(std::move(pool)),
      id_(NewId()),
      address_(std::move(address)),
      ring_size_(ring_size),
      started_unix_micros_(NowMicros()),
      heartbeat_period_(heartbeat_period),
      peer_timeout_(peer_timeout),
      notices_(std::make_shared<Notices>()) {}

absl::StatusOr<std::unique_ptr<RadosMembers>> RadosMembers::Join(
    std::shared_ptr<RadosPool> pool, std::string address, uint32_t ring_size,
    absl::Duration heartbeat_period, absl::Duration peer_timeout) {
  std::unique_ptr<RadosMembers> members(
      new RadosMembers(std::move(pool), std::move(address), ring_size,
                       heartbeat_period, peer_timeout));
  PSTORE_RETURN_IF_ERROR(members->Beat());
  members->watch_ = std::make_unique<Watch>(members.get());
  if (absl::Status watched = members->watch_->Start(); !watched.ok()) {
    spdlog::warn("event=members_watch_failed action=\"re-read every {}\" {}",
                 absl::FormatDuration(heartbeat_period), watched.ToString());
  }
  PSTORE_RETURN_IF_ERROR(members->Refresh());
  members->Announce();
  members->thread_ = std::thread([m = members.get()] { m->Run(); });
  spdlog::info("event=joined id={} address={}", members->id_,
               members->address_);
  return members;
}

RadosMembers::~RadosMembers() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  // Unreachable: the others drop this node after peer_timeout, and a stop
  // does not wait for the operation timeout.
  if (!pool_->degraded()) {
    rados::WriteOp leave;
    leave.RemoveOmapKeys({id_});
    if (int result = leave.Operate(pool_->io(), kMembersObject); result < 0) {
      spdlog::warn("event=leave_failed id={} {}", id_,
                   RadosStatus(result, "members: leave").ToString());
    } else {
      Announce();
    }
  }
  watch_.reset();
  // Notices in flight end within their timeout: their completions are
  // released before the connection can close.
  absl::MutexLock lock(&notices_->mu);
  notices_->mu.AwaitWithTimeout(
      absl::Condition(
          +[](Notices* n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(n->mu) {
            return n->in_flight == 0;
          },
          notices_.get()),
      absl::Milliseconds(kNotifyTimeoutMs + 1000));
}

absl::Status RadosMembers::Beat() {
  storage::NodeRecord record;
  record.set_address(address_);
  record.set_ring_size(ring_size_);
  record.set_started_unix_micros(started_unix_micros_);
  record.set_heartbeat_unix_micros(NowMicros());
  rados::WriteOp op;
  op.Create(/*exclusive=*/false);
  op.SetOmap({{id_, record.SerializeAsString()}});
  return pool_->Note(RadosStatus(op.Operate(pool_->io(), kMembersObject),
                                 "members: heartbeat"));
}

absl::Status RadosMembers::Refresh() {
  std::vector<std::pair<std::string, std::string>> entries;
  PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
      rados::ReadWholeOmap(pool_->io(), kMembersObject, kOmapPage, &entries),
      "members: read")));
  const absl::Time now = absl::Now();
  std::vector<NodeInfo> members;
  std::vector<std::pair<std::string, std::string>> stale;
  {
    absl::MutexLock lock(&mu_);
    absl::flat_hash_map<std::string, Seen> seen;
    for (auto& [id, value] : entries) {
      Seen entry{value, now};
      if (auto old = seen_.find(id);
          old != seen_.end() && old->second.value == value) {
        entry.changed = old->second.changed;
      }
      storage::NodeRecord record;
      if (id != id_ && (now - entry.changed > peer_timeout_ ||
                        !record.ParseFromString(value))) {
        stale.emplace_back(id, value);
        continue;
      }
      if (id == id_) record.ParseFromString(value);
      members.push_back(NodeInfo{
          id, record.address(), record.started_unix_micros(),
          record.heartbeat_unix_micros(), id == id_, record.ring_size()});
      seen.emplace(id, std::move(entry));
    }
    std::sort(members.begin(), members.end(),
              [](const NodeInfo& a, const NodeInfo& b) {
                if (a.self != b.self) return a.self;
                return std::tie(a.address, a.id) < std::tie(b.address, b.id);
              });
    seen_ = std::move(seen);
    members_ = members;
  }
  for (const auto& [id, value] : stale) {
    // Unless it beat meanwhile.
    rados::WriteOp remove;
    remove.CompareOmap(id, LIBRADOS_CMPXATTR_OP_EQ, value);
    remove.RemoveOmapKeys({id});
    int result = remove.Operate(pool_->io(), kMembersObject);
    if (result == 0) {
      spdlog::info("event=member_left id={} reason=\"no heartbeat for {}\"", id,
                   absl::FormatDuration(peer_timeout_));
    }
  }
  return absl::OkStatus();
}

void RadosMembers::Announce() {
  // Nobody waits for the acks: the others re-read within a heartbeat
  // anyway.
  auto* held = new std::shared_ptr<Notices>(notices_);
  rados_completion_t completion = nullptr;
  if (rados_aio_create_completion2(
          held,
          +[](rados_completion_t done, void* arg) {
            auto* notices = static_cast<std::shared_ptr<Notices>*>(arg);
            rados_aio_release(done);
            {
              absl::MutexLock lock(&(*notices)->mu);
              --(*notices)->in_flight;
            }
            delete notices;
          },
          &completion) < 0) {
    delete held;
    return;
  }
  {
    absl::MutexLock lock(&notices_->mu);
    ++notices_->in_flight;
  }
  if (int result = rados_aio_notify(pool_->io(), kMembersObject, completion, "",
                                    0, kNotifyTimeoutMs, nullptr, nullptr);
      result < 0) {
    rados_aio_release(completion);
    {
      absl::MutexLock lock(&notices_->mu);
      --notices_->in_flight;
    }
    delete held;
    spdlog::warn("event=members_notify_failed {}",
                 RadosStatus(result, "members: notify").ToString());
  }
}

void RadosMembers::Run() {
  absl::Time next_beat = absl::Now() + heartbeat_period_;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(
          absl::Condition(
              +[](RadosMembers* m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m->mu_) {
                return m->stopping_ || m->wake_;
              },
              this),
          next_beat);
      if (stopping_) return;
      wake_ = false;
    }
    if (pool_->degraded()) {
      // The pool's probe notices when it answers again; operations now
      // would only wait for their timeout (and hold up a stop).
      next_beat = absl::Now() + heartbeat_period_;
      continue;
    }
    if (absl::Now() >= next_beat) {
      next_beat = absl::Now() + heartbeat_period_;
      if (absl::Status beat = Beat(); !beat.ok()) {
        spdlog::warn("event=heartbeat_failed {}", beat.ToString());
      }
    }
    if (absl::Status read = Refresh(); !read.ok()) {
      spdlog::warn("event=members_read_failed {}", read.ToString());
    }
  }
}

std::vector<NodeInfo> RadosMembers::Members() const {
  absl::MutexLock lock(&mu_);
  return members_;
}

}  // namespace pstore
