#include "storage/tiered_store.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "storage/block_collector.h"
#include "storage/block_reader.h"
#include "storage/buffer_pool.h"
#include "storage/cold/rocksdb_backend.h"
#include "storage/dram/dram_tier.h"
#include "storage/nvme/nvme_tier.h"
#include "storage/peers/peer_tier.h"
#include "storage/pins.h"
#include "storage/rados/rados_backend.h"
#include "storage/spiller.h"
#include "storage/tier_set.h"
#include "util/status.h"
#include "util/units.h"

namespace pstore {
namespace {

constexpr size_t kMaxDims = 8;
constexpr uint64_t kMinBlockBytes = 64 * kKiB;
constexpr uint64_t kMaxBlockBytes = 256 * kMiB;

// Checks the options every store uses, however its parts were made.
absl::Status ValidateCommonOptions(const TieredStoreOptions& options) {
  if (options.block_bytes % kIoAlignment != 0 ||
      options.block_bytes < kMinBlockBytes ||
      options.block_bytes > kMaxBlockBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block size ", options.block_bytes,
        " must be a multiple of 4 KiB between 64 KiB and 256 MiB"));
  }
  if (options.cold_read_threads < 1 || options.cold_read_threads > 256) {
    return absl::InvalidArgumentError("cold read threads must be in 1..256");
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const TieredStoreOptions& options) {
  if (options.cold_dir.empty() && !options.rados.has_value()) {
    return absl::InvalidArgumentError("no cold directory given");
  }
  PSTORE_RETURN_IF_ERROR(ValidateCommonOptions(options));
  if (options.dram_bytes < options.block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DRAM budget ", FormatBytes(options.dram_bytes),
        " is smaller than one block (", FormatBytes(options.block_bytes), ")"));
  }
  return absl::OkStatus();
}

absl::Status RequireRevision(const RevisionName& name) {
  if (name.revision.empty()) {
    return absl::InvalidArgumentError("name the revision: MODEL@REV");
  }
  return absl::OkStatus();
}

