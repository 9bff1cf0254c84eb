// TieredStore: the public face of storage/. It keeps tensors in three tiers
// (DRAM, NVMe, cold RocksDB) behind one API: put a tensor from a byte
// stream, read its blocks, manage revisions, pin, prefetch, drop caches.
//
// Write path: bytes are cut into blocks of Options::block_bytes (a multiple
// of 4 KiB, so boundaries fall on multiples of 256 elements of every dtype
// and every block quantizes on its own), hashed (XXH3-128 = block id),
// deduplicated against stored blocks after a byte compare, written to cold,
// and committed with the tensor record in one synced batch; blocks enter
// DRAM as they are written.
//
// Read path: DRAM -> NVMe -> cold. Blocks read from disk are verified
// against their id (the tiers do it) and enter DRAM (S3-FIFO admission);
// concurrent readers of the same missing block share one disk read. DRAM
// evictions spill to NVMe on a background thread. Blocks whose reference
// count reaches zero are erased from every tier.
//
// Thread-safe. ReadBlockAsync never blocks; every other method may do I/O
// and must not be called on a thread that may not block.

#ifndef PSTORE_STORAGE_TIERED_STORE_H_
#define PSTORE_STORAGE_TIERED_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/catalog.h"
#include "storage/names.h"
#include "storage/tier.h"
#include "util/thread_pool.h"

namespace pstore {

class DramTier;
class NvmeTier;
class ColdTier;
struct CacheKey;

enum class TierKind { kDram = 0, kNvme = 1, kCold = 2 };

// Returns "dram", "nvme" or "cold".
absl::string_view TierKindName(TierKind kind);

struct TieredStoreOptions {
  // RocksDB directory of the cold tier. Default: none (required).
  std::string cold_dir;

  // Directory of the NVMe tier's region files; empty disables the tier.
  // Default: none.
  std::string nvme_dir;

  // DRAM budget. Default: 1 GiB.
  uint64_t dram_bytes = uint64_t{1} << 30;

  // Bytes pins may hold; at most dram_bytes. Default: 0, meaning 3/4 of
  // dram_bytes.
  uint64_t pin_budget_bytes = 0;

  // Disk the NVMe tier may use. Default: 16 GiB.
  uint64_t nvme_bytes = uint64_t{16} << 30;

  // Size of one NVMe region file. Default: 256 MiB, or nvme_bytes / 4 when
  // that is smaller (rounded down to 1 MiB).
  uint64_t nvme_region_bytes = 0;

  // Use io_uring for the NVMe tier where the kernel allows. Default: true.
  bool use_io_uring = true;

  // Size of a block: a multiple of 4 KiB in [64 KiB, 256 MiB].
  // Default: 4 MiB.
  uint64_t block_bytes = uint64_t{4} << 20;

  // Largest tensor a put may store; past it RESOURCE_EXHAUSTED.
  // Default: 1 TiB.
  uint64_t max_tensor_bytes = uint64_t{1} << 40;

  // Threads reading the cold tier. Default: 4.
  int cold_read_threads = 4;

  // Blocks waiting to spill to NVMe; past it evicted blocks are not
  // spilled (they stay in cold). Default: 32.
  size_t spill_queue_blocks = 32;

  // Sync commits to disk (see ColdTierOptions). Default: true.
  bool sync_commits = true;

  // Keep cold block values in RocksDB blob files. Default: false.
  bool cold_blob_files = false;

  // Free space the cold tier keeps on its disk (ColdTierOptions).
  // Default: 256 MiB.
  uint64_t cold_min_free_bytes = uint64_t{256} << 20;

  // Re-pin, in the background after Open, the revisions pinned before the
  // last shutdown. Default: true.
  bool repin_on_open = true;

  // Threads encoding blocks (conversions, quantization) for reads.
  // Default: 0, meaning one per CPU.
  int encode_threads = 0;

