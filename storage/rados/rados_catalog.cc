#include "storage/rados/rados_catalog.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/cold/catalog_codec.h"
#include "util/status.h"

namespace pstore {
namespace {

// Objects (rados_format.md).
constexpr char kModelsObject[] = "catalog.models";
constexpr char kPinsObject[] = "catalog.pins";
std::string ModelObjectName(absl::string_view model) {
  return absl::StrCat("model.", model);
}
std::string RevisionObjectName(const RevisionName& name) {
  return absl::StrCat("revision.", name.model, "@", name.revision);
}
// Keys of a model object.
constexpr char kLatestKey[] = "latest";
constexpr char kRevisionKeyPrefix[] = "rev.";
// Xattrs of a revision object.
constexpr char kStateXattr[] = "pstore.state";
constexpr char kCreatedXattr[] = "pstore.created";
constexpr char kOpen[] = "open";
constexpr char kPublished[] = "published";

// Omap entries read per operation.
constexpr uint64_t kOmapPage = 4096;
// Compare-and-swap rounds before a write gives up (each lost round means
// another writer changed the same object meanwhile).
constexpr int kMaxSwapRounds = 64;
// Rounds of "resolve latest, then read it" when the revision read is
// deleted in between (latest moved on meanwhile).
constexpr int kMaxResolveRounds = 16;

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

ceph::bufferlist Bytes(absl::string_view text) {
  ceph::bufferlist bytes;
  bytes.append(text.data(), text.size());
  return bytes;
}

std::string Text(const ceph::bufferlist& bytes) {
  std::string text;
  bytes.begin().copy(bytes.length(), text);
  return text;
}

// Runs read operation `op` on object `oid` and waits; returns the
// operation's result and sets `version` to the object's version.
int ReadWithVersion(librados::IoCtx& io, const std::string& oid,
                    librados::ObjectReadOperation* op, uint64_t* version) {
  librados::AioCompletion* completion =
      librados::Rados::aio_create_completion();
  int result = io.aio_operate(oid, completion, op, nullptr);
  if (result == 0) {
    completion->wait_for_complete();
    result = completion->get_return_value();
    *version = completion->get_version64();
  }
  completion->release();
  return result;
}

absl::Status NoRevision(const RevisionName& name) {
  return absl::NotFoundError(
      absl::StrCat("revision ", name.ToString(), " not found"));
}

absl::Status NoLatest(absl::string_view model) {
  return absl::NotFoundError(
      absl::StrCat("model ", model, " has no published revision"));
}

}  // namespace

// A model object as read: its revisions' records and its latest.
struct RadosCatalog::ModelState {
  std::string model;
  bool exists = false;
  uint64_t version = 0;
  std::string latest;  // Empty: none published.
  std::map<std::string, storage::RevisionRecord> revisions;
};

// A revision object as read.
struct RadosCatalog::RevisionObject {
  bool exists = false;
  std::string state;
  int64_t created = 0;
  std::map<std::string, ceph::bufferlist> tensors;  // Name order.
};

RadosCatalog::RadosCatalog(std::shared_ptr<RadosPool> pool)
    : pool_(std::move(pool)) {}

absl::StatusOr<RadosCatalog::ModelState> RadosCatalog::ReadModel(
    absl::string_view model) const {
  const std::string oid = ModelObjectName(model);
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    ModelState state;
    state.model = std::string(model);
    std::string after;
    bool changed = false;
    for (bool more = true; more;) {
      librados::ObjectReadOperation op;
      std::map<std::string, ceph::bufferlist> values;
      int values_result = 0;
      op.omap_get_vals2(after, kOmapPage, &values, &more, &values_result);
      uint64_t version = 0;
      int result = ReadWithVersion(pool_->io(), oid, &op, &version);
      if (result == -ENOENT) return state;
      PSTORE_RETURN_IF_ERROR(
          RadosStatus(result, absl::StrCat("catalog: read model ", model)));
      if (state.exists && version != state.version) {
        changed = true;  // Written between pages: read it again.
        break;
      }
      state.exists = true;
      state.version = version;
      for (auto& [key, value] : values) {
        after = key;
        if (key == kLatestKey) {
          state.latest = Text(value);
        } else if (absl::StartsWith(key, kRevisionKeyPrefix)) {
          RevisionName name{state.model,
                            key.substr(sizeof(kRevisionKeyPrefix) - 1)};
          PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                                  DecodeRevision(name, Text(value)));
          state.revisions.emplace(name.revision, std::move(record));
        }
      }
    }
    if (!changed) return state;
  }
  return absl::AbortedError(
      absl::StrCat("catalog: model ", model, " kept changing while read"));
}

