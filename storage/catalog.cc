#include "storage/catalog.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rocksdb/iterator.h"
#include "spdlog/spdlog.h"
#include "storage/catalog.pb.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr char kSep = '\0';
constexpr int kMaxPageSize = 10000;

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

absl::StatusOr<TensorMeta> DecodeTensor(const TensorName& name,
                                        absl::string_view value) {
  storage::TensorRecord record;
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(
        "catalog record of tensor ", name.ToString(), " is corrupt: ", what));
  };
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return corrupt("does not parse");
  }
  if (!IsValidDTypeValue(record.dtype())) return corrupt("unknown dtype");
  if (record.block_ids().size() % BlockId::kSize != 0) {
    return corrupt("block id list length");
  }
  TensorMeta meta;
  meta.name = name;
  meta.dtype = static_cast<DType>(record.dtype());
  meta.shape.assign(record.shape().begin(), record.shape().end());
  meta.byte_length = record.byte_length();
  meta.xxh3_64 = record.xxh3_64();
  meta.block_bytes = record.block_bytes();
  meta.created_unix_micros = record.created_unix_micros();
  absl::StatusOr<uint64_t> expected_length =
      TensorByteLength(meta.dtype, meta.shape);
  if (!expected_length.ok() || *expected_length != meta.byte_length) {
    return corrupt("byte length does not match shape");
  }
  size_t num_blocks = record.block_ids().size() / BlockId::kSize;
  uint64_t expected_blocks =
      meta.block_bytes == 0
          ? 0
          : (meta.byte_length + meta.block_bytes - 1) / meta.block_bytes;
  if (num_blocks != expected_blocks) return corrupt("block count");
  meta.blocks.reserve(num_blocks);
  for (size_t i = 0; i < num_blocks; ++i) {
    absl::StatusOr<BlockId> id = BlockId::FromBytes(absl::string_view(
        record.block_ids().data() + i * BlockId::kSize, BlockId::kSize));
    if (!id.ok()) return corrupt("block id");
    meta.blocks.push_back(*id);
  }
  return meta;
}

std::string EncodeTensor(const TensorMeta& meta) {
  storage::TensorRecord record;
  record.set_dtype(static_cast<uint32_t>(meta.dtype));
  for (int64_t dim : meta.shape) record.add_shape(dim);
  record.set_byte_length(meta.byte_length);
  record.set_xxh3_64(meta.xxh3_64);
  record.set_block_bytes(meta.block_bytes);
  std::string ids;
  ids.reserve(meta.blocks.size() * BlockId::kSize);
  for (const BlockId& id : meta.blocks) ids += id.ToByteString();
  record.set_block_ids(std::move(ids));
  record.set_created_unix_micros(meta.created_unix_micros);
  return record.SerializeAsString();
}

absl::StatusOr<storage::RevisionRecord> DecodeRevision(
    const RevisionName& name, absl::string_view value) {
  storage::RevisionRecord record;
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("catalog record of revision ",
                                            name.ToString(), " is corrupt"));
  }
  return record;
}

RevisionInfo ToRevisionInfo(const RevisionName& name,
                            const storage::RevisionRecord& record,
                            absl::string_view latest) {
  RevisionInfo info;
  info.name = name;
  info.published = record.state() == storage::RevisionRecord::PUBLISHED;
  info.latest = !latest.empty() && latest == name.revision;
  info.metadata.insert(record.metadata().begin(), record.metadata().end());
  info.created_unix_micros = record.created_unix_micros();
  info.published_unix_micros = record.published_unix_micros();
  return info;
}

