#include "storage/peers/peer_tier.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace pstore {

struct PeerTier::Counters {
  std::atomic<uint64_t> peer_blocks{0};
  std::atomic<uint64_t> peer_bytes{0};
  std::atomic<uint64_t> peer_errors{0};
  std::atomic<uint64_t> peer_bad_blocks{0};
  std::atomic<uint64_t> hedges{0};
  std::atomic<uint64_t> hedge_wins{0};
  std::atomic<uint64_t> ring_nodes{0};
};

// One read of a block another node owns: the owner's answer and, after an
// error or the hedging deadline, the durable tier's, whichever is good
// first.
struct PeerTier::Fetch {
  BlockId id;
  std::shared_ptr<const RingView> ring;  // Keeps `owner` alive.
  const std::string* owner = nullptr;
  Tier* durable = nullptr;
  std::shared_ptr<Counters> counters;

  absl::Mutex mu;
  ReadCallback done ABSL_GUARDED_BY(mu);
  bool answered ABSL_GUARDED_BY(mu) = false;
  bool durable_started ABSL_GUARDED_BY(mu) = false;
  bool hedged ABSL_GUARDED_BY(mu) = false;
  int outstanding ABSL_GUARDED_BY(mu) = 0;  // Calls not yet answered.
  absl::Status peer_error ABSL_GUARDED_BY(mu);
  absl::Status durable_error ABSL_GUARDED_BY(mu);

  // Marks the read answered and returns its callback.
  ReadCallback Answer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    answered = true;
    return std::exchange(done, nullptr);
  }

  // Answers the read if nothing else can: every call failed. Returns the
  // callback to run with `*status`, or null.
  ReadCallback AnswerIfAllFailed(absl::Status* status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (answered || outstanding > 0) return nullptr;
    *status = durable_started ? durable_error : peer_error;
    return Answer();
  }
};

PeerTier::PeerTier(Tier* durable,
                   std::function<std::vector<NodeInfo>()> members,
                   std::shared_ptr<PeerClient> client, PeerOptions options)
    : durable_(durable),
      members_(std::move(members)),
      client_(std::move(client)),
      options_(options),
      counters_(std::make_shared<Counters>()),
      timers_(std::make_unique<TimerQueue>("pstore-hedges")),
      refresher_(std::make_unique<TimerQueue>("pstore-ring")) {
  RefreshRing();
  ScheduleRefresh();
}

PeerTier::~PeerTier() {
  // A refresh running now may schedule the next one: the stopped queue
  // drops it.
  refresher_->Stop();
  timers_->Stop();
}

void PeerTier::ScheduleRefresh() {
  refresher_->Schedule(absl::Now() + options_.ring_refresh, [this] {
    RefreshRing();
    ScheduleRefresh();
  });
}

void PeerTier::RefreshRing() {
  // One refresh at a time, so that an older ring never replaces a newer.
  absl::MutexLock refresh_lock(&refresh_mu_);
  std::vector<NodeInfo> members = members_();
  // A node whose ring differs would name other owners (two nodes could
  // each wait on the other), and one from before peers cannot serve.
  auto on_ring = [this](const NodeInfo& node) {
    return node.self ||
           node.ring_size == static_cast<uint32_t>(options_.virtual_nodes);
  };
  std::vector<std::string> addresses;
  addresses.reserve(members.size());
  std::string self;
  for (const NodeInfo& node : members) {
    if (!on_ring(node)) continue;
    addresses.push_back(node.address);
    if (node.self) self = node.address;
  }
  if (self.empty()) addresses.clear();  // Not a member: ask no one.
  // In the ring's order, to compare with the ring in use before building
  // one (every refresh period; the members rarely change).
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()),
                  addresses.end());
  std::shared_ptr<const RingView> current = ring();
  if (current != nullptr && current->self == self &&
      current->ring.addresses() == addresses) {
    return;
  }
  HashRing ring(std::move(addresses), options_.virtual_nodes);
  spdlog::info("event=peer_ring nodes={} self={}", ring.addresses().size(),
               self.empty() ? "-" : self);
  std::vector<std::string> left_out;
  for (const NodeInfo& node : members) {
    if (on_ring(node)) continue;
    left_out.push_back(
        absl::StrCat(node.address, " (ring size ", node.ring_size, ")"));
  }
  if (!left_out.empty()) {
    spdlog::warn(
        "event=peers_left_out ring_size={} nodes=\"{}\" hint=\"give every "
        "node the same --peer_ring_size\"",
        options_.virtual_nodes, absl::StrJoin(left_out, ", "));
  }
  counters_->ring_nodes.store(ring.addresses().size(),
                              std::memory_order_relaxed);
  auto view = std::make_shared<const RingView>(
      RingView{std::move(ring), std::move(self)});
  absl::MutexLock lock(&ring_mu_);
  ring_ = std::move(view);
}

std::shared_ptr<const PeerTier::RingView> PeerTier::ring() const {
  absl::ReaderMutexLock lock(&ring_mu_);
  return ring_;
}

