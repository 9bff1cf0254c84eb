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
#include "spdlog/spdlog.h"
#include "storage/cold/catalog_codec.h"
#include "storage/rados/rados_ops.h"
#include "util/status.h"

namespace pstore {
namespace {

// Objects (rados_format.md).
constexpr char kModelsObject[] = "catalog.models";
constexpr char kPinsObject[] = "catalog.pins";
constexpr char kEventsObject[] = "catalog.events";
// Published revisions whose tensor records a node keeps.
constexpr size_t kMaxKeptRevisions = 256;
// How long a change notice waits for the other nodes' acks.
constexpr uint64_t kNotifyTimeoutMs = 5000;
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
constexpr char kPublishedXattr[] = "pstore.published";

// Omap entries read per operation.
constexpr uint64_t kOmapPage = 4096;
// Compare-and-swap rounds before a write gives up (each lost round means
// another writer changed the same object meanwhile).
constexpr int kMaxSwapRounds = 64;
// Rounds of "resolve latest, then read it" when the revision read is
// deleted in between (latest moved on meanwhile).
constexpr int kMaxResolveRounds = 16;

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

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
  int64_t published = 0;  // When sealed; 0 if open or not written.
  std::map<std::string, std::string> tensors;  // Name order.

  // Whether a publish of the revision whose model record is `record`
  // sealed this object (and may not have swapped the model object yet).
  bool SealedFor(const storage::RevisionRecord& record) const {
    return exists && created == record.created_unix_micros() &&
           state == kPublished;
  }
  int64_t PublishedOrNow() const {
    return published > 0 ? published : NowMicros();
  }
};

// Counts change notices in flight; shared with their completions, which
// may outlive the catalog.
class RadosCatalog::NoticeTracker {
 public:
  void Start() {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }
  void Done() {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }
  // Waits until none is in flight, at most `timeout`.
  void WaitIdle(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](int* n) { return *n == 0; }, &in_flight_),
                         timeout);
  }

 private:
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// Forgets the model a notice names; its callbacks run on librados'
// threads.
class RadosCatalog::Watcher {
 public:
  explicit Watcher(const RadosCatalog* catalog) : catalog_(catalog) {}

  static void OnNotice(void* arg, uint64_t notify_id, uint64_t cookie, uint64_t,
                       void* data, size_t length) {
    auto* watcher = static_cast<Watcher*>(arg);
    watcher->catalog_->Forget(
        absl::string_view(static_cast<const char*>(data), length));
    rados_notify_ack(watcher->catalog_->pool_->io(), kEventsObject, notify_id,
                     cookie, nullptr, 0);
  }

  static void OnError(void* arg, uint64_t, int) {
    // Notices may have been missed: forget everything, watch again at the
    // next read.
    auto* watcher = static_cast<Watcher*>(arg);
    watcher->broken_.store(true);
    watcher->catalog_->Forget("");
  }

  // Returns true once if the watch broke since the last call.
  bool TakeBroken() { return broken_.exchange(false); }

 private:
  const RadosCatalog* const catalog_;
  std::atomic<bool> broken_{false};
};

RadosCatalog::RadosCatalog(std::shared_ptr<RadosPool> pool)
    : pool_(std::move(pool)),
      watcher_(std::make_unique<Watcher>(this)),
      notices_(std::make_shared<NoticeTracker>()) {
  if (absl::Status watched = Watch(); !watched.ok()) {
    spdlog::warn(
        "event=catalog_watch_failed action=\"models re-read every {}\" "
        "status=\"{}\"",
        absl::FormatDuration(pool_->options().catalog_refresh),
        watched.ToString());
  }
}

RadosCatalog::~RadosCatalog() {
  uint64_t handle = 0;
  bool watching = false;
  {
    absl::MutexLock lock(&cache_mu_);
    handle = watch_handle_;
    watching = watching_;
  }
  if (watching) rados_unwatch2(pool_->io(), handle);
  // Notices in flight end within their timeout: wait for them, so that
  // their completions are released before the connection closes.
  notices_->WaitIdle(absl::Milliseconds(kNotifyTimeoutMs + 1000));
  // No notice callback runs past here.
  pool_->FlushWatches();
}

absl::Status RadosCatalog::Watch() const {
  {
    absl::MutexLock lock(&cache_mu_);
    if (watching_) return absl::OkStatus();
  }
  rados::WriteOp create;
  create.Create(/*exclusive=*/false);
  PSTORE_RETURN_IF_ERROR(RadosStatus(create.Operate(pool_->io(), kEventsObject),
                                     "catalog: events object"));
  uint64_t handle = 0;
  PSTORE_RETURN_IF_ERROR(RadosStatus(
      rados_watch2(pool_->io(), kEventsObject, &handle, &Watcher::OnNotice,
                   &Watcher::OnError, watcher_.get()),
      "catalog: watch events"));
  absl::MutexLock lock(&cache_mu_);
  watching_ = true;
  watch_handle_ = handle;
  return absl::OkStatus();
}

