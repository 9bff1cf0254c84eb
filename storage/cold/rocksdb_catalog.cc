#include "storage/cold/rocksdb_catalog.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rocksdb/iterator.h"
#include "storage/cold/catalog.pb.h"
#include "storage/cold/catalog_codec.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr char kSep = '\0';

std::string ModelKey(absl::string_view model) {
  return absl::StrCat("M", absl::string_view(&kSep, 1), model);
}
std::string RevisionPrefix(absl::string_view model) {
  return absl::StrCat("R", absl::string_view(&kSep, 1), model,
                      absl::string_view(&kSep, 1));
}
std::string RevisionKey(const RevisionName& name) {
  return absl::StrCat(RevisionPrefix(name.model), name.revision);
}
std::string TensorPrefix(const RevisionName& name) {
  return absl::StrCat("T", absl::string_view(&kSep, 1), name.model,
                      absl::string_view(&kSep, 1), name.revision,
                      absl::string_view(&kSep, 1));
}
std::string TensorKey(const TensorName& name) {
  return absl::StrCat(TensorPrefix(name.revision), name.tensor);
}
std::string PinKey(const RevisionName& name) {
  return absl::StrCat("P", absl::string_view(&kSep, 1), name.model,
                      absl::string_view(&kSep, 1), name.revision);
}

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

std::string EncodeCount(uint64_t count) {
  std::string value(8, '\0');
  for (int i = 0; i < 8; ++i) value[i] = static_cast<char>(count >> (8 * i));
  return value;
}

absl::StatusOr<uint64_t> DecodeCount(absl::string_view value,
                                     const BlockId& id) {
  if (value.size() != 8) {
    return absl::DataLossError(
        absl::StrCat("reference count of block ", id.ToHex(), " is corrupt"));
  }
  uint64_t count = 0;
  for (int i = 0; i < 8; ++i) {
    count |= uint64_t{static_cast<uint8_t>(value[i])} << (8 * i);
  }
  return count;
}

// An iterator over the keys of one family that start with a prefix, from a
// snapshot (or the latest state when null), positioned at the first such
// key at or after `start`.
class PrefixScan {
 public:
  PrefixScan(const ColdDatabase& database, ColdDatabase::Family family,
             std::string prefix, const rocksdb::Snapshot* snapshot,
             absl::string_view start = {})
      : prefix_(std::move(prefix)), upper_bound_(prefix_) {
    // The upper bound is the prefix with its last byte incremented; every
    // prefix here ends in a separator or a name byte below 0xff.
    upper_bound_.back() = static_cast<char>(upper_bound_.back() + 1);
    upper_bound_slice_ = rocksdb::Slice(upper_bound_);
    rocksdb::ReadOptions options;
    options.snapshot = snapshot;
    options.iterate_upper_bound = &upper_bound_slice_;
    it_.reset(database.db()->NewIterator(options, database.family(family)));
    it_->Seek(start.empty() ? rocksdb::Slice(prefix_)
                            : rocksdb::Slice(start.data(), start.size()));
  }

  bool Valid() const { return it_->Valid(); }
  void Next() { it_->Next(); }
  // The key without the prefix.
  absl::string_view name() const {
    return absl::string_view(it_->key().data(), it_->key().size())
        .substr(prefix_.size());
  }
  rocksdb::Slice key() const { return it_->key(); }
  absl::string_view value() const {
    return absl::string_view(it_->value().data(), it_->value().size());
  }
  absl::Status status(absl::string_view context) const {
    return RocksToStatus(it_->status(), context);
  }

 private:
  const std::string prefix_;
  std::string upper_bound_;
  rocksdb::Slice upper_bound_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

// Holds a RocksDB snapshot for the life of the object.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db)
      : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

}  // namespace

RocksDbCatalog::RocksDbCatalog(std::shared_ptr<ColdDatabase> database)
    : database_(std::move(database)) {}

