// RocksDbCatalog: the Catalog (storage/catalog.h) of the RocksDB backend,
// in the refs, staged and catalog families of a ColdDatabase; keys and
// values in storage/cold/catalog_format.md.
//
// Every change is one WriteBatch, synced (ColdTierOptions::sync_commits).
// Writers are serialized by one mutex held across their read-modify-write
// and the synced write; readers never take it and read from RocksDB
// snapshots. Thread-safe.

#ifndef PSTORE_STORAGE_COLD_ROCKSDB_CATALOG_H_
#define PSTORE_STORAGE_COLD_ROCKSDB_CATALOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/catalog.h"
#include "storage/cold/cold_database.h"

namespace pstore {

class RocksDbCatalog : public Catalog {
 public:
  // Keeps the catalog in `database`, which it shares with the cold tier.
  explicit RocksDbCatalog(std::shared_ptr<ColdDatabase> database);

  absl::StatusOr<RevisionName> Resolve(
      const RevisionName& name,
      CatalogRead mode = CatalogRead::kAny) const override;
  absl::StatusOr<TensorMeta> GetTensor(
      const TensorName& name,
      CatalogRead mode = CatalogRead::kAny) const override;
  absl::StatusOr<RevisionInfo> GetRevision(
      const RevisionName& name) const override;
  absl::StatusOr<Manifest> GetManifest(const RevisionName& name) const override;
  absl::StatusOr<TensorPage> ListTensors(
      const RevisionName& name, absl::string_view prefix, int page_size,
      absl::string_view page_token) const override;
  absl::StatusOr<std::vector<ModelInfo>> ListModels() const override;
  absl::StatusOr<uint64_t> RefCount(const BlockId& id) const override;

  absl::Status CreateRevision(
      const RevisionName& name,
      const std::map<std::string, std::string>& metadata) override;
  absl::Status EnsureOpenRevision(const RevisionName& name) override;
  absl::Status PublishRevision(const RevisionName& name) override;
  absl::StatusOr<std::vector<BlockId>> DeleteRevision(
      const RevisionName& name) override;
  absl::StatusOr<std::vector<BlockId>> DeleteTensor(
      const TensorName& name) override;

  absl::Status MarkStaged(const BlockId& id) override;
  absl::StatusOr<std::vector<BlockId>> CommitTensor(
      const TensorMeta& tensor) override;
  absl::StatusOr<std::vector<BlockId>> ListStaged() const override;
  absl::Status ClearStaged(std::span<const BlockId> ids) override;

  absl::Status AddPinRecord(const RevisionName& name) override;
  absl::Status RemovePinRecord(const RevisionName& name) override;
  absl::StatusOr<std::vector<RevisionName>> ListPinRecords() const override;

 private:
  // Returns the value of `key` in `family` (from `snapshot` when set), or
  // nothing if absent. With kMemoryOnly, WouldBlockError where RocksDB
  // would read a file.
  absl::StatusOr<std::optional<std::string>> GetValue(
      ColdDatabase::Family family, const std::string& key,
      const rocksdb::Snapshot* snapshot = nullptr,
      CatalogRead mode = CatalogRead::kAny) const;
  // Resolve, reading from `snapshot`.
  absl::StatusOr<RevisionName> ResolveAt(const RevisionName& name,
                                         const rocksdb::Snapshot* snapshot,
                                         CatalogRead mode) const;
  // Returns revision `resolved` as read from `snapshot`, with whether it is
  // its model's latest. NotFound if absent.
  absl::StatusOr<RevisionInfo> RevisionAt(
      const RevisionName& resolved, const rocksdb::Snapshot* snapshot) const;
  // Adds to `batch` the reference count changes in `deltas`; blocks that
  // reach zero lose their count, are marked staged, and are appended to
  // `unreferenced`.
  absl::Status ApplyRefDeltas(
      const absl::flat_hash_map<BlockId, int64_t>& deltas,
      rocksdb::WriteBatch* batch, std::vector<BlockId>* unreferenced)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<ColdDatabase> database_;
  // Serializes writers.
  absl::Mutex mu_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_COLD_ROCKSDB_CATALOG_H_
