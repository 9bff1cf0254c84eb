#include "server/read_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/chunk.h"
#include "server/convert.h"
#include "util/status.h"

namespace pstore {
namespace {

// The largest block whose last chunk is sent together with the status.
// Finishing gives the stream's slot back before the chunk has left, so a
// client that does not read holds such a block outside the stream limits:
// small blocks only (a connection has at most max_streams_per_connection).
constexpr uint64_t kFinishWithChunkBytes = uint64_t{64} << 10;

// A stream starts with one block read in flight and doubles what it allows
// with each block that arrives, up to its read-ahead window: its first block
// is read alone, not beside the whole window's, whose reads share the disk
// (and the cold tier's reader threads). Figures: bench/README.md, "Figures
// behind choices in the code".
constexpr int kMaxReadsAllowed = 1 << 20;

}  // namespace

ReadStreamReactor::ReadStreamReactor(StreamAdmission admission,
                                     TieredStore* store, ThreadPool* pool,
                                     Planner planner, ReadStreamOptions options,
                                     StreamCounters* counters,
                                     const char* method, ServerMetrics* metrics)
    : admission_(std::move(admission)),
      store_(store),
      pool_(pool),
      options_(options),
      counters_(counters),
      method_(method),
      metrics_(metrics),
      start_(absl::Now()) {
  // A plan from memory alone (a tensor whose catalog records are in
  // RocksDB's memtable or block cache) is made here, saving a hop to the
  // pool on the latency of small reads (bench/README.md).
  absl::StatusOr<std::vector<ReadPart>> parts =
      planner(CatalogRead::kMemoryOnly);
  if (!IsWouldBlock(parts.status())) {
    Plan(std::move(parts));
    return;
  }
  pool_->Schedule([this, planner = std::move(planner)] {
    Plan(planner(CatalogRead::kAny));
  });
}

void ReadStreamReactor::Plan(absl::StatusOr<std::vector<ReadPart>> parts) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    planned_ = true;
    if (!parts.ok()) {
      error_ = parts.status();
    } else {
      cursor_ =
          store_->NewChunkCursor(*std::move(parts), options_.max_chunk_bytes);
    }
    action = NextAction();
  }
  Act(std::move(action));
}

ReadStreamReactor::Action ReadStreamReactor::NextAction() {
  Action action;
  if (finished_) return action;
  bool stopping = cancelled_ || !error_.ok();
  if (!stopping && planned_) {
    // Read ahead within this stream's budget and the server's, and within
    // the reads allowed in flight; always at least the front block, so every
    // stream makes progress.
    while (next_unit_ < cursor_->num_units()) {
      uint64_t bytes = cursor_->unit_bytes(next_unit_);
      if (!slots_.empty() &&
          (window_bytes_ + bytes > options_.readahead_bytes ||
           counters_->readahead_bytes.load(std::memory_order_relaxed) + bytes >
               counters_->readahead_budget_bytes ||
           outstanding_ >= reads_allowed_)) {
        break;
      }
      size_t unit = next_unit_++;
      bool empty = cursor_->is_empty(unit);
      slots_.push_back(Slot{unit, empty, EncodedBlock()});
      if (!empty) {
        window_bytes_ += bytes;
        counters_->readahead_bytes.fetch_add(bytes, std::memory_order_relaxed);
        ++outstanding_;
        action.reads.push_back(unit);
      }
    }
    if (!write_in_flight_ && !slots_.empty() && slots_.front().ready) {
      if (slots_.front().block.ok()) {
        const BlockRef& block = slots_.front().block->block;
        const bool small =
            block == nullptr || block->charge() <= kFinishWithChunkBytes;
        action.write = true;
        write_buffer_ = NextChunk();
        write_in_flight_ = true;
        if (small && next_unit_ == cursor_->num_units() && slots_.empty() &&
            outstanding_ == 0) {
          // The last chunk goes out with the status in one batch: the
          // client's call ends a round trip sooner (a one-chunk read is then
          // as short on the wire as a unary call). Small blocks only: see
          // kFinishWithChunkBytes.
          finished_ = true;
          action.finish = true;
          action.status = grpc::Status::OK;
        }
        return action;
      }
      const ReadPart& part = cursor_->part_of(slots_.front().unit);
      error_ =
          Annotate(slots_.front().block.status(), part.tensor.name.ToString());
      stopping = true;
    }
  }
  if (write_in_flight_ || outstanding_ > 0) return action;
  if (stopping) {
    finished_ = true;
    action.finish = true;
    action.status = cancelled_ ? grpc::Status::CANCELLED : ToGrpcStatus(error_);
    return action;
  }
  if (planned_ && next_unit_ == cursor_->num_units() && slots_.empty()) {
    finished_ = true;
    action.finish = true;
    action.status = grpc::Status::OK;
  }
  return action;
}

