// ParamStoreService: the pstore.v1.ParamStore service on the callback API.
// Thin: each method validates its request, calls the TieredStore on a
// worker thread (never on a gRPC thread: the store does disk I/O) and maps
// the status. GetTensor, PullModel and ReadTensor are "raw" methods: they
// send chunks built as byte buffers that point into cached blocks
// (server/chunk.h); reads whose plan comes from memory start on the gRPC
// thread.
//
// Thread-safe. The store and pools must outlive the service.

#ifndef PSTORE_SERVER_SERVICE_H_
#define PSTORE_SERVER_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "pstore/v1/pstore.grpc.pb.h"
#include "server/auth.h"
#include "server/call_gate.h"
#include "server/metrics.h"
#include "server/put_stream.h"
#include "server/read_stream.h"
#include "storage/tiered_store.h"
#include "util/thread_pool.h"

namespace pstore {

struct ServiceOptions {
  // Bytes each read stream reads ahead of the network.
  // Default: 32 MiB.
  uint64_t readahead_bytes = uint64_t{32} << 20;
  // Bytes all read streams together read ahead (beyond what DRAM holds,
  // these are what streams add to memory). Default: 256 MiB.
  uint64_t readahead_budget_bytes = uint64_t{256} << 20;
  // Calls admitted at once; past them RESOURCE_EXHAUSTED.
  // Defaults: 128 reads (GetTensor, PullModel, ReadTensor), 16 puts.
  int max_read_streams = 128;
  int max_put_streams = 16;
  // Threads running store calls for RPCs.
  // Default: 8.
  int worker_threads = 8;
  // Threads for long operator calls (Pin, Prefetch).
  // Default: 2.
  int admin_threads = 2;
  // Reported by GetServerStatus.
  std::string version;
  // Where finished RPCs are recorded; not owned. Default: none.
  ServerMetrics* metrics = nullptr;
  // Checks bearer tokens; not owned. Default: none (every call allowed).
  const Authorizer* auth = nullptr;
};

// Every method reads and writes raw bytes and parses its requests itself
// (ParseRaw in server/convert.h), so a request that is not a valid message
// gets INVALID_ARGUMENT; GetTensor, PullModel and ReadTensor send pre-built
// chunks.
using ParamStoreBase = v1::ParamStore::WithRawCallbackMethod_PutTensor<
    v1::ParamStore::WithRawCallbackMethod_GetTensor<
        v1::ParamStore::WithRawCallbackMethod_ReadTensor<
            v1::ParamStore::WithRawCallbackMethod_PullModel<
                v1::ParamStore::WithRawCallbackMethod_StatTensor<
                    v1::ParamStore::WithRawCallbackMethod_ListTensors<
                        v1::ParamStore::WithRawCallbackMethod_DeleteTensor<v1::ParamStore::WithRawCallbackMethod_CreateRevision<
                            v1::ParamStore::
                                WithRawCallbackMethod_PublishRevision<v1::ParamStore::WithRawCallbackMethod_DeleteRevision<
                                    v1::ParamStore::
                                        WithRawCallbackMethod_GetRevision<v1::ParamStore::WithRawCallbackMethod_ListModels<
                                            v1::ParamStore::
                                                WithRawCallbackMethod_Pin<v1::ParamStore::WithRawCallbackMethod_Unpin<
                                                    v1::ParamStore::
                                                        WithRawCallbackMethod_Prefetch<v1::ParamStore::WithRawCallbackMethod_DropCache<
                                                            v1::ParamStore::
                                                                WithRawCallbackMethod_Verify<v1::ParamStore::WithRawCallbackMethod_GetServerStatus<
                                                                    v1::ParamStore::
                                                                        WithRawCallbackMethod_CollectGarbage<
                                                                            v1::ParamStore::
                                                                                CallbackService>>>>>>>>>>>>>>>>>>>;

class ParamStoreService final : public ParamStoreBase {
 public:
  ParamStoreService(TieredStore* store, ServiceOptions options);
  ~ParamStoreService() override;

  grpc::ServerReadReactor<grpc::ByteBuffer>* PutTensor(
      grpc::CallbackServerContext* context,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GetTensor(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* PullModel(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* ReadTensor(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* raw_request,
                                       grpc::ByteBuffer* raw_response) override;

  grpc::ServerUnaryReactor* StatTensor(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* raw_request,
                                       grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* ListTensors(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* DeleteTensor(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* CreateRevision(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* PublishRevision(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* DeleteRevision(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* GetRevision(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* raw_request,
                                       grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* Pin(grpc::CallbackServerContext* context,
                                const grpc::ByteBuffer* raw_request,
                                grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* Unpin(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* raw_request,
                                  grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* Prefetch(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* raw_request,
                                     grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* DropCache(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* raw_request,
                                      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* raw_request,
                                   grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* GetServerStatus(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* CollectGarbage(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
      grpc::ByteBuffer* raw_response) override;

  const StreamCounters& stream_counters() const { return stream_counters_; }
  StreamCounters* mutable_stream_counters() { return &stream_counters_; }

  // Admits a read call: GetTensor, PullModel, ReadTensor, or another
  // node's ReadBlock (server/peer_service.h). Codes of StreamAdmission.
  absl::StatusOr<StreamAdmission> AdmitRead() {
    return StreamAdmission::Admit(&stream_counters_.streams_in_flight,
                                  options_.max_read_streams, "read", &gate_);
  }

  // Returns OK if the call may use `scope` on `model` (see server/auth.h).
  absl::Status Authorize(const grpc::CallbackServerContext& context,
                         Scope scope, absl::string_view model) const;

  ServerMetrics* metrics() const { return options_.metrics; }
  const PutCounters& put_counters() const { return put_counters_; }

  // Counts the calls that use the store; closed to refuse new calls with
  // UNAVAILABLE while the server drains.
  CallGate& gate() { return gate_; }
  const CallGate& gate() const { return gate_; }

 private:
  // Parses the request, runs `fn` (absl::Status(const Request*,
  // Response*)) on `pool`, and finishes the call with its status and, when
  // OK, the serialized response.
  template <typename Request, typename Response, typename Fn>
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* raw_request,
                                     grpc::ByteBuffer* raw_response,
                                     ThreadPool* pool, const char* method,
                                     Fn fn);

  TieredStore* const store_;
  const ServiceOptions options_;
  const absl::Time started_;
  std::unique_ptr<ThreadPool> workers_;
  std::unique_ptr<ThreadPool> admin_;
  StreamCounters stream_counters_;
  PutCounters put_counters_;
  CallGate gate_;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_SERVICE_H_
