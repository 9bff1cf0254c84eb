// PeerTier: the durable tier of a store shared by many nodes, read through
// the other nodes first. Every block id has one owner on a consistent-hash
// ring over the store's members (hash_ring.h); a read of a block another
// node owns asks that node (PeerClient), which serves it from its own tiers
// or reads the durable tier once for everyone who asks (its BlockReader
// coalesces concurrent reads). The bytes are checked against the id on
// arrival. The durable tier is read here instead when this node owns the
// block, when the ring has no other node, when the owner answers an error
// or wrong bytes (each counted), and, as a hedge, when the owner has not
// answered within PeerOptions::hedge_after: then both race and the first
// good answer wins.
//
// Everything but reads goes straight to the durable tier (not owned), and
// Stats are its stats; the peer counters are in peer_stats().
//
// Thread-safe. The destructor stops the ring's refresh and the hedging
// timers; peer calls still running then (for reads already answered) end
// on their own and touch only shared counters. REQUIRES at destruction: no
// read is waiting for an answer (destroy the BlockReader first).

#ifndef PSTORE_STORAGE_PEERS_PEER_TIER_H_
#define PSTORE_STORAGE_PEERS_PEER_TIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/peers/hash_ring.h"
#include "storage/peers/peer_client.h"
#include "storage/records.h"
#include "storage/store_stats.h"
#include "storage/tier.h"
#include "util/timer_queue.h"

namespace pstore {

class PeerTier : public Tier {
 public:
  // Reads through the owners that `members` (the store's members, this
  // node marked self) names, with `client`; `durable` is not owned.
  PeerTier(Tier* durable, std::function<std::vector<NodeInfo>()> members,
           std::shared_ptr<PeerClient> client, PeerOptions options);
  ~PeerTier() override;

  absl::string_view name() const override { return durable_->name(); }
  bool Contains(const BlockId& id) const override {
    return durable_->Contains(id);
  }
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  void ReadAsync(const BlockId& id, ReadCallback done) override;
  bool reads_async() const override { return true; }
  absl::Status Write(const BlockId& id, const BlockRef& block) override {
    return durable_->Write(id, block);
  }
  void WriteAsync(const BlockId& id, BlockRef block,
                  WriteCallback done) override {
    durable_->WriteAsync(id, std::move(block), std::move(done));
  }
  bool writes_async() const override { return durable_->writes_async(); }
  absl::Status Erase(const BlockId& id) override { return durable_->Erase(id); }
  TierStats Stats() const override { return durable_->Stats(); }

  PeerStats peer_stats() const;

  // Rebuilds the ring from the members now (the refresh does it every
  // PeerOptions::ring_refresh).
  void RefreshRing();

 private:
  struct Counters;
  struct Fetch;
  // The ring as last built, with this node's address on it (empty when
  // this node is not a member).
  struct RingView {
    HashRing ring;
    std::string self;
  };

  std::shared_ptr<const RingView> ring() const;
  void ScheduleRefresh();
  // Starts the durable read of `fetch`, once.
  static void StartDurable(const std::shared_ptr<Fetch>& fetch);

  Tier* const durable_;
  const std::function<std::vector<NodeInfo>()> members_;
  const std::shared_ptr<PeerClient> client_;
  const PeerOptions options_;
  const std::shared_ptr<Counters> counters_;

  absl::Mutex refresh_mu_;
  mutable absl::Mutex ring_mu_;
  std::shared_ptr<const RingView> ring_ ABSL_GUARDED_BY(ring_mu_);
  // Hedging deadlines, and the ring's refresh on a thread of its own (the
  // members may take a while to answer; hedges must not wait for them).
  // Declared last: stopped first, so that no timer runs on a half-gone
  // tier.
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<TimerQueue> refresher_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_PEERS_PEER_TIER_H_
