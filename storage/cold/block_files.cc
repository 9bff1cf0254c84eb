#include "storage/cold/block_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rocksdb/file_system.h"
#include "rocksdb/iterator.h"
#include "spdlog/spdlog.h"
#include "storage/buffer_pool.h"
#include "util/file_io.h"
#include "util/status.h"

namespace pstore {
namespace {

// The largest block a file may hold (TieredStoreOptions' largest block).
constexpr uint64_t kMaxBlockFileBytes = uint64_t{256} << 20;

// Marks temporary files: <id>.tmp.<n>.
constexpr absl::string_view kTempMark = ".tmp.";

std::string SubdirName(int i) { return absl::StrFormat("%02x", i); }

// Returns true if `status` says the file is not there.
bool IsMissing(const rocksdb::Status& status) {
  return status.IsNotFound() || status.IsPathNotFound();
}

// Whether the RocksDB blocks family holds any key (blocks of the layout
// before block files).
absl::StatusOr<bool> HasLegacyBlocks(const ColdDatabase& database) {
  rocksdb::ReadOptions options;
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(database.db()->NewIterator(
      options, database.family(ColdDatabase::kBlocks)));
  it->SeekToFirst();
  PSTORE_RETURN_IF_ERROR(
      RocksToStatus(it->status(), "cold tier: look for blocks in RocksDB"));
  return it->Valid();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlockFileTier>> BlockFileTier::Open(
    std::shared_ptr<ColdDatabase> database) {
  std::shared_ptr<rocksdb::FileSystem> fs = database->options().file_system;
  if (fs == nullptr) fs = rocksdb::FileSystem::Default();
  const rocksdb::IOOptions io;
  std::string root = absl::StrCat(database->options().dir, "/blocks");
  PSTORE_RETURN_IF_ERROR(RocksToStatus(
      fs->CreateDirIfMissing(root, io, nullptr), absl::StrCat("mkdir ", root)));
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  uint64_t removed = 0;
  for (int i = 0; i < 256; ++i) {
    std::string subdir = absl::StrCat(root, "/", SubdirName(i));
    PSTORE_RETURN_IF_ERROR(
        RocksToStatus(fs->CreateDirIfMissing(subdir, io, nullptr),
                      absl::StrCat("mkdir ", subdir)));
    std::vector<std::string> names;
    PSTORE_RETURN_IF_ERROR(
        RocksToStatus(fs->GetChildren(subdir, io, &names, nullptr),
                      absl::StrCat("list ", subdir)));
    for (const std::string& name : names) {
      if (name == "." || name == "..") continue;
      std::string path = absl::StrCat(subdir, "/", name);
      if (absl::StrContains(name, kTempMark)) {
        // A write a crash cut short: never renamed, never named by a record.
        if (fs->DeleteFile(path, io, nullptr).ok()) ++removed;
        continue;
      }
      uint64_t size = 0;
      if (fs->GetFileSize(path, io, &size, nullptr).ok()) {
        ++blocks;
        bytes += size;
      }
    }
  }
  if (removed > 0) {
    spdlog::info(
        "event=block_file_temps_removed count={} reason=\"writes cut short "
        "by the last shutdown\"",
        removed);
  }
  std::unique_ptr<ColdTier> legacy;
  PSTORE_ASSIGN_OR_RETURN(bool has_legacy, HasLegacyBlocks(*database));
  if (has_legacy) {
    legacy = std::make_unique<ColdTier>(database);
    spdlog::info(
        "event=legacy_blocks_found action=\"served from RocksDB beside the "
        "block files\" dir={}",
        database->options().dir);
  }
  std::unique_ptr<BlockFileTier> tier(new BlockFileTier(
      std::move(database), std::move(fs), std::move(root), std::move(legacy)));
  tier->blocks_ = blocks;
  tier->used_bytes_ = bytes;
  return tier;
}

BlockFileTier::BlockFileTier(std::shared_ptr<ColdDatabase> database,
                             std::shared_ptr<rocksdb::FileSystem> fs,
                             std::string root, std::unique_ptr<ColdTier> legacy)
    : database_(std::move(database)),
      fs_(std::move(fs)),
      root_(std::move(root)),
      sync_(database_->options().sync_commits),
      legacy_(std::move(legacy)),
      posix_reads_(database_->options().file_system == nullptr),
      direct_reads_(database_->options().direct_block_reads) {}

std::string BlockFileTier::PathOf(const BlockId& id) const {
  std::string hex = id.ToHex();
  return absl::StrCat(root_, "/", absl::string_view(hex).substr(0, 2), "/",
                      hex);
}

bool BlockFileTier::Contains(const BlockId& id) const {
  if (fs_->FileExists(PathOf(id), rocksdb::IOOptions(), nullptr).ok()) {
    return true;
  }
  return legacy_ != nullptr && legacy_->Contains(id);
}

absl::StatusOr<BlockRef> BlockFileTier::ReadFile(const BlockId& id) {
  return posix_reads_ ? ReadWithPosix(id) : ReadThroughFileSystem(id);
}

absl::StatusOr<BlockRef> BlockFileTier::ReadWithPosix(const BlockId& id) {
  const std::string path = PathOf(id);
  bool direct = direct_reads_.load(std::memory_order_relaxed);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
  if (fd < 0 && errno == EINVAL && direct) {
    // The filesystem refuses O_DIRECT (tmpfs): read through the page cache.
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      direct = false;
      NoteDirectReadsOff("open with O_DIRECT: EINVAL");
    }
  }
  if (fd < 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("cold tier: no block ", id.ToHex()));
    }
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return ErrnoToStatus(errno, absl::StrCat("cold tier: open ", path));
  }
  FdCloser closer(fd);
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return ErrnoToStatus(errno, absl::StrCat("cold tier: stat ", path));
  }
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  PSTORE_RETURN_IF_ERROR(CheckFileSize(path, size));
  // Read whole aligned pages (O_DIRECT wants them); the file ends first.
  Buffer buffer = BufferPool::Default().Allocate(size);
  const uint64_t want = direct ? AlignUp(size) : size;
  uint64_t done = 0;
  while (done < want) {
    ssize_t n =
        pread(fd, buffer.data() + done, want - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      io_errors_.fetch_add(1, std::memory_order_relaxed);
      // Whatever the errno, a block that cannot be read is the disk's
      // trouble, never the caller's: Unavailable, so a copy elsewhere may
      // serve.
      absl::Status error = ErrnoToStatus(
          errno, absl::StrCat("cold tier: read ", path, " at ", done));
      return absl::UnavailableError(error.message());
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  return CheckBlock(id, path, std::move(buffer), std::min(done, want), size);
}

absl::StatusOr<BlockRef> BlockFileTier::ReadThroughFileSystem(
    const BlockId& id) {
  const rocksdb::IOOptions io;
  const std::string path = PathOf(id);
  uint64_t size = 0;
  rocksdb::IOStatus status = fs_->GetFileSize(path, io, &size, nullptr);
  if (IsMissing(status)) {
    return absl::NotFoundError(
        absl::StrCat("cold tier: no block ", id.ToHex()));
  }
  if (!status.ok()) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return RocksToStatus(status, absl::StrCat("cold tier: stat ", path));
  }
  PSTORE_RETURN_IF_ERROR(CheckFileSize(path, size));
  bool direct = direct_reads_.load(std::memory_order_relaxed);
  rocksdb::FileOptions file_options;
  file_options.use_direct_reads = direct;
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  status = fs_->NewRandomAccessFile(path, file_options, &file, nullptr);
  if (!status.ok() && direct && !IsMissing(status)) {
    // The filesystem refuses O_DIRECT (tmpfs): read through the page cache.
    file_options.use_direct_reads = false;
    rocksdb::IOStatus buffered =
        fs_->NewRandomAccessFile(path, file_options, &file, nullptr);
    if (buffered.ok()) {
      direct = false;
      NoteDirectReadsOff(status.ToString());
      status = buffered;
    }
  }
  if (IsMissing(status)) {
    return absl::NotFoundError(
        absl::StrCat("cold tier: no block ", id.ToHex()));
  }
  if (!status.ok()) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return RocksToStatus(status, absl::StrCat("cold tier: open ", path));
  }
  // Read whole aligned pages (O_DIRECT wants them); the file ends first.
  Buffer buffer = BufferPool::Default().Allocate(size);
  rocksdb::Slice read;
  status = file->Read(0, direct ? AlignUp(size) : size, io, &read,
                      reinterpret_cast<char*>(buffer.data()), nullptr);
  if (!status.ok()) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return RocksToStatus(status, absl::StrCat("cold tier: read ", path));
  }
  if (read.data() != reinterpret_cast<const char*>(buffer.data()) &&
      read.size() <= buffer.capacity()) {
    std::memmove(buffer.data(), read.data(), read.size());
  }
  return CheckBlock(id, path, std::move(buffer), read.size(), size);
}

