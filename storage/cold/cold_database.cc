#include "storage/cold/cold_database.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/memory_allocator.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "spdlog/spdlog.h"
#include "storage/buffer_pool.h"
#include "util/status.h"
#include "util/units.h"

namespace pstore {
namespace {

// How long a write waits for RocksDB's own recovery from an earlier failed
// write, in waits of kResumeWait. RocksDB retries a recovery once a second
// (bgerror_resume_retry_interval), so this covers several of its attempts
// even on a slow machine (a ThreadSanitizer build took more than 2 s).
constexpr absl::Duration kResumeDeadline = absl::Seconds(10);
constexpr absl::Duration kResumeWait = absl::Milliseconds(20);

constexpr const char* kFamilyNames[] = {"blocks", "refs", "staged", "catalog"};

// Reads below this size come from the heap; larger ones from the pool.
constexpr size_t kPoolAllocationBytes = size_t{256} << 10;

// The memory RocksDB reads block-family data blocks into. Each value sits
// in a data block of its own, a few bytes past 4 MiB for a full block; with
// plain `new[]` every read mapped fresh memory and paid a page fault per
// 4 KiB page. Pool buffers are pre-faulted, on huge pages, and reused.
class PoolAllocator : public rocksdb::MemoryAllocator {
 public:
  const char* Name() const override { return "pstore.PoolAllocator"; }

  void* Allocate(size_t size) override {
    if (size < kPoolAllocationBytes) return std::malloc(size);
    Buffer buffer = BufferPool::Default().Allocate(size);
    uint8_t* data = buffer.data();
    absl::MutexLock lock(&mu_);
    buffers_.emplace(data, std::move(buffer));
    return data;
  }

  void Deallocate(void* p) override {
    Buffer buffer;
    {
      absl::MutexLock lock(&mu_);
      auto it = buffers_.find(static_cast<uint8_t*>(p));
      if (it == buffers_.end()) {
        std::free(p);
        return;
      }
      buffer = std::move(it->second);
      buffers_.erase(it);
    }
    // `buffer` goes back to the pool here, outside the lock.
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<uint8_t*, Buffer> buffers_ ABSL_GUARDED_BY(mu_);
};

rocksdb::ColumnFamilyOptions BlocksFamilyOptions(
    const ColdTierOptions& options) {
  rocksdb::ColumnFamilyOptions family;
  // Weights do not compress; compressing would only cost CPU.
  family.compression = rocksdb::kNoCompression;
  family.bottommost_compression = rocksdb::kNoCompression;
  family.write_buffer_size = options.blocks_write_buffer_bytes;
  family.target_file_size_base = uint64_t{256} << 20;
  family.max_bytes_for_level_base = uint64_t{1} << 30;
  rocksdb::BlockBasedTableOptions table;
  table.checksum = rocksdb::kXXH3;
  // The DRAM tier caches blocks; a second cache would hold them twice.
  // Reads do not fill this one (fill_cache = false) and it keeps nothing;
  // it exists because RocksDB takes its memory allocator from it.
  rocksdb::LRUCacheOptions cache;
  cache.capacity = 0;
  cache.num_shard_bits = 0;
  cache.memory_allocator = std::make_shared<PoolAllocator>();
  table.block_cache = rocksdb::NewLRUCache(cache);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = false;
  family.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (options.blob_files) {
    family.enable_blob_files = true;
    family.min_blob_size = 4096;
    family.blob_file_size = uint64_t{256} << 20;
    family.blob_compression_type = rocksdb::kNoCompression;
    family.enable_blob_garbage_collection = true;
  }
  return family;
}

rocksdb::ColumnFamilyOptions SmallFamilyOptions(
    const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions family;
  family.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  table.checksum = rocksdb::kXXH3;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  family.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return family;
}

}  // namespace

absl::Status RocksToStatus(const rocksdb::Status& status,
                           absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsNoSpace() || status.IsMemoryLimit()) {
    return absl::ResourceExhaustedError(message);
  }
  if (status.IsIOError() || status.IsBusy() || status.IsTimedOut() ||
      status.IsTryAgain() || status.IsAborted() || status.IsIncomplete() ||
      status.IsShutdownInProgress()) {
    return absl::UnavailableError(message);
  }
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (status.IsNotSupported()) return absl::UnimplementedError(message);
  return absl::InternalError(message);
}

std::string BlockKey(const BlockId& id) { return id.ToByteString(); }

absl::StatusOr<std::shared_ptr<ColdDatabase>> ColdDatabase::Open(
    ColdTierOptions options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("cold tier: no directory given");
  }
  std::error_code error;
  std::filesystem::create_directories(options.dir, error);
  if (error) {
    return ErrnoToStatus(error.value(),
                         absl::StrCat("cold tier: mkdir ", options.dir));
  }