absl::StatusOr<bool> RadosCatalog::SwapModel(const ModelState& read,
                                             const ModelState& next) {
  librados::ObjectWriteOperation op;
  if (read.exists) {
    op.assert_version(read.version);
  } else {
    op.create(/*exclusive=*/true);
  }
  if (next.revisions.empty()) {
    if (!read.exists) return true;
    op.remove();  // The model goes with its last revision.
  } else {
    std::set<std::string> removed;
    for (const auto& [revision, record] : read.revisions) {
      if (!next.revisions.contains(revision)) {
        removed.insert(absl::StrCat(kRevisionKeyPrefix, revision));
      }
    }
    if (next.latest.empty() && !read.latest.empty()) {
      removed.insert(kLatestKey);
    }
    if (!removed.empty()) op.omap_rm_keys(removed);
    std::map<std::string, ceph::bufferlist> values;
    for (const auto& [revision, record] : next.revisions) {
      auto old = read.revisions.find(revision);
      if (old != read.revisions.end() &&
          old->second.SerializeAsString() == record.SerializeAsString()) {
        continue;
      }
      values[absl::StrCat(kRevisionKeyPrefix, revision)] =
          Bytes(record.SerializeAsString());
    }
    if (!next.latest.empty() && next.latest != read.latest) {
      values[kLatestKey] = Bytes(next.latest);
    }
    if (!values.empty()) op.omap_set(values);
  }
  int result = pool_->io().operate(ModelObjectName(read.model), &op);
  // Another writer came first: the version moved on (ERANGE, EOVERFLOW),
  // the object appeared (EEXIST) or went (ENOENT).
  if (result == -ERANGE || result == -EOVERFLOW || result == -EEXIST ||
      result == -ENOENT) {
    return false;
  }
  PSTORE_RETURN_IF_ERROR(
      RadosStatus(result, absl::StrCat("catalog: write model ", read.model)));
  return true;
}

absl::StatusOr<RadosCatalog::RevisionObject> RadosCatalog::ReadRevisionObject(
    const RevisionName& name, bool tensors) const {
  RevisionObject object;
  const std::string oid = RevisionObjectName(name);
  std::string after;
  uint64_t first_version = 0;
  for (bool more = true; more;) {
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> xattrs;
    int xattrs_result = 0;
    op.getxattrs(&xattrs, &xattrs_result);
    std::map<std::string, ceph::bufferlist> values;
    int values_result = 0;
    more = false;
    if (tensors) {
      op.omap_get_vals2(after, kOmapPage, &values, &more, &values_result);
    }
    uint64_t version = 0;
    int result = ReadWithVersion(pool_->io(), oid, &op, &version);
    if (result == -ENOENT) return RevisionObject();
    PSTORE_RETURN_IF_ERROR(RadosStatus(
        result, absl::StrCat("catalog: read revision ", name.ToString())));
    if (object.exists && version != first_version) {
      // Written between pages (an open revision): read it whole again.
      return ReadRevisionObject(name, tensors);
    }
    first_version = version;
    object.exists = true;
    if (auto state = xattrs.find(kStateXattr); state != xattrs.end()) {
      object.state = Text(state->second);
    }
    if (auto created = xattrs.find(kCreatedXattr); created != xattrs.end()) {
      if (!absl::SimpleAtoi(Text(created->second), &object.created)) {
        return absl::DataLossError(
            absl::StrCat("catalog: revision ", name.ToString(),
                         " has a corrupt ", kCreatedXattr));
      }
    }
    for (auto& [key, value] : values) {
      after = key;
      object.tensors.emplace(key, std::move(value));
    }
  }
  return object;
}