PeerStats PeerTier::peer_stats() const {
  PeerStats stats;
  stats.enabled = options_.enabled;
  stats.ring_nodes = counters_->ring_nodes.load(std::memory_order_relaxed);
  stats.peer_blocks = counters_->peer_blocks.load(std::memory_order_relaxed);
  stats.peer_bytes = counters_->peer_bytes.load(std::memory_order_relaxed);
  stats.peer_errors = counters_->peer_errors.load(std::memory_order_relaxed);
  stats.peer_bad_blocks =
      counters_->peer_bad_blocks.load(std::memory_order_relaxed);
  stats.hedges = counters_->hedges.load(std::memory_order_relaxed);
  stats.hedge_wins = counters_->hedge_wins.load(std::memory_order_relaxed);
  return stats;
}

absl::StatusOr<BlockRef> PeerTier::Read(const BlockId& id) {
  absl::Notification answered;
  absl::StatusOr<BlockRef> answer;
  ReadAsync(id, [&](absl::StatusOr<BlockRef> result) {
    answer = std::move(result);
    answered.Notify();
  });
  answered.WaitForNotification();
  return answer;
}

void PeerTier::ReadAsync(const BlockId& id, ReadCallback done) {
  std::shared_ptr<const RingView> view = ring();
  const std::string* owner = nullptr;
  if (options_.enabled && view != nullptr) owner = &view->ring.Owner(id);
  if (owner == nullptr || owner->empty() || *owner == view->self) {
    durable_->ReadAsync(id, std::move(done));
    return;
  }
  auto fetch = std::make_shared<Fetch>();
  fetch->id = id;
  fetch->ring = std::move(view);
  fetch->owner = owner;
  fetch->durable = durable_;
  fetch->counters = counters_;
  {
    absl::MutexLock lock(&fetch->mu);
    fetch->done = std::move(done);
    fetch->outstanding = 1;
  }
  timers_->Schedule(
      absl::Now() + options_.hedge_after, [weak = std::weak_ptr<Fetch>(fetch)] {
        std::shared_ptr<Fetch> fetch = weak.lock();
        if (fetch == nullptr) return;
        {
          absl::MutexLock lock(&fetch->mu);
          if (fetch->answered || fetch->durable_started) return;
          fetch->hedged = true;
        }
        fetch->counters->hedges.fetch_add(1, std::memory_order_relaxed);
        StartDurable(fetch);
      });
  client_->ReadBlock(
      *owner, id, options_.read_timeout,
      [fetch](absl::StatusOr<PeerBlock> answer) {
        Counters& counters = *fetch->counters;
        absl::StatusOr<BlockRef> result =
            answer.ok() ? absl::StatusOr<BlockRef>(std::move(answer->block))
                        : absl::StatusOr<BlockRef>(answer.status());
        if (answer.ok() && answer->received_id != fetch->id) {
          counters.peer_bad_blocks.fetch_add(1, std::memory_order_relaxed);
          spdlog::warn(
              "event=peer_bad_block block={} peer={} bytes={} "
              "action=read_durable",
              fetch->id.ToHex(), *fetch->owner, (*result)->size());
          result = absl::DataLossError(
              absl::StrCat("peer ", *fetch->owner, ": block ",
                           fetch->id.ToHex(), " fails its XXH3-128 check"));
        } else if (!result.ok()) {
          counters.peer_errors.fetch_add(1, std::memory_order_relaxed);
          spdlog::debug("event=peer_read_failed block={} peer={} status=\"{}\"",
                        fetch->id.ToHex(), *fetch->owner,
                        result.status().ToString());
        }
        ReadCallback done;
        absl::Status error;
        bool start_durable = false;
        {
          absl::MutexLock lock(&fetch->mu);
          --fetch->outstanding;
          if (fetch->answered) return;  // The durable tier answered first.
          if (result.ok()) {
            done = fetch->Answer();
          } else {
            fetch->peer_error = result.status();
            start_durable = !fetch->durable_started;
            if (!start_durable) done = fetch->AnswerIfAllFailed(&error);
          }
        }
        if (result.ok()) {
          counters.peer_blocks.fetch_add(1, std::memory_order_relaxed);
          counters.peer_bytes.fetch_add((*result)->size(),
                                        std::memory_order_relaxed);
          std::move(done)(std::move(result));
        } else if (start_durable) {
          StartDurable(fetch);
        } else if (done) {
          std::move(done)(error);
        }
      });
}

void PeerTier::StartDurable(const std::shared_ptr<Fetch>& fetch) {
  {
    absl::MutexLock lock(&fetch->mu);
    if (fetch->durable_started || fetch->answered) return;
    fetch->durable_started = true;
    ++fetch->outstanding;
  }
  fetch->durable->ReadAsync(
      fetch->id, [fetch](absl::StatusOr<BlockRef> result) {
        ReadCallback done;
        absl::Status error;
        bool hedge_won = false;
        {
          absl::MutexLock lock(&fetch->mu);
          --fetch->outstanding;
          if (fetch->answered) return;  // The peer answered first.
          if (result.ok()) {
            done = fetch->Answer();
            hedge_won = fetch->hedged;
          } else {
            fetch->durable_error = result.status();
            done = fetch->AnswerIfAllFailed(&error);
          }
        }
        if (hedge_won) {
          fetch->counters->hedge_wins.fetch_add(1, std::memory_order_relaxed);
        }
        if (!done) return;  // The peer may still answer.
        if (result.ok()) {
          std::move(done)(std::move(result));
        } else {
          std::move(done)(error);
        }
      });
}

}  // namespace pstore