absl::StatusOr<std::optional<std::string>> RocksDbCatalog::GetValue(
    ColdDatabase::Family family, const std::string& key,
    const rocksdb::Snapshot* snapshot, CatalogRead mode) const {
  rocksdb::ReadOptions options;
  options.snapshot = snapshot;
  if (mode == CatalogRead::kMemoryOnly) {
    options.read_tier = rocksdb::kBlockCacheTier;
  }
  std::string value;
  rocksdb::Status status =
      database_->db()->Get(options, database_->family(family), key, &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (status.IsIncomplete() && mode == CatalogRead::kMemoryOnly) {
    return WouldBlockError("catalog: read");
  }
  if (!status.ok()) return RocksToStatus(status, "catalog: read");
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<RevisionName> RocksDbCatalog::ResolveAt(
    const RevisionName& name, const rocksdb::Snapshot* snapshot,
    CatalogRead mode) const {
  if (!name.revision.empty()) return name;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      GetValue(ColdDatabase::kCatalog, ModelKey(name.model), snapshot, mode));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no model '", name.model, "'"));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::ModelRecord record,
                          DecodeModel(name.model, *value));
  if (record.latest_revision().empty()) {
    return absl::NotFoundError(
        absl::StrCat("model '", name.model,
                     "' has no published revision; name one as MODEL@REV"));
  }
  return RevisionName{name.model, record.latest_revision()};
}

absl::StatusOr<RevisionName> RocksDbCatalog::Resolve(const RevisionName& name,
                                                     CatalogRead mode) const {
  return ResolveAt(name, nullptr, mode);
}

absl::StatusOr<TensorMeta> RocksDbCatalog::GetTensor(const TensorName& name,
                                                     CatalogRead mode) const {
  std::optional<ScopedSnapshot> snapshot;
  if (name.revision.revision.empty()) snapshot.emplace(database_->db());
  const rocksdb::Snapshot* at = snapshot ? snapshot->get() : nullptr;
  PSTORE_ASSIGN_OR_RETURN(RevisionName revision,
                          ResolveAt(name.revision, at, mode));
  TensorName resolved{revision, name.tensor};
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      GetValue(ColdDatabase::kCatalog, TensorKey(resolved), at, mode));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no tensor ", resolved.ToString()));
  }
  return DecodeTensor(resolved, *value);
}

absl::StatusOr<RevisionInfo> RocksDbCatalog::RevisionAt(
    const RevisionName& resolved, const rocksdb::Snapshot* snapshot) const {
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      GetValue(ColdDatabase::kCatalog, RevisionKey(resolved), snapshot));
  if (!value.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no revision ", resolved.ToString()));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                          DecodeRevision(resolved, *value));
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> model,
      GetValue(ColdDatabase::kCatalog, ModelKey(resolved.model), snapshot));
  if (!model.has_value()) {
    return absl::DataLossError(absl::StrCat("catalog: revision ",
                                            resolved.ToString(),
                                            " has no record of its model"));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::ModelRecord model_record,
                          DecodeModel(resolved.model, *model));
  return ToRevisionInfo(resolved, record, model_record.latest_revision());
}

absl::StatusOr<RevisionInfo> RocksDbCatalog::GetRevision(
    const RevisionName& name) const {
  // Resolve and read under one snapshot, so that a publish or delete that
  // lands meanwhile is seen entirely or not at all.
  ScopedSnapshot snapshot(database_->db());
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved,
                          ResolveAt(name, snapshot.get(), CatalogRead::kAny));
  return RevisionAt(resolved, snapshot.get());
}

absl::StatusOr<Manifest> RocksDbCatalog::GetManifest(
    const RevisionName& name) const {
  ScopedSnapshot snapshot(database_->db());
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved,
                          ResolveAt(name, snapshot.get(), CatalogRead::kAny));
  Manifest manifest;
  PSTORE_ASSIGN_OR_RETURN(manifest.revision,
                          RevisionAt(resolved, snapshot.get()));
  PrefixScan scan(*database_, ColdDatabase::kCatalog, TensorPrefix(resolved),
                  snapshot.get());
  for (; scan.Valid(); scan.Next()) {
    TensorName tensor{resolved, std::string(scan.name())};
    PSTORE_ASSIGN_OR_RETURN(TensorMeta meta,
                            DecodeTensor(tensor, scan.value()));
    manifest.tensors.push_back(std::move(meta));
  }
  PSTORE_RETURN_IF_ERROR(scan.status("catalog: list tensors"));
  return manifest;
}

