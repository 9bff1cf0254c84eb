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
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_OPTIONS_H_
