// TensorWriter: receives the bytes of one tensor, in order, and commits it.
// Bytes are cut into blocks (every block but the last block_bytes long),
// each hashed (XXH3-128 = its id), deduplicated against stored blocks after
// a byte compare, written to the durable tier (several at once where the
// tier writes asynchronously) and cached in DRAM; the
// commit adds the tensor record and its block references in one durable
// catalog write. Destroying a writer that has not committed aborts it,
// leaving no block behind.
//
// Made by TieredStore::PutTensor. Owned by one thread at a time.

#ifndef PSTORE_STORAGE_TENSOR_WRITER_H_
#define PSTORE_STORAGE_TENSOR_WRITER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "codec/dtype.h"
#include "codec/hash.h"
#include "storage/block_collector.h"
#include "storage/block_reader.h"
#include "storage/buffer_pool.h"
#include "storage/catalog.h"
#include "storage/names.h"
#include "storage/records.h"
#include "storage/tier_set.h"

namespace pstore {

// What a put needs to know before the bytes arrive.
struct PutTensorSpec {
  TensorName name;  // Must name its revision.
  // A file or shard header must be U8 of one dimension.
  EntryKind kind = EntryKind::kTensor;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // The XXH3-64 of the whole tensor, checked at Commit when set.
  std::optional<uint64_t> expected_xxh3_64;
};

class TensorWriter {
 public:
  // What a writer works with; not owned, all outlive the writer.
  struct Parts {
    Catalog* catalog = nullptr;
    TierSet tiers;
    BlockReader* reader = nullptr;
    BlockCollector* collector = nullptr;
    std::atomic<uint64_t>* dedup_blocks = nullptr;  // Counts reused blocks.
  };

  // Starts a put of `spec`, whose bytes are `byte_length` long, cut into
  // blocks of `block_bytes`. REQUIRES: the spec was validated.
  TensorWriter(Parts parts, PutTensorSpec spec, uint64_t byte_length,
               uint64_t block_bytes);
  ~TensorWriter();
  TensorWriter(const TensorWriter&) = delete;
  TensorWriter& operator=(const TensorWriter&) = delete;

  // Appends the next bytes of the tensor. InvalidArgument if they pass the
  // tensor's byte length; errors of the durable tier (ResourceExhausted
  // when the disk is full). After an error the writer is aborted.
  absl::Status Append(std::span<const uint8_t> bytes);

  // Makes the tensor visible. InvalidArgument if fewer bytes arrived than
  // the shape says; DataLoss if the expected XXH3-64 does not match;
  // FailedPrecondition if the revision was published meanwhile; NotFound
  // if it was deleted. Any error aborts the writer.
  absl::StatusOr<TensorMeta> Commit();

  // Drops what was written. Idempotent.
  void Abort();

  uint64_t bytes_received() const { return received_; }
  uint64_t byte_length() const { return byte_length_; }

 private:
  absl::Status SealBlock();
  // Waits until at most `at_most` asynchronous block writes are in flight;
  // returns the first error one of them ended with.
  absl::Status WaitForWrites(int at_most);

  const Parts parts_;
  const PutTensorSpec spec_;
  const uint64_t byte_length_;
  const uint64_t block_bytes_;
  const int64_t started_unix_micros_;
  uint64_t received_ = 0;
  Buffer current_;
  size_t current_size_ = 0;
  Xxh3_64Hasher hasher_;
  std::vector<BlockId> blocks_;
  std::vector<BlockId> staged_;  // One entry per Stage call.
  bool done_ = false;

  // Block writes in flight to a durable tier that writes asynchronously
  // (Tier::writes_async): at most kMaxWritesInFlight, all ended before the
  // commit.
  static constexpr int kMaxWritesInFlight = 8;
  absl::Mutex write_mu_;
  int writes_in_flight_ ABSL_GUARDED_BY(write_mu_) = 0;
  absl::Status write_error_ ABSL_GUARDED_BY(write_mu_);
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_TENSOR_WRITER_H_
