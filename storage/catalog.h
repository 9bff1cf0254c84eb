// Catalog: the metadata of a store, behind one interface: models, their
// revisions (open or published, and which is latest), the tensor records of
// each revision, how many tensor records name each block, and pins. Block
// bytes are not the catalog's: they go through the durable Tier (the cold
// tier), and the store keeps the two in step (storage/block_collector.h).
// cold/ implements it over RocksDB (RocksDbCatalog); every implementation
// passes tests/storage/catalog_conformance_test.cc.
//
// Consistency:
//  - Every change a client can observe (a tensor committed, a delete, a
//    publish) is one durable, atomic write: a crash leaves it whole or
//    absent.
//  - A tensor record and the reference counts of its blocks change in the
//    same write, so a record never names a block the catalog counts as
//    unreferenced.
//  - Blocks whose count reaches zero, and blocks written by a put that has
//    not committed, are marked "staged" in the same write that makes them
//    so. The store erases a staged block with no references from the
//    durable tier and then clears its mark (CollectBlocks in the store); a
//    crash in between leaves the mark, and the next open finds it
//    (ListStaged).
//  - Readers see a publish or a delete entirely or not at all: a name that
//    resolves through "latest" is resolved in the same snapshot it is read
//    in.
//
// Corrupt records are DataLoss wherever they are read, naming the record.
//
// Thread-safe. Writers may serialize among themselves; readers never wait
// for writers.

#ifndef PSTORE_STORAGE_CATALOG_H_
#define PSTORE_STORAGE_CATALOG_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/hash.h"
#include "storage/names.h"
#include "storage/records.h"

namespace pstore {

// How a catalog read may get its data: from anywhere, or only from memory
// (for callers on a thread that must not wait for a disk).
enum class CatalogRead { kAny, kMemoryOnly };

// The most tensors one ListTensors page holds.
inline constexpr int kMaxTensorPageSize = 10000;

class Catalog {
 public:
  virtual ~Catalog() = default;

  // Whether the catalog counts the references to each block (RefCount,
  // staged marks, the blocks deletes return), so that the store collects a
  // block when its last reference goes (storage/block_collector.h). A
  // catalog shared by many nodes does not (RADOS): its unreferenced blocks
  // are found by mark and sweep instead, RefCount is FailedPrecondition,
  // staged marks are not kept and deletes return no blocks.
  virtual bool CountsReferences() const { return true; }

  // --- Reads ---
  // Returns `name` with an empty revision replaced by the model's latest.
  // NotFound if the model does not exist or has no published revision.
  // With kMemoryOnly, WouldBlockError (util/status.h) where the answer is
  // not in memory.
  virtual absl::StatusOr<RevisionName> Resolve(
      const RevisionName& name, CatalogRead mode = CatalogRead::kAny) const = 0;

  // Returns the record of tensor `name` (resolved through latest if its
  // revision is empty). NotFound if absent. With kMemoryOnly,
  // WouldBlockError where the answer is not in memory.
  virtual absl::StatusOr<TensorMeta> GetTensor(
      const TensorName& name, CatalogRead mode = CatalogRead::kAny) const = 0;

  // Returns revision `name` (resolved through latest if it has no
  // revision). NotFound if absent.
  virtual absl::StatusOr<RevisionInfo> GetRevision(
      const RevisionName& name) const = 0;

  // Returns revision `name` (resolved through latest if it has no
  // revision) with every tensor of it in name order, all read at one
  // moment. NotFound if absent.
  virtual absl::StatusOr<Manifest> GetManifest(
      const RevisionName& name) const = 0;

  // Returns up to `page_size` (1..kMaxTensorPageSize) tensors of revision
  // `name` whose names start with `prefix`, in name order, after
  // `page_token` (from the previous page; empty for the first).
  // InvalidArgument for a bad page size or a token of another listing;
  // NotFound if the revision is absent.
  virtual absl::StatusOr<TensorPage> ListTensors(
      const RevisionName& name, absl::string_view prefix, int page_size,
      absl::string_view page_token) const = 0;

  // Returns every model with its revisions, in name order.
  virtual absl::StatusOr<std::vector<ModelInfo>> ListModels() const = 0;

  // Returns the number of tensor-record slots that name block `id` (0 if
  // none).
  virtual absl::StatusOr<uint64_t> RefCount(const BlockId& id) const = 0;

  // --- Revisions ---
  // Creates open revision `name` with `metadata` (and its model, if new).
  // AlreadyExists if the revision exists. REQUIRES: name.revision is not
  // empty.
  virtual absl::Status CreateRevision(
      const RevisionName& name,
      const std::map<std::string, std::string>& metadata) = 0;

  // Creates open revision `name` if it does not exist. FailedPrecondition
  // if it exists and is published.
  virtual absl::Status EnsureOpenRevision(const RevisionName& name) = 0;

  // Publishes revision `name` and makes it the model's latest, in one
  // write. Publishing a published revision is a no-op that returns OK (so a
  // retried call succeeds). NotFound if absent.
  virtual absl::Status PublishRevision(const RevisionName& name) = 0;

  // Deletes revision `name`, its tensors and its pin record, in one write.
  // If it was the latest, the most recently published other revision
  // becomes latest; the model goes with its last revision. Returns the
  // blocks whose count reached zero (marked staged). NotFound if absent.
  virtual absl::StatusOr<std::vector<BlockId>> DeleteRevision(
      const RevisionName& name) = 0;

  // Deletes tensor `name` of an open revision. FailedPrecondition if the
  // revision is published; NotFound if absent. Returns the blocks whose
  // count reached zero (marked staged).
  virtual absl::StatusOr<std::vector<BlockId>> DeleteTensor(
      const TensorName& name) = 0;

  // --- Puts ---
  // Marks block `id` staged: a put is about to write it. The mark must be
  // durable no later than the block's bytes in the durable tier.
  virtual absl::Status MarkStaged(const BlockId& id) = 0;

  // Adds the record of `tensor` (replacing a tensor of the same name) and
  // the references to its blocks, clears the staged marks of its blocks,
  // in one durable write. FailedPrecondition if the revision is published;
  // NotFound if it is absent (deleted during the put). Returns the blocks
  // whose count reached zero (those of a replaced tensor; marked staged).
  virtual absl::StatusOr<std::vector<BlockId>> CommitTensor(
      const TensorMeta& tensor) = 0;

  // --- Staged blocks ---
  // Returns every block marked staged, in id order.
  virtual absl::StatusOr<std::vector<BlockId>> ListStaged() const = 0;

  // Clears the staged marks of `ids` (absent marks are ignored).
  virtual absl::Status ClearStaged(std::span<const BlockId> ids) = 0;

  // --- Pins ---
  // Records that revision `name` is pinned. NotFound if the revision does
  // not exist (it may have been deleted while the pin was loading).
  virtual absl::Status AddPinRecord(const RevisionName& name) = 0;
  // Removes the pin record of `name`; OK if there is none.
  virtual absl::Status RemovePinRecord(const RevisionName& name) = 0;
  // Returns the pinned revisions, in name order.
  virtual absl::StatusOr<std::vector<RevisionName>> ListPinRecords() const = 0;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_CATALOG_H_
