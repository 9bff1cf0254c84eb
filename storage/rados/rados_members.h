// RadosMembers: the nodes serving one RADOS-backed store, for the nodes
// themselves (peers, issue 14) and for operators (`pstore-cli status`).
//
// Each node keeps one omap entry in the pool's object `catalog.members`
// (key: an id made at start; value: a NodeRecord with its address, start
// time and last heartbeat) and rewrites it every heartbeat period. Every
// node re-reads the entries every period, and at once when another node
// joins or leaves (a notice on the object, which every node watches). A
// node counts as a member while its heartbeat keeps changing: one whose
// record stayed the same for `peer_timeout` by this node's clock (no clock
// skew enters) is left out, and its entry removed (guarded on the value
// read, so a node that comes back writes it again). A node that stops
// cleanly removes its entry and tells the others at once.
//
// Thread-safe.

#ifndef PSTORE_STORAGE_RADOS_RADOS_MEMBERS_H_
#define PSTORE_STORAGE_RADOS_RADOS_MEMBERS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/rados/rados_pool.h"
#include "storage/records.h"

namespace pstore {

class RadosMembers {
 public:
  // Registers this node, serving at `address` with a peer ring of
  // `ring_size` points per node, and starts its heartbeat. Codes of the
  // pool (Unavailable when it cannot be reached).
  static absl::StatusOr<std::unique_ptr<RadosMembers>> Join(
      std::shared_ptr<RadosPool> pool, std::string address, uint32_t ring_size,
      absl::Duration heartbeat_period, absl::Duration peer_timeout);

  // Leaves: stops the heartbeat, removes this node's entry, tells the
  // others.
  ~RadosMembers();
  RadosMembers(const RadosMembers&) = delete;
  RadosMembers& operator=(const RadosMembers&) = delete;

  // The members as last read, this node first, then by address.
  std::vector<NodeInfo> Members() const;

 private:
  struct Seen {
    std::string value;   // The entry as last read.
    absl::Time changed;  // When it last changed, by this node's clock.
  };
  class Watch;
  struct Notices;

  RadosMembers(std::shared_ptr<RadosPool> pool, std::string address,
               uint32_t ring_size, absl::Duration heartbeat_period,
               absl::Duration peer_timeout);

  // Writes this node's entry with a fresh heartbeat.
  absl::Status Beat();
  // Reads every entry, updates what is kept, removes stale entries.
  absl::Status Refresh();
  // Wakes every node's heartbeat thread to re-read (a join or a leave).
  void Announce();
  void Run();

  const std::shared_ptr<RadosPool> pool_;
  const std::string id_;
  const std::string address_;
  const uint32_t ring_size_;
  const int64_t started_unix_micros_;
  const absl::Duration heartbeat_period_;
  const absl::Duration peer_timeout_;
  const std::shared_ptr<Notices> notices_;
  std::unique_ptr<Watch> watch_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Seen> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<NodeInfo> members_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_MEMBERS_H_
