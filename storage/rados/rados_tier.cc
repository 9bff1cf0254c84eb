#include "storage/rados/rados_tier.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/rados/rados_ops.h"
#include "util/status.h"

namespace pstore {
namespace {

// Returns the touched time to store now.
std::string TouchedNow() {
  return absl::StrCat(absl::ToUnixMicros(absl::Now()));
}

// A block read into less than half its buffer gets a buffer of its own.
bool Oversized(size_t size, size_t capacity) { return size < capacity / 2; }

}  // namespace

std::string BlockObjectName(const BlockId& id) {
  return absl::StrCat("block.", id.ToHex());
}

struct RadosTier::AioRead {
  RadosTier* tier;
  BlockId id;
  ReadCallback done;
  Buffer buffer;
  rados::ReadOp op;
  rados_completion_t completion = nullptr;
};

RadosTier::RadosTier(std::shared_ptr<RadosPool> pool, uint64_t block_bytes,
                     BufferPool& buffers)
    : pool_(std::move(pool)), block_bytes_(block_bytes), buffers_(buffers) {}

struct RadosTier::AioWrite {
  RadosTier* tier;
  BlockId id;
  BlockRef block;
  WriteCallback done;
  int attempt = 0;
  bool touching = false;  // Else creating.
  std::unique_ptr<rados::WriteOp> op;
};

RadosTier::~RadosTier() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](RadosTier* tier) ABSL_EXCLUSIVE_LOCKS_REQUIRED(tier->mu_) {
        return tier->reads_in_flight_ == 0 && tier->writes_in_flight_ == 0;
      },
      this));
}

bool RadosTier::Contains(const BlockId& id) const {
  uint64_t size = 0;
  time_t mtime = 0;
  return rados_stat(pool_->io(), BlockObjectName(id).c_str(), &size, &mtime) ==
         0;
}

absl::StatusOr<BlockRef> RadosTier::Finish(const BlockId& id, int result,
                                           uint64_t size, size_t bytes_read,
                                           Buffer buffer) {
  if (result == -ENOENT) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return absl::NotFoundError(
        absl::StrCat("cold tier: no block ", id.ToHex()));
  }
  if (result < 0) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return pool_->Note(RadosStatus(
        result, absl::StrCat("cold tier: read block ", id.ToHex())));
  }
  if (size > buffer.capacity()) {
    // Larger than this store's blocks: read it again, whole.
    buffer = buffers_.Allocate(size);
    rados::ReadOp again;
    again.Stat();
    again.Read(0, buffer.capacity(), reinterpret_cast<char*>(buffer.data()));
    result = again.Operate(pool_->io(), BlockObjectName(id));
    if (result < 0) return Finish(id, result, 0, 0, Buffer());
    size = again.size();
    bytes_read = again.bytes_read();
  }
  if (bytes_read != size) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return absl::DataLossError(absl::StrCat("cold tier: block ", id.ToHex(),
                                            " read ", bytes_read, " of ", size,
                                            " bytes"));
  }
  if (Oversized(size, buffer.capacity())) {
    Buffer fitted = buffers_.Allocate(size);
    std::memcpy(fitted.data(), buffer.data(), size);
    buffer = std::move(fitted);
  }
  if (BlockId::Of(std::span<const uint8_t>(buffer.data(), size)) != id) {
    checksum_failures_.fetch_add(1, std::memory_order_relaxed);
    return absl::DataLossError(absl::StrCat("cold tier: block ", id.ToHex(),
                                            " fails its XXH3-128 check (", size,
                                            " bytes read)"));
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  read_bytes_.fetch_add(size, std::memory_order_relaxed);
  return MakeBlock(std::move(buffer), size);
}

absl::StatusOr<BlockRef> RadosTier::Read(const BlockId& id) {
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable(
      absl::StrCat("cold tier: read block ", id.ToHex())));
  Buffer buffer = buffers_.Allocate(block_bytes_);
  rados::ReadOp op;
  op.Stat();
  op.Read(0, buffer.capacity(), reinterpret_cast<char*>(buffer.data()));
  int result = op.Operate(pool_->io(), BlockObjectName(id));
  return Finish(id, result, op.size(), op.bytes_read(), std::move(buffer));
}

