// ColdDatabase: the one RocksDB instance of the RocksDB backend, under
// ColdTierOptions::dir, with four column families:
//   blocks   block id (16 bytes) -> block bytes        (ColdTier)
//   refs     block id -> reference count (8 bytes LE) (RocksDbCatalog)
//   staged   block id -> ""                           (RocksDbCatalog)
//   catalog  models, revisions, tensor records, pins  (RocksDbCatalog)
// storage/cold/catalog_format.md gives the layout. The cold tier and the
// catalog share the database and its write-ahead log, so a block written
// before a synced catalog commit is durable once that commit returns.
//
// The database owns the RocksDB handles, applies write batches (resuming
// after a full disk), and checks free space before block writes. Shared by
// the ColdTier and the RocksDbCatalog of one backend; thread-safe, as
// RocksDB is.

#ifndef PSTORE_STORAGE_COLD_COLD_DATABASE_H_
#define PSTORE_STORAGE_COLD_COLD_DATABASE_H_

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
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/write_batch.h"

namespace pstore {

struct ColdTierOptions {
  // Directory of the RocksDB instance; created if missing.
  // Default: none (required).
  std::string dir;

  // Keep new block values in files of their own, one per block
  // (storage/cold/block_files.h), outside RocksDB; false keeps them in
  // RocksDB's blocks family, as stores did before block files
  // (bench/README.md has the measurements behind the default). Either way,
  // blocks already in the blocks family are read.
  // Default: true.
  bool block_files = true;

  // Read block files with O_DIRECT: the DRAM tier is their cache, and the
  // page cache would hold them twice. Where the filesystem refuses O_DIRECT
  // (tmpfs), reads go through the page cache.
  // Default: true.
  bool direct_block_reads = true;

  // With block_files false: keep block values in RocksDB's blob files
  // (integrated BlobDB) instead of inline in SST files.
  // Default: false.
  bool blob_files = false;

  // Block cache for the catalog families (block values bypass it: the DRAM
  // tier is their cache).
  // Default: 64 MiB.
  uint64_t catalog_cache_bytes = uint64_t{64} << 20;

  // Memtable size of the blocks family (RocksDB keeps up to two).
  // Default: 64 MiB.
  uint64_t blocks_write_buffer_bytes = uint64_t{64} << 20;

  // Sync the WAL on Commit, and each block file as it is written
  // (acknowledged writes survive power loss). Tests that do not kill the
  // machine may turn it off for speed.
  // Default: true.
  bool sync_commits = true;

  // Read SST and blob files with O_DIRECT, so block values kept in RocksDB
  // are not cached twice (page cache and DRAM tier) and reads measure the
  // disk.
  // Default: false.
  bool direct_reads = false;

  // Free space kept on the cold directory's filesystem: a block write that
  // would leave less is refused with ResourceExhausted before it starts.
  // RocksDB needs room to flush a memtable and start a new WAL; a WAL write
  // that fails for want of space makes Debian's RocksDB (built with assertions)
  // abort. 0 disables the check. Default: 256 MiB.
  uint64_t min_free_bytes = uint64_t{256} << 20;

  // Verify RocksDB's own block checksums on reads of block values kept in
  // RocksDB, on top of the XXH3-128 check of every value.
  // Default: false.
  bool verify_rocksdb_checksums = false;

  // The file system RocksDB works through: the seam where tests inject
  // disk-full, read errors and torn writes
  // (tests/testing/fault_injecting_file_system.h).
  // Default: none, meaning RocksDB's default (POSIX) file system.
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

class ColdDatabase {
 public:
  enum Family { kBlocks = 0, kRefs = 1, kStaged = 2, kCatalog = 3 };

  // Opens or creates the database. Codes: InvalidArgument for bad options;
  // DataLoss if RocksDB finds corruption; Unavailable for I/O errors.
  static absl::StatusOr<std::shared_ptr<ColdDatabase>> Open(
      ColdTierOptions options);

  // Flushes the memtables (so the next open replays no WAL) and closes the
  // database.
  ~ColdDatabase();

  ColdDatabase(const ColdDatabase&) = delete;
  ColdDatabase& operator=(const ColdDatabase&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* family(Family family) const {
    return families_[family];
  }
  const ColdTierOptions& options() const { return options_; }

  // Applies `batch` atomically, synced if `sync`. After a write failed for
  // want of space (RocksDB then refuses writes), first asks RocksDB to
  // resume, so writes work again once space is freed. Codes:
  // ResourceExhausted when the disk is full; Unavailable for other I/O
  // errors.
  absl::Status Apply(rocksdb::WriteBatch* batch, bool sync);

  // Applies `batch` atomically, synced when ColdTierOptions::sync_commits.
  // Codes as Apply.
  absl::Status Commit(rocksdb::WriteBatch* batch) {
    return Apply(batch, options_.sync_commits);
  }

  // Returns ResourceExhausted if writing `bytes` would leave less free
  // space than ColdTierOptions::min_free_bytes on the cold directory's
  // filesystem.
  absl::Status CheckSpace(uint64_t bytes) const;

  // Returns the sum of `property` (an integer RocksDB property) over every
  // family, or over `family` alone.
  uint64_t SumProperty(const std::string& property) const;
  uint64_t Property(Family family, const std::string& property) const;

  // Counts writes that failed; see TierStats::io_errors.
  uint64_t write_errors() const {
    return write_errors_.load(std::memory_order_relaxed);
  }

 private:
  ColdDatabase(ColdTierOptions options, std::unique_ptr<rocksdb::Env> env,
               std::unique_ptr<rocksdb::DB> db,
               std::vector<rocksdb::ColumnFamilyHandle*> families);

  const ColdTierOptions options_;
  // Outlives db_: RocksDB works through it.
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<rocksdb::DB> db_;
  // blocks, refs, staged, catalog; the default family is closed by RocksDB.
  std::vector<rocksdb::ColumnFamilyHandle*> families_;
  std::atomic<bool> needs_resume_{false};
  std::atomic<uint64_t> write_errors_{0};
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

#endif  // PSTORE_STORAGE_COLD_COLD_DATABASE_H_