// An iterator over the keys of `family` that start with `prefix`.
std::unique_ptr<rocksdb::Iterator> PrefixIterator(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
    const std::string& prefix, const rocksdb::Snapshot* snapshot,
    rocksdb::Slice* upper_bound_storage, std::string* upper_bound) {
  // The upper bound is the prefix with its last byte incremented; every
  // prefix here ends in a separator or a name byte below 0xff.
  *upper_bound = prefix;
  upper_bound->back() = static_cast<char>(upper_bound->back() + 1);
  *upper_bound_storage = rocksdb::Slice(*upper_bound);
  rocksdb::ReadOptions options;
  options.snapshot = snapshot;
  options.iterate_upper_bound = upper_bound_storage;
  return std::unique_ptr<rocksdb::Iterator>(db->NewIterator(options, family));
}

// Holds a RocksDB snapshot for the life of the object.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db)
      : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

}  // namespace

uint64_t TensorMeta::BlockSize(size_t index) const {
  if (index + 1 < blocks.size()) return block_bytes;
  return byte_length - block_bytes * index;
}

absl::StatusOr<std::unique_ptr<Catalog>> Catalog::Open(ColdTier* cold) {
  std::unique_ptr<Catalog> catalog(new Catalog(cold));
  PSTORE_RETURN_IF_ERROR(catalog->CollectStagedOrphans());
  return catalog;
}

absl::Status Catalog::CollectStagedOrphans() {
  absl::MutexLock lock(&mu_);
  rocksdb::DB* db = cold_->db();
  std::unique_ptr<rocksdb::Iterator> it(
      db->NewIterator(rocksdb::ReadOptions(), cold_->staged_family()));
  rocksdb::WriteBatch batch;
  uint64_t collected = 0;
  uint64_t kept = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    batch.Delete(cold_->staged_family(), key);
    rocksdb::PinnableSlice refs;
    rocksdb::Status status =
        db->Get(rocksdb::ReadOptions(), cold_->refs_family(), key, &refs);
    if (status.IsNotFound()) {
      batch.Delete(cold_->blocks_family(), key);
      ++collected;
    } else if (status.ok()) {
      ++kept;
    } else {
      return RocksToStatus(status, "catalog: collect staged blocks");
    }
  }
  PSTORE_RETURN_IF_ERROR(
      RocksToStatus(it->status(), "catalog: scan staged blocks"));
  if (batch.Count() == 0) return absl::OkStatus();
  PSTORE_RETURN_IF_ERROR(cold_->Commit(&batch));
  spdlog::info(
      "event=staged_blocks_collected collected={} referenced={} "
      "reason=\"puts that did not commit before the last shutdown\"",
      collected, kept);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Catalog::GetValue(
    rocksdb::ColumnFamilyHandle* family, const std::string& key,
    const rocksdb::Snapshot* snapshot, CatalogRead mode) const {
  rocksdb::ReadOptions options;
  options.snapshot = snapshot;
  if (mode == CatalogRead::kMemoryOnly) {
    options.read_tier = rocksdb::kBlockCacheTier;
  }
  std::string value;
  rocksdb::Status status = cold_->db()->Get(options, family, key, &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (status.IsIncomplete() && mode == CatalogRead::kMemoryOnly) {
    return WouldBlockError("catalog: read");
  }
  if (!status.ok()) return RocksToStatus(status, "catalog: read");
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<RevisionName> Catalog::Resolve(const RevisionName& name,
                                              CatalogRead mode) const {
  if (!name.revision.empty()) return name;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      GetValue(cold_->catalog_family(), ModelKey(name.model), nullptr, mode));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no model '", name.model, "'"));
  }
  storage::ModelRecord record;
  if (!record.ParseFromString(*value)) {
    return absl::DataLossError(
        absl::StrCat("catalog record of model ", name.model, " is corrupt"));
  }
  if (record.latest_revision().empty()) {
    return absl::NotFoundError(
        absl::StrCat("model '", name.model,
                     "' has no published revision; name one as MODEL@REV"));
  }
  return RevisionName{name.model, record.latest_revision()};
}

