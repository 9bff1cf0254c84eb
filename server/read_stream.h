// ReadStreamReactor streams tensors to a client: GetTensor (one tensor or a
// byte range of it) and PullModel (every tensor of a revision, or a shard).
//
// The reactor reads the blocks of a read plan (storage/read_plan.h) through
// TieredStore::ReadEncodedBlockAsync ahead of the network, up to a byte
// budget (so memory per stream is bounded), and keeps one write in flight;
// the store's ChunkCursor cuts each block into checked chunks, framed here
// and sent without copying (server/chunk.h). Catalog lookups that would read a
// file run on a worker pool, never on a gRPC thread; those served from memory
// run inline. The last chunk goes out with the status. Cancellation stops new
// reads; Finish is called once, after the last storage callback has returned,
// and OnDone deletes the reactor.
//
// Thread-safe: reactions and storage callbacks may run on any thread.

#ifndef PSTORE_SERVER_READ_STREAM_H_
#define PSTORE_SERVER_READ_STREAM_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "codec/hash.h"
#include "grpcpp/grpcpp.h"
#include "pstore/v1/pstore.pb.h"
#include "server/metrics.h"
#include "server/stream_admission.h"
#include "storage/tiered_store.h"
#include "util/thread_pool.h"

namespace pstore {

// Counters shared by every stream of a server.
struct StreamCounters {
  std::atomic<uint64_t> streams_in_flight{0};
  // Bytes of blocks read ahead and not yet sent, over all streams, and the
  // most they may reach (each stream may still hold its front block).
  std::atomic<uint64_t> readahead_bytes{0};
  uint64_t readahead_budget_bytes = uint64_t{256} << 20;
  // Bytes of blocks other nodes asked for (server/peer_service.h), read
  // and not yet handed to gRPC: counted apart, against a budget of the
  // same size, so that client streams filling theirs never turn away the
  // reads that would save the pool.
  std::atomic<uint64_t> peer_readahead_bytes{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> chunks_sent{0};
};

struct ReadStreamOptions {
  // Largest `data` per chunk.
  uint32_t max_chunk_bytes = 1 << 20;
  // Bytes of blocks read ahead of the network (at least one block).
  uint64_t readahead_bytes = uint64_t{32} << 20;
};

class ReadStreamReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // Returns what to send. Called first with kMemoryOnly on the gRPC thread
  // that starts the call, where it must not wait for a disk: it returns
  // WouldBlockError instead, and is called again with kAny on the worker
  // pool.
  using Planner =
      std::function<absl::StatusOr<std::vector<ReadPart>>(CatalogRead)>;

  // Starts the stream `admission` admitted: `planner` runs (on this thread
  // from memory, else on `pool`), then blocks are read from `store`.
  // Finish gives the stream slot back; deleting the reactor (OnDone) leaves
  // the gate. None of the pointers is owned; all outlive the reactor.
  ReadStreamReactor(StreamAdmission admission, TieredStore* store,
                    ThreadPool* pool, Planner planner,
                    ReadStreamOptions options, StreamCounters* counters,
                    const char* method, ServerMetrics* metrics);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the reactor does next, decided under mu_ and done outside it.
  struct Action {
    std::vector<size_t> reads;  // Units whose blocks to read.
    bool write = false;         // Send write_buffer_.
    bool finish = false;  // End the call; with `write`, in the same batch.
    grpc::Status status;
  };
  struct Slot {
    size_t unit = 0;
    bool ready = false;
    absl::StatusOr<EncodedBlock> block;
  };

  void Plan(absl::StatusOr<std::vector<ReadPart>> parts);
  void OnBlock(size_t unit, absl::StatusOr<EncodedBlock> block);
  Action NextAction() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the next chunk from the ready front slot.
  grpc::ByteBuffer NextChunk() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Act(Action action);

  // First: given back last, once every other member is gone.
  StreamAdmission admission_;
  TieredStore* const store_;
  ThreadPool* const pool_;
  const ReadStreamOptions options_;
  StreamCounters* const counters_;
  const char* const method_;
  ServerMetrics* const metrics_;  // May be null.
  const absl::Time start_;

  absl::Mutex mu_;
  // The plan, cut into units; set once planned.
  std::unique_ptr<ChunkCursor> cursor_ ABSL_GUARDED_BY(mu_);
  size_t next_unit_ ABSL_GUARDED_BY(mu_) = 0;  // Next unit to read.
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);
  uint64_t window_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // Read or in flight.
  // Storage work not yet returned: the plan, then each block read.
  int outstanding_ ABSL_GUARDED_BY(mu_) = 1;
  // Most block reads in flight at once: one at the start, doubled by each
  // block that arrives (kMaxReadsAllowed in read_stream.cc).
  int reads_allowed_ ABSL_GUARDED_BY(mu_) = 1;
  bool planned_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // The message being written; replaced only once its write is done.
  grpc::ByteBuffer write_buffer_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pstore

#endif  // PSTORE_SERVER_READ_STREAM_H_