absl::StatusOr<TensorPage> RocksDbCatalog::ListTensors(
    const RevisionName& name, absl::string_view prefix, int page_size,
    absl::string_view page_token) const {
  if (page_size <= 0 || page_size > kMaxTensorPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page size ", page_size, " is outside 1..", kMaxTensorPageSize));
  }
  if (!page_token.empty() && !absl::StartsWith(page_token, prefix)) {
    return absl::InvalidArgumentError(
        "page token does not belong to this listing");
  }
  ScopedSnapshot snapshot(database_->db());
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved,
                          ResolveAt(name, snapshot.get(), CatalogRead::kAny));
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> revision,
      GetValue(ColdDatabase::kCatalog, RevisionKey(resolved), snapshot.get()));
  if (!revision.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no revision ", resolved.ToString()));
  }
  std::string tensor_prefix = TensorPrefix(resolved);
  std::string start = absl::StrCat(tensor_prefix, prefix);
  if (!page_token.empty()) {
    start = std::max(start, absl::StrCat(tensor_prefix, page_token));
  }
  PrefixScan scan(*database_, ColdDatabase::kCatalog, tensor_prefix,
                  snapshot.get(), start);
  TensorPage page;
  for (; scan.Valid(); scan.Next()) {
    absl::string_view tensor = scan.name();
    if (!absl::StartsWith(tensor, prefix)) break;
    if (!page_token.empty() && tensor == page_token) continue;
    if (static_cast<int>(page.tensors.size()) == page_size) {
      page.next_page_token = page.tensors.back().name.tensor;
      break;
    }
    PSTORE_ASSIGN_OR_RETURN(
        TensorMeta meta,
        DecodeTensor(TensorName{resolved, std::string(tensor)}, scan.value()));
    page.tensors.push_back(std::move(meta));
  }
  PSTORE_RETURN_IF_ERROR(scan.status("catalog: list tensors"));
  return page;
}

absl::StatusOr<std::vector<ModelInfo>> RocksDbCatalog::ListModels() const {
  ScopedSnapshot snapshot(database_->db());
  std::vector<ModelInfo> models;
  {
    PrefixScan scan(*database_, ColdDatabase::kCatalog, ModelKey(""),
                    snapshot.get());
    for (; scan.Valid(); scan.Next()) {
      ModelInfo model;
      model.name = std::string(scan.name());
      PSTORE_ASSIGN_OR_RETURN(storage::ModelRecord record,
                              DecodeModel(model.name, scan.value()));
      model.latest_revision = record.latest_revision();
      models.push_back(std::move(model));
    }
    PSTORE_RETURN_IF_ERROR(scan.status("catalog: list models"));
  }
  for (ModelInfo& model : models) {
    PrefixScan scan(*database_, ColdDatabase::kCatalog,
                    RevisionPrefix(model.name), snapshot.get());
    for (; scan.Valid(); scan.Next()) {
      RevisionName name{model.name, std::string(scan.name())};
      PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                              DecodeRevision(name, scan.value()));
      model.revisions.push_back(
          ToRevisionInfo(name, record, model.latest_revision));
    }
    PSTORE_RETURN_IF_ERROR(scan.status("catalog: list revisions"));
  }
  return models;
}

absl::StatusOr<uint64_t> RocksDbCatalog::RefCount(const BlockId& id) const {
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(ColdDatabase::kRefs, BlockKey(id)));
  if (!value.has_value()) return 0;
  return DecodeCount(*value, id);
}

absl::Status RocksDbCatalog::CreateRevision(
    const RevisionName& name,
    const std::map<std::string, std::string>& metadata) {
  absl::MutexLock lock(&mu_);
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> existing,
                          GetValue(ColdDatabase::kCatalog, RevisionKey(name)));
  if (existing.has_value()) {
    return absl::AlreadyExistsError(
        absl::StrCat("revision ", name.ToString(), " exists"));
  }
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* catalog =
      database_->family(ColdDatabase::kCatalog);
  int64_t now = NowMicros();
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> model,
      GetValue(ColdDatabase::kCatalog, ModelKey(name.model)));
  if (!model.has_value()) {
    storage::ModelRecord record;
    record.set_created_unix_micros(now);
    batch.Put(catalog, ModelKey(name.model), record.SerializeAsString());
  } else {
    // A corrupt model record is reported, not silently overwritten.
    PSTORE_RETURN_IF_ERROR(DecodeModel(name.model, *model).status());
  }
  storage::RevisionRecord record;
  record.set_state(storage::RevisionRecord::OPEN);
  record.set_created_unix_micros(now);
  record.mutable_metadata()->insert(metadata.begin(), metadata.end());
  batch.Put(catalog, RevisionKey(name), record.SerializeAsString());
  return database_->Commit(&batch);
}