absl::StatusOr<TensorMeta> Catalog::GetTensor(const TensorName& name,
                                              CatalogRead mode) const {
  PSTORE_ASSIGN_OR_RETURN(RevisionName revision, Resolve(name.revision, mode));
  TensorName resolved{revision, name.tensor};
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      GetValue(cold_->catalog_family(), TensorKey(resolved), nullptr, mode));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no tensor ", resolved.ToString()));
  }
  return DecodeTensor(resolved, *value);
}

absl::StatusOr<RevisionInfo> Catalog::GetRevision(
    const RevisionName& name) const {
  ScopedSnapshot snapshot(cold_->db());
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, Resolve(name));
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      GetValue(cold_->catalog_family(), RevisionKey(resolved), snapshot.get()));
  if (!value.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no revision ", resolved.ToString()));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                          DecodeRevision(resolved, *value));
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> model,
                          GetValue(cold_->catalog_family(),
                                   ModelKey(resolved.model), snapshot.get()));
  storage::ModelRecord model_record;
  if (model.has_value()) (void)model_record.ParseFromString(*model);
  return ToRevisionInfo(resolved, record, model_record.latest_revision());
}

absl::StatusOr<std::pair<RevisionInfo, std::vector<TensorMeta>>>
Catalog::GetManifest(const RevisionName& name) const {
  // Resolve and read under one snapshot, so that a publish or delete that
  // lands meanwhile is seen entirely or not at all.
  ScopedSnapshot snapshot(cold_->db());
  RevisionName resolved = name;
  if (resolved.revision.empty()) {
    PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            GetValue(cold_->catalog_family(),
                                     ModelKey(name.model), snapshot.get()));
    storage::ModelRecord model;
    if (!value.has_value() || !model.ParseFromString(*value) ||
        model.latest_revision().empty()) {
      return absl::NotFoundError(
          absl::StrCat("model '", name.model,
                       "' does not exist or has no published "
                       "revision"));
    }
    resolved.revision = model.latest_revision();
  }
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> value,
      GetValue(cold_->catalog_family(), RevisionKey(resolved), snapshot.get()));
  if (!value.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no revision ", resolved.ToString()));
  }
  PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                          DecodeRevision(resolved, *value));
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> model_value,
                          GetValue(cold_->catalog_family(),
                                   ModelKey(resolved.model), snapshot.get()));
  storage::ModelRecord model_record;
  if (model_value.has_value()) {
    (void)model_record.ParseFromString(*model_value);
  }
  std::pair<RevisionInfo, std::vector<TensorMeta>> manifest;
  manifest.first =
      ToRevisionInfo(resolved, record, model_record.latest_revision());

  std::string prefix = TensorPrefix(resolved);
  rocksdb::Slice bound;
  std::string bound_storage;
  std::unique_ptr<rocksdb::Iterator> it =
      PrefixIterator(cold_->db(), cold_->catalog_family(), prefix,
                     snapshot.get(), &bound, &bound_storage);
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    TensorName tensor{resolved, std::string(key.substr(prefix.size()))};
    PSTORE_ASSIGN_OR_RETURN(
        TensorMeta meta,
        DecodeTensor(
            tensor, absl::string_view(it->value().data(), it->value().size())));
    manifest.second.push_back(std::move(meta));
  }
  PSTORE_RETURN_IF_ERROR(RocksToStatus(it->status(), "catalog: list tensors"));
  return manifest;
}