absl::StatusOr<RevisionName> RadosCatalog::ResolveIn(const ModelState& state,
                                                     const RevisionName& name) {
  RevisionName resolved = name;
  if (resolved.revision.empty()) {
    if (state.latest.empty()) return NoLatest(name.model);
    resolved.revision = state.latest;
  }
  if (!state.revisions.contains(resolved.revision)) {
    return NoRevision(resolved);
  }
  return resolved;
}

absl::Status RadosCatalog::WriteRevisionObject(const RevisionName& name,
                                               int64_t created,
                                               bool published) {
  librados::ObjectWriteOperation op;
  op.create(/*exclusive=*/false);
  op.omap_clear();
  op.setxattr(kStateXattr, Bytes(published ? kPublished : kOpen));
  op.setxattr(kCreatedXattr, Bytes(absl::StrCat(created)));
  return RadosStatus(pool_->io().operate(RevisionObjectName(name), &op),
                     absl::StrCat("catalog: write revision ", name.ToString()));
}

absl::StatusOr<RevisionName> RadosCatalog::Resolve(const RevisionName& name,
                                                   CatalogRead mode) const {
  if (!name.revision.empty()) return name;
  if (mode == CatalogRead::kMemoryOnly) {
    return WouldBlockError("the RADOS catalog keeps no latest in memory");
  }
  PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
  return ResolveIn(state, name);
}

absl::StatusOr<TensorMeta> RadosCatalog::GetTensor(const TensorName& name,
                                                   CatalogRead mode) const {
  if (mode == CatalogRead::kMemoryOnly) {
    return WouldBlockError("the RADOS catalog keeps no tensors in memory");
  }
  for (int round = 0; round < kMaxResolveRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.revision.model));
    PSTORE_ASSIGN_OR_RETURN(RevisionName revision,
                            ResolveIn(state, name.revision));
    const storage::RevisionRecord& record =
        state.revisions.at(revision.revision);
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> xattrs;
    int xattrs_result = 0;
    op.getxattrs(&xattrs, &xattrs_result);
    std::map<std::string, ceph::bufferlist> values;
    int values_result = 0;
    op.omap_get_vals_by_keys({name.tensor}, &values, &values_result);
    uint64_t version = 0;
    int result = ReadWithVersion(pool_->io(), RevisionObjectName(revision), &op,
                                 &version);
    const TensorName resolved{revision, name.tensor};
    auto created = xattrs.find(kCreatedXattr);
    bool same_revision =
        result == 0 && created != xattrs.end() &&
        Text(created->second) == absl::StrCat(record.created_unix_micros());
    if (result != -ENOENT) {
      PSTORE_RETURN_IF_ERROR(RadosStatus(
          result, absl::StrCat("catalog: read tensor ", resolved.ToString())));
    }
    if (!same_revision) {
      // Deleted (and maybe created anew) since the model was read.
      if (name.revision.revision.empty()) continue;
      if (result == -ENOENT) {
        // Created, and the object not yet written: no tensors.
        return absl::NotFoundError(
            absl::StrCat("tensor ", resolved.ToString(), " not found"));
      }
      return NoRevision(revision);
    }
    auto value = values.find(name.tensor);
    if (value == values.end()) {
      return absl::NotFoundError(
          absl::StrCat("tensor ", resolved.ToString(), " not found"));
    }
    return DecodeTensor(resolved, Text(value->second));
  }
  return absl::UnavailableError(
      absl::StrCat("catalog: the latest revision of ", name.revision.model,
                   " kept moving while ", name.tensor, " was read"));
}

absl::StatusOr<RevisionInfo> RadosCatalog::GetRevision(
    const RevisionName& name) const {
  PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, ResolveIn(state, name));
  return ToRevisionInfo(resolved, state.revisions.at(resolved.revision),
                        state.latest);
}

