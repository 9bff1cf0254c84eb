// BlockFileTier: the durable tier of the embedded backend: one file per
// block under <cold_dir>/blocks/, named by the block's id, written whole
// and never changed (storage/cold/block_files_format.md gives the layout).
// Block values live outside RocksDB, so the LSM never rewrites them in
// compactions; reads go straight from the file into a pool buffer (with
// O_DIRECT where the filesystem allows), with no copy and no fresh memory.
//
// Stores written before block files keep their blocks in the RocksDB
// `blocks` family: the tier reads, finds and erases those too (a
// ColdTier over the same database), so such a store opens and serves as it
// is; new blocks go to files.
//
// Write durability: when ColdTierOptions::sync_commits is set, a block's
// file and its directory entry are synced before Write returns, so a block
// is durable before any catalog record can name it.
//
// Every file operation goes through ColdTierOptions::file_system (RocksDB's
// default file system unless a test hands it a fault-injecting one).
//
// Thread-safe.

#ifndef PSTORE_STORAGE_COLD_BLOCK_FILES_H_
#define PSTORE_STORAGE_COLD_BLOCK_FILES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "rocksdb/file_system.h"
#include "storage/block.h"
#include "storage/buffer_pool.h"
#include "storage/cold/cold_database.h"
#include "storage/cold/cold_tier.h"
#include "storage/tier.h"

namespace pstore {

class BlockFileTier : public Tier {
 public:
  // Opens the block files under `database`'s directory (creating
  // <dir>/blocks and its 256 subdirectories if missing), removes temporary
  // files a crash left, counts the blocks, and finds whether the database
  // still holds blocks of the layout before block files. Codes: the errno
  // status of a directory that cannot be made or read; those of RocksDB.
  static absl::StatusOr<std::unique_ptr<BlockFileTier>> Open(
      std::shared_ptr<ColdDatabase> database);

  absl::string_view name() const override {
    return TierKindName(TierKind::kCold);
  }
  bool Contains(const BlockId& id) const override;
  // Returns the block's bytes, read into a pool buffer and checked against
  // `id`. Codes: NotFound; DataLoss (the file's bytes fail the check, or
  // its size is not a block's); Unavailable for I/O errors.
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  // Writes `block` as <id>.tmp.<n>, then renames it to <id> (synced when
  // ColdTierOptions::sync_commits). A block already stored is left as it
  // is. ResourceExhausted when the disk is full or would keep less than
  // ColdTierOptions::min_free_bytes.
  absl::Status Write(const BlockId& id, const BlockRef& block) override;
  // Removes the block's file (and its value in the old layout, if any). OK
  // if absent.
  absl::Status Erase(const BlockId& id) override;
  TierStats Stats() const override;

  // Returns the path of block `id`'s file.
  std::string PathOf(const BlockId& id) const;

  // Returns true while the database holds blocks of the old layout.
  bool has_legacy_blocks() const { return legacy_ != nullptr; }

 private:
  BlockFileTier(std::shared_ptr<ColdDatabase> database,
                std::shared_ptr<rocksdb::FileSystem> fs, std::string root,
                std::unique_ptr<ColdTier> legacy);
  // Reads the file of `id` into a new block: NotFound if there is none.
  absl::StatusOr<BlockRef> ReadFile(const BlockId& id);
  // ReadFile with open/fstat/pread/close.
  absl::StatusOr<BlockRef> ReadWithPosix(const BlockId& id);
  // ReadFile through fs_ (the file system a test handed in).
  absl::StatusOr<BlockRef> ReadThroughFileSystem(const BlockId& id);
  // DataLoss unless `size` is a block's size.
  absl::Status CheckFileSize(const std::string& path, uint64_t size);
  // Returns `buffer` as the block `id` if its `read_bytes` are the `size`
  // bytes whose hash `id` is; DataLoss otherwise.
  absl::StatusOr<BlockRef> CheckBlock(const BlockId& id,
                                      const std::string& path, Buffer buffer,
                                      uint64_t read_bytes, uint64_t size);
  // Turns O_DIRECT reads off, logging it the first time.
  void NoteDirectReadsOff(absl::string_view reason);

  const std::shared_ptr<ColdDatabase> database_;
  // ColdTierOptions::file_system, or RocksDB's default: every file I/O goes
  // through it, so tests inject faults into block files too.
  const std::shared_ptr<rocksdb::FileSystem> fs_;
  const std::string root_;  // <dir>/blocks
  const bool sync_;
  // Blocks of the layout before block files; null when there are none.
  const std::unique_ptr<ColdTier> legacy_;
  // Reads open the file themselves (ReadWithPosix) unless a test handed in
  // a file system: RocksDB's POSIX file system resolves the device's
  // logical block size through sysfs on every O_DIRECT open (about 20
  // system calls), which doubled a 64 KiB read (bench/README.md, "Figures
  // behind choices in the code").
  const bool posix_reads_;
  // O_DIRECT reads; cleared (once, logged) where the filesystem refuses.
  std::atomic<bool> direct_reads_;

  std::atomic<uint64_t> next_temp_{0};
  std::atomic<uint64_t> blocks_{0};
  std::atomic<uint64_t> used_bytes_{0};
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> write_bytes_{0};
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> erases_{0};
  std::atomic<uint64_t> checksum_failures_{0};
  std::atomic<uint64_t> io_errors_{0};
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_COLD_BLOCK_FILES_H_
