// PeerClient: how a node of a shared store asks another node for a block,
// and PeerOptions: when it asks. server/peer_client.h implements the client
// over gRPC; storage/ sees only this interface.

#ifndef PSTORE_STORAGE_PEERS_PEER_CLIENT_H_
#define PSTORE_STORAGE_PEERS_PEER_CLIENT_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "codec/hash.h"
#include "storage/block.h"

namespace pstore {

struct PeerOptions {
  // Ask the owner of a block (on the ring of the store's nodes) before
  // reading the durable tier. Default: true (only a store shared by many
  // nodes, with a PeerClient, has peers).
  bool enabled = true;
  // Points of each node on the ring. Default: 64.
  int virtual_nodes = 64;
  // A peer that has not answered within this is hedged: the durable tier
  // is read too, and the first good answer wins. Default: 1 s.
  absl::Duration hedge_after = absl::Seconds(1);
  // The longest a peer call may run. Default: 10 s.
  absl::Duration read_timeout = absl::Seconds(10);
  // How often the ring is rebuilt from the members (when they changed).
  // Default: 200 ms.
  absl::Duration ring_refresh = absl::Milliseconds(200);
};

// A block as a peer sent it, with the XXH3-128 of the bytes received,
// computed as they arrived (one pass over them with the copy): the asker
// compares it with the id it asked for.
struct PeerBlock {
  BlockRef block;
  BlockId received_id;
};
using PeerReadCallback = absl::AnyInvocable<void(absl::StatusOr<PeerBlock>) &&>;

class PeerClient {
 public:
  virtual ~PeerClient() = default;

  // Asks the node at `address` for block `id` and calls `done` exactly
  // once, on any thread (this one included, when the call cannot start),
  // with the bytes as received and their hash (the caller verifies them) or
  // the error:
  // Unavailable (unreachable, stopping), DeadlineExceeded (past `timeout`),
  // ResourceExhausted (refused), NotFound, DataLoss, Cancelled,
  // Unauthenticated, PermissionDenied, Unimplemented (a node without the
  // service), FailedPrecondition (the call may not be made). Must not
  // block.
  virtual void ReadBlock(const std::string& address, const BlockId& id,
                         absl::Duration timeout, PeerReadCallback done) = 0;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_PEERS_PEER_CLIENT_H_