absl::Status BlockFileTier::CheckFileSize(const std::string& path,
                                          uint64_t size) {
  if (size != 0 && size <= kMaxBlockFileBytes) return absl::OkStatus();
  checksum_failures_.fetch_add(1, std::memory_order_relaxed);
  return absl::DataLossError(absl::StrCat(
      "cold tier: block file ", path, " holds ", size, " bytes, not a block"));
}

absl::StatusOr<BlockRef> BlockFileTier::CheckBlock(const BlockId& id,
                                                   const std::string& path,
                                                   Buffer buffer,
                                                   uint64_t read_bytes,
                                                   uint64_t size) {
  if (read_bytes != size ||
      BlockId::Of(std::span<const uint8_t>(buffer.data(), size)) != id) {
    checksum_failures_.fetch_add(1, std::memory_order_relaxed);
    return absl::DataLossError(absl::StrCat(
        "cold tier: block ", id.ToHex(), " fails its XXH3-128 check (",
        read_bytes, " bytes read from ", path, ")"));
  }
  return MakeBlock(std::move(buffer), size);
}

void BlockFileTier::NoteDirectReadsOff(absl::string_view reason) {
  if (direct_reads_.exchange(false)) {
    spdlog::warn("event=block_file_direct_reads_off dir={} reason=\"{}\"",
                 root_, std::string(reason));
  }
}

