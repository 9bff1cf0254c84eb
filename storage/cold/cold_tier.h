// ColdTier: the durable tier and source of truth of the RocksDB backend:
// the blocks family of a ColdDatabase (storage/cold/cold_database.h), which
// it shares with the RocksDbCatalog.
//
// Write puts the block with the WAL, unsynced: the catalog's next synced
// commit (or Sync) makes it durable. Reads verify the XXH3-128 of the value
// against the block id (DataLoss on a mismatch) and copy the value into a
// pool buffer.
//
// Thread-safe, as RocksDB is.

#ifndef PSTORE_STORAGE_COLD_COLD_TIER_H_
#define PSTORE_STORAGE_COLD_COLD_TIER_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "storage/block.h"
#include "storage/cold/cold_database.h"
#include "storage/tier.h"

namespace pstore {

class ColdTier : public Tier {
 public:
  // Opens a database of its own (for tools and tests that use the tier
  // alone). Codes of ColdDatabase::Open.
  static absl::StatusOr<std::unique_ptr<ColdTier>> Open(
      ColdTierOptions options);

  // Serves the blocks family of `database`.
  explicit ColdTier(std::shared_ptr<ColdDatabase> database);

  absl::string_view name() const override {
    return TierKindName(TierKind::kCold);
  }
  bool Contains(const BlockId& id) const override;
  absl::StatusOr<BlockRef> Read(const BlockId& id) override;
  // ResourceExhausted, before writing, if the write would leave less free
  // space than ColdTierOptions::min_free_bytes.
  absl::Status Write(const BlockId& id, const BlockRef& block) override;
  absl::Status Erase(const BlockId& id) override;
  TierStats Stats() const override;

  // Makes every write so far durable (syncs the WAL).
  absl::Status Sync();

 private:
  const std::shared_ptr<ColdDatabase> database_;

  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> write_bytes_{0};
  std::atomic<uint64_t> read_bytes_{0};
  std::atomic<uint64_t> erases_{0};
  std::atomic<uint64_t> checksum_failures_{0};
  std::atomic<uint64_t> read_errors_{0};
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_COLD_COLD_TIER_H_