void RadosCatalog::Forget(absl::string_view model) const {
  absl::MutexLock lock(&cache_mu_);
  if (model.empty()) {
    models_.clear();
  } else {
    models_.erase(model);
  }
}

void RadosCatalog::Changed(const ModelState& state) const {
  {
    absl::MutexLock lock(&cache_mu_);
    models_[state.model] =
        CachedModel{std::make_shared<const ModelState>(state), absl::Now()};
  }
  // Tell the other nodes; nobody waits for their acks (the destructor
  // waits, bounded, for notices still in flight).
  rados_completion_t completion = nullptr;
  auto* tracker = new std::shared_ptr<NoticeTracker>(notices_);
  if (rados_aio_create_completion2(
          tracker,
          +[](rados_completion_t done, void* arg) {
            auto* held = static_cast<std::shared_ptr<NoticeTracker>*>(arg);
            rados_aio_release(done);
            (*held)->Done();
            delete held;
          },
          &completion) < 0) {
    delete tracker;
    return;  // They re-read within catalog_refresh.
  }
  notices_->Start();
  if (rados_aio_notify(pool_->io(), kEventsObject, completion,
                       state.model.data(), static_cast<int>(state.model.size()),
                       kNotifyTimeoutMs, nullptr, nullptr) < 0) {
    rados_aio_release(completion);
    notices_->Done();
    delete tracker;
  }
}

absl::StatusOr<std::shared_ptr<const RadosCatalog::ModelState>>
RadosCatalog::Model(absl::string_view model, CatalogRead mode) const {
  const absl::Time now = absl::Now();
  std::shared_ptr<const ModelState> kept;
  {
    absl::MutexLock lock(&cache_mu_);
    auto found = models_.find(model);
    if (found != models_.end()) {
      kept = found->second.state;
      if (now - found->second.read_at < pool_->options().catalog_refresh) {
        return kept;
      }
    }
  }
  if (kept != nullptr && pool_->degraded()) return kept;
  if (mode == CatalogRead::kMemoryOnly) {
    return WouldBlockError("the model is not kept, or kept too long");
  }
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
  if (watcher_->TakeBroken()) {
    {
      absl::MutexLock lock(&cache_mu_);
      watching_ = false;
    }
    (void)Watch();  // Models are re-read every catalog_refresh meanwhile.
  }
  absl::StatusOr<ModelState> read = ReadModel(model);
  if (!read.ok()) {
    absl::Status status = pool_->Note(read.status());
    if (kept != nullptr && absl::IsUnavailable(status)) return kept;
    return status;
  }
  auto state = std::make_shared<const ModelState>(*std::move(read));
  absl::MutexLock lock(&cache_mu_);
  models_[state->model] = CachedModel{state, now};
  return state;
}

absl::StatusOr<std::shared_ptr<const RadosCatalog::RevisionObject>>
RadosCatalog::Tensors(const RevisionName& revision,
                      const storage::RevisionRecord& record,
                      CatalogRead mode) const {
  const bool published = record.state() == storage::RevisionRecord::PUBLISHED;
  const std::string key = revision.ToString();
  if (published) {
    absl::MutexLock lock(&cache_mu_);
    auto found = published_.find(key);
    if (found != published_.end() &&
        found->second->created == record.created_unix_micros()) {
      return found->second;
    }
  }
  if (mode == CatalogRead::kMemoryOnly) {
    return WouldBlockError("the revision's tensors are not kept");
  }
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
  absl::StatusOr<RevisionObject> read =
      ReadRevisionObject(revision, /*tensors=*/true);
  if (!read.ok()) return pool_->Note(read.status());
  if ((read->exists && read->created > record.created_unix_micros()) ||
      (read->exists && read->created < record.created_unix_micros() &&
       published) ||
      (!read->exists && published)) {
    // Deleted (and maybe created anew) since the model was read.
    return NoRevision(revision);
  }
  if (read->exists && read->created < record.created_unix_micros()) {
    // An open revision whose object an earlier revision of the name left
    // (the first commit replaces it): none of its tensors are this one's.
    *read = RevisionObject();
  }
  auto object = std::make_shared<const RevisionObject>(*std::move(read));
  if (published && object->state == kPublished) {
    absl::MutexLock lock(&cache_mu_);
    if (published_.size() >= kMaxKeptRevisions) published_.clear();
    published_[key] = object;
  }
  return object;
}