absl::StatusOr<BlockRef> BlockFileTier::Read(const BlockId& id) {
  absl::StatusOr<BlockRef> block = ReadFile(id);
  if (absl::IsNotFound(block.status()) && legacy_ != nullptr) {
    block = legacy_->Read(id);
  }
  if (block.ok()) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    read_bytes_.fetch_add((*block)->size(), std::memory_order_relaxed);
  } else if (absl::IsNotFound(block.status())) {
    misses_.fetch_add(1, std::memory_order_relaxed);
  }
  return block;
}

absl::Status BlockFileTier::Write(const BlockId& id, const BlockRef& block) {
  const rocksdb::IOOptions io;
  const std::string path = PathOf(id);
  if (fs_->FileExists(path, io, nullptr).ok()) return absl::OkStatus();
  PSTORE_RETURN_IF_ERROR(database_->CheckSpace(block->size()));
  const std::string temp = absl::StrCat(
      path, kTempMark, next_temp_.fetch_add(1, std::memory_order_relaxed));
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus status =
      fs_->NewWritableFile(temp, rocksdb::FileOptions(), &file, nullptr);
  if (status.ok()) {
    status = file->Append(rocksdb::Slice(block->view().data(), block->size()),
                          io, nullptr);
  }
  if (status.ok() && sync_) status = file->Sync(io, nullptr);
  if (file != nullptr) {
    rocksdb::IOStatus closed = file->Close(io, nullptr);
    if (status.ok()) status = closed;
  }
  if (status.ok()) status = fs_->RenameFile(temp, path, io, nullptr);
  if (status.ok() && sync_) {
    // The directory entry too, so a record never names a lost file.
    std::unique_ptr<rocksdb::FSDirectory> dir;
    status =
        fs_->NewDirectory(path.substr(0, path.rfind('/')), io, &dir, nullptr);
    if (status.ok()) status = dir->Fsync(io, nullptr);
  }
  if (!status.ok()) {
    // Nothing names the temporary; removing it is best effort (the next
    // open removes what is left).
    (void)fs_->DeleteFile(temp, io, nullptr);
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return RocksToStatus(status,
                         absl::StrCat("cold tier: write block ", id.ToHex()));
  }
  blocks_.fetch_add(1, std::memory_order_relaxed);
  used_bytes_.fetch_add(block->size(), std::memory_order_relaxed);
  writes_.fetch_add(1, std::memory_order_relaxed);
  write_bytes_.fetch_add(block->size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status BlockFileTier::Erase(const BlockId& id) {
  const rocksdb::IOOptions io;
  const std::string path = PathOf(id);
  uint64_t size = 0;
  const bool present = fs_->GetFileSize(path, io, &size, nullptr).ok();
  rocksdb::IOStatus status = fs_->DeleteFile(path, io, nullptr);
  if (!status.ok() && !IsMissing(status)) {
    io_errors_.fetch_add(1, std::memory_order_relaxed);
    return RocksToStatus(status, absl::StrCat("cold tier: unlink ", path));
  }
  if (present && status.ok()) {
    blocks_.fetch_sub(1, std::memory_order_relaxed);
    used_bytes_.fetch_sub(size, std::memory_order_relaxed);
  }
  if (legacy_ != nullptr) PSTORE_RETURN_IF_ERROR(legacy_->Erase(id));
  erases_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

TierStats BlockFileTier::Stats() const {
  TierStats stats;
  if (legacy_ != nullptr) stats = legacy_->Stats();
  stats.blocks += blocks_.load(std::memory_order_relaxed);
  stats.used_bytes += used_bytes_.load(std::memory_order_relaxed);
  stats.hits = hits_.load(std::memory_order_relaxed);
  stats.misses = misses_.load(std::memory_order_relaxed);
  stats.writes += writes_.load(std::memory_order_relaxed);
  stats.write_bytes += write_bytes_.load(std::memory_order_relaxed);
  stats.read_bytes = read_bytes_.load(std::memory_order_relaxed);
  stats.erases += erases_.load(std::memory_order_relaxed);
  stats.checksum_failures += checksum_failures_.load(std::memory_order_relaxed);
  stats.io_errors += io_errors_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace pstore