  std::unique_ptr<rocksdb::Env> env;
  rocksdb::DBOptions db_options;
  if (options.file_system != nullptr) {
    env = rocksdb::NewCompositeEnv(options.file_system);
    db_options.env = env.get();
  }
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = uint64_t{1} << 20;
  db_options.wal_bytes_per_sync = uint64_t{1} << 20;
  // Let a large WAL roll into SST files rather than grow without bound.
  db_options.max_total_wal_size = uint64_t{512} << 20;
  // Keep RocksDB's info LOG small; it rotates inside the cold directory.
  db_options.max_log_file_size = uint64_t{16} << 20;
  db_options.keep_log_file_num = 4;
  db_options.use_direct_reads = options.direct_reads;

  std::shared_ptr<rocksdb::Cache> cache =
      rocksdb::NewLRUCache(options.catalog_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                           rocksdb::ColumnFamilyOptions());
  descriptors.emplace_back(kFamilyNames[0], BlocksFamilyOptions(options));
  for (int i = 1; i < 4; ++i) {
    descriptors.emplace_back(kFamilyNames[i], SmallFamilyOptions(cache));
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(db_options, options.dir,
                                             descriptors, &handles, &raw_db);
  if (!status.ok()) {
    return RocksToStatus(status, absl::StrCat("cold tier: open ", options.dir));
  }
  std::unique_ptr<rocksdb::DB> db(raw_db);
  // Handle 0 is the default family, which the DB object owns.
  rocksdb::Status destroyed = db->DestroyColumnFamilyHandle(handles[0]);
  if (!destroyed.ok()) return RocksToStatus(destroyed, "cold tier: open");
  handles.erase(handles.begin());
  return std::shared_ptr<ColdDatabase>(new ColdDatabase(
      std::move(options), std::move(env), std::move(db), std::move(handles)));
}

ColdDatabase::ColdDatabase(ColdTierOptions options,
                           std::unique_ptr<rocksdb::Env> env,
                           std::unique_ptr<rocksdb::DB> db,
                           std::vector<rocksdb::ColumnFamilyHandle*> families)
    : options_(std::move(options)),
      env_(std::move(env)),
      db_(std::move(db)),
      families_(std::move(families)) {}

ColdDatabase::~ColdDatabase() {
  // Memtables to SST files, so the next open replays no WAL. A failure
  // (disk full) loses nothing: the WAL still holds every write.
  rocksdb::FlushOptions flush;
  flush.wait = true;
  (void)db_->Flush(flush, families_);
  for (rocksdb::ColumnFamilyHandle* family : families_) {
    // Failing to destroy a handle at close only leaks it until exit.
    (void)db_->DestroyColumnFamilyHandle(family);
  }
  // Close reports errors of the last background work; they are in the
  // RocksDB LOG and nothing here can act on them.
  (void)db_->Close();
  db_.reset();
}

absl::Status ColdDatabase::CheckSpace(uint64_t bytes) const {
  if (options_.min_free_bytes == 0) return absl::OkStatus();
  struct statvfs fs;
  if (statvfs(options_.dir.c_str(), &fs) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("statvfs ", options_.dir));
  }
  uint64_t free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
  if (free_bytes < options_.min_free_bytes + bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cold tier: the disk of ", options_.dir, " has ",
        FormatBytes(free_bytes), " free, less than the write and the ",
        FormatBytes(options_.min_free_bytes),
        " reserve (--cold_min_free_bytes); free space or grow the volume"));
  }
  return absl::OkStatus();
}

absl::Status ColdDatabase::Apply(rocksdb::WriteBatch* batch, bool sync) {
  if (needs_resume_.load(std::memory_order_acquire)) {
    // A write failed (a full disk, an I/O error), which leaves RocksDB
    // read-only until it recovers; space may have been freed since. Busy:
    // RocksDB's own recovery is under way; give it a moment.
    rocksdb::Status resumed = db_->Resume();
    const absl::Time deadline = absl::Now() + kResumeDeadline;
    while (resumed.IsBusy() && absl::Now() < deadline) {
      absl::SleepFor(kResumeWait);
      resumed = db_->Resume();
    }
    if (!resumed.ok()) {
      return RocksToStatus(resumed, "cold tier: resume after a failed write");
    }
    needs_resume_.store(false, std::memory_order_release);
    spdlog::info("event=cold_writes_resumed");
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  rocksdb::Status status = db_->Write(write_options, batch);
  if (!status.ok()) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    absl::Status error = RocksToStatus(status, "cold tier: write");
    // A failed WAL write or flush leaves RocksDB refusing writes until it
    // resumes; Resume on a healthy database does nothing.
    if (absl::IsResourceExhausted(error) || absl::IsUnavailable(error)) {
      if (!needs_resume_.exchange(true)) {
        spdlog::warn("event=cold_write_failed status=\"{}\"", error.ToString());
      }
    }
    return error;
  }
  return absl::OkStatus();
}

uint64_t ColdDatabase::Property(Family family,
                                const std::string& property) const {
  uint64_t value = 0;
  if (!db_->GetIntProperty(families_[family], property, &value)) return 0;
  return value;
}

uint64_t ColdDatabase::SumProperty(const std::string& property) const {
  uint64_t sum = 0;
  for (int family = kBlocks; family <= kCatalog; ++family) {
    sum += Property(static_cast<Family>(family), property);
  }
  return sum;
}

}  // namespace pstore