absl::Status RocksDbCatalog::EnsureOpenRevision(const RevisionName& name) {
  absl::Status created = CreateRevision(name, {});
  if (!absl::IsAlreadyExists(created)) return created;
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(ColdDatabase::kCatalog, RevisionKey(name)));
  if (!value.has_value()) {
    // Deleted between the two reads: try once more.
    return CreateRevision(name, {});
  }
  PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                          DecodeRevision(name, *value));
  if (record.state() == storage::RevisionRecord::PUBLISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("revision ", name.ToString(),
                     " is published and immutable; put into a new revision"));
  }
  return absl::OkStatus();
}

absl::Status RocksDbCatalog::PublishRevision(const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(ColdDatabase::kCatalog, RevisionKey(name)));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no revision ", name.ToString()));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                          DecodeRevision(name, *value));
  if (record.state() == storage::RevisionRecord::PUBLISHED) {
    return absl::OkStatus();
  }
  record.set_state(storage::RevisionRecord::PUBLISHED);
  record.set_published_unix_micros(NowMicros());

  storage::ModelRecord model;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> model_value,
      GetValue(ColdDatabase::kCatalog, ModelKey(name.model)));
  if (model_value.has_value()) {
    PSTORE_ASSIGN_OR_RETURN(model, DecodeModel(name.model, *model_value));
  }
  model.set_latest_revision(name.revision);

  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* catalog =
      database_->family(ColdDatabase::kCatalog);
  batch.Put(catalog, RevisionKey(name), record.SerializeAsString());
  batch.Put(catalog, ModelKey(name.model), model.SerializeAsString());
  return database_->Commit(&batch);
}

absl::Status RocksDbCatalog::ApplyRefDeltas(
    const absl::flat_hash_map<BlockId, int64_t>& deltas,
    rocksdb::WriteBatch* batch, std::vector<BlockId>* unreferenced) {
  for (const auto& [id, delta] : deltas) {
    if (delta == 0) continue;
    std::string key = BlockKey(id);
    PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            GetValue(ColdDatabase::kRefs, key));
    uint64_t count = 0;
    if (value.has_value()) {
      PSTORE_ASSIGN_OR_RETURN(count, DecodeCount(*value, id));
    }
    if (delta < 0 && count < static_cast<uint64_t>(-delta)) {
      return absl::InternalError(
          absl::StrCat("reference count of block ", id.ToHex(),
                       " would go below zero (", count, " - ", -delta, ")"));
    }
    uint64_t updated = count + delta;
    if (updated > 0) {
      batch->Put(database_->family(ColdDatabase::kRefs), key,
                 EncodeCount(updated));
      continue;
    }
    // Unreferenced: marked staged in this write, so that the block is
    // erased even if the process dies before the store gets to it.
    batch->Delete(database_->family(ColdDatabase::kRefs), key);
    batch->Put(database_->family(ColdDatabase::kStaged), key, "");
    unreferenced->push_back(id);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlockId>> RocksDbCatalog::DeleteRevision(
    const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(ColdDatabase::kCatalog, RevisionKey(name)));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no revision ", name.ToString()));
  }
  PSTORE_RETURN_IF_ERROR(DecodeRevision(name, *value).status());
  rocksdb::ColumnFamilyHandle* catalog =
      database_->family(ColdDatabase::kCatalog);
  rocksdb::WriteBatch batch;
  absl::flat_hash_map<BlockId, int64_t> deltas;
  {
    PrefixScan scan(*database_, ColdDatabase::kCatalog, TensorPrefix(name),
                    nullptr);
    for (; scan.Valid(); scan.Next()) {
      TensorName tensor{name, std::string(scan.name())};
      PSTORE_ASSIGN_OR_RETURN(TensorMeta meta,
                              DecodeTensor(tensor, scan.value()));
      for (const BlockId& id : meta.blocks) --deltas[id];
      batch.Delete(catalog, scan.key());
    }
    PSTORE_RETURN_IF_ERROR(scan.status("catalog: delete revision"));
  }
  batch.Delete(catalog, RevisionKey(name));
  batch.Delete(catalog, PinKey(name));

  // Move latest to the most recently published other revision, or drop the
  // model when this was its last revision.
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> model_value,
      GetValue(ColdDatabase::kCatalog, ModelKey(name.model)));
  storage::ModelRecord model;
  if (model_value.has_value()) {
    PSTORE_ASSIGN_OR_RETURN(model, DecodeModel(name.model, *model_value));
  }
  bool others = false;
  std::string newest;
  int64_t newest_time = -1;
  {
    PrefixScan scan(*database_, ColdDatabase::kCatalog,
                    RevisionPrefix(name.model), nullptr);
    for (; scan.Valid(); scan.Next()) {
      RevisionName other{name.model, std::string(scan.name())};
      if (other.revision == name.revision) continue;
      others = true;
      PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                              DecodeRevision(other, scan.value()));
      if (record.state() == storage::RevisionRecord::PUBLISHED &&
          record.published_unix_micros() > newest_time) {
        newest_time = record.published_unix_micros();
        newest = other.revision;
      }
    }
    PSTORE_RETURN_IF_ERROR(scan.status("catalog: delete revision"));
  }
  if (!others) {
    batch.Delete(catalog, ModelKey(name.model));
  } else if (model.latest_revision() == name.revision) {
    model.set_latest_revision(newest);
    batch.Put(catalog, ModelKey(name.model), model.SerializeAsString());
  }

  std::vector<BlockId> unreferenced;
  PSTORE_RETURN_IF_ERROR(ApplyRefDeltas(deltas, &batch, &unreferenced));
  PSTORE_RETURN_IF_ERROR(database_->Commit(&batch));
  return unreferenced;
}

