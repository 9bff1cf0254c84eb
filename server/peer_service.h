// PeerStoreService: pstore.v1.PeerStore, the block reads other nodes of a
// shared store send this one (storage/peers/). A call is admitted like a
// client read (one of the server's read slots, the CallGate) and holds the
// block's bytes against a read-ahead budget of the clients' size, counted
// apart (StreamCounters::peer_readahead_bytes), while it is read; it needs
// a token of scope "peer" when tokens are on, reads through
// TieredStore::ReadBlockForPeerAsync (this node's tiers, then the durable
// tier; concurrent reads of one block share one durable read), and answers
// with a byte buffer that points into the block (server/chunk.h).
//
// Thread-safe. The store and the ParamStoreService must outlive it.

#ifndef PSTORE_SERVER_PEER_SERVICE_H_
#define PSTORE_SERVER_PEER_SERVICE_H_

#include "pstore/v1/pstore.grpc.pb.h"
#include "server/service.h"
#include "storage/tiered_store.h"

namespace pstore {

struct PeerServiceOptions {
  // A test fault: every block served has one byte flipped, so that the
  // asking node's hash check can be seen to catch it. Default: false.
  bool corrupt_replies = false;
};

class PeerStoreService final
    : public v1::PeerStore::WithRawCallbackMethod_ReadBlock<
          v1::PeerStore::CallbackService> {
 public:
  // `reads` admits calls and holds the counters, tokens and metrics they
  // share with client reads.
  PeerStoreService(TieredStore* store, ParamStoreService* reads,
                   PeerServiceOptions options);

  grpc::ServerUnaryReactor* ReadBlock(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* raw_request,
                                      grpc::ByteBuffer* raw_response) override;

 private:
  TieredStore* const store_;
  ParamStoreService* const reads_;
  const PeerServiceOptions options_;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_PEER_SERVICE_H_