absl::StatusOr<RadosCatalog::ModelState> RadosCatalog::ReadModel(
    absl::string_view model, bool finish_publishes) const {
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModelObject(model));
    if (!finish_publishes) return state;
    bool finished = false;
    for (const auto& [revision, record] : state.revisions) {
      if (record.state() == storage::RevisionRecord::PUBLISHED) continue;
      const RevisionName name{state.model, revision};
      absl::StatusOr<RevisionObject> object = ReadRevisionObject(name, false);
      if (!object.ok()) {
        // One bad revision object does not hide the model's others.
        if (absl::IsUnavailable(object.status())) return object.status();
        spdlog::warn("event=catalog_revision_unreadable revision={} error={}",
                     name.ToString(), object.status().ToString());
        continue;
      }
      if (!object->SealedFor(record)) continue;
      PSTORE_RETURN_IF_ERROR(
          FinishPublish(state, revision, object->PublishedOrNow()).status());
      finished = true;
      break;
    }
    if (!finished) return state;
  }
  return absl::AbortedError(
      absl::StrCat("catalog: model ", model, " kept changing while read"));
}

absl::StatusOr<bool> RadosCatalog::FinishPublish(
    const ModelState& read, const std::string& revision,
    int64_t published_micros) const {
  ModelState next = read;
  storage::RevisionRecord& record = next.revisions.at(revision);
  record.set_state(storage::RevisionRecord::PUBLISHED);
  record.set_published_unix_micros(published_micros);
  auto latest = next.revisions.find(next.latest);
  if (latest == next.revisions.end() ||
      latest->second.published_unix_micros() <= published_micros) {
    next.latest = revision;
  }
  PSTORE_ASSIGN_OR_RETURN(bool swapped, SwapModel(read, next));
  if (swapped) Changed(next);
  return swapped;
}

