// Catalog: models, revisions, tensor records and block reference counts,
// kept in the cold tier's RocksDB (storage/catalog_format.md gives the keys).
//
// Every change a client can observe (a tensor put, a delete, a publish) is
// one synced WriteBatch, so a crash leaves each change whole or absent and a
// record never points at a missing block: the batch that adds a record also
// adds the references to its blocks, and the batch that drops the last
// reference to a block also deletes the block.
//
// Blocks of a put in progress are "staged": counted in memory (so that no
// concurrent delete collects them) and marked in the staged family (so that
// Open collects the ones a crash left without a record).
//
// Thread-safe. Writers are serialized by one mutex held across the synced
// write; readers never take it and read from RocksDB snapshots.

#ifndef PSTORE_STORAGE_CATALOG_H_
#define PSTORE_STORAGE_CATALOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "codec/dtype.h"
#include "codec/hash.h"
#include "storage/cold/cold_tier.h"
#include "storage/names.h"

namespace pstore {

// A stored tensor: what its record holds, with its full name.
struct TensorMeta {
  TensorName name;  // The revision is always resolved (never "latest").
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t byte_length = 0;
  uint64_t xxh3_64 = 0;      // Of the whole tensor.
  uint64_t block_bytes = 0;  // Every block but the last has this size.
  std::vector<BlockId> blocks;
  int64_t created_unix_micros = 0;

  // Returns the size of block `index`. REQUIRES: index < blocks.size().
  uint64_t BlockSize(size_t index) const;
};

struct RevisionInfo {
  RevisionName name;  // Resolved.
  bool published = false;
  bool latest = false;  // The model's latest revision.
  std::map<std::string, std::string> metadata;
  int64_t created_unix_micros = 0;
  int64_t published_unix_micros = 0;
};

struct ModelInfo {
  std::string name;
  std::string latest_revision;  // Empty until the first publish.
  std::vector<RevisionInfo> revisions;
};

struct TensorPage {
  std::vector<TensorMeta> tensors;
  std::string next_page_token;  // Empty on the last page.
};

// How a catalog read may get its data: from anywhere, or only from memory
// (for callers on a thread that must not wait for a disk).
enum class CatalogRead { kAny, kMemoryOnly };

class Catalog {
 public:
  // Opens the catalog on `cold` (not owned; must outlive the catalog) and
  // collects blocks a crash left staged without a record. Returns the
  // catalog; Unavailable or DataLoss if RocksDB fails.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(ColdTier* cold);

  // Returns `name` with an empty revision replaced by the model's latest.
  // NotFound if the model does not exist or has no published revision.
  // With kMemoryOnly, reads only RocksDB's memtables and block cache and
  // returns WouldBlockError where it would read a file.
  absl::StatusOr<RevisionName> Resolve(
      const RevisionName& name, CatalogRead mode = CatalogRead::kAny) const;

  // Returns the record of tensor `name`. NotFound if absent. With
  // kMemoryOnly, WouldBlockError where it would read a file.
  absl::StatusOr<TensorMeta> GetTensor(
      const TensorName& name, CatalogRead mode = CatalogRead::kAny) const;

  // Returns revision `name` (resolved through latest if it has no revision).
  // NotFound if absent.
  absl::StatusOr<RevisionInfo> GetRevision(const RevisionName& name) const;

  // Returns every tensor of revision `name` in name order, read from one
  // snapshot, with the revision: a consistent manifest.
  absl::StatusOr<std::pair<RevisionInfo, std::vector<TensorMeta>>> GetManifest(
      const RevisionName& name) const;

  // Returns up to `page_size` (1..10000) tensors of revision `name` whose
  // names start with `prefix`, in name order, after `page_token` (from the
  // previous page; empty for the first). InvalidArgument for a bad page
  // size.
  absl::StatusOr<TensorPage> ListTensors(const RevisionName& name,
                                         absl::string_view prefix,
                                         int page_size,
                                         absl::string_view page_token) const;

