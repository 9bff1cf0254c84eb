// TieredStore: the public face of storage/. It keeps tensors in tiers
// (DRAM, NVMe, and a durable backend: a catalog plus a tier holding every
// block) behind one API: put a tensor from a byte stream, plan and read its
// blocks in any encoding, manage revisions, pin, prefetch, verify, drop
// caches.
//
// The store composes parts, each in a file of its own:
//   TensorWriter (tensor_writer.h)    the write path: blocks, dedup, commit
//   BlockReader (block_reader.h)      the read path: DRAM -> NVMe -> cold
//   EncodedBlockCache (encoded_blocks.h) blocks read in an encoding
//   read plans (read_plan.h), ChunkCursor (chunk_cursor.h): what a read
//                                     sends, cut into checked chunks
//   BlockCollector (block_collector.h) unreferenced blocks leave every tier
//   PinManager (pins.h)               whole revisions pinned in DRAM
//   Spiller (spiller.h)               DRAM evictions written to NVMe
//   PrefetchRevision (prefetch.h), VerifyRevision (verify.h)
// over interfaces it can be handed (StoreParts): a Backend (backend.h), a
// DramCache (dram_cache.h) and an optional NVMe CacheTier (tier.h).
//
// Thread-safe. ReadBlockAsync and ReadEncodedBlockAsync never block;
// methods taking a CatalogRead of kMemoryOnly never wait for a disk; every
// other method may do I/O and must not be called on a thread that may not
// block.

#ifndef PSTORE_STORAGE_TIERED_STORE_H_
#define PSTORE_STORAGE_TIERED_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/hash.h"
#include "storage/backend.h"
#include "storage/block.h"
#include "storage/catalog.h"
#include "storage/chunk_cursor.h"
#include "storage/dram_cache.h"
#include "storage/encoded_blocks.h"
#include "storage/names.h"
#include "storage/prefetch.h"
#include "storage/read_plan.h"
#include "storage/records.h"
#include "storage/store_options.h"
#include "storage/store_stats.h"
#include "storage/tensor_writer.h"
#include "storage/tier.h"
#include "storage/verify.h"

namespace pstore {

class BlockCollector;
class BlockReader;
class PeerTier;
class PinManager;
class Spiller;

// The parts a store is composed of; the store owns them.
struct StoreParts {
  Backend backend;                  // Required: catalog and durable blocks.
  std::unique_ptr<DramCache> dram;  // Required.
  std::unique_ptr<CacheTier> nvme;  // Optional.
};

class TieredStore {
 public:
  // Opens the default parts from `options`: the RocksDB backend under
  // cold_dir (or the RADOS backend on options.rados), NVMe region files
  // under nvme_dir (if set; a disk that refuses them leaves the tier off,
  // with a warning) and a DRAM tier of dram_bytes. Codes: InvalidArgument
  // for bad options; errors of the parts' Open.
  static absl::StatusOr<std::unique_ptr<TieredStore>> Open(
      TieredStoreOptions options);

  // Composes a store of `parts`; the options that size parts (directories,
  // dram_bytes, nvme_bytes) are not used. InvalidArgument for bad options
  // or a missing required part; errors of collecting what a crash left.
  static absl::StatusOr<std::unique_ptr<TieredStore>> Open(
      TieredStoreOptions options, StoreParts parts);

  // Runs one garbage collection of the durable backend's blocks (see
  // Backend::collect_garbage). FailedPrecondition for a backend that
  // collects as references go (RocksDB: nothing to sweep).
  absl::StatusOr<GcReport> CollectGarbage(bool dry_run);

  // Registers this node, serving at `address`, with the other nodes of a
  // backend many share (Backend::join); OK and nothing for one of one
  // node. Leave unregisters it (a stopping node), as the store's end does.
  absl::Status Join(const std::string& address) {
    return join_ ? join_(address,
                         static_cast<uint32_t>(options_.peers.virtual_nodes))
                 : absl::OkStatus();
  }
  void Leave() {
    if (leave_) leave_();
  }
  // The nodes of the backend seen alive, this one first; empty for a
  // backend of one node.
  std::vector<NodeInfo> Members() const {
    return members_ ? members_() : std::vector<NodeInfo>();
  }