absl::StatusOr<TensorPage> Catalog::ListTensors(
    const RevisionName& name, absl::string_view prefix, int page_size,
    absl::string_view page_token) const {
  if (page_size <= 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page size ", page_size, " is outside 1..", kMaxPageSize));
  }
  ScopedSnapshot snapshot(cold_->db());
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, Resolve(name));
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> revision,
      GetValue(cold_->catalog_family(), RevisionKey(resolved), snapshot.get()));
  if (!revision.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no revision ", resolved.ToString()));
  }
  std::string tensor_prefix = TensorPrefix(resolved);
  std::string start = absl::StrCat(tensor_prefix, prefix);
  if (!page_token.empty()) {
    if (!absl::StartsWith(page_token, prefix)) {
      return absl::InvalidArgumentError(
          "page token does not belong to this listing");
    }
    start = std::max(start, absl::StrCat(tensor_prefix, page_token));
  }
  rocksdb::Slice bound;
  std::string bound_storage;
  std::unique_ptr<rocksdb::Iterator> it =
      PrefixIterator(cold_->db(), cold_->catalog_family(), tensor_prefix,
                     snapshot.get(), &bound, &bound_storage);
  TensorPage page;
  for (it->Seek(start); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    absl::string_view tensor = key.substr(tensor_prefix.size());
    if (!absl::StartsWith(tensor, prefix)) break;
    if (!page_token.empty() && tensor == page_token) continue;
    if (static_cast<int>(page.tensors.size()) == page_size) {
      page.next_page_token = page.tensors.back().name.tensor;
      break;
    }
    PSTORE_ASSIGN_OR_RETURN(
        TensorMeta meta, DecodeTensor(TensorName{resolved, std::string(tensor)},
                                      absl::string_view(it->value().data(),
                                                        it->value().size())));
    page.tensors.push_back(std::move(meta));
  }
  PSTORE_RETURN_IF_ERROR(RocksToStatus(it->status(), "catalog: list tensors"));
  return page;
}

absl::StatusOr<std::vector<ModelInfo>> Catalog::ListModels() const {
  ScopedSnapshot snapshot(cold_->db());
  std::vector<ModelInfo> models;
  std::string prefix = ModelKey("");
  rocksdb::Slice bound;
  std::string bound_storage;
  std::unique_ptr<rocksdb::Iterator> it =
      PrefixIterator(cold_->db(), cold_->catalog_family(), prefix,
                     snapshot.get(), &bound, &bound_storage);
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    ModelInfo model;
    model.name = it->key().ToString().substr(prefix.size());
    storage::ModelRecord record;
    if (!record.ParseFromArray(it->value().data(),
                               static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("catalog record of model ", model.name, " is corrupt"));
    }
    model.latest_revision = record.latest_revision();
    models.push_back(std::move(model));
  }
  PSTORE_RETURN_IF_ERROR(RocksToStatus(it->status(), "catalog: list models"));

  for (ModelInfo& model : models) {
    std::string revision_prefix = RevisionPrefix(model.name);
    std::unique_ptr<rocksdb::Iterator> revisions =
        PrefixIterator(cold_->db(), cold_->catalog_family(), revision_prefix,
                       snapshot.get(), &bound, &bound_storage);
    for (revisions->Seek(revision_prefix); revisions->Valid();
         revisions->Next()) {
      RevisionName name{model.name, revisions->key().ToString().substr(
                                        revision_prefix.size())};
      PSTORE_ASSIGN_OR_RETURN(
          storage::RevisionRecord record,
          DecodeRevision(name, absl::string_view(revisions->value().data(),
                                                 revisions->value().size())));
      model.revisions.push_back(
          ToRevisionInfo(name, record, model.latest_revision));
    }
    PSTORE_RETURN_IF_ERROR(
        RocksToStatus(revisions->status(), "catalog: list revisions"));
  }
  return models;
}

absl::Status Catalog::CreateRevision(
    const RevisionName& name,
    const std::map<std::string, std::string>& metadata) {
  absl::MutexLock lock(&mu_);
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> existing,
                          GetValue(cold_->catalog_family(), RevisionKey(name)));
  if (existing.has_value()) {
    return absl::AlreadyExistsError(
        absl::StrCat("revision ", name.ToString(), " exists"));
  }
  rocksdb::WriteBatch batch;
  int64_t now = NowMicros();
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> model,
      GetValue(cold_->catalog_family(), ModelKey(name.model)));
  if (!model.has_value()) {
    storage::ModelRecord record;
    record.set_created_unix_micros(now);
    batch.Put(cold_->catalog_family(), ModelKey(name.model),
              record.SerializeAsString());
  }
  storage::RevisionRecord record;
  record.set_state(storage::RevisionRecord::OPEN);
  record.set_created_unix_micros(now);
  record.mutable_metadata()->insert(metadata.begin(), metadata.end());
  batch.Put(cold_->catalog_family(), RevisionKey(name),
            record.SerializeAsString());
  return cold_->Commit(&batch);
}

