// UnaryRead answers ReadTensor: a read of at most kMaxUnaryReadBytes sent
// in one reply, a unary call (which costs less inside gRPC than a stream;
// bench/README.md).
//
// The call plans the read (storage/read_plan.h) on the gRPC thread that
// starts it when the catalog answers from memory, else on a worker pool;
// refuses a read larger than the limit with ResourceExhausted before any
// block is read; reads every block of the plan at once through
// TieredStore::ReadEncodedBlockAsync (a DRAM hit completes on the calling
// thread); and answers with the one TensorChunk that carries the whole
// read, cut and hashed by the store's ChunkCursor and built as a byte
// buffer over the blocks (server/chunk.h), without copying them. The
// reply's info always carries the XXH3-64 of the bytes sent and, for a
// quantized encoding, the error.
//
// A piece of a block larger than kInPlaceBlockBytes that covers less than
// half of it is copied into the reply instead of pointed at: the reply
// outlives the call's read slot (given back at Finish, so that the client's
// next call is not refused for this one) and must not keep a large block
// alive for a few of its bytes. A reply holds at most about twice what it
// sends.
//
// Thread-safe: the storage callbacks may run on any thread. The object
// deletes itself once it has finished the call.

#ifndef PSTORE_SERVER_UNARY_READ_H_
#define PSTORE_SERVER_UNARY_READ_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/metrics.h"
#include "server/read_stream.h"
#include "server/stream_admission.h"
#include "storage/tiered_store.h"
#include "util/thread_pool.h"

namespace pstore {

// The most bytes a ReadTensor sends (proto/pstore/v1/pstore.proto).
inline constexpr uint64_t kMaxUnaryReadBytes = uint64_t{1} << 20;

// Blocks up to this size are always sent in place.
inline constexpr uint64_t kInPlaceBlockBytes = uint64_t{64} << 10;

class UnaryRead {
 public:
  // Returns what to send: called first with kMemoryOnly on the thread that
  // starts the call, where it must not wait for a disk (it returns
  // WouldBlockError instead), then with kAny on the pool.
  using Planner =
      std::function<absl::StatusOr<std::vector<ReadPart>>(CatalogRead)>;

  // Answers the call of `reactor`: writes the reply into `response` and
  // finishes `reactor` once, counting what it sends in `counters` (as a
  // stream of one chunk) and recording the call as `method` in `metrics`
  // (may be null). `admission` is the call's read slot and gate entry: the
  // slot is given back at Finish, the gate left right after. None of the
  // pointers is owned; the store, pool and counters outlive the call.
  static void Start(StreamAdmission admission, TieredStore* store,
                    ThreadPool* pool, const Planner& planner,
                    grpc::ServerUnaryReactor* reactor,
                    grpc::ByteBuffer* response, StreamCounters* counters,
                    const char* method, ServerMetrics* metrics);

 private:
  UnaryRead(StreamAdmission admission, TieredStore* store,
            grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* response,
            StreamCounters* counters, const char* method,
            ServerMetrics* metrics);

  // Reads the blocks of the plan, or finishes with its error.
  void Plan(absl::StatusOr<std::vector<ReadPart>> parts);
  // Counts one storage step done; the last builds the reply.
  void StepDone();
  // Builds the reply from the blocks read and finishes.
  void Reply();
  // Finishes the call with `status` and deletes this.
  void Finish(const absl::Status& status);

  StreamAdmission admission_;
  TieredStore* const store_;
  grpc::ServerUnaryReactor* const reactor_;
  grpc::ByteBuffer* const response_;
  StreamCounters* const counters_;
  const char* const method_;
  ServerMetrics* const metrics_;  // May be null.
  const absl::Time start_;

  // Set by Plan before any block read starts; read by Reply after the last
  // one has returned (the count below orders them).
  std::unique_ptr<ChunkCursor> cursor_;
  // One per unit of the cursor; each written by its own read's callback.
  std::vector<absl::StatusOr<EncodedBlock>> blocks_;
  // Block reads not yet returned, plus one for Plan while it starts them.
  std::atomic<size_t> pending_{1};
};

}  // namespace pstore

#endif  // PSTORE_SERVER_UNARY_READ_H_