void RadosTier::OnAioRead(rados_completion_t completion, void* arg) {
  std::unique_ptr<AioRead> read(static_cast<AioRead*>(arg));
  RadosTier* tier = read->tier;
  int result = rados_aio_get_return_value(completion);
  rados_aio_release(completion);
  std::move(read->done)(tier->Finish(read->id, result, read->op.size(),
                                     read->op.bytes_read(),
                                     std::move(read->buffer)));
  read.reset();
  absl::MutexLock lock(&tier->mu_);
  --tier->reads_in_flight_;
}

void RadosTier::ReadAsync(const BlockId& id, ReadCallback done) {
  if (absl::Status reachable = pool_->CheckReachable(
          absl::StrCat("cold tier: read block ", id.ToHex()));
      !reachable.ok()) {
    // Degraded: fail at once rather than wait for the operation timeout.
    std::move(done)(reachable);
    return;
  }
  auto read = std::make_unique<AioRead>();
  read->tier = this;
  read->id = id;
  read->done = std::move(done);
  read->buffer = buffers_.Allocate(block_bytes_);
  read->op.Stat();
  read->op.Read(0, read->buffer.capacity(),
                reinterpret_cast<char*>(read->buffer.data()));
  int result =
      rados_aio_create_completion2(read.get(), &OnAioRead, &read->completion);
  if (result == 0) {
    {
      absl::MutexLock lock(&mu_);
      ++reads_in_flight_;
    }
    AioRead* raw = read.release();
    result =
        rados_aio_read_op_operate(raw->op.get(), pool_->io(), raw->completion,
                                  BlockObjectName(id).c_str(), 0);
    if (result == 0) return;
    // No callback will come: answer here.
    read.reset(raw);
    rados_aio_release(read->completion);
    absl::MutexLock lock(&mu_);
    --reads_in_flight_;
  }
  io_errors_.fetch_add(1, std::memory_order_relaxed);
  std::move(read->done)(
      RadosStatus(result, absl::StrCat("cold tier: read block ", id.ToHex())));
}

absl::Status RadosTier::Write(const BlockId& id, const BlockRef& block) {
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable(
      absl::StrCat("cold tier: write block ", id.ToHex())));
  const std::string name = BlockObjectName(id);
  // A sweep may remove the object between a failed create and the touch;
  // then it is created anew. Bounded: a sweep never removes a block
  // touched within its grace period.
  for (int attempt = 0; attempt < 3; ++attempt) {
    rados::WriteOp create;
    create.Create(/*exclusive=*/true);
    create.WriteFull(block->view());
    create.SetXattr(kTouchedXattr, TouchedNow());
    int result = create.Operate(pool_->io(), name);
    if (result == 0) {
      writes_.fetch_add(1, std::memory_order_relaxed);
      write_bytes_.fetch_add(block->size(), std::memory_order_relaxed);
      return absl::OkStatus();
    }
    if (result != -EEXIST) {
      io_errors_.fetch_add(1, std::memory_order_relaxed);
      return pool_->Note(RadosStatus(
          result, absl::StrCat("cold tier: write block ", id.ToHex())));
    }
    // Stored already (a block never changes under its id): refresh its
    // touched time, so that a sweep running now keeps it.
    rados::WriteOp touch;
    touch.AssertExists();
    touch.SetXattr(kTouchedXattr, TouchedNow());
    result = touch.Operate(pool_->io(), name);
    if (result != -ENOENT) {
      return pool_->Note(RadosStatus(
          result, absl::StrCat("cold tier: touch block ", id.ToHex())));
    }
  }
  return absl::AbortedError(absl::StrCat("cold tier: block ", id.ToHex(),
                                         " was removed under three writes"));
}

void RadosTier::WriteAsync(const BlockId& id, BlockRef block,
                           WriteCallback done) {
  if (absl::Status reachable = pool_->CheckReachable(
          absl::StrCat("cold tier: write block ", id.ToHex()));
      !reachable.ok()) {
    std::move(done)(reachable);
    return;
  }
  auto write = std::make_unique<AioWrite>();
  write->tier = this;
  write->id = id;
  write->block = std::move(block);
  write->done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    ++writes_in_flight_;
  }
  StartWrite(std::move(write));
}