// Opens the NVMe tier of `options`, or nothing when it is off or its disk
// refuses it (the warm cache is only a cache).
absl::StatusOr<std::unique_ptr<CacheTier>> OpenNvme(
    const TieredStoreOptions& options) {
  if (options.nvme_dir.empty()) return std::unique_ptr<CacheTier>();
  NvmeTierOptions nvme_options;
  nvme_options.dir = options.nvme_dir;
  nvme_options.capacity_bytes = options.nvme_bytes;
  uint64_t region = options.nvme_region_bytes;
  if (region == 0) {
    region =
        std::min<uint64_t>(256 * kMiB, options.nvme_bytes / 4 / kMiB * kMiB);
  }
  nvme_options.region_bytes = region;
  nvme_options.use_io_uring = options.use_io_uring;
  absl::StatusOr<std::unique_ptr<NvmeTier>> nvme =
      NvmeTier::Open(std::move(nvme_options));
  if (absl::IsResourceExhausted(nvme.status()) ||
      absl::IsUnavailable(nvme.status())) {
    spdlog::warn(
        "event=nvme_disabled dir={} action=\"serving from DRAM and cold "
        "only\" status=\"{}\"",
        options.nvme_dir, nvme.status().ToString());
    return std::unique_ptr<CacheTier>();
  }
  if (!nvme.ok()) return Annotate(nvme.status(), "NVMe tier");
  return std::unique_ptr<CacheTier>(*std::move(nvme));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TieredStore>> TieredStore::Open(
    TieredStoreOptions options) {
  PSTORE_RETURN_IF_ERROR(ValidateOptions(options));
  StoreParts parts;
  ColdTierOptions cold_options;
  cold_options.dir = options.cold_dir;
  cold_options.sync_commits = options.sync_commits;
  cold_options.block_files = options.cold_block_files;
  cold_options.min_free_bytes = options.cold_min_free_bytes;
  // Block memtables are memory outside the DRAM budget too (up to two of
  // them fill at once): an eighth of it, between 16 and 64 MiB.
  cold_options.blocks_write_buffer_bytes =
      std::clamp<uint64_t>(options.dram_bytes / 8, 16 * kMiB, 64 * kMiB);
  if (options.rados.has_value()) {
    PSTORE_ASSIGN_OR_RETURN(
        parts.backend, OpenRadosBackend(*options.rados, options.block_bytes));
  } else {
    PSTORE_ASSIGN_OR_RETURN(parts.backend,
                            OpenRocksDbBackend(std::move(cold_options)));
  }
  PSTORE_ASSIGN_OR_RETURN(parts.nvme, OpenNvme(options));

  DramTierOptions dram_options;
  dram_options.capacity_bytes = options.dram_bytes;
  dram_options.pin_budget_bytes = options.pin_budget_bytes;
  dram_options.typical_block_bytes = options.block_bytes;
  absl::StatusOr<std::unique_ptr<DramTier>> dram =
      DramTier::Open(std::move(dram_options));
  if (!dram.ok()) return Annotate(dram.status(), "DRAM tier");
  parts.dram = *std::move(dram);

  // Freed block buffers are kept for reuse while live and freed ones
  // together are within the DRAM budget: blocks read after the cache was
  // emptied then land in memory already faulted in, not in fresh pages the
  // kernel must zero first. Past the budget, an eighth of it at most (128
  // MiB) stays.
  BufferPool::Default().SetRetention(BufferPool::Options{
      .min_retained_bytes =
          std::min<uint64_t>(128 * kMiB, options.dram_bytes / 8),
      .max_pool_bytes = options.dram_bytes});
  return Open(std::move(options), std::move(parts));
}

absl::StatusOr<std::unique_ptr<TieredStore>> TieredStore::Open(
    TieredStoreOptions options, StoreParts parts) {
  PSTORE_RETURN_IF_ERROR(ValidateCommonOptions(options));
  if (parts.backend.catalog == nullptr || parts.backend.blocks == nullptr ||
      parts.dram == nullptr) {
    return absl::InvalidArgumentError(
        "a store needs a catalog, a durable tier and a DRAM cache");
  }
  std::unique_ptr<TieredStore> store(
      new TieredStore(std::move(options), std::move(parts)));
  PSTORE_RETURN_IF_ERROR(store->collector_->CollectStagedAtOpen());
  if (store->options_.repin_on_open) {
    PSTORE_RETURN_IF_ERROR(store->pins_->StartRepin());
  }
  return store;
}

TieredStore::TieredStore(TieredStoreOptions options, StoreParts parts)
    : options_(std::move(options)),
      catalog_(std::move(parts.backend.catalog)),
      cold_(std::move(parts.backend.blocks)),
      degraded_reason_(std::move(parts.backend.degraded_reason)),
      collect_garbage_(std::move(parts.backend.collect_garbage)),
      join_(std::move(parts.backend.join)),
      members_(std::move(parts.backend.members)),
      leave_(std::move(parts.backend.leave)),
      dram_(std::move(parts.dram)),
      nvme_(std::move(parts.nvme)) {
  TierSet tiers{dram_.get(), nvme_.get(), cold_.get()};
  if (options_.peer_client != nullptr && options_.peers.enabled && members_) {
    peers_ = std::make_unique<PeerTier>(cold_.get(), members_,
                                        options_.peer_client, options_.peers);
    TierSet read_tiers = tiers;
    read_tiers.fetch = peers_.get();
    reader_ = std::make_unique<BlockReader>(
        read_tiers, options_.cold_read_threads, options_.on_block_read);
  } else {
    reader_ = std::make_unique<BlockReader>(tiers, options_.cold_read_threads,
                                            options_.on_block_read);
  }
  encoded_ = std::make_unique<EncodedBlockCache>(dram_.get(), reader_.get(),
                                                 options_.encode_threads);
  collector_ =
      std::make_unique<BlockCollector>(catalog_.get(), tiers, encoded_.get());
  if (nvme_ != nullptr) {
    spiller_ =
        std::make_unique<Spiller>(nvme_.get(), options_.spill_queue_blocks);
  }
  pins_ =
      std::make_unique<PinManager>(catalog_.get(), dram_.get(), reader_.get());
  dram_->SetEvictCallback([this](const CacheKey& key, BlockRef block) {
    OnEvict(key, std::move(block));
  });
  if (collect_garbage_ && options_.gc_interval > absl::ZeroDuration()) {
    gc_thread_ = std::thread([this] {
      for (;;) {
        {
          absl::MutexLock lock(&gc_mu_);
          if (gc_mu_.AwaitWithTimeout(absl::Condition(&gc_stopping_),
                                      options_.gc_interval)) {
            return;
          }
        }
        absl::StatusOr<GcReport> report = collect_garbage_(false);
        if (!report.ok() && !absl::IsFailedPrecondition(report.status())) {
          spdlog::warn(
              "event=gc_failed action=\"tried again in {}\" "
              "status=\"{}\"",
              absl::FormatDuration(options_.gc_interval),
              report.status().ToString());
        }
      }
    });
  }
}

TieredStore::~TieredStore() {
  Leave();  // The other nodes stop counting on this one first.
  {
    absl::MutexLock lock(&gc_mu_);
    gc_stopping_ = true;
  }
  if (gc_thread_.joinable()) gc_thread_.join();
  // Work in flight finishes part by part, each while the parts it calls
  // are still open: NVMe completions and cold reads insert into DRAM and
  // may start encodings; encodings insert into DRAM; DRAM evictions reach
  // OnEvict, which the stopped spiller drops.
  pins_->StopRepin();
  if (spiller_ != nullptr) spiller_->Stop();
  nvme_.reset();      // Completes its reads in flight.
  reader_.reset();    // Runs the cold reads queued.
  peers_.reset();     // No read waits on it now.
  encoded_->Drain();  // Runs the encodings queued.
  pins_.reset();
  collector_.reset();
  spiller_.reset();
  dram_->SetEvictCallback(nullptr);
  encoded_.reset();
  dram_.reset();
  catalog_.reset();
  cold_.reset();
}

void TieredStore::OnEvict(const CacheKey& key, BlockRef block) {
  if (key.variant != kStoredVariant) {
    // A derived block is only ever recomputed, never spilled.
    encoded_->OnEvicted(key);
    return;
  }
  if (spiller_ != nullptr) spiller_->Offer(key.id, std::move(block));
}

absl::StatusOr<std::unique_ptr<TensorWriter>> TieredStore::PutTensor(
    PutTensorSpec spec) {
  const TensorName& name = spec.name;
  PSTORE_RETURN_IF_ERROR(ValidateModelName(name.revision.model));
  if (name.revision.revision.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("put of ", name.ToString(),
                     " names no revision: use MODEL@REV/TENSOR"));
  }
  PSTORE_RETURN_IF_ERROR(ValidateRevisionName(name.revision.revision));
  PSTORE_RETURN_IF_ERROR(ValidateTensorName(name.tensor));
  if (spec.shape.size() > kMaxDims) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shape has ", spec.shape.size(), " dimensions; at most ", kMaxDims));
  }
  if (spec.kind != EntryKind::kTensor &&
      (spec.dtype != DType::kU8 || spec.shape.size() != 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name.ToString(), " is a file or shard header: put it as ",
                     "U8 of one dimension (its bytes)"));
  }
  absl::StatusOr<uint64_t> byte_length =
      TensorByteLength(spec.dtype, spec.shape);
  if (!byte_length.ok()) {
    return Annotate(byte_length.status(),
                    absl::StrCat("shape of ", name.ToString()));
  }
  if (*byte_length > options_.max_tensor_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(name.ToString(), " is ", FormatBytes(*byte_length),
                     ", past the largest tensor this server stores (",
                     FormatBytes(options_.max_tensor_bytes), ")"));
  }
  PSTORE_RETURN_IF_ERROR(catalog_->EnsureOpenRevision(name.revision));
  TensorWriter::Parts parts;
  parts.catalog = catalog_.get();
  parts.tiers = TierSet{dram_.get(), nvme_.get(), cold_.get()};
  parts.reader = reader_.get();
  parts.collector = collector_.get();
  parts.dedup_blocks = &dedup_blocks_;
  return std::make_unique<TensorWriter>(parts, std::move(spec), *byte_length,
                                        options_.block_bytes);
}

