#include "storage/tiered_store.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"
#include "storage/cold/cold_tier.h"
#include "storage/dram/dram_tier.h"
#include "storage/nvme/device.h"
#include "storage/nvme/nvme_tier.h"
#include "util/status.h"
#include "util/units.h"

namespace pstore {
namespace {

constexpr size_t kMaxDims = 8;
constexpr uint64_t kMinBlockBytes = 64 * kKiB;
constexpr uint64_t kMaxBlockBytes = 256 * kMiB;
// Reads a prefetch keeps in flight.
constexpr size_t kPrefetchWindow = 16;
// Whole-tensor encoding summaries kept; past it the table starts over.
constexpr size_t kMaxSummaries = 100000;

absl::Status ValidateOptions(const TieredStoreOptions& options) {
  if (options.cold_dir.empty()) {
    return absl::InvalidArgumentError("no cold directory given");
  }
  if (options.block_bytes % kIoAlignment != 0 ||
      options.block_bytes < kMinBlockBytes ||
      options.block_bytes > kMaxBlockBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block size ", options.block_bytes,
        " must be a multiple of 4 KiB between 64 KiB and 256 MiB"));
  }
  if (options.dram_bytes < options.block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DRAM budget ", FormatBytes(options.dram_bytes),
        " is smaller than one block (", FormatBytes(options.block_bytes), ")"));
  }
  if (options.cold_read_threads < 1 || options.cold_read_threads > 256) {
    return absl::InvalidArgumentError("cold read threads must be in 1..256");
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view TierKindName(TierKind kind) {
  switch (kind) {
    case TierKind::kDram:
      return "dram";
    case TierKind::kNvme:
      return "nvme";
    case TierKind::kCold:
      return "cold";
  }
  return "unknown";
}

bool IsIdentityEncoding(DType dtype, Encoding encoding) {
  return encoding == Encoding::kRaw ||
         (encoding == Encoding::kF32 && dtype == DType::kF32) ||
         (encoding == Encoding::kF16 && dtype == DType::kF16) ||
         (encoding == Encoding::kBF16 && dtype == DType::kBF16);
}

TensorMeta EncodedView(const TensorMeta& tensor, Encoding encoding) {
  if (IsIdentityEncoding(tensor.dtype, encoding)) return tensor;
  TensorMeta view = tensor;
  uint64_t element_size = DTypeSize(tensor.dtype);
  view.byte_length = EncodedByteLength(tensor.dtype, encoding,
                                       tensor.byte_length / element_size);
  view.block_bytes = EncodedByteLength(tensor.dtype, encoding,
                                       tensor.block_bytes / element_size);
  return view;
}

absl::StatusOr<std::vector<BlockSlice>> SliceTensor(const TensorMeta& tensor,
                                                    uint64_t offset,
                                                    uint64_t length) {
  if (offset > tensor.byte_length ||
      (length > 0 && length > tensor.byte_length - offset)) {
    return absl::OutOfRangeError(absl::StrCat(
        "byte range at ", offset, " of ", length, " bytes passes the end of ",
        tensor.name.ToString(), " (", tensor.byte_length, " bytes)"));
  }
  if (length == 0) length = tensor.byte_length - offset;
  std::vector<BlockSlice> slices;
  if (length == 0) return slices;
  uint64_t end = offset + length;
  size_t first = offset / tensor.block_bytes;
  for (size_t index = first; index < tensor.blocks.size(); ++index) {
    uint64_t block_start = index * tensor.block_bytes;
    if (block_start >= end) break;
    BlockSlice slice;
    slice.index = index;
    slice.id = tensor.blocks[index];
    slice.block_size = tensor.BlockSize(index);
    slice.tensor_offset = block_start;
    slice.offset = std::max(offset, block_start) - block_start;
    slice.length = std::min(end, block_start + slice.block_size) - block_start -
                   slice.offset;
    slices.push_back(slice);
  }
  return slices;
}

// --- TensorWriter ---

TensorWriter::TensorWriter(TieredStore* store, PutTensorSpec spec,
                           uint64_t byte_length, uint64_t block_bytes)
    : store_(store),
      spec_(std::move(spec)),
      byte_length_(byte_length),
      block_bytes_(block_bytes) {}

TensorWriter::~TensorWriter() { Abort(); }

absl::Status TensorWriter::Append(std::span<const uint8_t> bytes) {
  if (done_) {
    return absl::FailedPreconditionError("the put was already finished");
  }
  if (bytes.size() > byte_length_ - received_) {
    uint64_t received = received_ + bytes.size();
    Abort();
    return absl::InvalidArgumentError(absl::StrCat(
        "received ", received, " bytes for ", spec_.name.ToString(),
        " but its dtype and shape make ", byte_length_, " bytes"));
  }
  hasher_.Update(bytes);
  received_ += bytes.size();
  while (!bytes.empty()) {
    // The block being filled starts right after the sealed ones.
    uint64_t block_target =
        std::min(block_bytes_, byte_length_ - blocks_.size() * block_bytes_);
    if (current_.empty()) {
      current_ = BufferPool::Default().Allocate(block_target);
      current_size_ = 0;
    }
    size_t take =
        std::min<uint64_t>(bytes.size(), block_target - current_size_);
    std::memcpy(current_.data() + current_size_, bytes.data(), take);
    current_size_ += take;
    bytes = bytes.subspan(take);
    if (current_size_ == block_target) {
      if (absl::Status status = SealBlock(); !status.ok()) {
        Abort();
        return status;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TensorWriter::SealBlock() {
  size_t size = current_size_;
  BlockRef block = MakeBlock(std::move(current_), size);
  current_size_ = 0;
  BlockId id = BlockId::Of(block->bytes());
  PSTORE_ASSIGN_OR_RETURN(bool stored, store_->catalog_->StageBlock(id));
  staged_.push_back(id);
  blocks_.push_back(id);
  if (stored) {
    // Reuse the stored block only once its bytes compare equal.
    absl::StatusOr<BlockRef> existing = store_->ReadBlock(id);
    if (!existing.ok()) {
      return Annotate(
          existing.status(),
          absl::StrCat("reading stored block ", id.ToHex(), " to deduplicate"));
    }
    if ((*existing)->size() != size ||
        std::memcmp((*existing)->data(), block->data(), size) != 0) {
      return absl::InternalError(
          absl::StrCat("two different blocks share XXH3-128 ", id.ToHex(),
                       "; refusing to store either under that id"));
    }
    store_->dedup_blocks_.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }
  PSTORE_RETURN_IF_ERROR(store_->catalog_->WriteStagedBlock(id, block));
  // A full DRAM of pinned blocks refuses it; the block is in cold anyway.
  (void)store_->dram_->Insert(CacheKey{id, kStoredVariant}, std::move(block));
  return absl::OkStatus();
}

absl::StatusOr<TensorMeta> TensorWriter::Commit() {
  if (done_) {
    return absl::FailedPreconditionError("the put was already finished");
  }
  if (received_ != byte_length_) {
    uint64_t received = received_;
    Abort();
    return absl::InvalidArgumentError(absl::StrCat(
        "received ", received, " bytes for ", spec_.name.ToString(),
        " but its dtype and shape make ", byte_length_, " bytes"));
  }
  if (current_size_ > 0) {
    if (absl::Status status = SealBlock(); !status.ok()) {
      Abort();
      return status;
    }
  }
  uint64_t hash = hasher_.Digest();
  if (spec_.expected_xxh3_64.has_value() && *spec_.expected_xxh3_64 != hash) {
    Abort();
    return absl::DataLossError(absl::StrCat(
        "the bytes received for ", spec_.name.ToString(), " hash to XXH3-64 ",
        absl::Hex(hash, absl::kZeroPad16), ", not the expected ",
        absl::Hex(*spec_.expected_xxh3_64, absl::kZeroPad16)));
  }
  TensorMeta meta;
  meta.name = spec_.name;
  meta.dtype = spec_.dtype;
  meta.shape = spec_.shape;
  meta.byte_length = byte_length_;
  meta.xxh3_64 = hash;
  meta.block_bytes = block_bytes_;
  meta.blocks = blocks_;
  meta.created_unix_micros = absl::ToUnixMicros(absl::Now());
  absl::StatusOr<std::vector<BlockId>> collected =
      store_->catalog_->CommitTensor(meta);
  if (!collected.ok()) {
    Abort();
    return collected.status();
  }
  done_ = true;
  store_->EraseFromCaches(*collected);
  return meta;
}

void TensorWriter::Abort() {
  if (done_) return;
  done_ = true;
  current_.Reset();
  if (staged_.empty()) return;
  absl::StatusOr<std::vector<BlockId>> collected =
      store_->catalog_->AbortStaged(staged_);
  if (!collected.ok()) {
    // The staged markers remain; the next Open collects the blocks.
    spdlog::warn(
        "event=put_abort_incomplete tensor={} action=\"blocks collected at "
        "the next open\" status=\"{}\"",
        spec_.name.ToString(), collected.status().ToString());
    return;
  }
  store_->EraseFromCaches(*collected);
}

// --- TieredStore ---

TieredStore::TieredStore(TieredStoreOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TieredStore>> TieredStore::Open(
    TieredStoreOptions options) {
  PSTORE_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<TieredStore> store(new TieredStore(std::move(options)));
  const TieredStoreOptions& opts = store->options_;

  ColdTierOptions cold_options;
  cold_options.dir = opts.cold_dir;
  cold_options.sync_commits = opts.sync_commits;
  cold_options.blob_files = opts.cold_blob_files;
  cold_options.min_free_bytes = opts.cold_min_free_bytes;
  // Block memtables are memory outside the DRAM budget too (up to two of
  // them fill at once): an eighth of it, between 16 and 64 MiB.
  cold_options.blocks_write_buffer_bytes =
      std::clamp<uint64_t>(opts.dram_bytes / 8, 16 * kMiB, 64 * kMiB);
  PSTORE_ASSIGN_OR_RETURN(store->cold_,
                          ColdTier::Open(std::move(cold_options)));
  PSTORE_ASSIGN_OR_RETURN(store->catalog_, Catalog::Open(store->cold_.get()));

  if (!opts.nvme_dir.empty()) {
    NvmeTierOptions nvme_options;
    nvme_options.dir = opts.nvme_dir;
    nvme_options.capacity_bytes = opts.nvme_bytes;
    uint64_t region = opts.nvme_region_bytes;
    if (region == 0) {
      region =
          std::min<uint64_t>(256 * kMiB, opts.nvme_bytes / 4 / kMiB * kMiB);
    }
    nvme_options.region_bytes = region;
    nvme_options.use_io_uring = opts.use_io_uring;
    absl::StatusOr<std::unique_ptr<NvmeTier>> nvme =
        NvmeTier::Open(std::move(nvme_options));
    if (absl::IsResourceExhausted(nvme.status()) ||
        absl::IsUnavailable(nvme.status())) {
      // The warm cache is only a cache: serve from DRAM and cold without it
      // rather than not at all.
      spdlog::warn(
          "event=nvme_disabled dir={} action=\"serving from DRAM and cold "
          "only\" status=\"{}\"",
          opts.nvme_dir, nvme.status().ToString());
    } else if (!nvme.ok()) {
      return Annotate(nvme.status(), "NVMe tier");
    } else {
      store->nvme_ = *std::move(nvme);
    }
  }

  DramTierOptions dram_options;
  dram_options.capacity_bytes = opts.dram_bytes;
  dram_options.pin_budget_bytes = opts.pin_budget_bytes;
  dram_options.typical_block_bytes = opts.block_bytes;
  TieredStore* raw = store.get();
  dram_options.on_evict = [raw](const CacheKey& key, BlockRef block) {
    raw->OnEvict(key, std::move(block));
  };
  absl::StatusOr<std::unique_ptr<DramTier>> dram =
      DramTier::Open(std::move(dram_options));
  if (!dram.ok()) return Annotate(dram.status(), "DRAM tier");
  store->dram_ = *std::move(dram);

  // Freed buffers kept for reuse are memory outside the DRAM budget: keep
  // them to an eighth of it.
  BufferPool::Default().SetMaxRetainedBytes(
      std::min<uint64_t>(128 * kMiB, opts.dram_bytes / 8));
  store->cold_readers_ =
      std::make_unique<ThreadPool>("pstore-cold", opts.cold_read_threads);
  int encode_threads =
      opts.encode_threads > 0
          ? opts.encode_threads
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  store->encoders_ =
      std::make_unique<ThreadPool>("pstore-encode", encode_threads);
  if (store->nvme_ != nullptr) {
    store->spill_thread_ = std::thread([raw] { raw->SpillLoop(); });
  }
  if (opts.repin_on_open) {
    PSTORE_ASSIGN_OR_RETURN(std::vector<RevisionName> pins,
                            store->catalog_->ListPinRecords());
    if (!pins.empty()) {
      store->repin_thread_ =
          std::thread([raw, pins = std::move(pins)]() mutable {
            raw->RepinLoop(std::move(pins));
          });
    }
  }
  return store;
}

TieredStore::~TieredStore() {
  stopping_ = true;
  if (repin_thread_.joinable()) repin_thread_.join();
  {
    // Readers should be gone; give stragglers of the tiers time to finish.
    absl::MutexLock lock(&inflight_mu_);
    if (!inflight_mu_.AwaitWithTimeout(
            absl::Condition(
                +[](absl::flat_hash_map<BlockId, std::vector<ReadCallback>>*
                        inflight) { return inflight->empty(); },
                &inflight_),
            absl::Seconds(30))) {
      spdlog::warn("event=store_close_with_reads reads_in_flight={}",
                   inflight_.size());
    }
  }
  {
    absl::MutexLock lock(&spill_mu_);
    spill_stop_ = true;
  }
  if (spill_thread_.joinable()) spill_thread_.join();
  cold_readers_.reset();
  encoders_.reset();
  dram_.reset();
  nvme_.reset();
  catalog_.reset();
  cold_.reset();
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
  return std::unique_ptr<TensorWriter>(new TensorWriter(
      this, std::move(spec), *byte_length, options_.block_bytes));
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
  PSTORE_ASSIGN_OR_RETURN(std::vector<BlockId> collected,
                          catalog_->DeleteTensor(name));
  EraseFromCaches(collected);
  return absl::OkStatus();
}

void TieredStore::ReadEncodedBlockAsync(const BlockId& id, DType dtype,
                                        Encoding encoding,
                                        EncodedReadCallback done) {
  if (IsIdentityEncoding(dtype, encoding)) {
    ReadBlockAsync(
        id, [done = std::move(done)](absl::StatusOr<BlockRef> block) mutable {
          if (!block.ok()) {
            std::move(done)(block.status());
            return;
          }
          std::move(done)(EncodedBlock{*std::move(block), QuantizationStats()});
        });
    return;
  }
  CacheKey key{id, static_cast<uint8_t>(encoding)};
  absl::StatusOr<BlockRef> hit = dram_->Lookup(key);
  {
    absl::ReleasableMutexLock lock(&encode_mu_);
    if (hit.ok()) {
      auto stats = derived_stats_.find({key.id, key.variant});
      // Stats go in before the block and leave after it: a block without
      // them is being evicted; encode it again.
      if (stats != derived_stats_.end()) {
        EncodedBlock block{*std::move(hit), stats->second};
        lock.Release();
        encoded_hits_.fetch_add(1, std::memory_order_relaxed);
        std::move(done)(std::move(block));
        return;
      }
    }
    auto [it, inserted] =
        encode_inflight_.try_emplace(std::make_pair(key.id, key.variant));
    it->second.push_back(std::move(done));
    if (!inserted) return;
  }
  EncodeBlock(id, dtype, encoding);
}

void TieredStore::EncodeBlock(const BlockId& id, DType dtype,
                              Encoding encoding) {
  CacheKey key{id, static_cast<uint8_t>(encoding)};
  ReadBlockAsync(id, [this, key, dtype,
                      encoding](absl::StatusOr<BlockRef> raw) {
    if (!raw.ok()) {
      FinishEncode(key, raw.status());
      return;
    }
    encoders_->Schedule([this, key, dtype, encoding, raw = *std::move(raw)] {
      uint64_t element_size = DTypeSize(dtype);
      uint64_t elements = raw->size() / element_size;
      if (raw->size() % element_size != 0 ||
          (IsQuantized(encoding) && elements % kQuantBlockElements != 0)) {
        FinishEncode(key,
                     absl::InvalidArgumentError(absl::StrCat(
                         "block ", key.id.ToHex(), " of ", raw->size(),
                         " bytes cannot be read as ", EncodingName(encoding))));
        return;
      }
      uint64_t length = EncodedByteLength(dtype, encoding, elements);
      Buffer buffer = BufferPool::Default().Allocate(length);
      QuantizationStats stats;
      absl::Status encoded = Encode(dtype, raw->bytes(), encoding,
                                    std::span<uint8_t>(buffer.data(), length),
                                    IsQuantized(encoding) ? &stats : nullptr);
      if (!encoded.ok()) {
        FinishEncode(key, encoded);
        return;
      }
      BlockRef block = MakeBlock(std::move(buffer), length);
      {
        absl::MutexLock lock(&encode_mu_);
        derived_stats_[{key.id, key.variant}] = stats;
      }
      // Refused only when DRAM is full of pinned blocks: serve it anyway.
      (void)dram_->Insert(key, block);
      blocks_encoded_.fetch_add(1, std::memory_order_relaxed);
      FinishEncode(key, EncodedBlock{std::move(block), stats});
    });
  });
}

void TieredStore::FinishEncode(const CacheKey& key,
                               absl::StatusOr<EncodedBlock> result) {
  std::vector<EncodedReadCallback> waiters;
  {
    absl::MutexLock lock(&encode_mu_);
    auto it = encode_inflight_.find({key.id, key.variant});
    if (it != encode_inflight_.end()) {
      waiters = std::move(it->second);
      encode_inflight_.erase(it);
    }
  }
  for (EncodedReadCallback& waiter : waiters) std::move(waiter)(result);
}

std::optional<EncodedTensorSummary> TieredStore::FindEncodedSummary(
    const TensorMeta& tensor, Encoding encoding) const {
  absl::MutexLock lock(&summary_mu_);
  auto it = summaries_.find({tensor.xxh3_64, tensor.byte_length,
                             static_cast<uint8_t>(tensor.dtype),
                             static_cast<uint8_t>(encoding)});
  if (it == summaries_.end()) return std::nullopt;
  return it->second;
}

void TieredStore::RecordEncodedSummary(const TensorMeta& tensor,
                                       Encoding encoding,
                                       const EncodedTensorSummary& summary) {
  absl::MutexLock lock(&summary_mu_);
  if (summaries_.size() >= kMaxSummaries) summaries_.clear();
  summaries_[{tensor.xxh3_64, tensor.byte_length,
              static_cast<uint8_t>(tensor.dtype),
              static_cast<uint8_t>(encoding)}] = summary;
}

void TieredStore::ReadBlockAsync(const BlockId& id, ReadCallback done) {
  absl::Time start = absl::Now();
  absl::StatusOr<BlockRef> hit = dram_->Lookup(CacheKey{id, kStoredVariant});
  if (hit.ok()) {
    reads_from_[static_cast<int>(TierKind::kDram)].fetch_add(
        1, std::memory_order_relaxed);
    if (options_.on_block_read) {
      options_.on_block_read(TierKind::kDram, absl::Now() - start);
    }
    std::move(done)(std::move(hit));
    return;
  }
  {
    absl::MutexLock lock(&inflight_mu_);
    auto [it, inserted] = inflight_.try_emplace(id);
    it->second.push_back(std::move(done));
    if (!inserted) {
      coalesced_reads_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  StartDiskRead(id, start);
}

void TieredStore::StartDiskRead(const BlockId& id, absl::Time start) {
  if (nvme_ != nullptr && nvme_->Contains(id)) {
    nvme_->ReadAsync(id, [this, id, start](absl::StatusOr<BlockRef> result) {
      if (result.ok()) {
        FinishRead(id, std::move(result), TierKind::kNvme, start);
        return;
      }
      // A corrupt or failed NVMe entry is only a cache miss: cold has it.
      if (!absl::IsNotFound(result.status())) {
        spdlog::warn(
            "event=nvme_read_failed block={} action=read_cold status=\"{}\"",
            id.ToHex(), result.status().ToString());
      }
      ReadFromCold(id, start);
    });
    return;
  }
  ReadFromCold(id, start);
}

void TieredStore::ReadFromCold(const BlockId& id, absl::Time start) {
  cold_readers_->Schedule([this, id, start] {
    FinishRead(id, cold_->Read(id), TierKind::kCold, start);
  });
}

void TieredStore::FinishRead(const BlockId& id, absl::StatusOr<BlockRef> result,
                             TierKind source, absl::Time start) {
  if (result.ok()) {
    reads_from_[static_cast<int>(source)].fetch_add(1,
                                                    std::memory_order_relaxed);
    if (options_.on_block_read) {
      options_.on_block_read(source, absl::Now() - start);
    }
    // Refused only when DRAM is full of pinned blocks: serve it anyway.
    (void)dram_->Insert(CacheKey{id, kStoredVariant}, *result);
  }
  std::vector<ReadCallback> waiters;
  {
    absl::MutexLock lock(&inflight_mu_);
    auto it = inflight_.find(id);
    if (it != inflight_.end()) {
      waiters = std::move(it->second);
      inflight_.erase(it);
    }
  }
  for (ReadCallback& waiter : waiters) std::move(waiter)(result);
}

absl::StatusOr<BlockRef> TieredStore::ReadBlock(const BlockId& id) {
  absl::Notification done;
  absl::StatusOr<BlockRef> result;
  ReadBlockAsync(id, [&](absl::StatusOr<BlockRef> block) {
    result = std::move(block);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<BlockRef> TieredStore::ReadBelowDram(const BlockId& id) {
  if (nvme_ != nullptr && nvme_->Contains(id)) {
    absl::StatusOr<BlockRef> block = nvme_->Read(id);
    if (block.ok()) {
      reads_from_[static_cast<int>(TierKind::kNvme)].fetch_add(
          1, std::memory_order_relaxed);
      return block;
    }
  }
  absl::StatusOr<BlockRef> block = cold_->Read(id);
  if (block.ok()) {
    reads_from_[static_cast<int>(TierKind::kCold)].fetch_add(
        1, std::memory_order_relaxed);
  }
  return block;
}

absl::StatusOr<std::string> TieredStore::ReadTensor(const TensorName& name,
                                                    uint64_t offset,
                                                    uint64_t length) {
  PSTORE_ASSIGN_OR_RETURN(TensorMeta meta, catalog_->GetTensor(name));
  PSTORE_ASSIGN_OR_RETURN(std::vector<BlockSlice> slices,
                          SliceTensor(meta, offset, length));
  std::string bytes;
  for (const BlockSlice& slice : slices) {
    absl::StatusOr<BlockRef> block = ReadBlock(slice.id);
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

absl::Status TieredStore::CreateRevision(
    const RevisionName& name,
    const std::map<std::string, std::string>& metadata) {
  PSTORE_RETURN_IF_ERROR(ValidateModelName(name.model));
  if (name.revision.empty()) {
    return absl::InvalidArgumentError("name the revision: MODEL@REV");
  }
  PSTORE_RETURN_IF_ERROR(ValidateRevisionName(name.revision));
  return catalog_->CreateRevision(name, metadata);
}

absl::Status TieredStore::PublishRevision(const RevisionName& name) {
  if (name.revision.empty()) {
    return absl::InvalidArgumentError("name the revision: MODEL@REV");
  }
  return catalog_->PublishRevision(name);
}

absl::Status TieredStore::DeleteRevision(const RevisionName& name) {
  if (name.revision.empty()) {
    return absl::InvalidArgumentError("name the revision: MODEL@REV");
  }
  absl::Status unpinned = dram_->Unpin(name.ToString());
  if (!unpinned.ok() && !absl::IsNotFound(unpinned)) return unpinned;
  PSTORE_ASSIGN_OR_RETURN(std::vector<BlockId> collected,
                          catalog_->DeleteRevision(name));
  EraseFromCaches(collected);
  return absl::OkStatus();
}

void TieredStore::EraseFromCaches(const std::vector<BlockId>& ids) {
  {
    absl::MutexLock lock(&encode_mu_);
    for (const BlockId& id : ids) {
      for (Encoding encoding : AllEncodings()) {
        derived_stats_.erase({id, static_cast<uint8_t>(encoding)});
      }
    }
  }
  for (const BlockId& id : ids) {
    // Cache erases fail only on a broken invariant; the blocks are gone
    // from cold and can never be read by name again.
    (void)dram_->Erase(id);
    if (nvme_ != nullptr) (void)nvme_->Erase(id);
  }
  collected_blocks_.fetch_add(ids.size(), std::memory_order_relaxed);
}

absl::StatusOr<
    std::pair<RevisionName, std::vector<std::pair<BlockId, uint64_t>>>>
TieredStore::RevisionBlocks(const RevisionName& name) const {
  PSTORE_ASSIGN_OR_RETURN(auto manifest, catalog_->GetManifest(name));
  std::vector<std::pair<BlockId, uint64_t>> blocks;
  absl::flat_hash_set<BlockId> seen;
  for (const TensorMeta& tensor : manifest.second) {
    for (size_t i = 0; i < tensor.blocks.size(); ++i) {
      if (seen.insert(tensor.blocks[i]).second) {
        blocks.emplace_back(tensor.blocks[i], tensor.BlockSize(i));
      }
    }
  }
  return std::make_pair(manifest.first.name, std::move(blocks));
}

absl::Status TieredStore::Pin(const RevisionName& name) {
  PSTORE_ASSIGN_OR_RETURN(auto revision, RevisionBlocks(name));
  std::vector<PinnedBlockSpec> specs;
  specs.reserve(revision.second.size());
  for (const auto& [id, size] : revision.second) {
    specs.push_back(PinnedBlockSpec{id, size});
  }
  std::string pin_name = revision.first.ToString();
  PSTORE_RETURN_IF_ERROR(dram_->Pin(pin_name, specs, [this](const BlockId& id) {
    return ReadBelowDram(id);
  }));
  if (absl::Status recorded = catalog_->AddPinRecord(revision.first);
      !recorded.ok()) {
    (void)dram_->Unpin(pin_name);  // Undo: the pin is all or nothing.
    return recorded;
  }
  return absl::OkStatus();
}

absl::Status TieredStore::Unpin(const RevisionName& name) {
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, catalog_->Resolve(name));
  PSTORE_RETURN_IF_ERROR(dram_->Unpin(resolved.ToString()));
  return catalog_->RemovePinRecord(resolved);
}

std::vector<std::string> TieredStore::ListPins() const {
  return dram_->ListPins();
}

void TieredStore::RepinLoop(std::vector<RevisionName> pins) {
  for (const RevisionName& name : pins) {
    if (stopping_) return;
    absl::Time start = absl::Now();
    absl::StatusOr<
        std::pair<RevisionName, std::vector<std::pair<BlockId, uint64_t>>>>
        revision = RevisionBlocks(name);
    absl::Status status = revision.status();
    if (status.ok()) {
      std::vector<PinnedBlockSpec> specs;
      for (const auto& [id, size] : revision->second) {
        specs.push_back(PinnedBlockSpec{id, size});
      }
      status = dram_->Pin(name.ToString(), specs, [this](const BlockId& id) {
        return ReadBelowDram(id);
      });
    }
    if (status.ok()) {
      spdlog::info("event=repinned revision={} seconds={:.3f}", name.ToString(),
                   absl::ToDoubleSeconds(absl::Now() - start));
    } else {
      spdlog::warn("event=repin_failed revision={} status=\"{}\"",
                   name.ToString(), status.ToString());
    }
  }
}

absl::StatusOr<PrefetchResult> TieredStore::Prefetch(const RevisionName& name,
                                                     TierKind tier) {
  if (tier == TierKind::kCold) {
    return absl::InvalidArgumentError(
        "the cold tier holds every block; prefetch into dram or nvme");
  }
  if (tier == TierKind::kNvme && nvme_ == nullptr) {
    return absl::FailedPreconditionError("the NVMe tier is disabled");
  }
  PSTORE_ASSIGN_OR_RETURN(auto revision, RevisionBlocks(name));
  PrefetchResult result;
  result.blocks = revision.second.size();
  for (const auto& block : revision.second) result.bytes += block.second;

  if (tier == TierKind::kNvme) {
    for (const auto& [id, size] : revision.second) {
      if (nvme_->Contains(id)) {
        ++result.already_present;
        continue;
      }
      absl::StatusOr<BlockRef> block =
          dram_->Contains(CacheKey{id, kStoredVariant}) ? dram_->Read(id)
                                                        : cold_->Read(id);
      if (!block.ok()) block = cold_->Read(id);
      if (!block.ok()) return block.status();
      PSTORE_RETURN_IF_ERROR(nvme_->Write(id, *block));
    }
    return result;
  }

  // DRAM: keep kPrefetchWindow reads in flight.
  absl::Mutex mu;
  size_t in_flight = 0;
  absl::Status first_error;
  for (const auto& [id, size] : revision.second) {
    if (dram_->Contains(CacheKey{id, kStoredVariant})) {
      ++result.already_present;
      continue;
    }
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](size_t* n) { return *n < kPrefetchWindow; }, &in_flight));
      if (!first_error.ok()) break;
      ++in_flight;
    }
    ReadBlockAsync(id, [&](absl::StatusOr<BlockRef> block) {
      absl::MutexLock lock(&mu);
      if (!block.ok() && first_error.ok()) first_error = block.status();
      --in_flight;
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](size_t* n) { return *n == 0; }, &in_flight));
  PSTORE_RETURN_IF_ERROR(first_error);
  return result;
}

absl::StatusOr<VerifyReport> TieredStore::Verify(const RevisionName& name) {
  PSTORE_ASSIGN_OR_RETURN(auto manifest, catalog_->GetManifest(name));
  VerifyReport report;
  report.revision = manifest.first.name;
  absl::flat_hash_set<BlockId> seen;
  for (const TensorMeta& tensor : manifest.second) {
    for (size_t i = 0; i < tensor.blocks.size(); ++i) {
      const BlockId& id = tensor.blocks[i];
      if (!seen.insert(id).second) continue;
      ++report.blocks;
      report.bytes += tensor.BlockSize(i);
      auto check = [&](TierKind tier, absl::StatusOr<BlockRef> block) {
        ++report.checked[static_cast<int>(tier)];
        absl::Status error = block.status();
        if (error.ok() && (BlockId::Of((*block)->bytes()) != id ||
                           (*block)->size() != tensor.BlockSize(i))) {
          error = absl::DataLossError(
              absl::StrCat("block ", id.ToHex(), " in ", TierKindName(tier),
                           " fails its XXH3-128 check"));
        }
        if (!error.ok()) {
          report.bad.push_back(
              BadBlock{tensor.name.ToString(), i, id, tier, std::move(error)});
        }
      };
      absl::StatusOr<BlockRef> cached =
          dram_->Contains(CacheKey{id, kStoredVariant})
              ? dram_->Read(id)
              : absl::StatusOr<BlockRef>(absl::NotFoundError(""));
      if (cached.ok()) check(TierKind::kDram, std::move(cached));
      if (nvme_ != nullptr && nvme_->Contains(id)) {
        absl::StatusOr<BlockRef> warm = nvme_->Read(id);
        // A copy gone meanwhile (reclaimed) is not a fault.
        if (!absl::IsNotFound(warm.status())) {
          check(TierKind::kNvme, std::move(warm));
        }
      }
      check(TierKind::kCold, cold_->Read(id));
    }
  }
  return report;
}

absl::Status TieredStore::DropCache(TierKind tier) {
  switch (tier) {
    case TierKind::kDram: {
      PSTORE_RETURN_IF_ERROR(dram_->Clear());
      // Clear dropped every derived block (none is pinned).
      absl::MutexLock lock(&encode_mu_);
      derived_stats_.clear();
      return absl::OkStatus();
    }
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

void TieredStore::OnEvict(const CacheKey& key, BlockRef block) {
  if (key.variant != kStoredVariant) {
    // A derived block is only ever recomputed, never spilled.
    absl::MutexLock lock(&encode_mu_);
    derived_stats_.erase({key.id, key.variant});
    return;
  }
  if (nvme_ == nullptr) return;
  absl::MutexLock lock(&spill_mu_);
  if (spill_stop_ || spill_queue_.size() >= options_.spill_queue_blocks) {
    spills_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  spill_queue_.emplace_back(key.id, std::move(block));
}

void TieredStore::SpillLoop() {
  while (true) {
    std::pair<BlockId, BlockRef> item;
    {
      absl::MutexLock lock(&spill_mu_);
      spill_mu_.Await(absl::Condition(
          +[](TieredStore* store)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->spill_mu_) {
                 return store->spill_stop_ || !store->spill_queue_.empty();
               },
          this));
      if (spill_stop_) return;
      item = std::move(spill_queue_.front());
      spill_queue_.pop_front();
    }
    if (nvme_->Contains(item.first)) continue;
    absl::Status status = nvme_->Write(item.first, item.second);
    absl::MutexLock lock(&spill_mu_);
    if (status.ok()) {
      spills_.fetch_add(1, std::memory_order_relaxed);
      if (spill_warned_) {
        spdlog::info("event=spill_resumed");
        spill_warned_ = false;
      }
    } else {
      spill_failures_.fetch_add(1, std::memory_order_relaxed);
      if (!spill_warned_) {
        spdlog::warn(
            "event=spill_failed action=\"evicted blocks stay only in cold "
            "until spills work again\" status=\"{}\"",
            status.ToString());
        spill_warned_ = true;
      }
    }
  }
}

StoreStats TieredStore::Stats() const {
  StoreStats stats;
  stats.dram = dram_->Stats();
  stats.cold = cold_->Stats();
  if (nvme_ != nullptr) {
    stats.nvme = nvme_->Stats();
    stats.nvme_enabled = true;
    stats.io_uring = nvme_->using_io_uring();
  }
  for (int i = 0; i < 3; ++i) {
    stats.reads_from[i] = reads_from_[i].load(std::memory_order_relaxed);
  }
  stats.coalesced_reads = coalesced_reads_.load(std::memory_order_relaxed);
  stats.spills = spills_.load(std::memory_order_relaxed);
  stats.spills_dropped = spills_dropped_.load(std::memory_order_relaxed);
  stats.spill_failures = spill_failures_.load(std::memory_order_relaxed);
  stats.dedup_blocks = dedup_blocks_.load(std::memory_order_relaxed);
  stats.collected_blocks = collected_blocks_.load(std::memory_order_relaxed);
  stats.blocks_encoded = blocks_encoded_.load(std::memory_order_relaxed);
  stats.encoded_hits = encoded_hits_.load(std::memory_order_relaxed);
  stats.pinned_bytes = dram_->pinned_bytes();
  stats.pin_budget_bytes = dram_->pin_budget_bytes();
  return stats;
}

}  // namespace pstore