absl::Status Catalog::EnsureOpenRevision(const RevisionName& name) {
  absl::Status created = CreateRevision(name, {});
  if (!absl::IsAlreadyExists(created)) return created;
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(cold_->catalog_family(), RevisionKey(name)));
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

absl::Status Catalog::PublishRevision(const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(cold_->catalog_family(), RevisionKey(name)));
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
      GetValue(cold_->catalog_family(), ModelKey(name.model)));
  if (model_value.has_value() && !model.ParseFromString(*model_value)) {
    return absl::DataLossError(
        absl::StrCat("catalog record of model ", name.model, " is corrupt"));
  }
  model.set_latest_revision(name.revision);

  rocksdb::WriteBatch batch;
  batch.Put(cold_->catalog_family(), RevisionKey(name),
            record.SerializeAsString());
  batch.Put(cold_->catalog_family(), ModelKey(name.model),
            model.SerializeAsString());
  return cold_->Commit(&batch);
}

absl::Status Catalog::ApplyRefDeltas(
    const absl::flat_hash_map<BlockId, int64_t>& deltas,
    rocksdb::WriteBatch* batch, std::vector<BlockId>* collected) {
  for (const auto& [id, delta] : deltas) {
    if (delta == 0) continue;
    std::string key = BlockKey(id);
    PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                            GetValue(cold_->refs_family(), key));
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
      batch->Put(cold_->refs_family(), key, EncodeCount(updated));
      continue;
    }
    batch->Delete(cold_->refs_family(), key);
    auto staging = staging_.find(id);
    if (staging != staging_.end()) {
      // A put in progress holds the block: keep it, marked staged so that a
      // crash before that put commits still collects it.
      batch->Put(cold_->staged_family(), key, "");
      continue;
    }
    batch->Delete(cold_->blocks_family(), key);
    collected->push_back(id);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlockId>> Catalog::DeleteRevision(
    const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(cold_->catalog_family(), RevisionKey(name)));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no revision ", name.ToString()));
  }
  rocksdb::WriteBatch batch;
  absl::flat_hash_map<BlockId, int64_t> deltas;
  std::string prefix = TensorPrefix(name);
  rocksdb::Slice bound;
  std::string bound_storage;
  std::unique_ptr<rocksdb::Iterator> it =
      PrefixIterator(cold_->db(), cold_->catalog_family(), prefix, nullptr,
                     &bound, &bound_storage);
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    TensorName tensor{name, std::string(key.substr(prefix.size()))};
    PSTORE_ASSIGN_OR_RETURN(
        TensorMeta meta,
        DecodeTensor(
            tensor, absl::string_view(it->value().data(), it->value().size())));
    for (const BlockId& id : meta.blocks) --deltas[id];
    batch.Delete(cold_->catalog_family(), it->key());
  }
  PSTORE_RETURN_IF_ERROR(
      RocksToStatus(it->status(), "catalog: delete revision"));
  batch.Delete(cold_->catalog_family(), RevisionKey(name));
  batch.Delete(cold_->catalog_family(), PinKey(name));

  // Move latest to the most recently published other revision, or drop the
  // model when this was its last revision.
  storage::ModelRecord model;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> model_value,
      GetValue(cold_->catalog_family(), ModelKey(name.model)));
  if (model_value.has_value()) (void)model.ParseFromString(*model_value);
  std::string revision_prefix = RevisionPrefix(name.model);
  std::unique_ptr<rocksdb::Iterator> revisions =
      PrefixIterator(cold_->db(), cold_->catalog_family(), revision_prefix,
                     nullptr, &bound, &bound_storage);
  bool others = false;
  std::string newest;
  int64_t newest_time = -1;
  for (revisions->Seek(revision_prefix); revisions->Valid();
       revisions->Next()) {
    std::string other =
        revisions->key().ToString().substr(revision_prefix.size());
    if (other == name.revision) continue;
    others = true;
    storage::RevisionRecord record;
    if (record.ParseFromArray(revisions->value().data(),
                              static_cast<int>(revisions->value().size())) &&
        record.state() == storage::RevisionRecord::PUBLISHED &&
        record.published_unix_micros() > newest_time) {
      newest_time = record.published_unix_micros();
      newest = other;
    }
  }
  PSTORE_RETURN_IF_ERROR(
      RocksToStatus(revisions->status(), "catalog: delete revision"));
  if (!others) {
    batch.Delete(cold_->catalog_family(), ModelKey(name.model));
  } else if (model.latest_revision() == name.revision) {
    model.set_latest_revision(newest);
    batch.Put(cold_->catalog_family(), ModelKey(name.model),
              model.SerializeAsString());
  }

  std::vector<BlockId> collected;
  PSTORE_RETURN_IF_ERROR(ApplyRefDeltas(deltas, &batch, &collected));
  PSTORE_RETURN_IF_ERROR(cold_->Commit(&batch));
  return collected;
}

