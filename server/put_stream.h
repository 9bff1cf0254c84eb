// PutTensorReactor receives a PutTensor stream: a header, then the tensor's
// bytes. Each message is handed to a worker thread (the store's writes
// block on disk) and the next read starts only when it is processed, so a
// stream holds at most one message in memory besides the block being
// filled (and, over a durable tier that writes asynchronously, the blocks
// being written: at most 8, TensorWriter). The tensor commits when the client
// half-closes; a cancelled or failed stream aborts and leaves nothing behind.
// Messages arrive as raw bytes and are parsed here, so one that is not a valid
// PutTensorRequest fails the put with INVALID_ARGUMENT (gRPC would end the
// stream as if the client had half-closed, and the put would commit).
//
// The service admits the call (server/stream_admission.h) before creating
// the reactor; the reactor gives the stream slot back when it finishes the
// call, so a client whose put has returned can start the next one, and
// leaves the gate when it is deleted.
//
// Thread-safe: reactions run on gRPC threads, processing on the pool.

#ifndef PSTORE_SERVER_PUT_STREAM_H_
#define PSTORE_SERVER_PUT_STREAM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "pstore/v1/pstore.pb.h"
#include "server/auth.h"
#include "server/call_gate.h"
#include "server/metrics.h"
#include "server/stream_admission.h"
#include "storage/tiered_store.h"
#include "util/thread_pool.h"

namespace pstore {

struct PutCounters {
  std::atomic<uint64_t> streams_in_flight{0};
  std::atomic<uint64_t> bytes_received{0};
};

class PutTensorReactor : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  // Runs the call `admission` admitted. No pointer is owned; all outlive
  // the reactor.
  PutTensorReactor(grpc::CallbackServerContext* context,
                   StreamAdmission admission, TieredStore* store,
                   ThreadPool* pool, grpc::ByteBuffer* raw_response,
                   PutCounters* counters, ServerMetrics* metrics,
                   const Authorizer* auth);

  void OnReadDone(bool ok) override;
  void OnDone() override;

 private:
  // Processes request_ (header or data); runs on the pool.
  void Process();
  // Appends pieces_ (a data message's bytes) to writer_.
  absl::Status AppendPieces();
  // Commits at the end of the stream; runs on the pool.
  void Commit();
  // Aborts and finishes with `status`; runs on the pool.
  void Fail(const absl::Status& status);
  // Records and finishes the call; gives back the stream slot.
  void FinishCall(const grpc::Status& status);

  // First: given back last, once every other member is gone.
  StreamAdmission admission_;
  grpc::CallbackServerContext* const context_;
  TieredStore* const store_;
  ThreadPool* const pool_;
  grpc::ByteBuffer* const raw_response_;
  PutCounters* const counters_;
  ServerMetrics* const metrics_;  // May be null.
  const Authorizer* const auth_;  // May be null: no authorization.
  const absl::Time start_;
  grpc::ByteBuffer raw_request_;
  v1::PutTensorRequest request_;
  // A data message's slices and the spans of its bytes in them, kept across
  // messages so the put path allocates nothing per message.
  std::vector<grpc::Slice> slices_;
  std::vector<std::span<const uint8_t>> pieces_;
  std::unique_ptr<TensorWriter> writer_;  // After the header.
};

}  // namespace pstore

#endif  // PSTORE_SERVER_PUT_STREAM_H_