absl::StatusOr<RadosCatalog::ModelState> RadosCatalog::ReadModelObject(
    absl::string_view model) const {
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
  const std::string oid = ModelObjectName(model);
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    ModelState state;
    state.model = std::string(model);
    std::string after;
    bool changed = false;
    for (bool more = true; more;) {
      rados::ReadOp op;
      op.GetOmap(after, "", kOmapPage);
      uint64_t version = 0;
      int result = op.Operate(pool_->io(), oid, &version);
      if (result == -ENOENT) return state;
      PSTORE_RETURN_IF_ERROR(pool_->Note(
          RadosStatus(result, absl::StrCat("catalog: read model ", model))));
      if (state.exists && version != state.version) {
        changed = true;  // Written between pages: read it again.
        break;
      }
      state.exists = true;
      state.version = version;
      more = op.more();
      for (auto& [key, value] : op.Omap()) {
        after = key;
        if (key == kLatestKey) {
          state.latest = value;
        } else if (absl::StartsWith(key, kRevisionKeyPrefix)) {
          RevisionName name{state.model,
                            key.substr(sizeof(kRevisionKeyPrefix) - 1)};
          PSTORE_ASSIGN_OR_RETURN(storage::RevisionRecord record,
                                  DecodeRevision(name, value));
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
                                             const ModelState& next) const {
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
  rados::WriteOp op;
  if (read.exists) {
    op.AssertVersion(read.version);
  } else {
    op.Create(/*exclusive=*/true);
  }
  if (next.revisions.empty()) {
    if (!read.exists) return true;
    op.Remove();  // The model goes with its last revision.
  } else {
    std::vector<std::string> removed;
    for (const auto& [revision, record] : read.revisions) {
      if (!next.revisions.contains(revision)) {
        removed.push_back(absl::StrCat(kRevisionKeyPrefix, revision));
      }
    }
    if (next.latest.empty() && !read.latest.empty()) {
      removed.push_back(kLatestKey);
    }
    if (!removed.empty()) op.RemoveOmapKeys(removed);
    std::vector<std::pair<std::string, std::string>> values;
    for (const auto& [revision, record] : next.revisions) {
      std::string bytes = record.SerializeAsString();
      auto old = read.revisions.find(revision);
      if (old != read.revisions.end() &&
          old->second.SerializeAsString() == bytes) {
        continue;
      }
      values.emplace_back(absl::StrCat(kRevisionKeyPrefix, revision),
                          std::move(bytes));
    }
    if (!next.latest.empty() && next.latest != read.latest) {
      values.emplace_back(kLatestKey, next.latest);
    }
    if (!values.empty()) op.SetOmap(values);
  }
  int result = op.Operate(pool_->io(), ModelObjectName(read.model));
  // Another writer came first: the version moved on (ERANGE, EOVERFLOW),
  // the object appeared (EEXIST) or went (ENOENT).
  if (result == -ERANGE || result == -EOVERFLOW || result == -EEXIST ||
      result == -ENOENT) {
    return false;
  }
  PSTORE_RETURN_IF_ERROR(pool_->Note(
      RadosStatus(result, absl::StrCat("catalog: write model ", read.model))));
  return true;
}

absl::StatusOr<RadosCatalog::RevisionObject> RadosCatalog::ReadRevisionObject(
    const RevisionName& name, bool tensors) const {
  RevisionObject object;
  const std::string oid = RevisionObjectName(name);
  std::string after;
  uint64_t first_version = 0;
  for (bool more = true; more;) {
    rados::ReadOp op;
    op.GetXattrs();
    if (tensors) op.GetOmap(after, "", kOmapPage);
    uint64_t version = 0;
    int result = op.Operate(pool_->io(), oid, &version);
    if (result == -ENOENT) return RevisionObject();
    PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
        result, absl::StrCat("catalog: read revision ", name.ToString()))));
    if (object.exists && version != first_version) {
      // Written between pages (an open revision): read it whole again.
      return ReadRevisionObject(name, tensors);
    }
    first_version = version;
    object.exists = true;
    more = tensors && op.more();
    std::map<std::string, std::string> xattrs = op.Xattrs();
    if (auto state = xattrs.find(kStateXattr); state != xattrs.end()) {
      object.state = state->second;
    }
    if (auto created = xattrs.find(kCreatedXattr); created != xattrs.end()) {
      if (!absl::SimpleAtoi(created->second, &object.created)) {
        return absl::DataLossError(
            absl::StrCat("catalog: revision ", name.ToString(),
                         " has a corrupt ", kCreatedXattr));
      }
    }
    if (auto published = xattrs.find(kPublishedXattr);
        published != xattrs.end()) {
      if (!absl::SimpleAtoi(published->second, &object.published)) {
        return absl::DataLossError(
            absl::StrCat("catalog: revision ", name.ToString(),
                         " has a corrupt ", kPublishedXattr));
      }
    }
    for (auto& [key, value] : op.Omap()) {
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
                                               int64_t created) {
  const std::string oid = RevisionObjectName(name);
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    rados::WriteOp create;
    create.Create(/*exclusive=*/true);
    create.SetXattr(kStateXattr, kOpen);
    create.SetXattr(kCreatedXattr, absl::StrCat(created));
    int result = create.Operate(pool_->io(), oid);
    if (result != -EEXIST) {
      return pool_->Note(RadosStatus(
          result, absl::StrCat("catalog: write revision ", name.ToString())));
    }
    PSTORE_ASSIGN_OR_RETURN(RevisionObject object,
                            ReadRevisionObject(name, /*tensors=*/false));
    if (!object.exists) continue;  // Removed meanwhile.
    // This revision's own object (a commit may have written it first), or
    // a newer revision's of the name: leave it.
    if (object.created >= created) return absl::OkStatus();
    // Left by an earlier revision of the name whose delete or create
    // stopped half-way: replace it, unless it changes meanwhile.
    rados::WriteOp replace;
    replace.CompareXattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                         absl::StrCat(object.created));
    replace.ClearOmap();
    replace.SetXattr(kStateXattr, kOpen);
    replace.SetXattr(kCreatedXattr, absl::StrCat(created));
    replace.SetXattr(kPublishedXattr, "0");  // Not yet.
    result = replace.Operate(pool_->io(), oid);
    if (result == 0) return absl::OkStatus();
    if (result != -ECANCELED && result != -ENOENT) {
      return pool_->Note(RadosStatus(
          result, absl::StrCat("catalog: replace revision ", name.ToString())));
    }
  }
  return absl::AbortedError(absl::StrCat("catalog: revision object of ",
                                         name.ToString(), " kept changing"));
}

absl::StatusOr<RevisionName> RadosCatalog::Resolve(const RevisionName& name,
                                                   CatalogRead mode) const {
  if (!name.revision.empty()) return name;
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<const ModelState> state,
                          Model(name.model, mode));
  return ResolveIn(*state, name);
}

