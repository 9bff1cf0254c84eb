#include "server/unary_read.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/chunk.h"
#include "server/convert.h"
#include "util/status.h"

namespace pstore {
namespace {

// Chunk size the cursor cuts with: above any unary read, so every block
// slice is one chunk, and the size clients stream with by default
// (ClientOptions::chunk_bytes), so that a block keeps one memo of chunk
// hashes (BlockData::ChunkHash) for both calls.
constexpr uint32_t kCursorChunkBytes = 4 << 20;
static_assert(kCursorChunkBytes >= kMaxUnaryReadBytes);

// Returns bytes [offset, offset + length) of `block` as a piece of the
// reply: in place, or copied when pointing at the block would hold much
// more memory than the piece (see the header).
DataPiece ReplyPiece(const BlockRef& block, uint64_t offset, uint64_t length) {
  if (block->charge() <= kInPlaceBlockBytes || block->charge() <= 2 * length) {
    return DataPiece{block, offset, length};
  }
  return DataPiece{CopyBlock(block->bytes().subspan(offset, length)), 0,
                   length};
}

}  // namespace

void UnaryRead::Start(StreamAdmission admission, TieredStore* store,
                      ThreadPool* pool, const Planner& planner,
                      grpc::ServerUnaryReactor* reactor,
                      grpc::ByteBuffer* response, StreamCounters* counters,
                      const char* method, ServerMetrics* metrics) {
  auto* call = new UnaryRead(std::move(admission), store, reactor, response,
                             counters, method, metrics);
  // A plan from memory alone (the tensor's records in RocksDB's memtable or
  // block cache) is made here, saving a hop to the pool.
  absl::StatusOr<std::vector<ReadPart>> parts =
      planner(CatalogRead::kMemoryOnly);
  if (!IsWouldBlock(parts.status())) {
    call->Plan(std::move(parts));
    return;
  }
  pool->Schedule([call, planner] { call->Plan(planner(CatalogRead::kAny)); });
}

UnaryRead::UnaryRead(StreamAdmission admission, TieredStore* store,
                     grpc::ServerUnaryReactor* reactor,
                     grpc::ByteBuffer* response, StreamCounters* counters,
                     const char* method, ServerMetrics* metrics)
    : admission_(std::move(admission)),
      store_(store),
      reactor_(reactor),
      response_(response),
      counters_(counters),
      method_(method),
      metrics_(metrics),
      start_(absl::Now()) {}

void UnaryRead::Plan(absl::StatusOr<std::vector<ReadPart>> parts) {
  if (!parts.ok()) return Finish(parts.status());
  if (parts->size() != 1) {
    return Finish(absl::InternalError(absl::StrCat(
        "a tensor read was planned as ", parts->size(), " parts, not one")));
  }
  const uint64_t bytes = parts->front().byte_length;
  if (bytes > kMaxUnaryReadBytes) {
    return Finish(absl::ResourceExhaustedError(
        absl::StrCat(parts->front().tensor.name.ToString(), ": the read is ",
                     bytes, " bytes, and ReadTensor sends at most ",
                     kMaxUnaryReadBytes, "; read it with GetTensor")));
  }
  cursor_ = store_->NewChunkCursor(*std::move(parts), kCursorChunkBytes);
  const size_t units = cursor_->num_units();
  blocks_.assign(units, EncodedBlock());
  pending_.fetch_add(units);
  for (size_t unit = 0; unit < units; ++unit) {
    if (cursor_->is_empty(unit)) {
      StepDone();  // Never the last: Plan still holds its own count.
      continue;
    }
    const ReadPart& part = cursor_->part_of(unit);
    store_->ReadEncodedBlockAsync(
        cursor_->slice_of(unit).id, part.tensor.dtype, part.encoding,
        [this, unit](absl::StatusOr<EncodedBlock> block) {
          blocks_[unit] = std::move(block);
          StepDone();
        });
  }
  StepDone();  // May reply and delete this: the last thing Plan does.
}

void UnaryRead::StepDone() {
  if (pending_.fetch_sub(1) == 1) Reply();
}

void UnaryRead::Reply() {
  absl::InlinedVector<DataPiece, 2> pieces;
  const ReadPart& part = cursor_->part_of(0);
  Chunk last;
  for (size_t unit = 0; unit < cursor_->num_units(); ++unit) {
    if (!blocks_[unit].ok()) {
      return Finish(
          Annotate(blocks_[unit].status(), part.tensor.name.ToString()));
    }
    Chunk chunk;
    do {
      chunk = cursor_->Next(unit, *blocks_[unit]);
      if (chunk.length > 0) {
        pieces.push_back(
            ReplyPiece(chunk.block, chunk.block_offset, chunk.length));
      }
    } while (!chunk.unit_done);
    if (chunk.last) last = chunk;
  }
  v1::TensorChunk fields;
  v1::TensorInfo* info = fields.mutable_info();
  ToTensorInfo(part, info);
  if (last.derived) {
    SetDerivedInfo(part.encoding, last.xxh3_64_of_all, last.stats, info);
  }
  fields.set_offset(part.offset);
  fields.set_xxh3_64(last.xxh3_64_of_all);
  fields.set_last(true);
  fields.set_xxh3_64_of_all(last.xxh3_64_of_all);
  *response_ = MakeChunkBuffer(fields, pieces);
  counters_->bytes_sent.fetch_add(part.byte_length, std::memory_order_relaxed);
  counters_->chunks_sent.fetch_add(1, std::memory_order_relaxed);
  Finish(absl::OkStatus());
}

void UnaryRead::Finish(const absl::Status& status) {
  grpc::Status done = ToGrpcStatus(status);
  if (metrics_ != nullptr) {
    metrics_->ObserveRpc(method_, done.error_code(), absl::Now() - start_);
  }
  // The client has its answer once Finish is called: give the slot back
  // now, so that its next call is not refused for this one.
  admission_.ReleaseSlot();
  reactor_->Finish(done);
  delete this;  // Leaves the gate: nothing here touches the store again.
}

}  // namespace pstore
