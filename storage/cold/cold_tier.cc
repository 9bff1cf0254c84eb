#include "storage/cold/cold_tier.h"

#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "util/status.h"

namespace pstore {

absl::StatusOr<std::unique_ptr<ColdTier>> ColdTier::Open(
    ColdTierOptions options) {
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<ColdDatabase> database,
                          ColdDatabase::Open(std::move(options)));
  return std::make_unique<ColdTier>(std::move(database));
}

ColdTier::ColdTier(std::shared_ptr<ColdDatabase> database)
    : database_(std::move(database)) {}

bool ColdTier::Contains(const BlockId& id) const {
  // RocksDB has no existence check cheaper than a Get for a present key; the
  // Bloom filter makes absent keys cheap.
  rocksdb::PinnableSlice ignored;
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;
  return database_->db()
      ->Get(read_options, database_->family(ColdDatabase::kBlocks),
            BlockKey(id), &ignored)
      .ok();
}

absl::StatusOr<BlockRef> ColdTier::Read(const BlockId& id) {
  rocksdb::ReadOptions read_options;
  read_options.verify_checksums = database_->options().verify_rocksdb_checksums;
  read_options.fill_cache = false;
  rocksdb::PinnableSlice value;
  rocksdb::Status status = database_->db()->Get(
      read_options, database_->family(ColdDatabase::kBlocks), BlockKey(id),
      &value);
  if (status.IsNotFound()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return absl::NotFoundError(
        absl::StrCat("cold tier: no block ", id.ToHex()));
  }
  if (!status.ok()) {
    if (status.IsCorruption()) {
      checksum_failures_.fetch_add(1, std::memory_order_relaxed);
    } else {
      read_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    return RocksToStatus(status,
                         absl::StrCat("cold tier: read block ", id.ToHex()));
  }
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(value.data()),
                                 value.size());
  if (BlockId::Of(bytes) != id) {
    checksum_failures_.fetch_add(1, std::memory_order_relaxed);
    return absl::DataLossError(absl::StrCat("cold tier: block ", id.ToHex(),
                                            " fails its XXH3-128 check (",
                                            value.size(), " bytes read)"));
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  read_bytes_.fetch_add(value.size(), std::memory_order_relaxed);
  return CopyBlock(bytes);
}

absl::Status ColdTier::Write(const BlockId& id, const BlockRef& block) {
  PSTORE_RETURN_IF_ERROR(database_->CheckSpace(block->size()));
  rocksdb::WriteBatch batch;
  batch.Put(database_->family(ColdDatabase::kBlocks), BlockKey(id),
            rocksdb::Slice(block->view().data(), block->size()));
  absl::Status status = database_->Apply(&batch, /*sync=*/false);
  if (!status.ok()) {
    return Annotate(status, absl::StrCat("write block ", id.ToHex()));
  }
  writes_.fetch_add(1, std::memory_order_relaxed);
  write_bytes_.fetch_add(block->size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status ColdTier::Erase(const BlockId& id) {
  rocksdb::WriteBatch batch;
  batch.Delete(database_->family(ColdDatabase::kBlocks), BlockKey(id));
  absl::Status status = database_->Apply(&batch, /*sync=*/false);
  if (!status.ok()) {
    return Annotate(status, absl::StrCat("erase block ", id.ToHex()));
  }
  erases_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status ColdTier::Sync() {
  rocksdb::WriteBatch empty;
  return database_->Apply(&empty, /*sync=*/true);
}

TierStats ColdTier::Stats() const {
  TierStats stats;
  stats.blocks =
      database_->Property(ColdDatabase::kBlocks, "rocksdb.estimate-num-keys");
  stats.used_bytes = database_->SumProperty("rocksdb.total-sst-files-size") +
                     database_->SumProperty("rocksdb.total-blob-file-size") +
                     database_->SumProperty("rocksdb.cur-size-all-mem-tables");
  stats.hits = hits_.load(std::memory_order_relaxed);
  stats.misses = misses_.load(std::memory_order_relaxed);
  stats.writes = writes_.load(std::memory_order_relaxed);
  stats.write_bytes = write_bytes_.load(std::memory_order_relaxed);
  stats.read_bytes = read_bytes_.load(std::memory_order_relaxed);
  stats.erases = erases_.load(std::memory_order_relaxed);
  stats.checksum_failures = checksum_failures_.load(std::memory_order_relaxed);
  stats.io_errors =
      read_errors_.load(std::memory_order_relaxed) + database_->write_errors();
  return stats;
}

}  // namespace pstore