absl::StatusOr<std::vector<BlockId>> Catalog::DeleteTensor(
    const TensorName& name) {
  absl::MutexLock lock(&mu_);
  const RevisionName& revision = name.revision;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> revision_value,
      GetValue(cold_->catalog_family(), RevisionKey(revision)));
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
                          GetValue(cold_->catalog_family(), TensorKey(name)));
  if (!value.has_value()) {
    return absl::NotFoundError(absl::StrCat("no tensor ", name.ToString()));
  }
  PSTORE_ASSIGN_OR_RETURN(TensorMeta meta, DecodeTensor(name, *value));
  absl::flat_hash_map<BlockId, int64_t> deltas;
  for (const BlockId& id : meta.blocks) --deltas[id];
  rocksdb::WriteBatch batch;
  batch.Delete(cold_->catalog_family(), TensorKey(name));
  std::vector<BlockId> collected;
  PSTORE_RETURN_IF_ERROR(ApplyRefDeltas(deltas, &batch, &collected));
  PSTORE_RETURN_IF_ERROR(cold_->Commit(&batch));
  return collected;
}

absl::StatusOr<bool> Catalog::StageBlock(const BlockId& id) {
  absl::MutexLock lock(&mu_);
  Staging& staging = staging_[id];
  ++staging.count;
  if (staging.written) return true;
  absl::StatusOr<std::optional<std::string>> refs =
      GetValue(cold_->refs_family(), BlockKey(id));
  if (!refs.ok()) {
    if (--staging.count == 0) staging_.erase(id);
    return refs.status();
  }
  return refs->has_value();
}

