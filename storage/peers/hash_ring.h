// HashRing: a consistent-hash ring over the nodes of a shared store, naming
// one owner for each block id.
//
// Each node stands on the ring at `virtual_nodes` points, the XXH3-64 of
// its address followed by "#" and the point's number; a block's point is
// the low 64 bits of its id (already a hash); its owner is the node of the
// first point at or after it, wrapping. A node that joins or leaves moves
// only the blocks of the arcs it takes or gives back (about 1/N of them),
// and every node that sees the same members names the same owners.
//
// Immutable once built; safe to share between threads.

#ifndef PSTORE_STORAGE_PEERS_HASH_RING_H_
#define PSTORE_STORAGE_PEERS_HASH_RING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "codec/hash.h"

namespace pstore {

class HashRing {
 public:
  // Places each of `addresses` (duplicates count once) at `virtual_nodes`
  // points. REQUIRES: virtual_nodes >= 1.
  HashRing(std::vector<std::string> addresses, int virtual_nodes);

  // Returns the address of the owner of `id`; empty for a ring of no node.
  const std::string& Owner(const BlockId& id) const;

  // The addresses on the ring, sorted.
  const std::vector<std::string>& addresses() const { return addresses_; }
  int virtual_nodes() const { return virtual_nodes_; }

 private:
  struct Point {
    uint64_t position;
    uint32_t node;  // Index into addresses_.
  };

  std::vector<std::string> addresses_;
  int virtual_nodes_;
  std::vector<Point> points_;  // By position.
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_PEERS_HASH_RING_H_