  // Called for every block read served, with the tier that served it and
  // the time from the request to the bytes (a DRAM hit: the lookup). Runs
  // on the reading thread; must be cheap and thread-safe. Default: none.
  std::function<void(TierKind tier, absl::Duration latency)> on_block_read;
};

// What PutTensor needs to know before the bytes arrive.
struct PutTensorSpec {
  TensorName name;  // Must name its revision.
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // The XXH3-64 of the whole tensor, checked at Commit when set.
  std::optional<uint64_t> expected_xxh3_64;
};

// The part of one block that a byte range covers.
struct BlockSlice {
  size_t index = 0;  // Block index in the tensor.
  BlockId id;
  uint64_t block_size = 0;     // Size of the whole block.
  uint64_t tensor_offset = 0;  // Offset of the block in the tensor.
  uint64_t offset = 0;         // First byte of the range in the block.
  uint64_t length = 0;         // Bytes of the range in the block.
};

// Returns the blocks covering bytes [offset, offset + length) of `tensor`;
// length 0 means to the end. OutOfRange if the range passes the end.
absl::StatusOr<std::vector<BlockSlice>> SliceTensor(const TensorMeta& tensor,
                                                    uint64_t offset,
                                                    uint64_t length);

struct StoreStats {
  TierStats dram;
  TierStats nvme;
  TierStats cold;
  bool nvme_enabled = false;
  bool io_uring = false;
  uint64_t reads_from[3] = {0, 0, 0};  // Block reads served, by TierKind.
  uint64_t coalesced_reads = 0;        // Readers that joined a read in flight.
  uint64_t spills = 0;                 // Evicted blocks written to NVMe.
  uint64_t spills_dropped = 0;         // Evicted blocks not spilled.
  uint64_t spill_failures = 0;         // NVMe writes of spills that failed.
  uint64_t dedup_blocks = 0;           // Put blocks found already stored.
  uint64_t collected_blocks = 0;       // Blocks erased at refcount zero.
  uint64_t pinned_bytes = 0;
  uint64_t pin_budget_bytes = 0;
  uint64_t blocks_encoded = 0;  // Derived blocks computed.
  uint64_t encoded_hits = 0;    // Derived blocks found in DRAM.
};

// A block read in an encoding, and what the encoding lost.
struct EncodedBlock {
  BlockRef block;
  QuantizationStats stats;  // Empty unless the encoding quantizes.
};

using EncodedReadCallback =
    absl::AnyInvocable<void(absl::StatusOr<EncodedBlock>) &&>;

// What a whole tensor looks like in an encoding: known once it has been
// encoded from end to end.
struct EncodedTensorSummary {
  uint64_t xxh3_64 = 0;  // Of the encoded bytes.
  QuantizationStats stats;
};

// Returns true if reading `dtype` as `encoding` gives the stored bytes.
bool IsIdentityEncoding(DType dtype, Encoding encoding);

// Returns a view of `tensor` as read in `encoding`: byte_length and
// block_bytes of the encoded bytes (block i of the view is the encoding of
// stored block i), everything else as stored. REQUIRES: encodable.
TensorMeta EncodedView(const TensorMeta& tensor, Encoding encoding);

// A stored block that failed its check in one tier.
struct BadBlock {
  std::string tensor;  // MODEL@REV/TENSOR.
  size_t block_index = 0;
  BlockId id;
  TierKind tier = TierKind::kCold;
  absl::Status error;
};

struct VerifyReport {
  RevisionName revision;  // Resolved.
  uint64_t blocks = 0;    // Distinct blocks of the revision.
  uint64_t bytes = 0;
  uint64_t checked[3] = {0, 0, 0};  // Copies checked, by TierKind.
  std::vector<BadBlock> bad;
};

struct PrefetchResult {
  uint64_t blocks = 0;           // Distinct blocks of the revision.
  uint64_t bytes = 0;            // Their bytes.
  uint64_t already_present = 0;  // Blocks the tier held before.
};

class TieredStore;

// Receives the bytes of one tensor, in order, and commits it. Destroying a
// writer that has not committed aborts it. Owned by one thread at a time.
class TensorWriter {
 public:
  ~TensorWriter();
  TensorWriter(const TensorWriter&) = delete;
  TensorWriter& operator=(const TensorWriter&) = delete;

  // Appends the next bytes of the tensor. InvalidArgument if they pass the
  // tensor's byte length; errors of the cold tier (ResourceExhausted when
  // the disk is full). After an error the writer is aborted.
  absl::Status Append(std::span<const uint8_t> bytes);

  // Makes the tensor visible. InvalidArgument if fewer bytes arrived than
  // the shape says; DataLoss if the expected XXH3-64 does not match;
  // FailedPrecondition if the revision was published meanwhile. Any error
  // aborts the writer.
  absl::StatusOr<TensorMeta> Commit();

  // Drops what was written. Idempotent.
  void Abort();

  uint64_t bytes_received() const { return received_; }
  uint64_t byte_length() const { return byte_length_; }

 private:
  friend class TieredStore;
  TensorWriter(TieredStore* store, PutTensorSpec spec, uint64_t byte_length,
               uint64_t block_bytes);
  absl::Status SealBlock();