absl::Status Catalog::WriteStagedBlock(const BlockId& id,
                                       const BlockRef& block) {
  PSTORE_RETURN_IF_ERROR(cold_->CheckSpace(block->size()));
  rocksdb::WriteBatch batch;
  std::string key = BlockKey(id);
  batch.Put(cold_->blocks_family(), key,
            rocksdb::Slice(block->view().data(), block->size()));
  batch.Put(cold_->staged_family(), key, "");
  absl::Status written = cold_->Apply(&batch, /*sync=*/false);
  if (!written.ok()) {
    return Annotate(written, absl::StrCat("catalog: write block ", id.ToHex()));
  }
  cold_->CountBlockWrite(block->size());
  absl::MutexLock lock(&mu_);
  auto it = staging_.find(id);
  if (it != staging_.end()) it->second.written = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlockId>> Catalog::CommitTensor(
    const TensorMeta& tensor) {
  absl::MutexLock lock(&mu_);
  const RevisionName& revision = tensor.name.revision;
  PSTORE_ASSIGN_OR_RETURN(
      std::optional<std::string> revision_value,
      GetValue(cold_->catalog_family(), RevisionKey(revision)));
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
                          GetValue(cold_->catalog_family(), key));
  if (old_value.has_value()) {
    PSTORE_ASSIGN_OR_RETURN(TensorMeta old,
                            DecodeTensor(tensor.name, *old_value));
    for (const BlockId& id : old.blocks) --deltas[id];
  }

  rocksdb::WriteBatch batch;
  batch.Put(cold_->catalog_family(), key, EncodeTensor(tensor));
  for (const BlockId& id : tensor.blocks) {
    batch.Delete(cold_->staged_family(), BlockKey(id));
  }
  std::vector<BlockId> collected;
  PSTORE_RETURN_IF_ERROR(ApplyRefDeltas(deltas, &batch, &collected));
  PSTORE_RETURN_IF_ERROR(cold_->Commit(&batch));
  for (const BlockId& id : tensor.blocks) {
    auto it = staging_.find(id);
    if (it != staging_.end() && --it->second.count == 0) staging_.erase(it);
  }
  return collected;
}

absl::StatusOr<std::vector<BlockId>> Catalog::AbortStaged(
    const std::vector<BlockId>& ids) {
  absl::MutexLock lock(&mu_);
  rocksdb::WriteBatch batch;
  std::vector<BlockId> collected;
  for (const BlockId& id : ids) {
    auto it = staging_.find(id);
    if (it == staging_.end() || --it->second.count > 0) continue;
    staging_.erase(it);
    std::string key = BlockKey(id);
    PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> refs,
                            GetValue(cold_->refs_family(), key));
    if (refs.has_value()) continue;
    batch.Delete(cold_->blocks_family(), key);
    batch.Delete(cold_->staged_family(), key);
    collected.push_back(id);
  }
  if (batch.Count() > 0) {
    absl::Status applied = cold_->Apply(&batch, /*sync=*/false);
    if (!applied.ok()) {
      // The staged markers remain, so the next Open collects the blocks.
      return Annotate(applied, "catalog: abort put");
    }
  }
  return collected;
}

absl::StatusOr<uint64_t> Catalog::RefCount(const BlockId& id) const {
  PSTORE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                          GetValue(cold_->refs_family(), BlockKey(id)));
  if (!value.has_value()) return 0;
  return DecodeCount(*value, id);
}

absl::Status Catalog::AddPinRecord(const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  storage::PinRecord record;
  record.set_created_unix_micros(NowMicros());
  rocksdb::WriteBatch batch;
  batch.Put(cold_->catalog_family(), PinKey(name), record.SerializeAsString());
  return cold_->Commit(&batch);
}

absl::Status Catalog::RemovePinRecord(const RevisionName& name) {
  absl::MutexLock lock(&mu_);
  rocksdb::WriteBatch batch;
  batch.Delete(cold_->catalog_family(), PinKey(name));
  return cold_->Commit(&batch);
}

absl::StatusOr<std::vector<RevisionName>> Catalog::ListPinRecords() const {
  std::vector<RevisionName> pins;
  std::string prefix = PinKey(RevisionName{"", ""});
  prefix.pop_back();  // "P\0" with no model and revision separator.
  rocksdb::Slice bound;
  std::string bound_storage;
  std::unique_ptr<rocksdb::Iterator> it =
      PrefixIterator(cold_->db(), cold_->catalog_family(), prefix, nullptr,
                     &bound, &bound_storage);
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string rest = it->key().ToString().substr(prefix.size());
    size_t separator = rest.find(kSep);
    if (separator == std::string::npos) continue;
    pins.push_back(
        RevisionName{rest.substr(0, separator), rest.substr(separator + 1)});
  }
  PSTORE_RETURN_IF_ERROR(RocksToStatus(it->status(), "catalog: list pins"));
  return pins;
}

}  // namespace pstore