absl::StatusOr<Manifest> RadosCatalog::GetManifest(
    const RevisionName& name) const {
  for (int round = 0; round < kMaxResolveRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
    PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, ResolveIn(state, name));
    const storage::RevisionRecord& record =
        state.revisions.at(resolved.revision);
    PSTORE_ASSIGN_OR_RETURN(RevisionObject object,
                            ReadRevisionObject(resolved, /*tensors=*/true));
    if (object.exists && object.created != record.created_unix_micros()) {
      // Deleted and created anew since the model was read.
      if (name.revision.empty()) continue;
      return NoRevision(resolved);
    }
    if (!object.exists &&
        record.state() == storage::RevisionRecord::PUBLISHED) {
      // A published revision always has its object: it was deleted since.
      if (name.revision.empty()) continue;
      return NoRevision(resolved);
    }
    Manifest manifest;
    manifest.revision = ToRevisionInfo(resolved, record, state.latest);
    manifest.tensors.reserve(object.tensors.size());
    for (const auto& [tensor, value] : object.tensors) {
      PSTORE_ASSIGN_OR_RETURN(
          TensorMeta meta,
          DecodeTensor(TensorName{resolved, tensor}, Text(value)));
      manifest.tensors.push_back(std::move(meta));
    }
    return manifest;
  }
  return absl::UnavailableError(absl::StrCat("catalog: the latest revision of ",
                                             name.model, " kept moving"));
}

absl::StatusOr<TensorPage> RadosCatalog::ListTensors(
    const RevisionName& name, absl::string_view prefix, int page_size,
    absl::string_view page_token) const {
  if (page_size < 1 || page_size > kMaxTensorPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page size must be in 1..", kMaxTensorPageSize, ", not ", page_size));
  }
  if (!page_token.empty() && !absl::StartsWith(page_token, prefix)) {
    return absl::InvalidArgumentError(
        "the page token belongs to another listing");
  }
  PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, ResolveIn(state, name));
  librados::ObjectReadOperation op;
  std::map<std::string, ceph::bufferlist> values;
  bool more = false;
  int values_result = 0;
  op.omap_get_vals2(std::string(page_token), std::string(prefix),
                    static_cast<uint64_t>(page_size), &values, &more,
                    &values_result);
  uint64_t version = 0;
  int result =
      ReadWithVersion(pool_->io(), RevisionObjectName(resolved), &op, &version);
  TensorPage page;
  if (result == -ENOENT) return page;
  PSTORE_RETURN_IF_ERROR(RadosStatus(
      result, absl::StrCat("catalog: list revision ", resolved.ToString())));
  for (const auto& [tensor, value] : values) {
    PSTORE_ASSIGN_OR_RETURN(
        TensorMeta meta,
        DecodeTensor(TensorName{resolved, tensor}, Text(value)));
    page.tensors.push_back(std::move(meta));
  }
  if (more && !page.tensors.empty()) {
    page.next_page_token = page.tensors.back().name.tensor;
  }
  return page;
}

absl::StatusOr<std::vector<ModelInfo>> RadosCatalog::ListModels() const {
  std::vector<std::string> names;
  std::string after;
  for (bool more = true; more;) {
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> values;
    int values_result = 0;
    op.omap_get_vals2(after, kOmapPage, &values, &more, &values_result);
    uint64_t version = 0;
    int result = ReadWithVersion(pool_->io(), kModelsObject, &op, &version);
    if (result == -ENOENT) break;
    PSTORE_RETURN_IF_ERROR(RadosStatus(result, "catalog: list models"));
    for (const auto& [model, value] : values) {
      after = model;
      names.push_back(model);
    }
  }
  std::vector<ModelInfo> models;
  for (const std::string& name : names) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name));
    // A model whose last revision went stays in the index.
    if (!state.exists || state.revisions.empty()) continue;
    ModelInfo model;
    model.name = name;
    model.latest_revision = state.latest;
    for (const auto& [revision, record] : state.revisions) {
      model.revisions.push_back(
          ToRevisionInfo(RevisionName{name, revision}, record, state.latest));
    }
    models.push_back(std::move(model));
  }
  return models;
}