  // Returns what reports why the durable backend is degraded (an empty
  // string when it is not; see Backend::degraded_reason); it stays callable
  // after the store is gone.
  std::function<std::string()> degraded_reason() const {
    return degraded_reason_
               ? degraded_reason_
               : std::function<std::string()>([] { return std::string(); });
  }

  // Stops re-pinning and spilling, lets every read in flight finish, and
  // closes the parts. REQUIRES: no call is running or starts.
  ~TieredStore();

  // --- Tensors ---
  // Starts a put. InvalidArgument for a bad name, shape (over 8 dims,
  // negative or overflowing) or a name without revision; ResourceExhausted
  // past options().max_tensor_bytes; FailedPrecondition if the revision is
  // published. Creates the revision, open, if it does not exist.
  absl::StatusOr<std::unique_ptr<TensorWriter>> PutTensor(PutTensorSpec spec);

  // Returns the record of tensor `name`. NotFound if absent. With
  // kMemoryOnly, WouldBlockError where the catalog would read a file.
  absl::StatusOr<TensorMeta> StatTensor(
      const TensorName& name, CatalogRead mode = CatalogRead::kAny) const;

  // Returns a page of the tensors of `revision` (see Catalog::ListTensors).
  absl::StatusOr<TensorPage> ListTensors(const RevisionName& revision,
                                         absl::string_view prefix,
                                         int page_size,
                                         absl::string_view page_token) const;

  // Deletes a tensor of an open revision (see Catalog::DeleteTensor) and
  // erases the blocks no longer referenced from every tier.
  absl::Status DeleteTensor(const TensorName& name);

  // --- Reads ---
  // Plans a read of tensor `name` in `encoding` over bytes [offset, offset
  // + length) of the encoded tensor (length 0: to the end): one part.
  // Codes of StatTensor and PlanTensorRead (read_plan.h).
  absl::StatusOr<std::vector<ReadPart>> PlanTensorRead(
      const TensorName& name, Encoding encoding, uint64_t offset,
      uint64_t length, CatalogRead mode = CatalogRead::kAny) const;

  // Plans shard `shard` of `count` of a read of every tensor of revision
  // `name` (see PlanShard in read_plan.h), from one consistent manifest.
  // NotFound for the revision; with kMemoryOnly, always WouldBlockError (a
  // manifest is many records). REQUIRES: shard < count.
  absl::StatusOr<std::vector<ReadPart>> PlanRevisionRead(
      const RevisionName& name, Encoding encoding, uint32_t shard,
      uint32_t count, CatalogRead mode = CatalogRead::kAny) const;

  // Returns a cursor that cuts `parts` into chunks of at most
  // `max_chunk_bytes` (chunk_cursor.h).
  std::unique_ptr<ChunkCursor> NewChunkCursor(std::vector<ReadPart> parts,
                                              uint32_t max_chunk_bytes);

  // Reads block `id` through the tiers and passes it to `done` (on this
  // thread for a DRAM hit, else on a tier thread). Codes: NotFound if no
  // tier has it (deleted meanwhile); DataLoss if the durable copy is
  // corrupt; Unavailable for I/O errors.
  void ReadBlockAsync(const BlockId& id, ReadCallback done);

  // Reads block `id` for another node of a shared store: through this
  // node's tiers and the durable tier, never handed on to a peer; counted
  // as served to peers. Codes of ReadBlockAsync.
  void ReadBlockForPeerAsync(const BlockId& id, ReadCallback done);
  absl::StatusOr<BlockRef> ReadBlock(const BlockId& id);

  // Reads block `id` of a tensor of `dtype` in `encoding` (see
  // EncodedBlockCache::ReadAsync).
  void ReadEncodedBlockAsync(const BlockId& id, DType dtype, Encoding encoding,
                             EncodedReadCallback done);

  // Returns bytes [offset, offset + length) of tensor `name` (length 0: to
  // the end), read through the tiers. For tests and tools; servers stream
  // with read plans.
  absl::StatusOr<std::string> ReadTensor(const TensorName& name,
                                         uint64_t offset = 0,
                                         uint64_t length = 0);