absl::StatusOr<std::vector<BlockId>> RocksDbCatalog::DeleteTensor(
    const TensorName& name) {
  absl::MutexLock lock(&mu_);
  const RevisionName& revision = name.revision;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> revision_value,
      GetValue(ColdDatabase::kCatalog, RevisionKey(revision)));
  if (!revision_value.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no revision ", revision.ToString()));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                          DecodeRevision(revision, *revision_value));
  if (record.state() == storage::RevisionRecord::PUBLISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("revision ", revision.ToString(),
                     " is published and immutable; delete the revision"));
  }
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(ColdDatabase::kCatalog, TensorKey(name)));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no tensor ", name.ToString()));
  }
  PSTORE_ASSIGN_OR_RETURN(TensorMeta meta, DecodeTensor(name, *value));
  absl::flat_hash_map<BlockId, int64_t> deltas;
  for (const BlockId& id : meta.blocks) --deltas[id];
  rocksdb::WriteBatch batch;
  batch.Delete(database_->family(ColdDatabase::kCatalog), TensorKey(name));
  std::vector<BlockId> unreferenced;
  PSTORE_RETURN_IF_ERROR(ApplyRefDeltas(deltas, &batch, &unreferenced));
  PSTORE_RETURN_IF_ERROR(database_->Commit(&batch));
  return unreferenced;
}

absl::Status RocksDbCatalog::MarkStaged(const BlockId& id) {
  // Unsynced: the block's bytes follow in the same write-ahead log, so the
  // mark is durable no later than they are.
  rocksdb::WriteBatch batch;
  batch.Put(database_->family(ColdDatabase::kStaged), BlockKey(id), "");
  return Annotate(database_->Apply(&batch, /*sync=*/false),
                  absl::StrCat("catalog: stage block ", id.ToHex()));
}

