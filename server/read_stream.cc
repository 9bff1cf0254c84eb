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

}  // namespace

ReadStreamReactor::ReadStreamReactor(TieredStore* store, ThreadPool* pool,
                                     Planner planner, ReadStreamOptions options,
                                     StreamCounters* counters, CallGate* gate,
                                     const char* method, ServerMetrics* metrics)
    : store_(store),
      pool_(pool),
      options_(options),
      counters_(counters),
      gate_(gate),
      method_(method),
      metrics_(metrics),
      start_(absl::Now()) {
  // A plan from memory alone (a tensor whose catalog records are in
  // RocksDB's memtable or block cache) is made here: a hop to the pool costs
  // about 40 us of a 64 KiB read's 100-150 on a 2-core machine.
  absl::StatusOr<std::vector<StreamSource>> sources =
      planner(CatalogRead::kMemoryOnly);
  if (!IsWouldBlock(sources.status())) {
    Plan(std::move(sources));
    return;
  }
  pool_->Schedule([this, planner = std::move(planner)] {
    Plan(planner(CatalogRead::kAny));
  });
}

void ReadStreamReactor::Plan(
    absl::StatusOr<std::vector<StreamSource>> sources) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    planned_ = true;
    if (!sources.ok()) {
      error_ = sources.status();
    } else {
      sources_ = *std::move(sources);
      for (size_t s = 0; s < sources_.size(); ++s) {
        if (sources_[s].slices.empty()) {
          units_.push_back(Unit{s, -1});
        }
        for (size_t i = 0; i < sources_[s].slices.size(); ++i) {
          units_.push_back(Unit{s, static_cast<int>(i)});
        }
      }
    }
    action = NextAction();
  }
  Act(std::move(action));
}

uint64_t ReadStreamReactor::UnitBytes(size_t unit) const {
  const Unit& u = units_[unit];
  if (u.slice < 0) return 0;
  return sources_[u.source].slices[u.slice].block_size;
}