  // --- Revisions ---
  // Returns revision `name` (resolved through latest if it has none).
  // NotFound if absent.
  absl::StatusOr<RevisionInfo> GetRevision(const RevisionName& name) const;
  // Returns revision `name` with every tensor of it, read at one moment.
  absl::StatusOr<Manifest> GetManifest(const RevisionName& name) const;
  // Returns every model with its revisions, in name order.
  absl::StatusOr<std::vector<ModelInfo>> ListModels() const;

  // Creates open revision `name`. InvalidArgument for a bad name or one
  // without revision; AlreadyExists if it exists.
  absl::Status CreateRevision(
      const RevisionName& name,
      const std::map<std::string, std::string>& metadata);
  // Publishes revision `name` (see Catalog::PublishRevision).
  absl::Status PublishRevision(const RevisionName& name);
  // Deletes a revision, drops its pin, and erases blocks no longer
  // referenced from every tier. NotFound if absent.
  absl::Status DeleteRevision(const RevisionName& name);

  // Returns the number of tensor-record slots naming block `id`. For tests
  // and tools.
  absl::StatusOr<uint64_t> RefCount(const BlockId& id) const;

  // --- Caching ---
  // Pins every block of revision `name` in DRAM, all or none, and records
  // the pin so that it survives a restart. ResourceExhausted past the pin
  // budget; AlreadyExists if pinned; NotFound if the revision is absent or
  // deleted meanwhile.
  absl::Status Pin(const RevisionName& name);
  // NotFound if the revision is not pinned.
  absl::Status Unpin(const RevisionName& name);
  // Returns the pinned revisions, "MODEL@REV", sorted.
  std::vector<std::string> ListPins() const;

  // Loads every block of revision `name` into `tier` (DRAM or NVMe).
  // FailedPrecondition for NVMe when the tier is off; InvalidArgument for
  // cold; NotFound for the revision.
  absl::StatusOr<PrefetchResult> Prefetch(const RevisionName& name,
                                          TierKind tier);

  // Checks every copy of every block of revision `name` (see
  // VerifyRevision). NotFound for the revision; errors per block are in
  // the report.
  absl::StatusOr<VerifyReport> Verify(const RevisionName& name);

  // Drops the cached contents of `tier` (unpinned blocks for DRAM).
  // FailedPrecondition for NVMe when the tier is off; InvalidArgument for
  // cold.
  absl::Status DropCache(TierKind tier);

  StoreStats Stats() const;
  const TieredStoreOptions& options() const { return options_; }

  // The tiers, for tests and benchmarks. nvme() is null when off.
  DramCache* dram() const { return dram_.get(); }
  CacheTier* nvme() const { return nvme_.get(); }
  Tier* cold() const { return cold_.get(); }

 private:
  TieredStore(TieredStoreOptions options, StoreParts parts);
  void OnEvict(const CacheKey& key, BlockRef block);

  const TieredStoreOptions options_;
  // Declared in the order they are opened; the destructor closes them in
  // the order that lets work in flight finish (see ~TieredStore).
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<Tier> cold_;
  const std::function<std::string()> degraded_reason_;
  const std::function<absl::StatusOr<GcReport>(bool)> collect_garbage_;
  const std::function<absl::Status(const std::string&, uint32_t)> join_;
  const std::function<std::vector<NodeInfo>()> members_;
  const std::function<void()> leave_;
  std::unique_ptr<DramCache> dram_;
  std::unique_ptr<CacheTier> nvme_;
  // Null unless the store reads through its peers (options_.peer_client).
  std::unique_ptr<PeerTier> peers_;
  std::unique_ptr<BlockReader> reader_;
  std::unique_ptr<EncodedBlockCache> encoded_;
  std::unique_ptr<BlockCollector> collector_;
  std::unique_ptr<Spiller> spiller_;  // Null when NVMe is off.
  // Periodic garbage collection (options_.gc_interval).
  absl::Mutex gc_mu_;
  bool gc_stopping_ ABSL_GUARDED_BY(gc_mu_) = false;
  std::thread gc_thread_;
  std::unique_ptr<PinManager> pins_;
  std::atomic<uint64_t> dedup_blocks_{0};
  std::atomic<uint64_t> served_peer_blocks_{0};
  std::atomic<uint64_t> served_peer_bytes_{0};
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_TIERED_STORE_H_
