// ColdTier: the durable tier and source of truth. One RocksDB instance under
// Options::dir with four column families:
//   blocks   block id (16 bytes) -> block bytes
//   refs     block id -> reference count (8 bytes, little endian)
//   staged   block id -> "" : blocks written by a put not yet committed
//   catalog  models, revisions, tensor records (storage/catalog.proto)
// The Tier interface covers the blocks family; the catalog (storage/
// catalog.h) uses the other families through db() and the handles, and
// commits every change as one synced WriteBatch through Commit().
//
// Reads verify the XXH3-128 of the value against the block id (DataLoss on
// a mismatch) and copy the value into a pool buffer.
//
// Thread-safe, as RocksDB is.

#ifndef PSTORE_STORAGE_COLD_COLD_TIER_H_
#define PSTORE_STORAGE_COLD_COLD_TIER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/block.h"
#include "storage/tier.h"

namespace pstore {

struct ColdTierOptions {
  // Directory of the RocksDB instance; created if missing.
  // Default: none (required).
  std::string dir;

  // Keep block values in blob files (RocksDB's integrated BlobDB) instead
  // of inline in SST files. Measured slower on reads here (see the bench
  // cold_tier_bench), so off.
  // Default: false.
  bool blob_files = false;

  // Block cache for the catalog family (block values bypass it: the DRAM
  // tier is their cache).
  // Default: 64 MiB.
  uint64_t catalog_cache_bytes = uint64_t{64} << 20;

  // Memtable size of the blocks family (RocksDB keeps up to two).
  // Default: 64 MiB.
  uint64_t blocks_write_buffer_bytes = uint64_t{64} << 20;

  // Sync the WAL on Commit (acknowledged writes survive power loss). Tests
  // that do not kill the machine may turn it off for speed.
  // Default: true.
  bool sync_commits = true;

  // Read SST and blob files with O_DIRECT, so block values are not cached
  // twice (page cache and DRAM tier) and reads measure the disk.
  // Default: false.
  bool direct_reads = false;

  // Free space kept on the cold directory's filesystem: a block write that
  // would leave less is refused with ResourceExhausted before RocksDB sees
  // it. RocksDB needs room to flush a memtable and start a new WAL; a WAL
  // write that fails for want of space makes Debian's RocksDB (built with
  // assertions) abort. 0 disables the check.
  // Default: 256 MiB.
  uint64_t min_free_bytes = uint64_t{256} << 20;

  // Verify RocksDB's own block checksums on block reads, on top of the
  // XXH3-128 check of every value.
  // Default: false.
  bool verify_rocksdb_checksums = false;
};

class ColdTier : public Tier {
 public:
  // Opens or creates the database. Codes: InvalidArgument for bad options;
  // DataLoss if RocksDB finds corruption; Unavailable for I/O errors.
  static absl::StatusOr<std::unique_ptr<ColdTier>> Open(
      ColdTierOptions options);

  // Flushes nothing (the WAL holds what is not in SST files) and closes the
  // database cleanly.
  ~ColdTier() override;

  absl::string_view name() const override { return "cold"; }
  bool Contains(const BlockId& id) const override;
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  // Puts the block with the WAL, unsynced: a later synced Commit makes it
  // durable. Tests and tools that use the tier alone may call Commit with
  // an empty batch to sync.
  absl::Status Write(const BlockId& id, const BlockRef& block) override;
  absl::Status Erase(const BlockId& id) override;
  absl::Status Clear() override;
  TierStats Stats() const override;

  // Returns ResourceExhausted if writing `bytes` would leave less free
  // space than Options::min_free_bytes on the cold directory's filesystem.
  absl::Status CheckSpace(uint64_t bytes) const;

  // Counts a block of `bytes` written by a caller's own batch (the
  // catalog's staged writes) in Stats().
  void CountBlockWrite(uint64_t bytes) {
    writes_.fetch_add(1, std::memory_order_relaxed);
    write_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  }

  // Applies `batch` atomically, synced if `sync`. After a write failed for
  // want of space (RocksDB then refuses writes), first asks RocksDB to
  // resume, so writes work again once space is freed.
  // Codes: ResourceExhausted when the disk is full; Unavailable for other
  // I/O errors.
  absl::Status Apply(rocksdb::WriteBatch* batch, bool sync);

  // Applies `batch` atomically, synced when Options::sync_commits.
  // Codes: ResourceExhausted when the disk is full; Unavailable for other
  // I/O errors.
  absl::Status Commit(rocksdb::WriteBatch* batch);

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* blocks_family() const { return families_[0]; }
  rocksdb::ColumnFamilyHandle* refs_family() const { return families_[1]; }
  rocksdb::ColumnFamilyHandle* staged_family() const { return families_[2]; }
  rocksdb::ColumnFamilyHandle* catalog_family() const { return families_[3]; }

 private:
  ColdTier(ColdTierOptions options, std::unique_ptr<rocksdb::DB> db,
           std::vector<rocksdb::ColumnFamilyHandle*> families);

  const ColdTierOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  // blocks, refs, staged, catalog; the default family is closed by RocksDB.
  std::vector<rocksdb::ColumnFamilyHandle*> families_;

  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> write_bytes_{0};
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> erases_{0};
  std::atomic<uint64_t> checksum_failures_{0};
  std::atomic<uint64_t> io_errors_{0};
  std::atomic<bool> needs_resume_{false};
};

// Returns the absl::Status for a RocksDB status, with `context` prepended:
// NotFound -> NotFound, Corruption -> DataLoss, IOError with NoSpace ->
// ResourceExhausted, other IOError/Busy/TimedOut/TryAgain -> Unavailable,
// InvalidArgument -> InvalidArgument, anything else -> Internal.
absl::Status RocksToStatus(const rocksdb::Status& status,
                           absl::string_view context);

// Returns the RocksDB key of block `id` (its 16-byte canonical form).
std::string BlockKey(const BlockId& id);

}  // namespace pstore

#endif  // PSTORE_STORAGE_COLD_COLD_TIER_H_