ReadStreamReactor::Action ReadStreamReactor::NextAction() {
  Action action;
  if (finished_) return action;
  bool stopping = cancelled_ || !error_.ok();
  if (!stopping && planned_) {
    // Read ahead within this stream's budget and the server's; always at
    // least the front block, so every stream makes progress.
    while (next_unit_ < units_.size()) {
      uint64_t bytes = UnitBytes(next_unit_);
      if (!slots_.empty() &&
          (window_bytes_ + bytes > options_.readahead_bytes ||
           counters_->readahead_bytes.load(std::memory_order_relaxed) + bytes >
               counters_->readahead_budget_bytes)) {
        break;
      }
      size_t unit = next_unit_++;
      bool empty = units_[unit].slice < 0;
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
        if (small && next_unit_ == units_.size() && slots_.empty() &&
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
      const StreamSource& source = sources_[units_[slots_.front().unit].source];
      error_ = Annotate(slots_.front().block.status(), source.info.name());
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
  if (planned_ && next_unit_ == units_.size() && slots_.empty()) {
    finished_ = true;
    action.finish = true;
    action.status = grpc::Status::OK;
  }
  return action;
}

grpc::ByteBuffer ReadStreamReactor::NextChunk() {
  Slot& slot = slots_.front();
  const Unit& unit = units_[slot.unit];
  const StreamSource& source = sources_[unit.source];
  bool first_of_source = (unit.slice <= 0) && sent_in_slot_ == 0;
  if (first_of_source) {
    source_hash_.Reset();
    source_stats_ = QuantizationStats();
  }
  if (sent_in_slot_ == 0) source_stats_.Merge(slot.block->stats);

  v1::TensorChunk fields;
  fields.set_tensor_index(source.tensor_index);
  if (first_of_source) *fields.mutable_info() = source.info;
  uint64_t length = 0;
  uint64_t offset_in_block = 0;
  if (unit.slice >= 0) {
    const BlockSlice& slice = source.slices[unit.slice];
    offset_in_block = slice.offset + sent_in_slot_;
    length = std::min<uint64_t>(options_.max_chunk_bytes,
                                slice.length - sent_in_slot_);
    fields.set_offset(slice.tensor_offset + offset_in_block);
  } else {
    fields.set_offset(source.info.offset());
  }
  const BlockRef& block = slot.block->block;
  std::span<const uint8_t> data;
  if (length > 0) data = block->bytes().subspan(offset_in_block, length);
  // Chunks of a block are cut every max_chunk_bytes from the slice's start;
  // the block remembers their hashes when the slice starts the block.
  fields.set_xxh3_64(
      length == 0 ? Xxh3_64(data)
      : unit.slice >= 0 && source.slices[unit.slice].offset == 0
          ? block->ChunkHash(offset_in_block, length, options_.max_chunk_bytes)
          : Xxh3_64(data));
  // The hash of everything sent is known beforehand for a whole tensor
  // whose hash the server knows; otherwise it is computed while sending.
  const bool hash_known = source.whole && source.info.has_xxh3_64();
  if (!hash_known) source_hash_.Update(data);
  sent_in_slot_ += length;

  bool slot_done =
      unit.slice < 0 || sent_in_slot_ == source.slices[unit.slice].length;
  bool last_of_source =
      slot_done && (unit.slice < 0 ||
                    unit.slice + 1 == static_cast<int>(source.slices.size()));
  if (last_of_source) {
    uint64_t digest =
        hash_known ? source.info.xxh3_64() : source_hash_.Digest();
    fields.set_last(true);
    fields.set_xxh3_64_of_all(digest);
    bool quantized = IsQuantized(source.encoding);
    if (!source.info.has_xxh3_64() ||
        (quantized && !source.info.has_quantization_error())) {
      // The encoding was derived while sending: what it came to.
      v1::TensorInfo* info = fields.mutable_final_info();
      *info = source.info;
      info->set_xxh3_64(digest);
      if (quantized) {
        v1::QuantizationError* error = info->mutable_quantization_error();
        error->set_max_abs_error(source_stats_.max_abs_error);
        error->set_rms_error(source_stats_.RmsError());
        error->set_relative_rms_error(source_stats_.RelativeRmsError());
      }
      if (source.whole &&
          !IsIdentityEncoding(source.meta.dtype, source.encoding)) {
        store_->RecordEncodedSummary(
            source.meta, source.encoding,
            EncodedTensorSummary{digest, source_stats_});
      }
    }
  }
  grpc::ByteBuffer buffer =
      length > 0 ? MakeChunkBuffer(fields, block, offset_in_block, length)
                 : MakeChunkBuffer(fields, nullptr, 0, 0);
  counters_->bytes_sent.fetch_add(length, std::memory_order_relaxed);
  counters_->chunks_sent.fetch_add(1, std::memory_order_relaxed);
  if (slot_done) {
    window_bytes_ -= UnitBytes(slot.unit);
    counters_->readahead_bytes.fetch_sub(UnitBytes(slot.unit),
                                         std::memory_order_relaxed);
    slots_.pop_front();
    sent_in_slot_ = 0;
  }
  return buffer;
}

void ReadStreamReactor::OnBlock(size_t unit,
                                absl::StatusOr<EncodedBlock> block) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    --outstanding_;
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
      const Unit& u = units_[unit];
      const StreamSource& source = sources_[u.source];
      id = source.slices[u.slice].id;
      dtype = source.meta.dtype;
      encoding = source.encoding;
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
    counters_->streams_in_flight.fetch_sub(1, std::memory_order_relaxed);
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
  // Blocks read ahead but never sent (a cancelled or failed stream).
  counters_->readahead_bytes.fetch_sub(window_bytes_,
                                       std::memory_order_relaxed);
  CallGate* gate = gate_;
  delete this;
  gate->Leave();
}

}  // namespace pstore
