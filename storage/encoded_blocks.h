// EncodedBlockCache: blocks read in an encoding (f32, f16, bf16, q8_0,
// q4_0). A derived block is computed from the stored block on a pool of
// encoding threads and cached in DRAM under (block id, encoding), evictable
// like any block, with what the encoding lost; concurrent readers of the
// same missing derived block share one encoding. It also remembers, per
// stored tensor and encoding, the hash and error of the whole encoded
// tensor once a read has seen all of it.
//
// Thread-safe. ReadAsync never blocks.

#ifndef PSTORE_STORAGE_ENCODED_BLOCKS_H_
#define PSTORE_STORAGE_ENCODED_BLOCKS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/block_reader.h"
#include "storage/dram_cache.h"
#include "storage/records.h"
#include "util/thread_pool.h"

namespace pstore {

// A block read in an encoding, and what the encoding lost.
struct EncodedBlock {
  BlockRef block;
  QuantizationStats stats;  // Empty unless the encoding quantizes.
};

using EncodedReadCallback =
    absl::AnyInvocable<void(absl::StatusOr<EncodedBlock>) &&>;

// What a whole tensor looks like in an encoding: known once it has been
// read from end to end.
struct EncodedTensorSummary {
  uint64_t xxh3_64 = 0;  // Of the encoded bytes.
  QuantizationStats stats;
};

class EncodedBlockCache {
 public:
  // Caches derived blocks in `dram` and reads stored blocks through
  // `reader` (neither owned). `encode_threads` 0 means one per CPU.
  EncodedBlockCache(DramCache* dram, BlockReader* reader, int encode_threads);

  // Drains (see Drain).
  ~EncodedBlockCache();

  // Runs the encodings queued and stops the encoding threads. REQUIRES: no
  // read starts after.
  void Drain();

  // Reads block `id` of a tensor of `dtype` in `encoding`: the stored block
  // for an identity encoding, else the derived block from DRAM or encoded
  // now. REQUIRES: the pair is encodable, and for quantized encodings the
  // block holds a multiple of 32 elements. Codes: those of
  // BlockReader::ReadAsync; InvalidArgument if the block cannot be encoded.
  void ReadAsync(const BlockId& id, DType dtype, Encoding encoding,
                 EncodedReadCallback done);

  // Returns what is known of `tensor` in `encoding`, or nothing.
  std::optional<EncodedTensorSummary> FindSummary(const TensorMeta& tensor,
                                                  Encoding encoding) const;
  // Records the summary of a whole-tensor read.
  void RecordSummary(const TensorMeta& tensor, Encoding encoding,
                     const EncodedTensorSummary& summary);

  // Forgets what derived block `key` lost: DRAM evicted it.
  void OnEvicted(const CacheKey& key);
  // Forgets the derived blocks of `ids`: they were erased.
  void Forget(std::span<const BlockId> ids);
  // Forgets every derived block: DRAM was cleared.
  void ForgetAll();

  uint64_t blocks_encoded() const {
    return blocks_encoded_.load(std::memory_order_relaxed);
  }
  uint64_t encoded_hits() const {
    return encoded_hits_.load(std::memory_order_relaxed);
  }
  // Returns the number of derived blocks whose loss is remembered (at most
  // the number cached in DRAM).
  size_t remembered_blocks() const;

 private:
  using DerivedKey = std::pair<BlockId, uint8_t>;

  void Encode(const BlockId& id, DType dtype, Encoding encoding);
  void FinishEncode(const CacheKey& key, absl::StatusOr<EncodedBlock> result);

  DramCache* const dram_;
  BlockReader* const reader_;

  mutable absl::Mutex mu_;
  // Encodings in flight, with their waiters.
  absl::flat_hash_map<DerivedKey, std::vector<EncodedReadCallback>> inflight_
      ABSL_GUARDED_BY(mu_);
  // What each cached derived block lost; in before the block enters DRAM,
  // out when it leaves.
  absl::flat_hash_map<DerivedKey, QuantizationStats> derived_stats_
      ABSL_GUARDED_BY(mu_);

  // Whole-tensor summaries, by (stored hash, length, dtype, encoding).
  mutable absl::Mutex summary_mu_;
  absl::flat_hash_map<std::tuple<uint64_t, uint64_t, uint8_t, uint8_t>,
                      EncodedTensorSummary>
      summaries_ ABSL_GUARDED_BY(summary_mu_);

  std::atomic<uint64_t> blocks_encoded_{0};
  std::atomic<uint64_t> encoded_hits_{0};
  // Last: destroyed first, so encodings finish while the rest exists.
  std::unique_ptr<ThreadPool> encoders_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_ENCODED_BLOCKS_H_