absl::StatusOr<TensorMeta> TieredStore::StatTensor(const TensorName& name,
                                                   CatalogRead mode) const {
  return catalog_->GetTensor(name, mode);
}

absl::StatusOr<TensorPage> TieredStore::ListTensors(
    const RevisionName& revision, absl::string_view prefix, int page_size,
    absl::string_view page_token) const {
  return catalog_->ListTensors(revision, prefix, page_size, page_token);
}

absl::Status TieredStore::DeleteTensor(const TensorName& name) {
  if (name.revision.revision.empty()) {
    return absl::InvalidArgumentError(
        "deletes must name the revision: MODEL@REV/TENSOR");
  }
  PSTORE_ASSIGN_OR_RETURN(std::vector<BlockId> unreferenced,
                          catalog_->DeleteTensor(name));
  collector_->Collect(unreferenced);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ReadPart>> TieredStore::PlanTensorRead(
    const TensorName& name, Encoding encoding, uint64_t offset, uint64_t length,
    CatalogRead mode) const {
  PSTORE_ASSIGN_OR_RETURN(TensorMeta tensor, catalog_->GetTensor(name, mode));
  PSTORE_ASSIGN_OR_RETURN(
      ReadPart part,
      pstore::PlanTensorRead(tensor, encoding, offset, length, encoded_.get()));
  std::vector<ReadPart> parts;
  parts.push_back(std::move(part));
  return parts;
}

absl::StatusOr<std::vector<ReadPart>> TieredStore::PlanRevisionRead(
    const RevisionName& name, Encoding encoding, uint32_t shard, uint32_t count,
    CatalogRead mode) const {
  if (mode == CatalogRead::kMemoryOnly) return WouldBlockError("manifest");
  PSTORE_ASSIGN_OR_RETURN(Manifest manifest, catalog_->GetManifest(name));
  return PlanShard(manifest.tensors, encoding, shard, count, encoded_.get());
}

std::unique_ptr<ChunkCursor> TieredStore::NewChunkCursor(
    std::vector<ReadPart> parts, uint32_t max_chunk_bytes) {
  return std::make_unique<ChunkCursor>(std::move(parts), max_chunk_bytes,
                                       encoded_.get());
}

void TieredStore::ReadBlockAsync(const BlockId& id, ReadCallback done) {
  reader_->ReadAsync(id, std::move(done));
}

void TieredStore::ReadBlockForPeerAsync(const BlockId& id, ReadCallback done) {
  reader_->ReadAsync(
      id,
      [this, done = std::move(done)](absl::StatusOr<BlockRef> block) mutable {
        if (block.ok()) {
          served_peer_blocks_.fetch_add(1, std::memory_order_relaxed);
          served_peer_bytes_.fetch_add((*block)->size(),
                                       std::memory_order_relaxed);
        }
        std::move(done)(std::move(block));
      },
      ReadScope::kLocal);
}

absl::StatusOr<BlockRef> TieredStore::ReadBlock(const BlockId& id) {
  return reader_->Read(id);
}

void TieredStore::ReadEncodedBlockAsync(const BlockId& id, DType dtype,
                                        Encoding encoding,
                                        EncodedReadCallback done) {
  encoded_->ReadAsync(id, dtype, encoding, std::move(done));
}

absl::StatusOr<std::string> TieredStore::ReadTensor(const TensorName& name,
                                                    uint64_t offset,
                                                    uint64_t length) {
  PSTORE_ASSIGN_OR_RETURN(TensorMeta meta, catalog_->GetTensor(name));
  PSTORE_ASSIGN_OR_RETURN(std::vector<BlockSlice> slices,
                          SliceTensor(meta, offset, length));
  std::string bytes;
  for (const BlockSlice& slice : slices) {
    absl::StatusOr<BlockRef> block = reader_->Read(slice.id);
    if (!block.ok()) {
      return Annotate(block.status(), absl::StrCat(meta.name.ToString(),
                                                   " block ", slice.index));
    }
    absl::string_view part =
        (*block)->view().substr(slice.offset, slice.length);
    bytes.append(part.data(), part.size());
  }
  return bytes;
}

absl::StatusOr<RevisionInfo> TieredStore::GetRevision(
    const RevisionName& name) const {
  return catalog_->GetRevision(name);
}

absl::StatusOr<Manifest> TieredStore::GetManifest(
    const RevisionName& name) const {
  return catalog_->GetManifest(name);
}

absl::StatusOr<std::vector<ModelInfo>> TieredStore::ListModels() const {
  return catalog_->ListModels();
}

absl::Status TieredStore::CreateRevision(
    const RevisionName& name,
    const std::map<std::string, std::string>& metadata) {
  PSTORE_RETURN_IF_ERROR(ValidateModelName(name.model));
  PSTORE_RETURN_IF_ERROR(RequireRevision(name));
  PSTORE_RETURN_IF_ERROR(ValidateRevisionName(name.revision));
  return catalog_->CreateRevision(name, metadata);
}

absl::Status TieredStore::PublishRevision(const RevisionName& name) {
  PSTORE_RETURN_IF_ERROR(RequireRevision(name));
  return catalog_->PublishRevision(name);
}

absl::Status TieredStore::DeleteRevision(const RevisionName& name) {
  PSTORE_RETURN_IF_ERROR(RequireRevision(name));
  PSTORE_ASSIGN_OR_RETURN(std::vector<BlockId> unreferenced,
                          catalog_->DeleteRevision(name));
  // After the revision is gone: a pin that was loading meanwhile either
  // was recorded before (its record went with the revision) or is refused
  // its record and undoes itself (PinManager::Pin).
  pins_->DropPin(name);
  collector_->Collect(unreferenced);
  return absl::OkStatus();
}

absl::StatusOr<GcReport> TieredStore::CollectGarbage(bool dry_run) {
  if (!collect_garbage_) {
    return absl::FailedPreconditionError(
        "this store's backend (RocksDB) collects each block as its last "
        "reference goes: there is nothing to sweep");
  }
  return collect_garbage_(dry_run);
}

absl::StatusOr<uint64_t> TieredStore::RefCount(const BlockId& id) const {
  return catalog_->RefCount(id);
}

absl::Status TieredStore::Pin(const RevisionName& name) {
  return pins_->Pin(name);
}

absl::Status TieredStore::Unpin(const RevisionName& name) {
  return pins_->Unpin(name);
}

std::vector<std::string> TieredStore::ListPins() const {
  return pins_->ListPins();
}

absl::StatusOr<PrefetchResult> TieredStore::Prefetch(const RevisionName& name,
                                                     TierKind tier) {
  // Blocks missing here come through their owners, as reads do.
  TierSet tiers{dram_.get(), nvme_.get(), cold_.get(), peers_.get()};
  PSTORE_RETURN_IF_ERROR(CheckPrefetchTarget(tier, tiers));
  PSTORE_ASSIGN_OR_RETURN(Manifest manifest, catalog_->GetManifest(name));
  return PrefetchRevision(manifest, tier, tiers, reader_.get());
}

absl::StatusOr<VerifyReport> TieredStore::Verify(const RevisionName& name) {
  PSTORE_ASSIGN_OR_RETURN(Manifest manifest, catalog_->GetManifest(name));
  return VerifyRevision(manifest,
                        TierSet{dram_.get(), nvme_.get(), cold_.get()});
}

absl::Status TieredStore::DropCache(TierKind tier) {
  switch (tier) {
    case TierKind::kDram:
      PSTORE_RETURN_IF_ERROR(dram_->Clear());
      // Clear dropped every derived block (none is pinned).
      encoded_->ForgetAll();
      return absl::OkStatus();
    case TierKind::kNvme:
      if (nvme_ == nullptr) {
        return absl::FailedPreconditionError("the NVMe tier is disabled");
      }
      return nvme_->Clear();
    case TierKind::kCold:
      break;
  }
  return absl::InvalidArgumentError(
      "the cold tier is the durable copy of every block and cannot be "
      "dropped");
}

StoreStats TieredStore::Stats() const {
  StoreStats stats;
  stats.dram = dram_->Stats();
  stats.cold = cold_->Stats();
  if (nvme_ != nullptr) {
    stats.nvme = nvme_->Stats();
    stats.nvme_enabled = true;
    stats.io_uring = stats.nvme.io_uring;
  }
  for (int i = 0; i < kNumTierKinds; ++i) {
    stats.reads_from[i] = reader_->reads_from(static_cast<TierKind>(i));
  }
  stats.coalesced_reads = reader_->coalesced_reads();
  if (spiller_ != nullptr) {
    stats.spills = spiller_->spills();
    stats.spills_dropped = spiller_->dropped();
    stats.spill_failures = spiller_->failures();
  }
  stats.dedup_blocks = dedup_blocks_.load(std::memory_order_relaxed);
  stats.collected_blocks = collector_->collected_blocks();
  stats.blocks_encoded = encoded_->blocks_encoded();
  stats.encoded_hits = encoded_->encoded_hits();
  stats.pinned_bytes = dram_->pinned_bytes();
  stats.pin_budget_bytes = dram_->pin_budget_bytes();
  if (peers_ != nullptr) stats.peers = peers_->peer_stats();
  stats.peers.served_blocks =
      served_peer_blocks_.load(std::memory_order_relaxed);
  stats.peers.served_bytes = served_peer_bytes_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace pstore