void RadosTier::StartWrite(std::unique_ptr<AioWrite> write) {
  // As Write: create it with its bytes and touched time; if it is stored,
  // touch it; if a sweep removed it in between, create it again.
  write->op = std::make_unique<rados::WriteOp>();
  if (write->touching) {
    write->op->AssertExists();
  } else {
    write->op->Create(/*exclusive=*/true);
    write->op->WriteFull(write->block->view());
  }
  write->op->SetXattr(kTouchedXattr, TouchedNow());
  rados_completion_t completion = nullptr;
  int result =
      rados_aio_create_completion2(write.get(), &OnAioWrite, &completion);
  if (result == 0) {
    AioWrite* raw = write.release();
    result = raw->op->OperateAsync(pool_->io(), completion,
                                   BlockObjectName(raw->id));
    if (result == 0) return;
    write.reset(raw);  // No callback will come.
    rados_aio_release(completion);
  }
  io_errors_.fetch_add(1, std::memory_order_relaxed);
  const BlockId id = write->id;
  FinishWrite(
      std::move(write),
      pool_->Note(RadosStatus(
          result, absl::StrCat("cold tier: write block ", id.ToHex()))));
}

void RadosTier::OnAioWrite(rados_completion_t completion, void* arg) {
  std::unique_ptr<AioWrite> write(static_cast<AioWrite*>(arg));
  RadosTier* tier = write->tier;
  int result = rados_aio_get_return_value(completion);
  rados_aio_release(completion);
  const std::string hex = write->id.ToHex();
  if (!write->touching) {
    if (result == 0) {
      tier->writes_.fetch_add(1, std::memory_order_relaxed);
      tier->write_bytes_.fetch_add(write->block->size(),
                                   std::memory_order_relaxed);
      tier->FinishWrite(std::move(write), absl::OkStatus());
      return;
    }
    if (result != -EEXIST) {
      tier->io_errors_.fetch_add(1, std::memory_order_relaxed);
      tier->FinishWrite(std::move(write),
                        tier->pool_->Note(RadosStatus(
                            result, "cold tier: write block " + hex)));
      return;
    }
    // Stored already: touch it, so that a sweep running now keeps it.
    write->touching = true;
    tier->StartWrite(std::move(write));
    return;
  }
  if (result != -ENOENT) {
    tier->FinishWrite(std::move(write),
                      tier->pool_->Note(RadosStatus(
                          result, "cold tier: touch block " + hex)));
    return;
  }
  // Removed by a sweep between the create and the touch: create it anew.
  if (++write->attempt >= 3) {
    tier->FinishWrite(
        std::move(write),
        absl::AbortedError(absl::StrCat("cold tier: block ", hex,
                                        " was removed under three writes")));
    return;
  }
  write->touching = false;
  tier->StartWrite(std::move(write));
}

void RadosTier::FinishWrite(std::unique_ptr<AioWrite> write,
                            absl::Status status) {
  {
    // Gone, with what it holds, before the tier stops counting the write.
    WriteCallback done = std::move(write->done);
    write.reset();
    std::move(done)(std::move(status));
  }
  absl::MutexLock lock(&mu_);
  --writes_in_flight_;
}

absl::Status RadosTier::Erase(const BlockId& id) {
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable(
      absl::StrCat("cold tier: erase block ", id.ToHex())));
  int result = rados_remove(pool_->io(), BlockObjectName(id).c_str());
  if (result == -ENOENT) return absl::OkStatus();
  if (result < 0) {
    return pool_->Note(RadosStatus(
        result, absl::StrCat("cold tier: erase block ", id.ToHex())));
  }
  erases_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

TierStats RadosTier::Stats() const {
  TierStats stats;
  stats.hits = hits_.load(std::memory_order_relaxed);
  stats.misses = misses_.load(std::memory_order_relaxed);
  stats.writes = writes_.load(std::memory_order_relaxed);
  stats.write_bytes = write_bytes_.load(std::memory_order_relaxed);
  stats.read_bytes = read_bytes_.load(std::memory_order_relaxed);
  stats.erases = erases_.load(std::memory_order_relaxed);
  stats.checksum_failures = checksum_failures_.load(std::memory_order_relaxed);
  stats.io_errors = io_errors_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace pstore