absl::StatusOr<std::vector<BlockId>> RocksDbCatalog::CommitTensor(
    const TensorMeta& tensor) {
  absl::MutexLock lock(&mu_);
  const RevisionName& revision = tensor.name.revision;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> revision_value,
      GetValue(ColdDatabase::kCatalog, RevisionKey(revision)));
  if (!revision_value.has_value()) {
    return absl::NotFoundError(absl::StrCat("revision ", revision.ToString(),
                                            " was deleted during the put"));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                          DecodeRevision(revision, *revision_value));
  if (record.state() == storage::RevisionRecord::PUBLISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("revision ", revision.ToString(),
                     " is published and immutable; put into a new revision"));
  }

  absl::flat_hash_map<BlockId, int64_t> deltas;
  for (const BlockId& id : tensor.blocks) ++deltas[id];
  std::string key = TensorKey(tensor.name);
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> old_value,
                          GetValue(ColdDatabase::kCatalog, key));
  if (old_value.has_value()) {
    PSTORE_ASSIGN_OR_RETURN(TensorMeta old,
                            DecodeTensor(tensor.name, *old_value));
    for (const BlockId& id : old.blocks) --deltas[id];
  }

  rocksdb::WriteBatch batch;
  batch.Put(database_->family(ColdDatabase::kCatalog), key,
            EncodeTensor(tensor));
  for (const BlockId& id : tensor.blocks) {
    batch.Delete(database_->family(ColdDatabase::kStaged), BlockKey(id));
  }
  std::vector<BlockId> unreferenced;
  PSTORE_RETURN_IF_ERROR(ApplyRefDeltas(deltas, &batch, &unreferenced));
  PSTORE_RETURN_IF_ERROR(database_->Commit(&batch));
  return unreferenced;
}

absl::StatusOr<std::vector<BlockId>> RocksDbCatalog::ListStaged() const {
  std::vector<BlockId> staged;
  std::unique_ptr<rocksdb::Iterator> it(database_->db()->NewIterator(
      rocksdb::ReadOptions(), database_->family(ColdDatabase::kStaged)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<BlockId> id = BlockId::FromBytes(
        absl::string_view(it->key().data(), it->key().size()));
    if (!id.ok()) {
      return absl::DataLossError(
          absl::StrCat("catalog: a staged mark has a key of ", it->key().size(),
                       " bytes, not a block id"));
    }
    staged.push_back(*id);
  }
  PSTORE_RETURN_IF_ERROR(
      RocksToStatus(it->status(), "catalog: list staged blocks"));
  return staged;
}

absl::Status RocksDbCatalog::ClearStaged(std::span<const BlockId> ids) {
  if (ids.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  for (const BlockId& id : ids) {
    batch.Delete(database_->family(ColdDatabase::kStaged), BlockKey(id));
  }
  // Unsynced: a mark that comes back after a crash only costs a check at
  // the next open.
  return Annotate(database_->Apply(&batch, /*sync=*/false),
                  "catalog: clear staged marks");
}

absl::Status RocksDbCatalog::AddPinRecord(const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  // Under the writers' lock: a revision deleted while its pin was loading
  // gets no record.
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> revision,
                          GetValue(ColdDatabase::kCatalog, RevisionKey(name)));
  if (!revision.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no revision ", name.ToString(), " (deleted meanwhile)"));
  }
  storage::PinRecord record;
  record.set_created_unix_micros(NowMicros());
  rocksdb::WriteBatch batch;
  batch.Put(database_->family(ColdDatabase::kCatalog), PinKey(name),
            record.SerializeAsString());
  return database_->Commit(&batch);
}

absl::Status RocksDbCatalog::RemovePinRecord(const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  rocksdb::WriteBatch batch;
  batch.Delete(database_->family(ColdDatabase::kCatalog), PinKey(name));
  return database_->Commit(&batch);
}

absl::StatusOr<std::vector<RevisionName>> RocksDbCatalog::ListPinRecords()
    const {
  std::vector<RevisionName> pins;
  std::string prefix = PinKey(RevisionName{"", ""});
  prefix.pop_back();  // "P\0" with no model and revision separator.
  PrefixScan scan(*database_, ColdDatabase::kCatalog, prefix, nullptr);
  for (; scan.Valid(); scan.Next()) {
    absl::string_view rest = scan.name();
    size_t separator = rest.find(kSep);
    if (separator == absl::string_view::npos) {
      return absl::DataLossError("catalog: a pin record's key is corrupt");
    }
    pins.push_back(RevisionName{std::string(rest.substr(0, separator)),
                                std::string(rest.substr(separator + 1))});
  }
  PSTORE_RETURN_IF_ERROR(scan.status("catalog: list pins"));
  return pins;
}

}  // namespace pstore
