#include "storage/rados/rados_tier.h"

#include <cerrno>
#include <ctime>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace pstore {
namespace {

// Returns the touched time to store now.
ceph::bufferlist TouchedNow() {
  ceph::bufferlist value;
  value.append(absl::StrCat(static_cast<int64_t>(std::time(nullptr))));
  return value;
}

}  // namespace

std::string BlockObjectName(const BlockId& id) {
  return absl::StrCat("block.", id.ToHex());
}

struct RadosTier::AioRead {
  RadosTier* tier;
  BlockId id;
  ReadCallback done;
  ceph::bufferlist bytes;
  librados::AioCompletion* completion = nullptr;
};

RadosTier::RadosTier(std::shared_ptr<RadosPool> pool, BufferPool& buffers)
    : pool_(std::move(pool)), buffers_(buffers) {}

RadosTier::~RadosTier() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* in_flight) { return *in_flight == 0; }, &reads_in_flight_));
}

bool RadosTier::Contains(const BlockId& id) const {
  uint64_t size = 0;
  time_t mtime = 0;
  return pool_->io().stat(BlockObjectName(id), &size, &mtime) == 0;
}

absl::StatusOr<BlockRef> RadosTier::Finish(const BlockId& id, int result,
                                           ceph::bufferlist& bytes) {
  if (result == -ENOENT) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return absl::NotFoundError(
        absl::StrCat("cold tier: no block ", id.ToHex()));
  }
  if (result < 0) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return RadosStatus(result,
                       absl::StrCat("cold tier: read block ", id.ToHex()));
  }
  const size_t size = bytes.length();
  Buffer buffer = buffers_.Allocate(size);
  bytes.begin().copy(size, reinterpret_cast<char*>(buffer.data()));
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
  ceph::bufferlist bytes;
  // Length 0: the whole object.
  int result = pool_->io().read(BlockObjectName(id), bytes, 0, 0);
  return Finish(id, result, bytes);
}

void RadosTier::OnAioRead(void* completion, void* arg) {
  (void)completion;
  std::unique_ptr<AioRead> read(static_cast<AioRead*>(arg));
  RadosTier* tier = read->tier;
  int result = read->completion->get_return_value();
  read->completion->release();
  std::move(read->done)(tier->Finish(read->id, result, read->bytes));
  read.reset();
  absl::MutexLock lock(&tier->mu_);
  --tier->reads_in_flight_;
}

void RadosTier::ReadAsync(const BlockId& id, ReadCallback done) {
  auto read = std::make_unique<AioRead>();
  read->tier = this;
  read->id = id;
  read->done = std::move(done);
  read->completion =
      librados::Rados::aio_create_completion(read.get(), &OnAioRead);
  {
    absl::MutexLock lock(&mu_);
    ++reads_in_flight_;
  }
  AioRead* raw = read.release();
  int submitted = pool_->io().aio_read(BlockObjectName(id), raw->completion,
                                       &raw->bytes, 0, 0);
  if (submitted < 0) {
    // No callback will come: answer here.
    std::unique_ptr<AioRead> failed(raw);
    failed->completion->release();
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    std::move(failed->done)(RadosStatus(
        submitted, absl::StrCat("cold tier: read block ", id.ToHex())));
    failed.reset();
    absl::MutexLock lock(&mu_);
    --reads_in_flight_;
  }
}

absl::Status RadosTier::Write(const BlockId& id, const BlockRef& block) {
  const std::string name = BlockObjectName(id);
  const absl::string_view view = block->view();
  // A sweep may remove the object between a failed create and the touch;
  // then it is created anew. Bounded: a sweep never removes a block
  // touched within its grace period.
  for (int attempt = 0; attempt < 3; ++attempt) {
    ceph::bufferlist bytes;
    // The block outlives the synchronous call: no copy.
    bytes.push_back(ceph::buffer::create_static(
        static_cast<unsigned>(view.size()), const_cast<char*>(view.data())));
    librados::ObjectWriteOperation create;
    create.create(/*exclusive=*/true);
    create.write_full(bytes);
    create.setxattr(kTouchedXattr, TouchedNow());
    int result = pool_->io().operate(name, &create);
    if (result == 0) {
      writes_.fetch_add(1, std::memory_order_relaxed);
      write_bytes_.fetch_add(view.size(), std::memory_order_relaxed);
      return absl::OkStatus();
    }
    if (result != -EEXIST) {
      io_errors_.fetch_add(1, std::memory_order_relaxed);
      return RadosStatus(result,
                         absl::StrCat("cold tier: write block ", id.ToHex()));
    }
    // Stored already (a block never changes under its id): refresh its
    // touched time, so that a sweep running now keeps it.
    librados::ObjectWriteOperation touch;
    touch.assert_exists();
    touch.setxattr(kTouchedXattr, TouchedNow());
    result = pool_->io().operate(name, &touch);
    if (result != -ENOENT) {
      return RadosStatus(result,
                         absl::StrCat("cold tier: touch block ", id.ToHex()));
    }
  }
  return absl::AbortedError(absl::StrCat("cold tier: block ", id.ToHex(),
                                         " was removed under three writes"));
}

absl::Status RadosTier::Erase(const BlockId& id) {
  int result = pool_->io().remove(BlockObjectName(id));
  if (result == -ENOENT) return absl::OkStatus();
  if (result < 0) {
    return RadosStatus(result,
                       absl::StrCat("cold tier: erase block ", id.ToHex()));
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