absl::StatusOr<uint64_t> RadosCatalog::RefCount(const BlockId& id) const {
  return absl::FailedPreconditionError(
      absl::StrCat("the RADOS catalog counts no references (block ", id.ToHex(),
                   "): unreferenced blocks are found by mark and sweep"));
}

absl::Status RadosCatalog::CreateRevision(
    const RevisionName& name,
    const std::map<std::string, std::string>& metadata) {
  {
    // The index lists every model that ever had a revision.
    librados::ObjectWriteOperation index;
    index.create(/*exclusive=*/false);
    index.omap_set({{name.model, ceph::bufferlist()}});
    PSTORE_RETURN_IF_ERROR(RadosStatus(
        pool_->io().operate(kModelsObject, &index), "catalog: index model"));
  }
  storage::RevisionRecord record;
  record.set_state(storage::RevisionRecord::OPEN);
  record.mutable_metadata()->insert(metadata.begin(), metadata.end());
  record.set_created_unix_micros(NowMicros());
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
    if (state.revisions.contains(name.revision)) {
      return absl::AlreadyExistsError(
          absl::StrCat("revision ", name.ToString(), " already exists"));
    }
    ModelState next = state;
    next.revisions[name.revision] = record;
    PSTORE_ASSIGN_OR_RETURN(bool swapped, SwapModel(state, next));
    if (!swapped) continue;
    // Only the creator that won gets here; until its object is written a
    // commit creates it (CommitTensor).
    return WriteRevisionObject(name, record.created_unix_micros(),
                               /*published=*/false);
  }
  return absl::AbortedError(absl::StrCat("catalog: model ", name.model,
                                         " kept changing; create ",
                                         name.ToString(), " again"));
}

absl::Status RadosCatalog::EnsureOpenRevision(const RevisionName& name) {
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
    auto found = state.revisions.find(name.revision);
    if (found != state.revisions.end()) {
      if (found->second.state() == storage::RevisionRecord::PUBLISHED) {
        return absl::FailedPreconditionError(
            absl::StrCat("revision ", name.ToString(), " is published"));
      }
      return absl::OkStatus();
    }
    absl::Status created = CreateRevision(name, {});
    if (!absl::IsAlreadyExists(created)) return created;
  }
  return absl::AbortedError(
      absl::StrCat("catalog: model ", name.model, " kept changing"));
}

absl::Status RadosCatalog::PublishRevision(const RevisionName& name) {
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
    auto found = state.revisions.find(name.revision);
    if (found == state.revisions.end()) return NoRevision(name);
    if (found->second.state() == storage::RevisionRecord::PUBLISHED) {
      return absl::OkStatus();  // A retried call.
    }
    const int64_t created = found->second.created_unix_micros();
    {
      // First the revision object: from here on no commit joins it.
      librados::ObjectWriteOperation seal;
      seal.cmpxattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                    Bytes(absl::StrCat(created)));
      seal.setxattr(kStateXattr, Bytes(kPublished));
      int result = pool_->io().operate(RevisionObjectName(name), &seal);
      if (result == -ENOENT || result == -ENODATA) {
        // Its creator stopped before writing it: an empty revision.
        PSTORE_RETURN_IF_ERROR(
            WriteRevisionObject(name, created, /*published=*/true));
      } else if (result == -ECANCELED) {
        continue;  // Deleted and created anew meanwhile.
      } else {
        PSTORE_RETURN_IF_ERROR(RadosStatus(
            result, absl::StrCat("catalog: seal revision ", name.ToString())));
      }
    }
    ModelState next = state;
    storage::RevisionRecord& record = next.revisions[name.revision];
    record.set_state(storage::RevisionRecord::PUBLISHED);
    record.set_published_unix_micros(NowMicros());
    next.latest = name.revision;
    PSTORE_ASSIGN_OR_RETURN(bool swapped, SwapModel(state, next));
    if (swapped) return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("catalog: model ", name.model,
                                         " kept changing; publish ",
                                         name.ToString(), " again"));
}

