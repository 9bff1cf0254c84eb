// RadosCatalog: the catalog of the RADOS backend, kept in the store's pool
// and namespace so that every pstored node over that pool sees one
// catalog. storage/rados/rados_format.md gives the objects and keys.
//
// What makes it safe with many writers on many nodes, given that RADOS
// makes one operation on one object atomic (guards included) and nothing
// across objects:
//  - Each model's revisions (state, metadata) and its latest revision are
//    omap keys of one model object, changed only by compare-and-swap on
//    that object's version (assert_version): create, publish and delete are
//    each one atomic write there, so a reader on any node sees the latest
//    revision move whole, and of two nodes creating the same revision one
//    wins and the other gets AlreadyExists.
//  - A revision's tensor records are omap keys of its own object, which
//    carries the revision's state and creation time as xattrs. A commit is
//    guarded on both (cmpxattr): publish marks that object published before
//    it publishes in the model object, so no record can join a revision
//    once it is published, and a commit can never land in a later revision
//    of the same name.
//  - Blocks are not counted: CountsReferences() is false, deletes return
//    no blocks, and unreferenced blocks are found by mark and sweep.
//
// Caching across nodes: a node keeps what it read of each model (its
// revisions and latest) and the tensor records of published revisions
// (immutable: kept until the model no longer names that revision). Every
// change to a model object is announced on the object catalog.events
// (RADOS notify); every node watches it and forgets that model, so its next
// read fetches it again. A node that missed a notice (a broken watch, a
// lost message) re-reads a model it read more than catalog_refresh ago
// (RadosOptions): a revision deleted on one node stops being served by the
// others within that bound, usually within milliseconds. kMemoryOnly reads
// are served from what is kept, else WouldBlock.
//
// Degraded mode (RadosPool::degraded): reads are served from what is kept,
// however old; what is not kept, and every write, fails at once with
// Unavailable.
//
// Thread-safe.

#ifndef PSTORE_STORAGE_RADOS_RADOS_CATALOG_H_
#define PSTORE_STORAGE_RADOS_RADOS_CATALOG_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/catalog.h"
#include "storage/cold/catalog.pb.h"
#include "storage/rados/rados_pool.h"

namespace pstore {

class RadosCatalog : public Catalog {
 public:
  explicit RadosCatalog(std::shared_ptr<RadosPool> pool);
  ~RadosCatalog() override;

  bool CountsReferences() const override { return false; }

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

  // Adds to `referenced` every block that a tensor record of any revision,
  // open or published, names: read from the pool now, nothing kept.
  absl::Status MarkBlocks(absl::flat_hash_set<BlockId>* referenced) const;

  absl::Status AddPinRecord(const RevisionName& name) override;
  absl::Status RemovePinRecord(const RevisionName& name) override;
  absl::StatusOr<std::vector<RevisionName>> ListPinRecords() const override;

 private:
  struct ModelState;
  struct RevisionObject;
  class Watcher;
  class NoticeTracker;
  struct CachedModel {
    std::shared_ptr<const ModelState> state;
    absl::Time read_at;
  };

  // Returns model `model` as kept, if fresh (or the pool degraded), else
  // as read now (and keeps it). kMemoryOnly: WouldBlock instead of a read.
  absl::StatusOr<std::shared_ptr<const ModelState>> Model(
      absl::string_view model, CatalogRead mode) const;
  // Returns the tensor records of `revision`, whose model record is
  // `record`: kept ones for a published revision, else read now. NotFound
  // if the revision object is another revision of the name (deleted since).
  absl::StatusOr<std::shared_ptr<const RevisionObject>> Tensors(
      const RevisionName& revision, const storage::RevisionRecord& record,
      CatalogRead mode) const;
  // After a write of model `state.model`: keeps `state` and tells the
  // other nodes.
  void Changed(const ModelState& state) const;
  // Forgets model `model` (all models if empty): a notice came.
  void Forget(absl::string_view model) const;
  // Starts watching catalog.events (again, after a broken watch).
  absl::Status Watch() const;

  // Every model that has had a revision (catalog.models), in name order.
  absl::StatusOr<std::vector<std::string>> ModelNames() const;
  // Reads model `model`'s object (exists is false if there is none),
  // after finishing any publish that sealed a revision object of it but
  // stopped before its swap of the model object (rados_format.md). Without
  // `finish_publishes`, reads the object only.
  absl::StatusOr<ModelState> ReadModel(absl::string_view model,
                                       bool finish_publishes = true) const;
  absl::StatusOr<ModelState> ReadModelObject(absl::string_view model) const;
  // Writes `state` over the object ReadModel read, if it has not changed
  // since: false if it has (read it again), true if written.
  absl::StatusOr<bool> SwapModel(const ModelState& read,
                                 const ModelState& next) const;
  // Swaps the model object so that `revision`, whose object is sealed as
  // published at `published_micros`, shows as published, and as latest
  // unless a later publish is: the second step of a publish, by its
  // publisher or by any node that finds it undone.
  absl::StatusOr<bool> FinishPublish(const ModelState& read,
                                     const std::string& revision,
                                     int64_t published_micros) const;
  // Reads the tensors object of `name`: its state and creation xattrs,
  // and, with `tensors`, every record.
  absl::StatusOr<RevisionObject> ReadRevisionObject(const RevisionName& name,
                                                    bool tensors) const;
  // Resolves `name` in `state` (the model's latest if its revision is
  // empty): NotFound if there is no such revision.
  static absl::StatusOr<RevisionName> ResolveIn(const ModelState& state,
                                                const RevisionName& name);
  // Makes the tensors object of open revision `name` (creation time
  // `created`) exist: creates it when absent; replaces, cleared, one that
  // an earlier revision of the name left; leaves one of this revision or
  // of a newer one of the name as it is.
  absl::Status WriteRevisionObject(const RevisionName& name, int64_t created);

  const std::shared_ptr<RadosPool> pool_;
  const std::unique_ptr<Watcher> watcher_;
  const std::shared_ptr<NoticeTracker> notices_;

  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, CachedModel> models_
      ABSL_GUARDED_BY(cache_mu_);
  // Tensors of published revisions, by "model@revision".
  mutable absl::flat_hash_map<std::string,
                              std::shared_ptr<const RevisionObject>>
      published_ ABSL_GUARDED_BY(cache_mu_);
  mutable bool watching_ ABSL_GUARDED_BY(cache_mu_) = false;
  mutable uint64_t watch_handle_ ABSL_GUARDED_BY(cache_mu_) = 0;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_RADOS_RADOS_CATALOG_H_