grpc::ByteBuffer ReadStreamReactor::NextChunk() {
  Slot& slot = slots_.front();
  const Chunk chunk = cursor_->Next(slot.unit, *slot.block);
  const ReadPart& part = *chunk.part;
  v1::TensorChunk fields;
  fields.set_tensor_index(part.tensor_index);
  if (chunk.first) ToTensorInfo(part, fields.mutable_info());
  fields.set_offset(chunk.tensor_offset);
  fields.set_xxh3_64(chunk.xxh3_64);
  if (chunk.last) {
    fields.set_last(true);
    fields.set_xxh3_64_of_all(chunk.xxh3_64_of_all);
    if (chunk.derived) {
      // The encoding was derived while sending: what it came to.
      v1::TensorInfo* info = fields.mutable_final_info();
      ToTensorInfo(part, info);
      SetDerivedInfo(part.encoding, chunk.xxh3_64_of_all, chunk.stats, info);
    }
  }
  grpc::ByteBuffer buffer =
      chunk.length > 0 ? MakeChunkBuffer(fields, chunk.block,
                                         chunk.block_offset, chunk.length)
                       : MakeChunkBuffer(fields, nullptr, 0, 0);
  counters_->bytes_sent.fetch_add(chunk.length, std::memory_order_relaxed);
  counters_->chunks_sent.fetch_add(1, std::memory_order_relaxed);
  if (chunk.unit_done) {
    const uint64_t bytes = cursor_->unit_bytes(slot.unit);
    window_bytes_ -= bytes;
    counters_->readahead_bytes.fetch_sub(bytes, std::memory_order_relaxed);
    slots_.pop_front();
  }
  return buffer;
}

void ReadStreamReactor::OnBlock(size_t unit,
                                absl::StatusOr<EncodedBlock> block) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    reads_allowed_ = std::min(reads_allowed_ * 2, kMaxReadsAllowed);
    for (Slot& slot : slots_) {
      if (slot.unit == unit) {
        slot.ready = true;
        slot.block = std::move(block);
        break;
      }
    }
    action = NextAction();
  }
  Act(std::move(action));
}

void ReadStreamReactor::Act(Action action) {
  for (size_t unit : action.reads) {
    BlockId id;
    DType dtype;
    Encoding encoding;
    {
      absl::MutexLock lock(&mu_);
      id = cursor_->slice_of(unit).id;
      dtype = cursor_->part_of(unit).tensor.dtype;
      encoding = cursor_->part_of(unit).encoding;
    }
    store_->ReadEncodedBlockAsync(
        id, dtype, encoding, [this, unit](absl::StatusOr<EncodedBlock> block) {
          OnBlock(unit, std::move(block));
        });
  }
  if (action.finish) {
    if (metrics_ != nullptr) {
      metrics_->ObserveRpc(method_, action.status.error_code(),
                           absl::Now() - start_);
    }
    // The client has its status once Finish is called: give the slot back
    // now, so that its next call is not refused for this one.
    admission_.ReleaseSlot();
    if (action.write) {
      StartWriteAndFinish(&write_buffer_, grpc::WriteOptions(), action.status);
    } else {
      Finish(action.status);
    }
  } else if (action.write) {
    StartWrite(&write_buffer_);
  }
}

void ReadStreamReactor::OnWriteDone(bool ok) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!ok) cancelled_ = true;  // The client went away.
    action = NextAction();
  }
  Act(std::move(action));
}

void ReadStreamReactor::OnCancel() {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    action = NextAction();
  }
  Act(std::move(action));
}

void ReadStreamReactor::OnDone() {
  {
    // Blocks read ahead but never sent (a cancelled or failed stream).
    absl::MutexLock lock(&mu_);
    counters_->readahead_bytes.fetch_sub(window_bytes_,
                                         std::memory_order_relaxed);
    window_bytes_ = 0;
  }
  delete this;
}

}  // namespace pstore
