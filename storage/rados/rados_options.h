// RadosOptions: where a RADOS-backed store lives and how long it waits for
// the cluster. Plain values (no librados), so that store options can carry
// them.

#ifndef PSTORE_STORAGE_RADOS_RADOS_OPTIONS_H_
#define PSTORE_STORAGE_RADOS_RADOS_OPTIONS_H_

#include <string>

#include "absl/time/time.h"

namespace pstore {

struct RadosOptions {
  // Path of a ceph.conf naming the monitors (and the keyring).
  std::string ceph_conf;
  std::string pool;
  // The cephx id: "admin" connects as client.admin.
  std::string user = "admin";
  // Objects of this store live in this namespace of the pool (several
  // stores may share a pool); empty: the default namespace.
  std::string name_space;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration op_timeout = absl::Seconds(30);
  // How often the pool is probed (a stat of one object), and how long a
  // probe may take before the cluster counts as unreachable (degraded).
  absl::Duration probe_period = absl::Seconds(1);
  absl::Duration probe_timeout = absl::Seconds(3);
  // How long a node trusts what it read of a model (its revisions and
  // latest) when no change notice came: the bound on how stale a node's
  // view is when a notice is lost.
  absl::Duration catalog_refresh = absl::Seconds(10);
  // The garbage collector removes a block no revision names only if no
  // put wrote or reused it within this; a put that started more than half
  // of it ago cannot commit (Aborted: put it again). It must exceed the
  // clock skew between nodes by far (rados_format.md, "Garbage").
  absl::Duration gc_grace = absl::Hours(1);
  // Membership (rados_members.h): how often a node rewrites its heartbeat
  // and re-reads the others', and how long one whose heartbeat stopped
  // still counts as a member.
  absl::Duration heartbeat_period = absl::Seconds(2);
  absl::Duration peer_timeout = absl::Seconds(10);
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_OPTIONS_H_