absl::StatusOr<TensorMeta> RadosCatalog::GetTensor(const TensorName& name,
                                                   CatalogRead mode) const {
  for (int round = 0; round < kMaxResolveRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<const ModelState> state,
                            Model(name.revision.model, mode));
    PSTORE_ASSIGN_OR_RETURN(RevisionName revision,
                            ResolveIn(*state, name.revision));
    const storage::RevisionRecord& record =
        state->revisions.at(revision.revision);
    const TensorName resolved{revision, name.tensor};
    if (record.state() != storage::RevisionRecord::PUBLISHED) {
      if (mode == CatalogRead::kMemoryOnly) {
        return WouldBlockError("an open revision's tensors are not kept");
      }
      // An open revision may hold many records: read this one only.
      PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
      rados::ReadOp op;
      op.GetXattrs();
      op.GetOmapKeys({name.tensor});
      int result = op.Operate(pool_->io(), RevisionObjectName(revision));
      if (result == -ENOENT) {
        // Its creator has not written the object yet: no tensor in it.
        return absl::NotFoundError(
            absl::StrCat("tensor ", resolved.ToString(), " not found"));
      }
      PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
          result, absl::StrCat("catalog: read tensor ", resolved.ToString()))));
      std::map<std::string, std::string> xattrs = op.Xattrs();
      int64_t created = 0;
      if (auto found = xattrs.find(kCreatedXattr);
          found != xattrs.end() && !absl::SimpleAtoi(found->second, &created)) {
        return absl::DataLossError(
            absl::StrCat("catalog: revision ", revision.ToString(),
                         " has a corrupt ", kCreatedXattr));
      }
      if (created > record.created_unix_micros()) {
        // Deleted and created anew since the model was read.
        Forget(name.revision.model);
        if (name.revision.revision.empty()) continue;
        return NoRevision(revision);
      }
      std::vector<std::pair<std::string, std::string>> values = op.Omap();
      if (created < record.created_unix_micros() || values.empty()) {
        // None, or one an earlier revision of the name left.
        return absl::NotFoundError(
            absl::StrCat("tensor ", resolved.ToString(), " not found"));
      }
      return DecodeTensor(resolved, values.front().second);
    }
    absl::StatusOr<std::shared_ptr<const RevisionObject>> tensors =
        Tensors(revision, record, mode);
    if (absl::IsNotFound(tensors.status())) {
      // Deleted since the model was read: read the model again.
      Forget(name.revision.model);
      if (name.revision.revision.empty()) continue;
      return tensors.status();
    }
    if (!tensors.ok()) return tensors.status();
    auto value = (*tensors)->tensors.find(name.tensor);
    if (value == (*tensors)->tensors.end()) {
      return absl::NotFoundError(
          absl::StrCat("tensor ", resolved.ToString(), " not found"));
    }
    return DecodeTensor(resolved, value->second);
  }
  return absl::UnavailableError(
      absl::StrCat("catalog: the latest revision of ", name.revision.model,
                   " kept moving while ", name.tensor, " was read"));
}

absl::StatusOr<RevisionInfo> RadosCatalog::GetRevision(
    const RevisionName& name) const {
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<const ModelState> state,
                          Model(name.model, CatalogRead::kAny));
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, ResolveIn(*state, name));
  return ToRevisionInfo(resolved, state->revisions.at(resolved.revision),
                        state->latest);
}

absl::StatusOr<Manifest> RadosCatalog::GetManifest(
    const RevisionName& name) const {
  for (int round = 0; round < kMaxResolveRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<const ModelState> state,
                            Model(name.model, CatalogRead::kAny));
    PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, ResolveIn(*state, name));
    const storage::RevisionRecord& record =
        state->revisions.at(resolved.revision);
    absl::StatusOr<std::shared_ptr<const RevisionObject>> tensors =
        Tensors(resolved, record, CatalogRead::kAny);
    if (absl::IsNotFound(tensors.status())) {
      Forget(name.model);
      if (name.revision.empty()) continue;
      return tensors.status();
    }
    if (!tensors.ok()) return tensors.status();
    if ((*tensors)->SealedFor(record) &&
        record.state() != storage::RevisionRecord::PUBLISHED) {
      // Published, but the model object does not say so yet: read it
      // again (ReadModel finishes the publish if its publisher stopped).
      Forget(name.model);
      continue;
    }
    Manifest manifest;
    manifest.revision = ToRevisionInfo(resolved, record, state->latest);
    manifest.tensors.reserve((*tensors)->tensors.size());
    for (const auto& [tensor, value] : (*tensors)->tensors) {
      PSTORE_ASSIGN_OR_RETURN(
          TensorMeta meta, DecodeTensor(TensorName{resolved, tensor}, value));
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
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<const ModelState> state,
                          Model(name.model, CatalogRead::kAny));
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, ResolveIn(*state, name));
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
  rados::ReadOp op;
  op.GetXattrs();
  op.GetOmap(std::string(page_token), std::string(prefix),
             static_cast<uint64_t>(page_size));
  int result = op.Operate(pool_->io(), RevisionObjectName(resolved));
  TensorPage page;
  if (result == -ENOENT) return page;
  PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
      result, absl::StrCat("catalog: list revision ", resolved.ToString()))));
  const int64_t created =
      state->revisions.at(resolved.revision).created_unix_micros();
  std::map<std::string, std::string> xattrs = op.Xattrs();
  if (auto found = xattrs.find(kCreatedXattr);
      found == xattrs.end() || found->second != absl::StrCat(created)) {
    // Left by an earlier revision of the name (this one has no tensors
    // yet), or deleted and created anew since the model was read.
    int64_t object_created = 0;
    if (found != xattrs.end() &&
        absl::SimpleAtoi(found->second, &object_created) &&
        object_created > created) {
      return NoRevision(resolved);
    }
    return page;
  }
  const bool more = op.more();
  for (const auto& [tensor, value] : op.Omap()) {
    PSTORE_ASSIGN_OR_RETURN(TensorMeta meta,
                            DecodeTensor(TensorName{resolved, tensor}, value));
    page.tensors.push_back(std::move(meta));
  }
  if (more && !page.tensors.empty()) {
    page.next_page_token = page.tensors.back().name.tensor;
  }
  return page;
}