absl::StatusOr<std::vector<BlockId>> RadosCatalog::DeleteRevision(
    const RevisionName& name) {
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
    auto found = state.revisions.find(name.revision);
    if (found == state.revisions.end()) return NoRevision(name);
    const int64_t created = found->second.created_unix_micros();
    ModelState next = state;
    next.revisions.erase(name.revision);
    if (next.latest == name.revision) {
      // The most recently published other revision becomes latest.
      next.latest.clear();
      int64_t newest = -1;
      for (const auto& [revision, record] : next.revisions) {
        if (record.state() == storage::RevisionRecord::PUBLISHED &&
            record.published_unix_micros() > newest) {
          newest = record.published_unix_micros();
          next.latest = revision;
        }
      }
    }
    PSTORE_ASSIGN_OR_RETURN(bool swapped, SwapModel(state, next));
    if (!swapped) continue;
    // Then its tensors, unless the name was created anew meanwhile.
    librados::ObjectWriteOperation remove;
    remove.cmpxattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                    Bytes(absl::StrCat(created)));
    remove.remove();
    int result = pool_->io().operate(RevisionObjectName(name), &remove);
    if (result != -ENOENT && result != -ECANCELED && result != -ENODATA) {
      PSTORE_RETURN_IF_ERROR(RadosStatus(
          result, absl::StrCat("catalog: remove revision ", name.ToString())));
    }
    PSTORE_RETURN_IF_ERROR(RemovePinRecord(name));
    return std::vector<BlockId>();
  }
  return absl::AbortedError(absl::StrCat("catalog: model ", name.model,
                                         " kept changing; delete ",
                                         name.ToString(), " again"));
}

absl::StatusOr<std::vector<BlockId>> RadosCatalog::DeleteTensor(
    const TensorName& name) {
  PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.revision.model));
  auto found = state.revisions.find(name.revision.revision);
  if (found == state.revisions.end()) return NoRevision(name.revision);
  if (found->second.state() == storage::RevisionRecord::PUBLISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("revision ", name.revision.ToString(), " is published"));
  }
  librados::ObjectWriteOperation op;
  op.cmpxattr(kStateXattr, LIBRADOS_CMPXATTR_OP_EQ, Bytes(kOpen));
  op.cmpxattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
              Bytes(absl::StrCat(found->second.created_unix_micros())));
  // Present: its value is not empty.
  int present = 0;
  op.omap_cmp({{name.tensor, {ceph::bufferlist(), LIBRADOS_CMPXATTR_OP_GT}}},
              &present);
  op.omap_rm_keys({name.tensor});
  int result = pool_->io().operate(RevisionObjectName(name.revision), &op);
  if (result == 0) return std::vector<BlockId>();
  if (result == -ECANCELED || result == -ENOENT || result == -ENODATA) {
    PSTORE_ASSIGN_OR_RETURN(RevisionObject object,
                            ReadRevisionObject(name.revision, false));
    if (object.exists && object.state == kPublished) {
      return absl::FailedPreconditionError(
          absl::StrCat("revision ", name.revision.ToString(), " is published"));
    }
    return absl::NotFoundError(
        absl::StrCat("tensor ", name.ToString(), " not found"));
  }
  PSTORE_RETURN_IF_ERROR(RadosStatus(
      result, absl::StrCat("catalog: delete tensor ", name.ToString())));
  return std::vector<BlockId>();
}

