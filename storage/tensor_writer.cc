#include "storage/tensor_writer.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"
#include "storage/block.h"
#include "util/status.h"

namespace pstore {

TensorWriter::TensorWriter(Parts parts, PutTensorSpec spec,
                           uint64_t byte_length, uint64_t block_bytes)
    : parts_(parts),
      spec_(std::move(spec)),
      byte_length_(byte_length),
      block_bytes_(block_bytes),
      started_unix_micros_(absl::ToUnixMicros(absl::Now())) {}

TensorWriter::~TensorWriter() { Abort(); }

absl::Status TensorWriter::Append(std::span<const uint8_t> bytes) {
  if (done_) {
    return absl::FailedPreconditionError("the put was already finished");
  }
  if (bytes.size() > byte_length_ - received_) {
    uint64_t received = received_ + bytes.size();
    Abort();
    return absl::InvalidArgumentError(absl::StrCat(
        "received ", received, " bytes for ", spec_.name.ToString(),
        " but its dtype and shape make ", byte_length_, " bytes"));
  }
  hasher_.Update(bytes);
  received_ += bytes.size();
  while (!bytes.empty()) {
    // The block being filled starts right after the sealed ones.
    uint64_t block_target =
        std::min(block_bytes_, byte_length_ - blocks_.size() * block_bytes_);
    if (current_.empty()) {
      current_ = BufferPool::Default().Allocate(block_target);
      current_size_ = 0;
    }
    size_t take =
        std::min<uint64_t>(bytes.size(), block_target - current_size_);
    std::memcpy(current_.data() + current_size_, bytes.data(), take);
    current_size_ += take;
    bytes = bytes.subspan(take);
    if (current_size_ == block_target) {
      if (absl::Status status = SealBlock(); !status.ok()) {
        Abort();
        return status;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TensorWriter::SealBlock() {
  size_t size = current_size_;
  BlockRef block = MakeBlock(std::move(current_), size);
  current_size_ = 0;
  BlockId id = BlockId::Of(block->bytes());
  PSTORE_ASSIGN_OR_RETURN(bool stored, parts_.collector->Stage(id));
  staged_.push_back(id);
  blocks_.push_back(id);
  if (stored) {
    // Reuse the stored block only once its bytes compare equal.
    absl::StatusOr<BlockRef> existing = parts_.reader->Read(id);
    if (!existing.ok()) {
      return Annotate(
          existing.status(),
          absl::StrCat("reading stored block ", id.ToHex(), " to deduplicate"));
    }
    if ((*existing)->size() != size ||
        std::memcmp((*existing)->data(), block->data(), size) != 0) {
      return absl::InternalError(
          absl::StrCat("two different blocks share XXH3-128 ", id.ToHex(),
                       "; refusing to store either under that id"));
    }
    parts_.dedup_blocks->fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }
  if (parts_.tiers.cold->writes_async()) {
    PSTORE_RETURN_IF_ERROR(WaitForWrites(kMaxWritesInFlight - 1));
    {
      absl::MutexLock lock(&write_mu_);
      ++writes_in_flight_;
    }
    parts_.tiers.cold->WriteAsync(
        id, block, [this, id, block](absl::Status status) mutable {
          if (status.ok()) {
            parts_.collector->MarkWritten(id);
            (void)parts_.tiers.dram->Insert(CacheKey{id, kStoredVariant},
                                            std::move(block));
          }
          absl::MutexLock lock(&write_mu_);
          if (!status.ok() && write_error_.ok()) write_error_ = status;
          --writes_in_flight_;
        });
    return absl::OkStatus();
  }
  PSTORE_RETURN_IF_ERROR(parts_.tiers.cold->Write(id, block));
  parts_.collector->MarkWritten(id);
  // A full DRAM of pinned blocks refuses it; the block is durable anyway.
  (void)parts_.tiers.dram->Insert(CacheKey{id, kStoredVariant},
                                  std::move(block));
  return absl::OkStatus();
}

absl::StatusOr<TensorMeta> TensorWriter::Commit() {
  if (done_) {
    return absl::FailedPreconditionError("the put was already finished");
  }
  if (received_ != byte_length_) {
    uint64_t received = received_;
    Abort();
    return absl::InvalidArgumentError(absl::StrCat(
        "received ", received, " bytes for ", spec_.name.ToString(),
        " but its dtype and shape make ", byte_length_, " bytes"));
  }
  if (current_size_ > 0) {
    if (absl::Status status = SealBlock(); !status.ok()) {
      Abort();
      return status;
    }
  }
  if (absl::Status written = WaitForWrites(0); !written.ok()) {
    Abort();
    return written;
  }
  uint64_t hash = hasher_.Digest();
  if (spec_.expected_xxh3_64.has_value() && *spec_.expected_xxh3_64 != hash) {
    Abort();
    return absl::DataLossError(absl::StrCat(
        "the bytes received for ", spec_.name.ToString(), " hash to XXH3-64 ",
        absl::Hex(hash, absl::kZeroPad16), ", not the expected ",
        absl::Hex(*spec_.expected_xxh3_64, absl::kZeroPad16)));
  }
  TensorMeta meta;
  meta.name = spec_.name;
  meta.kind = spec_.kind;
  meta.dtype = spec_.dtype;
  meta.shape = spec_.shape;
  meta.byte_length = byte_length_;
  meta.xxh3_64 = hash;
  meta.block_bytes = block_bytes_;
  meta.blocks = blocks_;
  meta.created_unix_micros = absl::ToUnixMicros(absl::Now());
  meta.started_unix_micros = started_unix_micros_;
  absl::StatusOr<std::vector<BlockId>> unreferenced =
      parts_.catalog->CommitTensor(meta);
  if (!unreferenced.ok()) {
    Abort();
    return unreferenced.status();
  }
  done_ = true;
  parts_.collector->Unstage(staged_);
  parts_.collector->Collect(*unreferenced);
  return meta;
}

absl::Status TensorWriter::WaitForWrites(int at_most) {
  struct Bound {
    const int* in_flight;
    int at_most;
  };
  absl::MutexLock lock(&write_mu_);
  Bound bound{&writes_in_flight_, at_most};
  // Each write ends within the tier's operation timeout.
  write_mu_.Await(absl::Condition(
      +[](Bound* b) { return *b->in_flight <= b->at_most; }, &bound));
  return write_error_;
}

void TensorWriter::Abort() {
  if (done_) return;
  done_ = true;
  current_.Reset();
  (void)WaitForWrites(0);  // Their blocks are unstaged below.
  parts_.collector->Abort(staged_);
}

}  // namespace pstore
