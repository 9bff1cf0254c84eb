// PutTensorReactor receives a PutTensor stream: a header, then the tensor's
// bytes. Each message is handed to a worker thread (the store's writes
// block on disk) and the next read starts only when it is processed, so a
// stream holds at most one message in memory besides the block being
// filled. The tensor commits when the client half-closes; a cancelled or
// failed stream aborts and leaves nothing behind.
//
// Thread-safe: reactions run on gRPC threads, processing on the pool.

#ifndef PSTORE_SERVER_PUT_STREAM_H_
#define PSTORE_SERVER_PUT_STREAM_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "grpcpp/grpcpp.h"
#include "pstore/v1/pstore.pb.h"
#include "server/auth.h"
#include "server/call_gate.h"
#include "server/metrics.h"
#include "storage/tiered_store.h"
#include "util/thread_pool.h"

namespace pstore {

struct PutCounters {
  std::atomic<uint64_t> streams_in_flight{0};
  std::atomic<uint64_t> bytes_received{0};
};

class PutTensorReactor : public grpc::ServerReadReactor<v1::PutTensorRequest> {
 public:
  // The call has Entered `gate`; the reactor Leaves it once done with the
  // store. No pointer is owned; all outlive the reactor.
  PutTensorReactor(grpc::CallbackServerContext* context, TieredStore* store,
                   ThreadPool* pool, v1::TensorInfo* response,
                   PutCounters* counters, CallGate* gate,
                   ServerMetrics* metrics, const Authorizer* auth);

  void OnReadDone(bool ok) override;
  void OnDone() override;

 private:
  // Processes request_ (header or data); runs on the pool.
  void Process();
  // Commits at the end of the stream; runs on the pool.
  void Commit();
  // Aborts and finishes with `status`; runs on the pool.
  void Fail(const absl::Status& status);
  // Records and finishes the call.
  void FinishCall(const grpc::Status& status);

  grpc::CallbackServerContext* const context_;
  TieredStore* const store_;
  ThreadPool* const pool_;
  v1::TensorInfo* const response_;
  PutCounters* const counters_;
  CallGate* const gate_;
  ServerMetrics* const metrics_;  // May be null.
  const Authorizer* const auth_;  // May be null: no authorization.
  const absl::Time start_;
  v1::PutTensorRequest request_;
  std::unique_ptr<TensorWriter> writer_;  // After the header.
};

}  // namespace pstore

#endif  // PSTORE_SERVER_PUT_STREAM_H_