absl::Status RadosCatalog::MarkStaged(const BlockId&) {
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlockId>> RadosCatalog::CommitTensor(
    const TensorMeta& tensor) {
  const RevisionName& revision = tensor.name.revision;
  const std::string value = EncodeTensor(tensor);
  for (int round = 0; round < 4; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(revision.model));
    auto found = state.revisions.find(revision.revision);
    if (found == state.revisions.end()) return NoRevision(revision);
    if (found->second.state() == storage::RevisionRecord::PUBLISHED) {
      return absl::FailedPreconditionError(
          absl::StrCat("revision ", revision.ToString(), " is published"));
    }
    const int64_t created = found->second.created_unix_micros();
    librados::ObjectWriteOperation op;
    op.cmpxattr(kStateXattr, LIBRADOS_CMPXATTR_OP_EQ, Bytes(kOpen));
    op.cmpxattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                Bytes(absl::StrCat(created)));
    op.omap_set({{tensor.name.tensor, Bytes(value)}});
    int result = pool_->io().operate(RevisionObjectName(revision), &op);
    if (result == 0) return std::vector<BlockId>();
    if (result == -ENOENT || result == -ENODATA) {
      // Its creator stopped before writing the object: write it, once.
      librados::ObjectWriteOperation create;
      create.create(/*exclusive=*/true);
      create.setxattr(kStateXattr, Bytes(kOpen));
      create.setxattr(kCreatedXattr, Bytes(absl::StrCat(created)));
      int made = pool_->io().operate(RevisionObjectName(revision), &create);
      if (made != -EEXIST) {
        PSTORE_RETURN_IF_ERROR(RadosStatus(
            made,
            absl::StrCat("catalog: write revision ", revision.ToString())));
      }
      continue;
    }
    if (result == -ECANCELED) continue;  // Sealed or replaced: look again.
    PSTORE_RETURN_IF_ERROR(RadosStatus(
        result, absl::StrCat("catalog: commit ", tensor.name.ToString())));
  }
  return absl::AbortedError(
      absl::StrCat("catalog: revision ", revision.ToString(),
                   " kept changing; put ", tensor.name.tensor, " again"));
}

absl::StatusOr<std::vector<BlockId>> RadosCatalog::ListStaged() const {
  return std::vector<BlockId>();
}

absl::Status RadosCatalog::ClearStaged(std::span<const BlockId>) {
  return absl::OkStatus();
}

absl::Status RadosCatalog::AddPinRecord(const RevisionName& name) {
  PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
  if (!state.revisions.contains(name.revision)) return NoRevision(name);
  storage::PinRecord record;
  record.set_created_unix_micros(NowMicros());
  librados::ObjectWriteOperation op;
  op.create(/*exclusive=*/false);
  op.omap_set({{name.ToString(), Bytes(record.SerializeAsString())}});
  return RadosStatus(pool_->io().operate(kPinsObject, &op),
                     absl::StrCat("catalog: pin ", name.ToString()));
}

absl::Status RadosCatalog::RemovePinRecord(const RevisionName& name) {
  librados::ObjectWriteOperation op;
  op.omap_rm_keys({name.ToString()});
  int result = pool_->io().operate(kPinsObject, &op);
  if (result == -ENOENT) return absl::OkStatus();
  return RadosStatus(result, absl::StrCat("catalog: unpin ", name.ToString()));
}

absl::StatusOr<std::vector<RevisionName>> RadosCatalog::ListPinRecords() const {
  std::vector<RevisionName> pins;
  std::string after;
  for (bool more = true; more;) {
    librados::ObjectReadOperation op;
    std::map<std::string, ceph::bufferlist> values;
    int values_result = 0;
    op.omap_get_vals2(after, kOmapPage, &values, &more, &values_result);
    uint64_t version = 0;
    int result = ReadWithVersion(pool_->io(), kPinsObject, &op, &version);
    if (result == -ENOENT) break;
    PSTORE_RETURN_IF_ERROR(RadosStatus(result, "catalog: list pins"));
    for (const auto& [key, value] : values) {
      after = key;
      size_t at = key.find('@');
      if (at == std::string::npos) {
        return absl::DataLossError(
            absl::StrCat("catalog: corrupt pin record key '", key, "'"));
      }
      pins.push_back(RevisionName{key.substr(0, at), key.substr(at + 1)});
    }
  }
  std::sort(pins.begin(), pins.end(),
            [](const RevisionName& a, const RevisionName& b) {
              return std::tie(a.model, a.revision) <
                     std::tie(b.model, b.revision);
            });
  return pins;
}

}  // namespace pstore