  TieredStore* const store_;
  const PutTensorSpec spec_;
  const uint64_t byte_length_;
  const uint64_t block_bytes_;
  uint64_t received_ = 0;
  Buffer current_;
  size_t current_size_ = 0;
  Xxh3_64Hasher hasher_;
  std::vector<BlockId> blocks_;
  std::vector<BlockId> staged_;  // One entry per StageBlock call.
  bool done_ = false;
};

class TieredStore {
 public:
  // Opens the tiers. Codes: InvalidArgument for bad options; errors of the
  // tiers' Open.
  static absl::StatusOr<std::unique_ptr<TieredStore>> Open(
      TieredStoreOptions options);

  // Waits for reads in flight, stops the spill thread and closes the tiers.
  ~TieredStore();

  // --- Tensors ---
  // Starts a put. InvalidArgument for a bad name, shape (over 8 dims,
  // negative or overflowing) or a name without revision;
  // FailedPrecondition if the revision is published. Creates the revision,
  // open, if it does not exist.
  absl::StatusOr<std::unique_ptr<TensorWriter>> PutTensor(PutTensorSpec spec);

  // Returns the record of tensor `name`. NotFound if absent. With
  // kMemoryOnly, WouldBlockError where the catalog would read a file.
  absl::StatusOr<TensorMeta> StatTensor(
      const TensorName& name, CatalogRead mode = CatalogRead::kAny) const;

  absl::StatusOr<TensorPage> ListTensors(const RevisionName& revision,
                                         absl::string_view prefix,
                                         int page_size,
                                         absl::string_view page_token) const;

  // Deletes a tensor of an open revision (see Catalog::DeleteTensor).
  absl::Status DeleteTensor(const TensorName& name);

  // Reads block `id` through the tiers and passes it to `done` (on this
  // thread for a DRAM hit, else on a tier thread). Codes: NotFound if no
  // tier has it (deleted meanwhile); DataLoss if the cold copy is corrupt;
  // Unavailable for I/O errors.
  void ReadBlockAsync(const BlockId& id, ReadCallback done);
  absl::StatusOr<BlockRef> ReadBlock(const BlockId& id);

  // Reads block `id` of a tensor of `dtype` in `encoding`: the derived
  // block cached in DRAM under (id, encoding), or the stored block encoded
  // on an encoding thread and then cached (evictable like any block).
  // Concurrent readers of the same missing derived block share one
  // encoding. REQUIRES: the pair is encodable, and for quantized encodings
  // the block holds a multiple of 32 elements. Codes: those of
  // ReadBlockAsync; InvalidArgument if the block cannot be encoded.
  void ReadEncodedBlockAsync(const BlockId& id, DType dtype, Encoding encoding,
                             EncodedReadCallback done);

  // Returns what is known of `tensor` in `encoding` (from an earlier read
  // of the whole tensor), or nothing.
  std::optional<EncodedTensorSummary> FindEncodedSummary(
      const TensorMeta& tensor, Encoding encoding) const;
  // Records the summary of a whole-tensor read.
  void RecordEncodedSummary(const TensorMeta& tensor, Encoding encoding,
                            const EncodedTensorSummary& summary);

  // Returns bytes [offset, offset + length) of tensor `name` (length 0: to
  // the end), read through the tiers. For tests and tools; servers stream
  // blocks with ReadBlockAsync.
  absl::StatusOr<std::string> ReadTensor(const TensorName& name,
                                         uint64_t offset = 0,
                                         uint64_t length = 0);

  // --- Revisions ---
  const Catalog& catalog() const { return *catalog_; }
  absl::Status CreateRevision(
      const RevisionName& name,
      const std::map<std::string, std::string>& metadata);
  absl::Status PublishRevision(const RevisionName& name);
  // Deletes a revision, unpinning it first, and erases blocks no longer
  // referenced from every tier.
  absl::Status DeleteRevision(const RevisionName& name);

  // --- Caching ---
  // Pins every block of revision `name` in DRAM, all or none, and records
  // the pin so that it survives a restart. ResourceExhausted past the pin
  // budget; AlreadyExists if pinned.
  absl::Status Pin(const RevisionName& name);
  // NotFound if the revision is not pinned.
  absl::Status Unpin(const RevisionName& name);
  // Returns the pinned revisions.
  std::vector<std::string> ListPins() const;

  // Loads every block of revision `name` into `tier` (DRAM or NVMe).
  // FailedPrecondition for NVMe when the tier is disabled; InvalidArgument
  // for cold.
  absl::StatusOr<PrefetchResult> Prefetch(const RevisionName& name,
                                          TierKind tier);