  // Returns every model with its revisions, in name order.
  absl::StatusOr<std::vector<ModelInfo>> ListModels() const;

  // Creates open revision `name` with `metadata`. AlreadyExists if it
  // exists. REQUIRES: name.revision is not empty.
  absl::Status CreateRevision(
      const RevisionName& name,
      const std::map<std::string, std::string>& metadata);

  // Creates open revision `name` if it does not exist; FailedPrecondition if
  // it exists and is published.
  absl::Status EnsureOpenRevision(const RevisionName& name);

  // Publishes revision `name` and makes it the model's latest, in one synced
  // write. Publishing a published revision is a no-op that returns OK (so a
  // retried call succeeds). NotFound if absent.
  absl::Status PublishRevision(const RevisionName& name);

  // Deletes revision `name` and its tensors (and its pin record). If it was
  // the latest, the most recently published other revision becomes latest.
  // Returns the blocks no longer referenced, already deleted from the cold
  // tier; the caller drops them from the upper tiers.
  absl::StatusOr<std::vector<BlockId>> DeleteRevision(const RevisionName& name);

  // Deletes tensor `name` of an open revision. FailedPrecondition if the
  // revision is published; NotFound if absent. Returns unreferenced blocks.
  absl::StatusOr<std::vector<BlockId>> DeleteTensor(const TensorName& name);

  // --- Puts ---
  // Marks block `id` as used by a put in progress. Returns true if the block
  // is already stored (committed, or written by another put in progress):
  // the caller then compares bytes instead of writing.
  absl::StatusOr<bool> StageBlock(const BlockId& id);

  // Writes a staged block's bytes with its staged marker (one unsynced
  // batch; the commit's synced batch makes both durable).
  absl::Status WriteStagedBlock(const BlockId& id, const BlockRef& block);

  // Adds the record of `tensor` (replacing a tensor of the same name) with
  // the references to its blocks, in one synced write, and unstages its
  // blocks. FailedPrecondition if the revision is published (or was
  // published during the put); NotFound if it was deleted. Returns blocks
  // no longer referenced (those of a replaced tensor).
  absl::StatusOr<std::vector<BlockId>> CommitTensor(const TensorMeta& tensor);

  // Unstages `ids` (one entry per StageBlock call) of a put that will not
  // commit, deleting those no record references. Returns the deleted ones.
  absl::StatusOr<std::vector<BlockId>> AbortStaged(
      const std::vector<BlockId>& ids);

  // Returns the reference count of block `id` (0 if none).
  absl::StatusOr<uint64_t> RefCount(const BlockId& id) const;

  // --- Pins ---
  absl::Status AddPinRecord(const RevisionName& name);
  absl::Status RemovePinRecord(const RevisionName& name);
  absl::StatusOr<std::vector<RevisionName>> ListPinRecords() const;

 private:
  explicit Catalog(ColdTier* cold) : cold_(cold) {}

  absl::Status CollectStagedOrphans();
  // Adds to `batch` the reference count changes in `deltas`, deleting
  // blocks that reach zero (and returning them in `collected`).
  absl::Status ApplyRefDeltas(
      const absl::flat_hash_map<BlockId, int64_t>& deltas,
      rocksdb::WriteBatch* batch, std::vector<BlockId>* collected)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<std::string>> GetValue(
      rocksdb::ColumnFamilyHandle* family, const std::string& key,
      const rocksdb::Snapshot* snapshot = nullptr,
      CatalogRead mode = CatalogRead::kAny) const;

  ColdTier* const cold_;
  absl::Mutex mu_;
  struct Staging {
    int64_t count = 0;     // StageBlock calls not yet committed or aborted.
    bool written = false;  // Some put wrote the bytes.
  };
  absl::flat_hash_map<BlockId, Staging> staging_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_CATALOG_H_