absl::StatusOr<std::vector<std::string>> RadosCatalog::ModelNames() const {
  std::vector<std::pair<std::string, std::string>> entries;
  PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
      rados::ReadWholeOmap(pool_->io(), kModelsObject, kOmapPage, &entries),
      "catalog: list models")));
  std::vector<std::string> names;
  names.reserve(entries.size());
  for (auto& [model, value] : entries) names.push_back(std::move(model));
  return names;
}

absl::StatusOr<std::vector<ModelInfo>> RadosCatalog::ListModels() const {
  PSTORE_ASSIGN_OR_RETURN(std::vector<std::string> names, ModelNames());
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
    PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
    rados::WriteOp index;
    index.Create(/*exclusive=*/false);
    index.SetOmap({{name.model, ""}});
    PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
        index.Operate(pool_->io(), kModelsObject), "catalog: index model")));
  }
  storage::RevisionRecord record;
  record.set_state(storage::RevisionRecord::OPEN);
  record.mutable_metadata()->insert(metadata.begin(), metadata.end());
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    PSTORE_ASSIGN_OR_RETURN(ModelState state,
                            ReadModel(name.model, /*finish_publishes=*/false));
    if (state.revisions.contains(name.revision)) {
      return absl::AlreadyExistsError(
          absl::StrCat("revision ", name.ToString(), " already exists"));
    }
    // Creation times of a name only grow, whatever the nodes' clocks say:
    // past what an earlier revision of the name left (rados_format.md).
    PSTORE_ASSIGN_OR_RETURN(RevisionObject left,
                            ReadRevisionObject(name, /*tensors=*/false));
    record.set_created_unix_micros(
        std::max(NowMicros(), left.exists ? left.created + 1 : 0));
    ModelState next = state;
    next.revisions[name.revision] = record;
    PSTORE_ASSIGN_OR_RETURN(bool swapped, SwapModel(state, next));
    if (!swapped) continue;
    Changed(next);
    // Only the creator that won gets here; until its object is written a
    // commit creates it (CommitTensor).
    return WriteRevisionObject(name, record.created_unix_micros());
  }
  return absl::AbortedError(absl::StrCat("catalog: model ", name.model,
                                         " kept changing; create ",
                                         name.ToString(), " again"));
}

absl::Status RadosCatalog::EnsureOpenRevision(const RevisionName& name) {
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    // A seal the model does not show yet refuses the commit instead.
    PSTORE_ASSIGN_OR_RETURN(ModelState state,
                            ReadModel(name.model, /*finish_publishes=*/false));
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
    // Finishes a publish of it that was sealed but not swapped.
    PSTORE_ASSIGN_OR_RETURN(ModelState state, ReadModel(name.model));
    auto found = state.revisions.find(name.revision);
    if (found == state.revisions.end()) return NoRevision(name);
    if (found->second.state() == storage::RevisionRecord::PUBLISHED) {
      return absl::OkStatus();  // A retried call, or a racing publish.
    }
    const int64_t created = found->second.created_unix_micros();
    const int64_t published = NowMicros();
    // First seal the revision object: from here on no commit joins it, and
    // the revision is published (whoever reads the model object next
    // finishes the swap if this node stops before it).
    rados::WriteOp seal;
    seal.CompareXattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                      absl::StrCat(created));
    seal.CompareXattr(kStateXattr, LIBRADOS_CMPXATTR_OP_EQ, kOpen);
    seal.SetXattr(kStateXattr, kPublished);
    seal.SetXattr(kPublishedXattr, absl::StrCat(published));
    int result = seal.Operate(pool_->io(), RevisionObjectName(name));
    if (result == 0) {
      PSTORE_ASSIGN_OR_RETURN(bool swapped,
                              FinishPublish(state, name.revision, published));
      if (swapped) return absl::OkStatus();
      continue;  // The model changed meanwhile: ReadModel finishes it.
    }
    if (result != -ENOENT && result != -ENODATA && result != -ECANCELED) {
      PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
          result, absl::StrCat("catalog: seal revision ", name.ToString()))));
    }
    PSTORE_ASSIGN_OR_RETURN(RevisionObject object,
                            ReadRevisionObject(name, /*tensors=*/false));
    if (!object.exists || object.created < created) {
      // Its creator stopped before writing it, or an earlier revision of
      // the name left its own (both: an empty revision): write it, then
      // seal it.
      PSTORE_RETURN_IF_ERROR(WriteRevisionObject(name, created));
    }
    // Else sealed by a racing publish (ReadModel finishes it), or deleted
    // and created anew meanwhile: read the model again.
  }
  return absl::AbortedError(absl::StrCat("catalog: model ", name.model,
                                         " kept changing; publish ",
                                         name.ToString(), " again"));
}

