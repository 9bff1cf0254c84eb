#include "storage/encoded_blocks.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/buffer_pool.h"

namespace pstore {
namespace {

// Whole-tensor encoding summaries kept; past it the table starts over.
constexpr size_t kMaxSummaries = 100000;

}  // namespace

EncodedBlockCache::EncodedBlockCache(DramCache* dram, BlockReader* reader,
                                     int encode_threads)
    : dram_(dram),
      reader_(reader),
      encoders_(std::make_unique<ThreadPool>(
          "pstore-encode",
          encode_threads > 0 ? encode_threads
                             : static_cast<int>(std::max(
                                   1u, std::thread::hardware_concurrency())))) {
}

EncodedBlockCache::~EncodedBlockCache() { Drain(); }

void EncodedBlockCache::Drain() { encoders_.reset(); }

void EncodedBlockCache::ReadAsync(const BlockId& id, DType dtype,
                                  Encoding encoding, EncodedReadCallback done) {
  if (IsIdentityEncoding(dtype, encoding)) {
    reader_->ReadAsync(
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
    absl::ReleasableMutexLock lock(&mu_);
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
    auto [it, inserted] = inflight_.try_emplace(DerivedKey(id, key.variant));
    it->second.push_back(std::move(done));
    if (!inserted) return;
  }
  Encode(id, dtype, encoding);
}

void EncodedBlockCache::Encode(const BlockId& id, DType dtype,
                               Encoding encoding) {
  CacheKey key{id, static_cast<uint8_t>(encoding)};
  reader_->ReadAsync(id, [this, key, dtype,
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
      absl::Status encoded =
          pstore::Encode(dtype, raw->bytes(), encoding,
                         std::span<uint8_t>(buffer.data(), length),
                         IsQuantized(encoding) ? &stats : nullptr);
      if (!encoded.ok()) {
        FinishEncode(key, encoded);
        return;
      }
      BlockRef block = MakeBlock(std::move(buffer), length);
      {
        absl::MutexLock lock(&mu_);
        derived_stats_[{key.id, key.variant}] = stats;
      }
      if (!dram_->Insert(key, block).ok()) {
        // Refused only when DRAM is full of pinned blocks: serve it anyway,
        // and remember nothing of a block that is not cached.
        absl::MutexLock lock(&mu_);
        derived_stats_.erase({key.id, key.variant});
      }
      blocks_encoded_.fetch_add(1, std::memory_order_relaxed);
      FinishEncode(key, EncodedBlock{std::move(block), stats});
    });
  });
}

void EncodedBlockCache::FinishEncode(const CacheKey& key,
                                     absl::StatusOr<EncodedBlock> result) {
  std::vector<EncodedReadCallback> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = inflight_.find({key.id, key.variant});
    if (it != inflight_.end()) {
      waiters = std::move(it->second);
      inflight_.erase(it);
    }
  }
  for (EncodedReadCallback& waiter : waiters) std::move(waiter)(result);
}

std::optional<EncodedTensorSummary> EncodedBlockCache::FindSummary(
    const TensorMeta& tensor, Encoding encoding) const {
  absl::MutexLock lock(&summary_mu_);
  auto it = summaries_.find({tensor.xxh3_64, tensor.byte_length,
                             static_cast<uint8_t>(tensor.dtype),
                             static_cast<uint8_t>(encoding)});
  if (it == summaries_.end()) return std::nullopt;
  return it->second;
}

void EncodedBlockCache::RecordSummary(const TensorMeta& tensor,
                                      Encoding encoding,
                                      const EncodedTensorSummary& summary) {
  absl::MutexLock lock(&summary_mu_);
  if (summaries_.size() >= kMaxSummaries) summaries_.clear();
  summaries_[{tensor.xxh3_64, tensor.byte_length,
              static_cast<uint8_t>(tensor.dtype),
              static_cast<uint8_t>(encoding)}] = summary;
}

void EncodedBlockCache::OnEvicted(const CacheKey& key) {
  absl::MutexLock lock(&mu_);
  derived_stats_.erase({key.id, key.variant});
}

void EncodedBlockCache::Forget(std::span<const BlockId> ids) {
  absl::MutexLock lock(&mu_);
  for (const BlockId& id : ids) {
    for (Encoding encoding : AllEncodings()) {
      derived_stats_.erase({id, static_cast<uint8_t>(encoding)});
    }
  }
}

void EncodedBlockCache::ForgetAll() {
  absl::MutexLock lock(&mu_);
  derived_stats_.clear();
}

size_t EncodedBlockCache::remembered_blocks() const {
  absl::MutexLock lock(&mu_);
  return derived_stats_.size();
}

}  // namespace pstore