  // Reads every block of revision `name` from every tier that holds a copy
  // and checks each against its id: the scrub behind `pstore-cli verify`.
  // Corrupt NVMe entries are dropped (the cold copy serves); corrupt cold
  // blocks are reported (they are the only copy). The copies are read
  // without entering DRAM. Codes: NotFound for the revision; errors are
  // per block in the report.
  absl::StatusOr<VerifyReport> Verify(const RevisionName& name);

  // Drops the cached contents of `tier` (unpinned blocks for DRAM).
  // InvalidArgument for cold.
  absl::Status DropCache(TierKind tier);

  StoreStats Stats() const;
  const TieredStoreOptions& options() const { return options_; }

  // The tiers, for tests and benchmarks. nvme() is null when disabled.
  DramTier* dram() const { return dram_.get(); }
  NvmeTier* nvme() const { return nvme_.get(); }
  ColdTier* cold() const { return cold_.get(); }

 private:
  friend class TensorWriter;
  explicit TieredStore(TieredStoreOptions options);

  void StartDiskRead(const BlockId& id, absl::Time start);
  void ReadFromCold(const BlockId& id, absl::Time start);
  void FinishRead(const BlockId& id, absl::StatusOr<BlockRef> result,
                  TierKind source, absl::Time start);
  // Reads `id` from NVMe or cold without touching DRAM.
  absl::StatusOr<BlockRef> ReadBelowDram(const BlockId& id);
  void EraseFromCaches(const std::vector<BlockId>& ids);
  void EncodeBlock(const BlockId& id, DType dtype, Encoding encoding);
  void FinishEncode(const CacheKey& key, absl::StatusOr<EncodedBlock> result);
  void OnEvict(const CacheKey& key, BlockRef block);
  void SpillLoop();
  void RepinLoop(std::vector<RevisionName> pins);
  // Returns the distinct blocks of a revision with their sizes.
  absl::StatusOr<
      std::pair<RevisionName, std::vector<std::pair<BlockId, uint64_t>>>>
  RevisionBlocks(const RevisionName& name) const;

  const TieredStoreOptions options_;
  std::unique_ptr<ColdTier> cold_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<NvmeTier> nvme_;
  std::unique_ptr<DramTier> dram_;
  std::unique_ptr<ThreadPool> cold_readers_;

  absl::Mutex inflight_mu_;
  absl::flat_hash_map<BlockId, std::vector<ReadCallback>> inflight_
      ABSL_GUARDED_BY(inflight_mu_);

  // Encodings in flight, by (block, encoding), with their waiters.
  absl::Mutex encode_mu_;
  absl::flat_hash_map<std::pair<BlockId, uint8_t>,
                      std::vector<EncodedReadCallback>>
      encode_inflight_ ABSL_GUARDED_BY(encode_mu_);
  // What each cached derived block lost; dropped with the block.
  absl::flat_hash_map<std::pair<BlockId, uint8_t>, QuantizationStats>
      derived_stats_ ABSL_GUARDED_BY(encode_mu_);
  // Whole-tensor summaries, by (stored hash, length, dtype, encoding).
  mutable absl::Mutex summary_mu_;
  absl::flat_hash_map<std::tuple<uint64_t, uint64_t, uint8_t, uint8_t>,
                      EncodedTensorSummary>
      summaries_ ABSL_GUARDED_BY(summary_mu_);
  std::unique_ptr<ThreadPool> encoders_;

  absl::Mutex spill_mu_;
  std::deque<std::pair<BlockId, BlockRef>> spill_queue_
      ABSL_GUARDED_BY(spill_mu_);
  bool spill_stop_ ABSL_GUARDED_BY(spill_mu_) = false;
  bool spill_warned_ ABSL_GUARDED_BY(spill_mu_) = false;
  std::thread spill_thread_;

  std::atomic<bool> stopping_{false};
  std::thread repin_thread_;

  std::atomic<uint64_t> reads_from_[3] = {0, 0, 0};
  std::atomic<uint64_t> coalesced_reads_{0};
  std::atomic<uint64_t> spills_{0};
  std::atomic<uint64_t> spills_dropped_{0};
  std::atomic<uint64_t> spill_failures_{0};
  std::atomic<uint64_t> dedup_blocks_{0};
  std::atomic<uint64_t> collected_blocks_{0};
  std::atomic<uint64_t> blocks_encoded_{0};
  std::atomic<uint64_t> encoded_hits_{0};
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_TIERED_STORE_H_