absl::StatusOr<std::vector<BlockId>> RadosCatalog::DeleteRevision(
    const RevisionName& name) {
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    // Open or sealed, it goes.
    PSTORE_ASSIGN_OR_RETURN(ModelState state,
                            ReadModel(name.model, /*finish_publishes=*/false));
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
    Changed(next);
    // Then its tensors, unless the name was created anew meanwhile.
    rados::WriteOp remove;
    remove.CompareXattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                        absl::StrCat(created));
    remove.Remove();
    int result = remove.Operate(pool_->io(), RevisionObjectName(name));
    if (result != -ENOENT && result != -ECANCELED && result != -ENODATA) {
      PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
          result, absl::StrCat("catalog: remove revision ", name.ToString()))));
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
  // The object's guards see a seal (handled below).
  PSTORE_ASSIGN_OR_RETURN(
      ModelState state,
      ReadModel(name.revision.model, /*finish_publishes=*/false));
  auto found = state.revisions.find(name.revision.revision);
  if (found == state.revisions.end()) return NoRevision(name.revision);
  if (found->second.state() == storage::RevisionRecord::PUBLISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat("revision ", name.revision.ToString(), " is published"));
  }
  rados::WriteOp op;
  op.CompareXattr(kStateXattr, LIBRADOS_CMPXATTR_OP_EQ, kOpen);
  op.CompareXattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                  absl::StrCat(found->second.created_unix_micros()));
  // Present: its value is not empty.
  op.CompareOmap(name.tensor, LIBRADOS_CMPXATTR_OP_GT, "");
  op.RemoveOmapKeys({name.tensor});
  int result = op.Operate(pool_->io(), RevisionObjectName(name.revision));
  if (result == 0) return std::vector<BlockId>();
  if (result == -ECANCELED || result == -ENOENT || result == -ENODATA) {
    PSTORE_ASSIGN_OR_RETURN(RevisionObject object,
                            ReadRevisionObject(name.revision, false));
    if (object.SealedFor(found->second)) {
      PSTORE_RETURN_IF_ERROR(
          FinishPublish(state, name.revision.revision, object.PublishedOrNow())
              .status());
      return absl::FailedPreconditionError(
          absl::StrCat("revision ", name.revision.ToString(), " is published"));
    }
    return absl::NotFoundError(
        absl::StrCat("tensor ", name.ToString(), " not found"));
  }
  PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
      result, absl::StrCat("catalog: delete tensor ", name.ToString()))));
  return std::vector<BlockId>();
}

absl::Status RadosCatalog::MarkStaged(const BlockId&) {
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlockId>> RadosCatalog::CommitTensor(
    const TensorMeta& tensor) {
  const RevisionName& revision = tensor.name.revision;
  const int64_t grace = absl::ToInt64Microseconds(pool_->options().gc_grace);
  if (tensor.started_unix_micros > 0 &&
      NowMicros() - tensor.started_unix_micros > grace / 2) {
    // Its blocks may have been touched too long ago for a sweep running
    // now to keep them (rados_format.md, "Garbage").
    return absl::AbortedError(absl::StrCat(
        "the put of ", tensor.name.ToString(), " took longer than half the ",
        "garbage collector's grace period (",
        absl::FormatDuration(pool_->options().gc_grace), "); put it again"));
  }
  const std::string value = EncodeTensor(tensor);
  for (int round = 0; round < kMaxSwapRounds; ++round) {
    // The object's guards see a seal: no need to look for one here.
    PSTORE_ASSIGN_OR_RETURN(ModelState state,
                            ReadModel(revision.model,
                                      /*finish_publishes=*/false));
    auto found = state.revisions.find(revision.revision);
    if (found == state.revisions.end()) return NoRevision(revision);
    if (found->second.state() == storage::RevisionRecord::PUBLISHED) {
      return absl::FailedPreconditionError(
          absl::StrCat("revision ", revision.ToString(), " is published"));
    }
    const int64_t created = found->second.created_unix_micros();
    rados::WriteOp op;
    op.CompareXattr(kStateXattr, LIBRADOS_CMPXATTR_OP_EQ, kOpen);
    op.CompareXattr(kCreatedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                    absl::StrCat(created));
    op.SetOmap({{tensor.name.tensor, value}});
    int result = op.Operate(pool_->io(), RevisionObjectName(revision));
    if (result == 0) return std::vector<BlockId>();
    if (result != -ECANCELED && result != -ENOENT && result != -ENODATA) {
      PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
          result, absl::StrCat("catalog: commit ", tensor.name.ToString()))));
    }
    PSTORE_ASSIGN_OR_RETURN(RevisionObject object,
                            ReadRevisionObject(revision, /*tensors=*/false));
    if (object.SealedFor(found->second)) {
      // Published: the seal is the point from which no commit joins. Its
      // publisher may still be on the way to the model object, or may have
      // stopped: finish the swap in its place.
      PSTORE_RETURN_IF_ERROR(
          FinishPublish(state, revision.revision, object.PublishedOrNow())
              .status());
      return absl::FailedPreconditionError(
          absl::StrCat("revision ", revision.ToString(), " is published"));
    }
    if (!object.exists || object.created < created) {
      // Its creator stopped before writing the object, or an earlier
      // revision of the name left its own: write this one's.
      PSTORE_RETURN_IF_ERROR(WriteRevisionObject(revision, created));
    }
    // Else deleted and created anew meanwhile: read the model again.
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

absl::Status RadosCatalog::MarkBlocks(
    absl::flat_hash_set<BlockId>* referenced) const {
  PSTORE_RETURN_IF_ERROR(pool_->CheckReachable("catalog"));
  PSTORE_ASSIGN_OR_RETURN(std::vector<std::string> models, ModelNames());
  for (const std::string& model : models) {
    // Every revision object is read below: a seal changes nothing here.
    PSTORE_ASSIGN_OR_RETURN(ModelState state,
                            ReadModel(model, /*finish_publishes=*/false));
    for (const auto& [revision, record] : state.revisions) {
      const RevisionName name{model, revision};
      PSTORE_ASSIGN_OR_RETURN(RevisionObject object,
                              ReadRevisionObject(name, /*tensors=*/true));
      for (const auto& [tensor, value] : object.tensors) {
        PSTORE_ASSIGN_OR_RETURN(TensorMeta meta,
                                DecodeTensor(TensorName{name, tensor}, value));
        referenced->insert(meta.blocks.begin(), meta.blocks.end());
      }
    }
  }
  return absl::OkStatus();
}

absl::Status RadosCatalog::AddPinRecord(const RevisionName& name) {
  PSTORE_ASSIGN_OR_RETURN(ModelState state,
                          ReadModel(name.model, /*finish_publishes=*/false));
  if (!state.revisions.contains(name.revision)) return NoRevision(name);
  storage::PinRecord record;
  record.set_created_unix_micros(NowMicros());
  rados::WriteOp op;
  op.Create(/*exclusive=*/false);
  op.SetOmap({{name.ToString(), record.SerializeAsString()}});
  return pool_->Note(
      RadosStatus(op.Operate(pool_->io(), kPinsObject),
                  absl::StrCat("catalog: pin ", name.ToString())));
}

absl::Status RadosCatalog::RemovePinRecord(const RevisionName& name) {
  rados::WriteOp op;
  op.RemoveOmapKeys({name.ToString()});
  int result = op.Operate(pool_->io(), kPinsObject);
  if (result == -ENOENT) return absl::OkStatus();
  return RadosStatus(result, absl::StrCat("catalog: unpin ", name.ToString()));
}

absl::StatusOr<std::vector<RevisionName>> RadosCatalog::ListPinRecords() const {
  std::vector<std::pair<std::string, std::string>> entries;
  PSTORE_RETURN_IF_ERROR(pool_->Note(RadosStatus(
      rados::ReadWholeOmap(pool_->io(), kPinsObject, kOmapPage, &entries),
      "catalog: list pins")));
  std::vector<RevisionName> pins;
  for (const auto& [key, value] : entries) {
    size_t at = key.find('@');
    if (at == std::string::npos) {
      return absl::DataLossError(
          absl::StrCat("catalog: corrupt pin record key '", key, "'"));
    }
    pins.push_back(RevisionName{key.substr(0, at), key.substr(at + 1)});
  }
  std::sort(pins.begin(), pins.end(),
            [](const RevisionName& a, const RevisionName& b) {
              return std::tie(a.model, a.revision) <
                     std::tie(b.model, b.revision);
            });
  return pins;
}

}  // namespace pstore
