// crash_harness: crash safety of pstored under SIGKILL.
//
// One data directory for the whole run. Each round starts pstored on it
// (synced commits; a small DRAM budget, so that blocks spill to the NVMe
// tier), runs --writers threads that create revisions, put, replace,
// deduplicate and delete tensors, publish (sometimes racing a put into the
// same revision) and delete revisions, and kills pstored with SIGKILL after
// a random delay while they work; sometimes kills it again during the next
// start-up, and sometimes damages a byte of the NVMe region files. The next
// round restarts pstored on the same data and checks, before writing more,
// that the store holds exactly what the acknowledged operations left, give
// or take the few operations whose outcome the writers could not learn,
// each applied entirely or not at all (tests/reliability/crash_model.h).
// Every tensor is read back and compared byte for byte, twice: straight
// after the restart (warm cache from NVMe, or cold) and again after
// dropping DRAM. Every --audit_every rounds pstored is stopped cleanly and
// its RocksDB audited: blocks and reference counts exactly those of the
// live tensors (cold_audit.h). README.md here has the details.
//
// Usage: crash_harness [--rounds N] [--writers W] [--seed S] [--dir DIR]
//                      [--pstored PATH] [--max_kill_ms MS] ...
// Exit status: 0 if every check passed, 1 on a violation (the run
// directory with the data, pstored.log and journal.log is kept), 2 for bad
// flags, 3 if the harness itself could not run (no pstored binary, no
// disk).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/pstore_client.h"
#include "codec/hash.h"
#include "tests/reliability/cold_audit.h"
#include "tests/reliability/crash_model.h"
#include "tests/reliability/nvme_fault.h"
#include "tests/testing/pstored_process.h"
#include "util/child_process.h"
#include "util/units.h"

namespace pstore::reliability {
namespace {

using ::pstore::testing::PstoredProcess;
using Rng = std::mt19937_64;

constexpr uint64_t kKiB = 1024;
// Most tensors a revision gets.
constexpr size_t kMaxTensorsPerRevision = 6;
// Published revisions a writer keeps before it deletes old ones.
constexpr size_t kKeepPublished = 4;
// Open revisions a writer keeps before it deletes one.
constexpr size_t kKeepOpen = 3;
// Contents every writer may put (identical blocks put concurrently).
constexpr int kCommonContents = 6;
// Bound on operations per writer and round (the kill comes first).
constexpr int kMaxOpsPerRound = 100000;

struct Flags {
  int rounds = 20;
  int writers = 4;
  uint64_t seed = 0;
  bool seed_given = false;
  std::string pstored;
  std::string dir;
  int min_kill_ms = 200;
  int max_kill_ms = 1500;
  std::string max_tensor_bytes = "3MiB";
  std::string dram_bytes = "8MiB";
  std::string nvme_bytes = "64MiB";
  std::string block_bytes = "256KiB";
  int audit_every = 5;
  int startup_kill_percent = 20;
  int nvme_fault_percent = 15;
  bool keep_dir = false;
  // With a conf: pstored runs --backend=rados on this pool, in a namespace
  // of the run's own.
  std::string ceph_conf;
  std::string rados_pool = "pstore";
};

// --- Random choices ---

uint64_t Uniform(Rng& rng, uint64_t lo, uint64_t hi) {
  return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
}
bool Coin(Rng& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}
template <typename T>
const T& Pick(Rng& rng, const std::vector<T>& items) {
  return items[Uniform(rng, 0, items.size() - 1)];
}

struct DTypeChoice {
  const char* name;
  uint64_t size;
};
constexpr DTypeChoice kDTypes[] = {
    {"F32", 4}, {"F16", 2},     {"BF16", 2},    {"F64", 8},
    {"I8", 1},  {"U8", 1},      {"I16", 2},     {"I32", 4},
    {"I64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

// Returns a tensor of random dtype, shape and size (up to `max_bytes`;
// many small ones, some of exactly N blocks, a few large) with bytes from
// `seed`.
Content RandomContent(Rng& rng, uint64_t seed, uint64_t max_bytes,
                      uint64_t block_bytes) {
  const DTypeChoice& dtype = kDTypes[Uniform(rng, 0, std::size(kDTypes) - 1)];
  Content content;
  content.seed = seed;
  content.dtype = dtype.name;
  double r = std::uniform_real_distribution<double>(0, 1)(rng);
  uint64_t target = 0;
  if (r < 0.03) {
    content.byte_length = dtype.size;  // A scalar.
    return content;
  }
  if (r < 0.05) {
    content.shape = {0, static_cast<int64_t>(Uniform(rng, 1, 64))};
    return content;  // Empty.
  }
  if (r < 0.30) {
    target = Uniform(rng, 1, 4 * kKiB);
  } else if (r < 0.68) {
    target = Uniform(rng, 4 * kKiB, 128 * kKiB);
  } else if (r < 0.78) {
    target = block_bytes * Uniform(rng, 1, 4);  // Block boundaries.
  } else if (r < 0.92) {
    target = Uniform(rng, 128 * kKiB, 768 * kKiB);
  } else {
    target = Uniform(rng, 768 * kKiB, std::max(768 * kKiB, max_bytes));
  }
  target = std::min(target, max_bytes);
  uint64_t elements = std::max<uint64_t>(1, target / dtype.size);
  static constexpr uint64_t kColumns[] = {16, 64, 256, 1024, 4096};
  uint64_t columns = kColumns[Uniform(rng, 0, std::size(kColumns) - 1)];
  if (r >= 0.68 && r < 0.78) {
    content.shape = {static_cast<int64_t>(elements)};
  } else if (elements >= 2 * columns && Coin(rng, 0.7)) {
    uint64_t rows = elements / columns;
    if (rows % 2 == 0 && Coin(rng, 0.3)) {
      content.shape = {2, static_cast<int64_t>(rows / 2),
                       static_cast<int64_t>(columns)};
    } else {
      content.shape = {static_cast<int64_t>(rows),
                       static_cast<int64_t>(columns)};
    }
    elements = rows * columns;
  } else {
    content.shape = {static_cast<int64_t>(elements)};
  }
  content.byte_length = elements * dtype.size;
  return content;
}

// --- The journal: every operation sent and how it ended ---

class Journal {
 public:
  explicit Journal(const std::string& path)
      : start_(absl::Now()), out_(path, std::ios::trunc) {}

  double NowMs() const {
    return absl::ToDoubleMilliseconds(absl::Now() - start_);
  }

  // Appends `line`, prefixed with the milliseconds since the start.
  void Write(absl::string_view line) {
    std::string text = absl::StrFormat("%10.3f %s\n", NowMs(), line);
    absl::MutexLock lock(&mu_);
    out_ << text;
  }

  void Flush() {
    absl::MutexLock lock(&mu_);
    out_.flush();
  }

  bool ok() {
    absl::MutexLock lock(&mu_);
    return out_.good();
  }

 private:
  const absl::Time start_;
  absl::Mutex mu_;
  std::ofstream out_ ABSL_GUARDED_BY(mu_);
};

// One operation as the writer saw it, kept in memory for the round.
struct OpRecord {
  uint64_t seq = 0;
  double sent_ms = 0;
  double done_ms = 0;
  std::string what;
  std::string outcome;  // "OK" or the status.
};

struct Deleted {
  std::string revision;
  std::string tensor;  // One of its tensors, if it had any.
};

// Counts over the whole run.
struct Totals {
  uint64_t rounds = 0;
  uint64_t ops_sent = 0;
  uint64_t ops_acked = 0;
  uint64_t ops_failed = 0;
  std::map<std::string, uint64_t> acked_by_kind;
  // Acknowledged operations whose effect a verification checked.
  uint64_t acked_checked = 0;
  uint64_t publishes_checked = 0;
  uint64_t revision_deletes_checked = 0;
  uint64_t tensor_deletes_checked = 0;
  uint64_t puts_checked = 0;
  uint64_t unacked = 0;
  uint64_t unacked_applied = 0;
  uint64_t unacked_absent = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> unacked_by_type;
  uint64_t known_applied = 0;
  uint64_t races = 0;
  uint64_t races_put_first = 0;
  uint64_t races_put_refused = 0;
  uint64_t revisions_verified = 0;
  uint64_t published_verified = 0;
  uint64_t tensors_verified = 0;
  uint64_t bytes_verified = 0;
  uint64_t deleted_lookups = 0;
  uint64_t warm_back = 0;
  uint64_t warm_unused = 0;
  uint64_t warm_discarded = 0;
  uint64_t nvme_reads_after_restart = 0;
  uint64_t nvme_reads_after_drop = 0;
  uint64_t nvme_checksum_failures = 0;
  uint64_t cold_checksum_failures = 0;
  uint64_t regions_discarded = 0;
  uint64_t staged_collected = 0;
  std::map<std::string, uint64_t> nvme_faults;
  uint64_t damaged_regions_discarded = 0;
  uint64_t startup_kills = 0;
  uint64_t startup_kills_serving = 0;
  uint64_t last_live_blocks = 0;
  uint64_t last_cold_estimate = 0;  // RocksDB's estimate-num-keys.
  uint64_t audits = 0;
  uint64_t audit_failures = 0;
  uint64_t audit_max_blocks = 0;
  uint64_t audit_last_blocks = 0;
  uint64_t audit_last_bytes = 0;
  uint64_t lost = 0;
  uint64_t violations = 0;
  double kill_ms_sum = 0;
  double restart_s_sum = 0;
  double restart_s_max = 0;
};

// One writer: its model, what it knows of it, and this round's doings.
struct Writer {
  int index = 0;
  std::string model;
  ModelState state;                // Acknowledged (and resolved) state.
  std::vector<PendingOp> pending;  // Outcome unknown, from the last round.
  std::vector<Deleted> deleted;    // Every revision deleted so far.
  size_t deleted_checked = 0;      // deleted[0, this) were checked before.
  uint64_t revision_counter = 0;
  uint64_t tensor_counter = 0;
  uint64_t content_counter = 0;
  std::string current;  // The open revision being filled.

  // This round.
  std::vector<OpRecord> records;
  std::map<std::string, uint64_t> acked_by_kind;
  uint64_t sent = 0;
  uint64_t acked = 0;
  uint64_t acked_publishes = 0;
  uint64_t acked_revision_deletes = 0;
  uint64_t acked_tensor_deletes = 0;
  uint64_t acked_puts = 0;
  uint64_t races = 0, races_put_first = 0, races_put_refused = 0;
  std::vector<std::string> unexpected;  // Errors before the kill.
};

struct RoundContext {
  int round = 0;
  uint64_t seed = 0;
  uint64_t max_tensor_bytes = 0;
  uint64_t block_bytes = 0;
  const std::vector<Content>* common = nullptr;
  std::atomic<bool>* killed = nullptr;
  Journal* journal = nullptr;
};

std::string RevisionPath(const Writer& w, const std::string& revision) {
  return absl::StrCat(w.model, "@", revision);
}

absl::Status Execute(Client& client, const Writer& w, const Op& op) {
  std::string revision = RevisionPath(w, op.revision);
  switch (op.type) {
    case OpType::kCreateRevision:
      return client.CreateRevision(revision, op.metadata).status();
    case OpType::kPutTensor: {
      std::vector<uint8_t> bytes = ContentBytes(op.content);
      absl::StatusOr<v1::TensorInfo> info =
          client.PutTensor(absl::StrCat(revision, "/", op.tensor),
                           op.content.dtype, op.content.shape, bytes);
      if (!info.ok()) return info.status();
      if (info->stored_byte_length() != bytes.size() ||
          info->stored_xxh3_64() != Xxh3_64(bytes)) {
        return absl::InternalError(absl::StrCat(
            "put acknowledged with length ", info->stored_byte_length(),
            " and XXH3-64 ", absl::Hex(info->stored_xxh3_64()), ", sent ",
            bytes.size(), " bytes hashing to ", absl::Hex(Xxh3_64(bytes))));
      }
      return absl::OkStatus();
    }
    case OpType::kDeleteTensor:
      return client.DeleteTensor(absl::StrCat(revision, "/", op.tensor));
    case OpType::kPublish:
      return client.PublishRevision(revision).status();
    case OpType::kDeleteRevision:
      return client.DeleteRevision(revision);
  }
  return absl::InternalError("unknown op");
}

// --- Planning a writer's next step ---

struct Step {
  std::string kind;     // For the counts: "put", "replace", "race", ...
  std::vector<Op> ops;  // One, or a put and a publish sent at once.
};

std::string NewTensorName(Writer& w, Rng& rng) {
  uint64_t n = w.tensor_counter++;
  double r = std::uniform_real_distribution<double>(0, 1)(rng);
  if (r < 0.6) return absl::StrCat("layers.", n, ".weight");
  if (r < 0.9) return absl::StrCat("blocks/", n % 8, "/attn.qkv.", n);
  return absl::StrCat("emb\xc3\xa9.t\xc3\xb6ken.", n);  // UTF-8.
}

Content NewContent(Writer& w, Rng& rng, const RoundContext& ctx) {
  uint64_t seed = Mix(Mix(ctx.seed, w.index + 1), ++w.content_counter);
  return RandomContent(rng, seed, ctx.max_tensor_bytes, ctx.block_bytes);
}

Step PlanStep(Writer& w, Rng& rng, const RoundContext& ctx) {
  std::vector<std::string> open, published;
  for (const auto& [name, revision] : w.state.revisions) {
    (revision.published ? published : open).push_back(name);
  }
  auto op = [](OpType type, std::string revision) {
    Op result;
    result.type = type;
    result.revision = std::move(revision);
    return result;
  };
  // Keep the store bounded: old published revisions go, as do abandoned
  // open ones.
  if (published.size() > kKeepPublished + 1 ||
      (published.size() > kKeepPublished && Coin(rng, 0.3))) {
    return Step{"delete_published",
                {op(OpType::kDeleteRevision, Pick(rng, published))}};
  }
  if (open.size() > kKeepOpen) {
    std::string victim = Pick(rng, open);
    if (victim == w.current) w.current.clear();
    return Step{"delete_open", {op(OpType::kDeleteRevision, victim)}};
  }
  if (!published.empty() && Coin(rng, 0.02)) {
    // A no-op that must not move latest.
    return Step{"republish", {op(OpType::kPublish, Pick(rng, published))}};
  }
  if (w.current.empty()) {
    if (!open.empty() && Coin(rng, 0.5)) {
      w.current = Pick(rng, open);
    } else {
      w.current = absl::StrCat("r", ctx.round, "-", ++w.revision_counter);
      if (Coin(rng, 0.5)) {
        Op create = op(OpType::kCreateRevision, w.current);
        create.metadata = {{"writer", absl::StrCat(w.index)},
                           {"round", absl::StrCat(ctx.round)}};
        return Step{"create", {create}};
      }
    }
  }
  const std::map<std::string, Content> no_tensors;
  auto found = w.state.revisions.find(w.current);
  const std::map<std::string, Content>& tensors =
      found == w.state.revisions.end() ? no_tensors : found->second.tensors;
  const size_t n = tensors.size();
  std::vector<std::string> names;
  for (const auto& [name, content] : tensors) names.push_back(name);

  enum Kind {
    kPut,
    kReplace,
    kDedup,
    kCommon,
    kDeleteTensor,
    kPublish,
    kDeleteOpen
  };
  std::vector<std::pair<Kind, double>> weights = {
      {kPut, n < kMaxTensorsPerRevision ? 10.0 : 0.0},
      {kReplace, n >= 1 ? 3.0 : 0.0},
      {kDedup, n < kMaxTensorsPerRevision ? 1.5 : 0.0},
      {kCommon, n < kMaxTensorsPerRevision ? 1.0 : 0.0},
      {kDeleteTensor, n >= 2 ? 1.0 : 0.0},
      {kPublish, n >= 1 ? 1.0 + 1.5 * static_cast<double>(n) : 0.0},
      {kDeleteOpen, found != w.state.revisions.end() ? 0.3 : 0.0},
  };
  double total = 0;
  for (const auto& [kind, weight] : weights) total += weight;
  double x = std::uniform_real_distribution<double>(0, total)(rng);
  Kind kind = kPut;
  for (const auto& [k, weight] : weights) {
    if (x < weight) {
      kind = k;
      break;
    }
    x -= weight;
  }

  Op put = op(OpType::kPutTensor, w.current);
  switch (kind) {
    case kPut:
      put.tensor = NewTensorName(w, rng);
      put.content = NewContent(w, rng, ctx);
      return Step{"put", {put}};
    case kReplace: {
      put.tensor = Pick(rng, names);
      const Content& old = tensors.at(put.tensor);
      if (old.byte_length > 0 && Coin(rng, 0.5)) {
        // A fine-tune: the same tensor with one region changed, so that
        // the old and new versions share their other blocks.
        put.content = old;
        put.content.patch_seed =
            Mix(Mix(ctx.seed, w.index + 1), ++w.content_counter);
        put.content.patch_offset = Uniform(rng, 0, old.byte_length - 1);
        put.content.patch_length = Uniform(rng, 1, 8 * kKiB);
        return Step{"replace_patch", {put}};
      }
      put.content = NewContent(w, rng, ctx);
      return Step{"replace", {put}};
    }
    case kDedup: {
      std::vector<Content> live;
      for (const auto& [name, revision] : w.state.revisions) {
        for (const auto& [tensor, content] : revision.tensors) {
          live.push_back(content);
        }
      }
      put.tensor = NewTensorName(w, rng);
      put.content = live.empty() ? NewContent(w, rng, ctx) : Pick(rng, live);
      return Step{"dedup", {put}};
    }
    case kCommon:
      put.tensor = NewTensorName(w, rng);
      put.content = Pick(rng, *ctx.common);
      return Step{"common", {put}};
    case kDeleteTensor: {
      Op remove = op(OpType::kDeleteTensor, w.current);
      remove.tensor = Pick(rng, names);
      return Step{"delete_tensor", {remove}};
    }
    case kPublish: {
      Op publish = op(OpType::kPublish, w.current);
      w.current.clear();
      if (n < kMaxTensorsPerRevision && Coin(rng, 0.2)) {
        put.tensor = NewTensorName(w, rng);
        put.content = NewContent(w, rng, ctx);
        return Step{"race", {put, publish}};
      }
      return Step{"publish", {publish}};
    }
    case kDeleteOpen: {
      std::string victim = w.current;
      w.current.clear();
      return Step{"delete_open", {op(OpType::kDeleteRevision, victim)}};
    }
  }
  return Step{"put", {put}};
}

// --- A writer's round ---

class WriterRun {
 public:
  WriterRun(Writer* w, Client* client, const RoundContext& ctx)
      : w_(w), client_(client), ctx_(ctx) {}

  void Run() {
    Rng rng(Mix(Mix(ctx_.seed, 1000 + ctx_.round), w_->index));
    w_->current.clear();
    for (int i = 0; i < kMaxOpsPerRound; ++i) {
      Step step = PlanStep(*w_, rng, ctx_);
      bool go_on = step.ops.size() == 1 ? RunOne(step) : RunRace(step, rng);
      if (!go_on) return;
    }
  }

 private:
  // Sends `op`, journals it, and returns its status.
  absl::Status Send(const Op& op) {
    OpRecord record;
    {
      absl::MutexLock lock(&mu_);
      record.seq = ++w_->sent;
    }
    record.what = DescribeOp(op);
    record.sent_ms = ctx_.journal->NowMs();
    ctx_.journal->Write(absl::StrCat("r", ctx_.round, " ", w_->model, " #",
                                     record.seq, " SEND ", record.what));
    absl::Status status = Execute(*client_, *w_, op);
    record.done_ms = ctx_.journal->NowMs();
    record.outcome = status.ok() ? "OK" : status.ToString();
    ctx_.journal->Write(absl::StrCat("r", ctx_.round, " ", w_->model, " #",
                                     record.seq, " ", record.outcome));
    absl::MutexLock lock(&mu_);
    w_->records.push_back(std::move(record));
    return status;
  }

  void Acked(const std::string& kind, const Op& op) {
    Apply(op, &w_->state);
    ++w_->acked;
    ++w_->acked_by_kind[kind];
    switch (op.type) {
      case OpType::kPutTensor:
        ++w_->acked_puts;
        break;
      case OpType::kPublish:
        ++w_->acked_publishes;
        break;
      case OpType::kDeleteRevision:
        ++w_->acked_revision_deletes;
        break;
      case OpType::kDeleteTensor:
        ++w_->acked_tensor_deletes;
        break;
      case OpType::kCreateRevision:
        break;
    }
  }

  // Notes an error that came before the kill: the workload is valid, so
  // every such error is a bug (or a hang, if DEADLINE_EXCEEDED).
  void CheckExpected(const Op& op, const absl::Status& status) {
    if (ctx_.killed->load()) return;
    w_->unexpected.push_back(
        absl::StrCat("round ", ctx_.round, " ", w_->model, ": ", DescribeOp(op),
                     " failed before the kill: ", status.ToString()));
  }

  // Adds `op`, whose outcome is unknown, to the pending operations.
  void Pend(const Op& op, bool known_applied = false) {
    if (op.type == OpType::kPutTensor &&
        !w_->state.revisions.contains(op.revision)) {
      Op create;
      create.type = OpType::kCreateRevision;
      create.revision = op.revision;
      w_->pending.push_back(PendingOp{create, false, true});
    }
    w_->pending.push_back(PendingOp{op, known_applied, false});
  }

  // Sends a single operation. Returns false when the writer stops.
  bool RunOne(const Step& step) {
    const Op& op = step.ops[0];
    absl::Status status = Send(op);
    if (status.ok()) {
      if (op.type == OpType::kDeleteRevision) RecordDelete(op.revision);
      Acked(step.kind, op);
      return true;
    }
    CheckExpected(op, status);
    Pend(op);
    return false;
  }

  void RecordDelete(const std::string& revision) {
    Deleted deleted{revision, ""};
    auto found = w_->state.revisions.find(revision);
    if (found != w_->state.revisions.end() && !found->second.tensors.empty()) {
      deleted.tensor = found->second.tensors.begin()->first;
    }
    w_->deleted.push_back(deleted);
  }

  // Sends a put and a publish of the same revision at once. pstored must
  // order them: the put lands before the publish (and is in the published
  // manifest) or is refused with FAILED_PRECONDITION (and is not).
  bool RunRace(const Step& step, Rng& rng) {
    const Op& put = step.ops[0];
    const Op& publish = step.ops[1];
    ++w_->races;
    absl::Status put_status;
    std::thread putter([&] { put_status = Send(put); });
    absl::SleepFor(absl::Microseconds(Uniform(rng, 0, 3000)));
    absl::Status publish_status = Send(publish);
    putter.join();
    bool put_refused = absl::IsFailedPrecondition(put_status);
    if (!put_status.ok() && !put_refused) CheckExpected(put, put_status);
    if (!publish_status.ok()) CheckExpected(publish, publish_status);
    if (put_status.ok() && publish_status.ok()) {
      ++w_->races_put_first;
      Acked("race_put", put);
      Acked("race_publish", publish);
      return true;
    }
    if (put_refused && publish_status.ok()) {
      ++w_->races_put_refused;
      Acked("race_publish", publish);
      return true;
    }
    if (put_refused) {
      // Refused because the revision was published: the publish applied,
      // though its reply was lost.
      ++w_->races_put_refused;
      Pend(publish, /*known_applied=*/true);
      return false;
    }
    if (put_status.ok()) {
      Acked("race_put", put);
      Pend(publish);
      return false;
    }
    Pend(put);
    Pend(publish, /*known_applied=*/publish_status.ok());
    return false;
  }

  Writer* const w_;
  Client* const client_;
  const RoundContext ctx_;
  absl::Mutex mu_;
};

// --- Verification ---

v1::TierStatus FindTier(const v1::ServerStatus& status, v1::Tier tier) {
  for (const v1::TierStatus& t : status.tiers()) {
    if (t.tier() == tier) return t;
  }
  return v1::TierStatus();
}

// Reads model `w` back: revisions and latest from ListModels, every
// manifest, every tensor.
ObservedModel Observe(Client& client, const Writer& w,
                      const std::vector<v1::Model>& models) {
  ObservedModel observed;
  for (const v1::Model& model : models) {
    if (model.name() != w.model) continue;
    observed.latest = model.latest_revision();
    for (const v1::Revision& revision : model.revisions()) {
      observed.revisions[revision.revision()];
    }
  }
  absl::StatusOr<v1::Revision> resolved = client.GetRevision(w.model);
  if (resolved.ok()) {
    observed.resolved_latest = resolved->revision();
  } else if (!absl::IsNotFound(resolved.status())) {
    observed.resolve_status = resolved.status();
  }
  for (auto& [name, revision] : observed.revisions) {
    absl::StatusOr<v1::Revision> manifest =
        client.GetRevision(RevisionPath(w, name));
    if (!manifest.ok()) {
      revision.manifest_status = manifest.status();
      continue;
    }
    revision.published = manifest->published();
    revision.latest = manifest->latest();
    revision.published_unix_micros = manifest->published_unix_micros();
    revision.metadata.insert(manifest->metadata().begin(),
                             manifest->metadata().end());
    for (const v1::TensorInfo& info : manifest->tensors()) {
      ObservedTensor& tensor = revision.tensors[info.tensor()];
      tensor.dtype = info.dtype();
      tensor.shape.assign(info.shape().begin(), info.shape().end());
      tensor.byte_length = info.stored_byte_length();
      tensor.created_unix_micros = info.created_unix_micros();
      auto got = client.GetTensor(
          absl::StrCat(RevisionPath(w, name), "/", info.tensor()));
      if (!got.ok()) {
        tensor.read_status = got.status();
        continue;
      }
      tensor.read_dtype = got->first.dtype();
      tensor.read_shape.assign(got->first.shape().begin(),
                               got->first.shape().end());
      tensor.bytes = std::move(got->second);
    }
  }
  return observed;
}

// What one writer's verification found.
struct WriterVerdict {
  CheckResult check;
  std::vector<std::string> problems;  // Beyond the model check.
  uint64_t revisions = 0;
  uint64_t published = 0;
  uint64_t tensors = 0;
  uint64_t bytes = 0;
  uint64_t second_pass_bytes = 0;
  uint64_t deleted_lookups = 0;
};

// Reads every live tensor of `w` again and compares it with its content.
void SecondPass(Client& client, const Writer& w, WriterVerdict* verdict) {
  for (const auto& [name, revision] : w.state.revisions) {
    for (const auto& [tensor, content] : revision.tensors) {
      std::string path = absl::StrCat(RevisionPath(w, name), "/", tensor);
      std::vector<uint8_t> expected = ContentBytes(content);
      auto got = client.GetTensor(path);
      if (!got.ok()) {
        verdict->problems.push_back(absl::StrCat(
            path,
            ": read after DropCache(DRAM) failed: ", got.status().ToString()));
        continue;
      }
      if (got->second != expected) {
        verdict->problems.push_back(absl::StrCat(
            path, ": read after DropCache(DRAM) returned other bytes than ",
            DescribeContent(content)));
        continue;
      }
      verdict->second_pass_bytes += expected.size();
    }
  }
}

// Checks that deleted revisions stay deleted: those deleted since the last
// check, and a sample of older ones.
void CheckDeleted(Client& client, Writer& w, Rng& rng, WriterVerdict* verdict) {
  std::vector<size_t> indexes;
  for (size_t i = w.deleted_checked; i < w.deleted.size(); ++i) {
    indexes.push_back(i);
  }
  for (int i = 0; i < 8 && w.deleted_checked > 0; ++i) {
    indexes.push_back(Uniform(rng, 0, w.deleted_checked - 1));
  }
  for (size_t i : indexes) {
    const Deleted& deleted = w.deleted[i];
    std::string path = RevisionPath(w, deleted.revision);
    absl::StatusOr<v1::Revision> revision = client.GetRevision(path);
    ++verdict->deleted_lookups;
    if (!absl::IsNotFound(revision.status())) {
      verdict->problems.push_back(absl::StrCat(
          "deleted revision ", path, " is back: GetRevision returned ",
          revision.status().ToString()));
    }
    if (!deleted.tensor.empty()) {
      auto tensor = client.StatTensor(absl::StrCat(path, "/", deleted.tensor));
      if (!absl::IsNotFound(tensor.status())) {
        verdict->problems.push_back(
            absl::StrCat("tensor ", path, "/", deleted.tensor,
                         " of a deleted revision is back: StatTensor returned ",
                         tensor.status().ToString()));
      }
    }
  }
  w.deleted_checked = w.deleted.size();
}

// Checks that "MODEL/TENSOR" reads the latest revision.
void CheckLatestRead(Client& client, const Writer& w,
                     const ObservedModel& observed, WriterVerdict* verdict) {
  if (observed.latest.empty()) return;
  auto latest = observed.revisions.find(observed.latest);
  if (latest == observed.revisions.end() || latest->second.tensors.empty()) {
    return;
  }
  const auto& [tensor, seen] = *latest->second.tensors.begin();
  auto got = client.GetTensor(absl::StrCat(w.model, "/", tensor));
  if (!got.ok()) {
    verdict->problems.push_back(absl::StrCat(
        w.model, "/", tensor, " (latest) failed: ", got.status().ToString()));
  } else if (got->first.revision() != observed.latest ||
             got->second != seen.bytes) {
    verdict->problems.push_back(absl::StrCat(
        w.model, "/", tensor, " read revision '", got->first.revision(),
        "', not the latest '", observed.latest, "', or other bytes"));
  }
}

class Harness {
 public:
  Harness(Flags flags, uint64_t max_tensor_bytes, uint64_t block_bytes)
      : flags_(std::move(flags)),
        max_tensor_bytes_(max_tensor_bytes),
        block_bytes_(block_bytes) {}

  int Run();

 private:
  absl::Status Setup();
  // Starts pstored and parses what its start-up logged. A failure to
  // start after a crash is a violation.
  bool StartServer(int round, bool after_crash);
  // Returns block key -> references for the live tensors of every writer.
  std::map<std::string, uint64_t> ExpectedRefs() const;
  // Stops pstored with SIGTERM and audits its cold tier; false on a
  // violation.
  bool StopAndAudit(int round);
  // Starts pstored on the data and kills it with SIGKILL 1-600 ms later,
  // most often before it serves: a crash during recovery.
  void KillDuringStartup(int round, Rng& rng);
  void RunRound(int round);
  // Verifies the store after the crash of round `round`; returns false on
  // a violation.
  bool Verify(int round);
  void Violation(const std::string& text);
  void DumpWriter(const Writer& w, const std::set<std::string>& revisions);
  void PrintSummary(absl::Duration elapsed, bool passed);

  const Flags flags_;
  const uint64_t max_tensor_bytes_;
  const uint64_t block_bytes_;
  std::string run_dir_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<PstoredProcess> server_;
  std::vector<Writer> writers_;
  std::vector<Content> common_;
  Totals totals_;
  double last_kill_ms_ = 0;
  double last_restart_s_ = 0;
  size_t log_offset_ = 0;
  std::string start_notes_;
  std::map<std::string, uint64_t> expected_refs_;
  std::string startup_kill_note_;
  NvmeFaultResult nvme_fault_;
  std::set<int> discarded_regions_;  // By the last start.
};

void Harness::Violation(const std::string& text) {
  ++totals_.violations;
  std::printf("VIOLATION: %s\n", text.c_str());
  journal_->Write(absl::StrCat("VIOLATION: ", text));
}

absl::Status Harness::Setup() {
  std::string base = flags_.dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    base = tmp != nullptr && *tmp != '\0' ? tmp : "/var/tmp";
  }
  run_dir_ = absl::StrCat(base, "/crash_harness.", getpid(), ".", flags_.seed);
  std::error_code error;
  std::filesystem::create_directories(run_dir_, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", run_dir_, ": ", error.message()));
  }
  journal_ = std::make_unique<Journal>(run_dir_ + "/journal.log");
  if (!journal_->ok()) {
    return absl::UnavailableError("cannot write " + run_dir_ + "/journal.log");
  }
  if (!flags_.pstored.empty())
    setenv("PSTORED_PATH", flags_.pstored.c_str(), 1);
  std::string binary = testing::PstoredPath();
  if (binary.empty() || access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no pstored binary at '", binary, "' (--pstored)"));
  }
  std::vector<std::string> pstored_flags = {
      "--sync_commits=true",
      "--dram_bytes=" + flags_.dram_bytes,
      "--nvme_bytes=" + flags_.nvme_bytes,
      "--block_bytes=" + flags_.block_bytes,
      "--drain_seconds=5",
  };
  if (!flags_.ceph_conf.empty()) {
    for (std::string flag : std::vector<std::string>{
             "--backend=rados", "--ceph_conf=" + flags_.ceph_conf,
             "--rados_pool=" + flags_.rados_pool,
             absl::StrCat("--rados_namespace=crash-", getpid(), "-",
                          flags_.seed)}) {
      pstored_flags.push_back(std::move(flag));
    }
  }
  server_ = std::make_unique<PstoredProcess>(run_dir_ + "/data",
                                             std::move(pstored_flags));
  for (int i = 0; i < flags_.writers; ++i) {
    Writer w;
    w.index = i;
    w.model = absl::StrCat("w", i);
    writers_.push_back(std::move(w));
  }
  Rng rng(Mix(flags_.seed, 0xC0));
  for (int i = 0; i < kCommonContents; ++i) {
    // Shared weights: several blocks each, put by every writer.
    Content content = RandomContent(rng, Mix(flags_.seed, 0xC0 + i),
                                    max_tensor_bytes_, block_bytes_);
    if (content.byte_length < block_bytes_) {
      content.dtype = "U8";
      content.byte_length = block_bytes_ * 2 + 1000;
      content.shape = {static_cast<int64_t>(content.byte_length)};
    }
    common_.push_back(content);
  }
  return absl::OkStatus();
}

bool Harness::StartServer(int round, bool after_crash) {
  std::string before = server_->Log();
  log_offset_ = before.size();
  absl::Time start = absl::Now();
  absl::Status started = server_->Start();
  last_restart_s_ = absl::ToDoubleSeconds(absl::Now() - start);
  journal_->Write(absl::StrCat("r", round, " START ", started.ToString(), " ",
                               server_->address()));
  if (!started.ok()) {
    Violation(absl::StrCat("pstored did not start on the data left by ",
                           after_crash ? "the crash" : "the clean stop",
                           " of round ", round - 1, ": ", started.ToString()));
    return false;
  }
  std::string log = server_->Log().substr(log_offset_);
  start_notes_.clear();
  discarded_regions_.clear();
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "event=nvme_region_discarded")) {
      ++totals_.regions_discarded;
      size_t at = line.find("region=");
      int region = -1;
      if (at != absl::string_view::npos) {
        region = std::atoi(std::string(line.substr(at + 7)).c_str());
        discarded_regions_.insert(region);
      }
      if (region != nvme_fault_.region ||
          nvme_fault_.fault != NvmeFault::kRegionHeader) {
        absl::StrAppend(&start_notes_, " [", line, "]");
      }
    }
    if (absl::StrContains(line, "event=staged_blocks_collected")) {
      size_t at = line.find("collected=");
      uint64_t n = 0;
      if (at != absl::string_view::npos) {
        n = std::strtoull(std::string(line.substr(at + 10)).c_str(), nullptr,
                          10);
      }
      totals_.staged_collected += n;
      absl::StrAppend(&start_notes_, " staged blocks collected: ", n, ";");
    }
    if (absl::StrContains(line, " error ") ||
        absl::StrContains(line, " critical ")) {
      absl::StrAppend(&start_notes_, " [", line, "]");
    }
  }
  if (after_crash) {
    totals_.restart_s_sum += last_restart_s_;
    totals_.restart_s_max = std::max(totals_.restart_s_max, last_restart_s_);
  }
  return true;
}

void Harness::RunRound(int round) {
  ClientOptions options;
  options.address = server_->address();
  options.max_attempts = 1;  // Nothing retried behind the journal's back.
  options.call_timeout = absl::Seconds(60);
  options.chunk_bytes = 256 * 1024;  // Puts in several messages.
  std::atomic<bool> killed{false};
  RoundContext ctx;
  ctx.round = round;
  ctx.seed = flags_.seed;
  ctx.max_tensor_bytes = max_tensor_bytes_;
  ctx.block_bytes = block_bytes_;
  ctx.common = &common_;
  ctx.killed = &killed;
  ctx.journal = journal_.get();

  std::vector<std::unique_ptr<Client>> clients;
  for (Writer& w : writers_) {
    w.records.clear();
    w.acked_by_kind.clear();
    w.sent = w.acked = w.acked_publishes = w.acked_revision_deletes = 0;
    w.acked_tensor_deletes = w.acked_puts = 0;
    w.races = w.races_put_first = w.races_put_refused = 0;
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    if (!client.ok()) {
      Violation(
          absl::StrCat("cannot create a client: ", client.status().ToString()));
      server_->Kill();
      return;
    }
    clients.push_back(*std::move(client));
  }
  Rng rng(Mix(flags_.seed, 2000 + round));
  int kill_ms = static_cast<int>(
      Uniform(rng, flags_.min_kill_ms,
              std::max(flags_.min_kill_ms, flags_.max_kill_ms)));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < writers_.size(); ++i) {
    threads.emplace_back(
        [&, i] { WriterRun(&writers_[i], clients[i].get(), ctx).Run(); });
  }
  absl::SleepFor(absl::Milliseconds(kill_ms));
  killed = true;
  journal_->Write(absl::StrCat("r", round, " KILL after ", kill_ms, " ms"));
  server_->Kill();
  for (std::thread& thread : threads) thread.join();
  if (Coin(rng, flags_.startup_kill_percent / 100.0)) {
    KillDuringStartup(round, rng);
  }
  nvme_fault_ = NvmeFaultResult();
  if (Coin(rng, flags_.nvme_fault_percent / 100.0)) {
    absl::Status injected =
        InjectNvmeFault(server_->data_dir() + "/nvme", rng, &nvme_fault_);
    if (!injected.ok()) {
      Violation("cannot damage the NVMe tier: " + injected.ToString());
    }
    ++totals_.nvme_faults[NvmeFaultName(nvme_fault_.fault)];
    journal_->Write(absl::StrCat(
        "r", round, " NVME FAULT ", NvmeFaultName(nvme_fault_.fault),
        " region ", nvme_fault_.region, " offset ", nvme_fault_.offset));
  }
  journal_->Flush();
  last_kill_ms_ = kill_ms;
  totals_.kill_ms_sum += kill_ms;
  for (Writer& w : writers_) {
    totals_.ops_sent += w.sent;
    totals_.ops_acked += w.acked;
    totals_.ops_failed += w.sent - w.acked;
    for (const auto& [kind, n] : w.acked_by_kind) {
      totals_.acked_by_kind[kind] += n;
    }
    totals_.races += w.races;
    totals_.races_put_first += w.races_put_first;
    totals_.races_put_refused += w.races_put_refused;
    for (const std::string& text : w.unexpected) Violation(text);
    w.unexpected.clear();
  }
  ++totals_.rounds;
}

void Harness::DumpWriter(const Writer& w,
                         const std::set<std::string>& revisions) {
  std::printf("  pending operations of %s (outcome unknown):\n",
              w.model.c_str());
  for (const PendingOp& p : w.pending) {
    std::printf("    %s%s%s\n", DescribeOp(p.op).c_str(),
                p.known_applied ? " (known applied)" : "",
                p.implicit ? " (implicit)" : "");
  }
  std::printf("  journal of %s in the last round (touching %s):\n",
              w.model.c_str(),
              revisions.empty() ? "anything" : "the revisions above");
  int shown = 0;
  for (const OpRecord& record : w.records) {
    bool relevant = revisions.empty();
    for (const std::string& revision : revisions) {
      if (absl::StrContains(record.what, "@" + revision + "/") ||
          absl::EndsWith(record.what, "@" + revision) ||
          absl::StrContains(record.what, "@" + revision + " ")) {
        relevant = true;
      }
    }
    if (!relevant) continue;
    if (++shown > 60) break;
    std::printf("    #%llu %9.3f..%9.3f ms %s -> %s\n",
                static_cast<unsigned long long>(record.seq), record.sent_ms,
                record.done_ms, record.what.c_str(), record.outcome.c_str());
  }
}

std::map<std::string, uint64_t> Harness::ExpectedRefs() const {
  std::map<std::string, uint64_t> refs;
  for (const Writer& w : writers_) {
    for (const auto& [name, revision] : w.state.revisions) {
      for (const auto& [tensor, content] : revision.tensors) {
        std::vector<uint8_t> bytes = ContentBytes(content);
        for (uint64_t offset = 0; offset < bytes.size();
             offset += block_bytes_) {
          uint64_t size =
              std::min<uint64_t>(block_bytes_, bytes.size() - offset);
          ++refs[BlockId::Of(
                     std::span<const uint8_t>(bytes.data() + offset, size))
                     .ToByteString()];
        }
      }
    }
  }
  return refs;
}

void Harness::KillDuringStartup(int round, Rng& rng) {
  std::string data_dir = server_->data_dir();
  std::string port_file = data_dir + "/startup_kill.port";
  std::filesystem::remove(port_file);
  std::vector<std::string> args = {
      testing::PstoredPath(),
      "--listen=127.0.0.1:0",
      "--metrics_listen=127.0.0.1:0",
      "--data_dir=" + data_dir,
      "--port_file=" + port_file,
      "--sync_commits=true",
      "--dram_bytes=" + flags_.dram_bytes,
      "--nvme_bytes=" + flags_.nvme_bytes,
      "--block_bytes=" + flags_.block_bytes,
  };
  ChildProcess pstored("pstored", std::move(args), data_dir + "/pstored.log");
  int delay_ms = static_cast<int>(Uniform(rng, 1, 600));
  if (absl::Status started = pstored.Start(); !started.ok()) {
    Violation(absl::StrCat("cannot start pstored: ", started.ToString()));
    return;
  }
  absl::SleepFor(absl::Milliseconds(delay_ms));
  bool serving = std::filesystem::exists(port_file);
  pstored.Kill();
  ++totals_.startup_kills;
  totals_.startup_kills_serving += serving;
  journal_->Write(absl::StrCat("r", round, " KILL during start-up after ",
                               delay_ms, " ms", serving ? " (serving)" : ""));
  startup_kill_note_ =
      absl::StrCat("; killed again ", delay_ms, " ms into a restart",
                   serving ? " (serving)" : "");
}

bool Harness::StopAndAudit(int round) {
  absl::StatusOr<int> stopped = server_->Stop(SIGTERM, absl::Seconds(60));
  if (!stopped.ok() || !WIFEXITED(*stopped) || WEXITSTATUS(*stopped) != 0) {
    Violation(absl::StrCat("round ", round,
                           ": pstored did not stop cleanly on SIGTERM: ",
                           stopped.ok() ? absl::StrCat("wait status ", *stopped)
                                        : stopped.status().ToString()));
    return false;
  }
  if (!flags_.ceph_conf.empty()) {
    // The RADOS backend keeps no reference counts to audit (blocks are
    // swept); every acknowledged write is read back by the verification.
    std::printf("audit after round %d: RADOS backend, no counts to audit\n",
                round);
    return true;
  }
  ColdAudit audit;
  absl::Status status =
      AuditColdTier(server_->data_dir() + "/cold", expected_refs_, &audit);
  ++totals_.audits;
  totals_.audit_last_blocks = audit.blocks;
  totals_.audit_last_bytes = audit.block_bytes;
  totals_.audit_max_blocks = std::max(totals_.audit_max_blocks, audit.blocks);
  if (!status.ok()) {
    ++totals_.audit_failures;
    Violation(absl::StrCat(
        "round ", round, ": cannot audit the cold tier: ", status.ToString()));
    return false;
  }
  uint64_t expected_refs = 0;
  for (const auto& [key, n] : expected_refs_) expected_refs += n;
  std::printf(
      "audit after round %d: cold tier holds %llu blocks (%s) and %llu "
      "reference counts for %zu live blocks (%llu references), %llu staged: "
      "%s\n",
      round, static_cast<unsigned long long>(audit.blocks),
      FormatBytes(audit.block_bytes).c_str(),
      static_cast<unsigned long long>(audit.refs), expected_refs_.size(),
      static_cast<unsigned long long>(expected_refs),
      static_cast<unsigned long long>(audit.staged),
      audit.problems.empty() ? "exact" : "MISMATCH");
  std::fflush(stdout);
  size_t shown = 0;
  for (const std::string& problem : audit.problems) {
    if (++shown > 20) {
      std::printf("  ... %zu more\n", audit.problems.size() - 20);
      break;
    }
    std::printf("  %s\n", problem.c_str());
    journal_->Write("  audit: " + problem);
  }
  if (!audit.problems.empty()) {
    ++totals_.audit_failures;
    Violation(absl::StrCat("round ", round,
                           ": the cold tier's blocks or "
                           "reference counts differ from the live tensors' (",
                           audit.problems.size(), " problems)"));
    return false;
  }
  return true;
}

bool Harness::Verify(int round) {
  ClientOptions options;
  options.address = server_->address();
  options.max_attempts = 3;
  options.call_timeout = absl::Seconds(120);
  absl::StatusOr<std::unique_ptr<Client>> made = Client::Create(options);
  if (!made.ok()) {
    Violation("cannot create a client: " + made.status().ToString());
    return false;
  }
  Client& client = **made;
  bool passed = true;
  auto fail = [&](const std::string& text) {
    Violation(text);
    passed = false;
  };

  absl::StatusOr<v1::ServerStatus> status0 = client.GetServerStatus();
  if (!status0.ok()) {
    fail("GetServerStatus after restart: " + status0.status().ToString());
    return false;
  }
  if (absl::Status dropped = client.DropCache(v1::TIER_DRAM); !dropped.ok()) {
    fail("DropCache(DRAM): " + dropped.ToString());
  }
  absl::StatusOr<std::vector<v1::Model>> models = client.ListModels();
  if (!models.ok()) {
    fail("ListModels after restart: " + models.status().ToString());
    return false;
  }
  std::set<std::string> names;
  for (const Writer& w : writers_) names.insert(w.model);
  for (const v1::Model& model : *models) {
    if (!names.contains(model.name())) {
      fail(absl::StrCat("unexpected model '", model.name(), "' after restart"));
    }
  }

  // First pass: read the whole store back, one thread per writer.
  std::vector<WriterVerdict> verdicts(writers_.size());
  std::vector<ObservedModel> observed(writers_.size());
  {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < writers_.size(); ++i) {
      threads.emplace_back([&, i] {
        observed[i] = Observe(client, writers_[i], *models);
        verdicts[i].check =
            CheckModel(writers_[i].state, writers_[i].pending, observed[i]);
        CheckLatestRead(client, writers_[i], observed[i], &verdicts[i]);
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  absl::StatusOr<v1::ServerStatus> status1 = client.GetServerStatus();

  uint64_t unacked_applied = 0, unacked_absent = 0;
  for (size_t i = 0; i < writers_.size(); ++i) {
    Writer& w = writers_[i];
    WriterVerdict& verdict = verdicts[i];
    const CheckResult& check = verdict.check;
    std::set<std::string> revisions;
    if (!check.ok()) {
      std::string text = absl::StrCat(
          "round ", round, ": ", w.model, " after restart matches ",
          check.matched >= 0 ? "a permitted state but breaks an invariant"
                             : "no permitted state");
      if (check.matched < 0) {
        absl::StrAppend(&text, " (", check.candidates.size(), " candidates; ",
                        check.determinate_differences,
                        " differences concern acknowledged state)");
        totals_.lost += check.determinate_differences;
      }
      fail(text);
      for (const Difference& d : check.differences) {
        std::printf("  %s: %s\n", d.item.c_str(), d.what.c_str());
        journal_->Write(absl::StrCat("  ", d.item, ": ", d.what));
      }
      for (const Difference& d : check.invariant_violations) {
        std::printf("  invariant: %s: %s\n", d.item.c_str(), d.what.c_str());
        journal_->Write(absl::StrCat("  invariant: ", d.item, ": ", d.what));
      }
      for (const Difference& d : check.differences) {
        std::vector<std::string> parts =
            absl::StrSplit(d.item, absl::MaxSplits(' ', 1));
        if (parts.size() == 2) {
          revisions.insert(
              std::vector<std::string>(absl::StrSplit(parts[1], '/'))[0]);
        }
      }
      DumpWriter(w, revisions);
      continue;
    }
    // Adopt the state the store is in, and count what the unknown
    // operations did.
    const Candidate& matched = check.candidates[check.matched];
    for (size_t p = 0; p < w.pending.size(); ++p) {
      const PendingOp& op = w.pending[p];
      bool applied = matched.applied & (uint32_t{1} << p);
      if (op.known_applied) {
        ++totals_.known_applied;
        continue;
      }
      if (op.implicit) continue;
      ++totals_.unacked;
      auto& by_type = totals_.unacked_by_type[OpTypeName(op.op.type)];
      if (applied) {
        ++unacked_applied;
        ++by_type.first;
      } else {
        ++unacked_absent;
        ++by_type.second;
      }
      if (applied && op.op.type == OpType::kDeleteRevision) {
        Deleted deleted{op.op.revision, ""};
        auto found = w.state.revisions.find(op.op.revision);
        if (found != w.state.revisions.end() &&
            !found->second.tensors.empty()) {
          deleted.tensor = found->second.tensors.begin()->first;
        }
        w.deleted.push_back(deleted);
      }
    }
    w.state = matched.state;
    w.pending.clear();
    totals_.acked_checked += w.acked;
    totals_.puts_checked += w.acked_puts;
    totals_.publishes_checked += w.acked_publishes;
    totals_.revision_deletes_checked += w.acked_revision_deletes;
    totals_.tensor_deletes_checked += w.acked_tensor_deletes;
    w.acked = w.acked_puts = w.acked_publishes = 0;
    w.acked_revision_deletes = w.acked_tensor_deletes = 0;
    for (const auto& [name, revision] : w.state.revisions) {
      ++verdict.revisions;
      verdict.published += revision.published;
      verdict.tensors += revision.tensors.size();
    }
    verdict.bytes = check.bytes_compared;
  }
  totals_.unacked_applied += unacked_applied;
  totals_.unacked_absent += unacked_absent;

  // Second pass, after dropping DRAM: blocks come from NVMe (spilled since
  // the restart or before it) or cold. Also checks deleted revisions.
  if (absl::Status dropped = client.DropCache(v1::TIER_DRAM); !dropped.ok()) {
    fail("DropCache(DRAM): " + dropped.ToString());
  }
  {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < writers_.size(); ++i) {
      threads.emplace_back([&, i] {
        SecondPass(client, writers_[i], &verdicts[i]);
        Rng rng(Mix(flags_.seed, 3000 + round * 64 + i));
        CheckDeleted(client, writers_[i], rng, &verdicts[i]);
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  absl::StatusOr<v1::ServerStatus> status2 = client.GetServerStatus();
  if (!status1.ok() || !status2.ok()) {
    fail("GetServerStatus during verification failed");
    return false;
  }

  uint64_t revisions = 0, published = 0, tensors = 0, bytes = 0, bytes2 = 0;
  for (size_t i = 0; i < writers_.size(); ++i) {
    WriterVerdict& verdict = verdicts[i];
    for (const std::string& problem : verdict.problems) {
      fail(absl::StrCat("round ", round, ": ", writers_[i].model, ": ",
                        problem));
    }
    revisions += verdict.revisions;
    published += verdict.published;
    tensors += verdict.tensors;
    bytes += verdict.bytes;
    bytes2 += verdict.second_pass_bytes;
    totals_.deleted_lookups += verdict.deleted_lookups;
  }
  totals_.revisions_verified += revisions;
  totals_.published_verified += published;
  totals_.tensors_verified += tensors;
  totals_.bytes_verified += bytes + bytes2;

  // The warm cache: the NVMe index rebuilt at start-up, and whether the
  // first read pass (DRAM empty) was served from it.
  v1::TierStatus nvme0 = FindTier(*status0, v1::TIER_NVME);
  v1::TierStatus nvme1 = FindTier(*status1, v1::TIER_NVME);
  v1::TierStatus nvme2 = FindTier(*status2, v1::TIER_NVME);
  v1::TierStatus cold2 = FindTier(*status2, v1::TIER_COLD);
  uint64_t reads1 = nvme1.reads_served() - nvme0.reads_served();
  uint64_t reads2 = nvme2.reads_served() - nvme1.reads_served();
  std::string warm;
  if (nvme0.blocks() == 0) {
    ++totals_.warm_discarded;
    warm = "discarded/empty";
  } else if (reads1 > 0) {
    ++totals_.warm_back;
    warm = "back";
  } else {
    ++totals_.warm_unused;
    warm = "back, unused";
  }
  totals_.nvme_reads_after_restart += reads1;
  totals_.nvme_reads_after_drop += reads2;
  uint64_t nvme_failures =
      nvme2.checksum_failures() - nvme0.checksum_failures();
  totals_.nvme_checksum_failures += nvme_failures;
  if (nvme_fault_.fault != NvmeFault::kNone) {
    absl::StrAppend(&warm, "; damaged ", NvmeFaultName(nvme_fault_.fault),
                    " of region ", nvme_fault_.region);
    if (nvme_fault_.fault == NvmeFault::kRegionHeader) {
      if (discarded_regions_.contains(nvme_fault_.region)) {
        ++totals_.damaged_regions_discarded;
        absl::StrAppend(&warm, ", discarded");
      } else {
        fail(absl::StrCat("round ", round, ": NVMe region ", nvme_fault_.region,
                          " with a damaged header (byte ", nvme_fault_.offset,
                          ") was not discarded at start-up"));
      }
    }
  }
  if (nvme_failures > 0) {
    absl::StrAppend(&warm, "; ", nvme_failures,
                    " NVMe checksum failures, bytes still right");
  }
  uint64_t cold_failures =
      cold2.checksum_failures() -
      FindTier(*status0, v1::TIER_COLD).checksum_failures();
  totals_.cold_checksum_failures += cold_failures;
  if (cold_failures > 0) {
    fail(absl::StrCat("round ", round, ": ", cold_failures,
                      " checksum failures in the cold tier"));
  }
  expected_refs_ = ExpectedRefs();
  totals_.last_live_blocks = expected_refs_.size();
  totals_.last_cold_estimate = cold2.blocks();

  std::printf(
      "round %d/%d: killed after %.0f ms%s; restart %.2f s; verified %llu "
      "revisions (%llu published), %llu tensors, %s x2; unacked ops: %llu "
      "applied, %llu absent; nvme at start %llu blocks, %llu+%llu reads "
      "(warm cache %s); %zu live blocks;%s\n",
      round, flags_.rounds, last_kill_ms_, startup_kill_note_.c_str(),
      last_restart_s_, static_cast<unsigned long long>(revisions),
      static_cast<unsigned long long>(published),
      static_cast<unsigned long long>(tensors), FormatBytes(bytes).c_str(),
      static_cast<unsigned long long>(unacked_applied),
      static_cast<unsigned long long>(unacked_absent),
      static_cast<unsigned long long>(nvme0.blocks()),
      static_cast<unsigned long long>(reads1),
      static_cast<unsigned long long>(reads2), warm.c_str(),
      expected_refs_.size(), start_notes_.c_str());
  std::fflush(stdout);
  startup_kill_note_.clear();
  journal_->Write(
      absl::StrCat("r", round, " VERIFIED ", passed ? "ok" : "FAILED"));
  return passed;
}

void Harness::PrintSummary(absl::Duration elapsed, bool passed) {
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  const Totals& t = totals_;
  std::printf("\ncrash_harness %s: seed=%llu writers=%d\n",
              passed ? "PASSED" : "FAILED", u(flags_.seed), flags_.writers);
  std::printf(
      "rounds: %llu (SIGKILL each; mean kill delay %.0f ms; restart "
      "mean %.2f s, max %.2f s); second kills during a restart: %llu "
      "(%llu of them once serving)\n",
      u(t.rounds), t.rounds ? t.kill_ms_sum / t.rounds : 0.0,
      t.rounds ? t.restart_s_sum / t.rounds : 0.0, t.restart_s_max,
      u(t.startup_kills), u(t.startup_kills_serving));
  std::printf(
      "operations sent: %llu; acknowledged: %llu; failed: %llu "
      "(racing puts refused: %llu; the rest at the kills)\n",
      u(t.ops_sent), u(t.ops_acked), u(t.ops_failed), u(t.races_put_refused));
  std::string kinds;
  for (const auto& [kind, n] : t.acked_by_kind) {
    absl::StrAppend(&kinds, " ", kind, "=", n);
  }
  std::printf("acknowledged by kind:%s\n", kinds.c_str());
  std::printf(
      "acknowledged writes checked: %llu (puts %llu, publishes %llu, "
      "revision deletes %llu, tensor deletes %llu)\n",
      u(t.acked_checked), u(t.puts_checked), u(t.publishes_checked),
      u(t.revision_deletes_checked), u(t.tensor_deletes_checked));
  std::string by_type;
  for (const auto& [type, counts] : t.unacked_by_type) {
    absl::StrAppend(&by_type, " ", type, " ", counts.first, "/", counts.second);
  }
  std::printf(
      "unacknowledged writes: %llu, seen complete %llu, absent %llu "
      "(applied/absent:%s); proven applied by a refused racing put: "
      "%llu\n",
      u(t.unacked), u(t.unacked_applied), u(t.unacked_absent), by_type.c_str(),
      u(t.known_applied));
  std::printf(
      "put/publish races: %llu (put landed first %llu, put refused "
      "%llu)\n",
      u(t.races), u(t.races_put_first), u(t.races_put_refused));
  std::printf(
      "re-verified every round: %llu revision checks (%llu "
      "published), %llu tensor checks, %s compared byte for byte; "
      "%llu lookups of deleted revisions\n",
      u(t.revisions_verified), u(t.published_verified), u(t.tensors_verified),
      FormatBytes(t.bytes_verified).c_str(), u(t.deleted_lookups));
  std::printf(
      "warm cache after restart: back %llu, back but unused %llu, "
      "discarded/empty %llu; NVMe reads served %llu after restart, "
      "%llu after DropCache(DRAM); NVMe checksum failures %llu (bytes "
      "still correct); regions discarded %llu\n",
      u(t.warm_back), u(t.warm_unused), u(t.warm_discarded),
      u(t.nvme_reads_after_restart), u(t.nvme_reads_after_drop),
      u(t.nvme_checksum_failures), u(t.regions_discarded));
  std::string faults;
  for (const auto& [name, n] : t.nvme_faults) {
    absl::StrAppend(&faults, " ", name, "=", n);
  }
  std::printf(
      "NVMe damage injected after kills:%s; damaged region headers "
      "discarded at start-up: %llu\n",
      faults.empty() ? " none" : faults.c_str(),
      u(t.damaged_regions_discarded));
  std::printf(
      "blocks: %llu audits of the stopped cold tier, %s "
      "(last: %llu blocks, %s, for %llu live; most %llu); "
      "ServerStatus's cold block estimate at the end %llu; staged "
      "blocks collected at restarts %llu\n",
      u(t.audits), t.audit_failures > 0 ? "NOT all exact" : "all exact",
      u(t.audit_last_blocks), FormatBytes(t.audit_last_bytes).c_str(),
      u(t.last_live_blocks), u(t.audit_max_blocks), u(t.last_cold_estimate),
      u(t.staged_collected));
  std::printf("lost: %llu\nviolations: %llu\ntime: %.1f s\n", u(t.lost),
              u(t.violations), absl::ToDoubleSeconds(elapsed));
  if (!passed) {
    std::printf("data, journal.log and pstored.log kept in %s\n",
                run_dir_.c_str());
  }
}

int Harness::Run() {
  absl::Time begin = absl::Now();
  if (absl::Status setup = Setup(); !setup.ok()) {
    std::fprintf(stderr, "crash_harness: %s\n", setup.ToString().c_str());
    return 3;
  }
  std::printf(
      "crash_harness: seed=%llu rounds=%d writers=%d kill in "
      "[%d, %d] ms; dir %s (rerun: --seed %llu)\n",
      static_cast<unsigned long long>(flags_.seed), flags_.rounds,
      flags_.writers, flags_.min_kill_ms, flags_.max_kill_ms, run_dir_.c_str(),
      static_cast<unsigned long long>(flags_.seed));
  std::fflush(stdout);
  // Round r runs writers and kills pstored; the start of round r + 1
  // verifies what the kill left. The run stops at the first verification
  // that finds a violation (errors the writers saw before a kill included).
  for (int round = 1; round <= flags_.rounds + 1; ++round) {
    if (!StartServer(round, round > 1)) break;
    if (round > 1) {
      if (!Verify(round - 1) || totals_.violations > 0) break;
      bool last = round > flags_.rounds;
      if (last ||
          (flags_.audit_every > 0 && (round - 1) % flags_.audit_every == 0)) {
        if (!StopAndAudit(round - 1) || last) break;
        if (!StartServer(round, false)) break;
      }
    }
    RunRound(round);
  }
  bool passed = totals_.violations == 0;
  if (server_->Running()) {
    absl::StatusOr<int> stopped = server_->Stop(SIGTERM, absl::Seconds(30));
    if (passed &&
        (!stopped.ok() || !WIFEXITED(*stopped) || WEXITSTATUS(*stopped) != 0)) {
      Violation("pstored did not stop cleanly on SIGTERM");
      passed = false;
    }
  }
  if (!passed) {
    std::string log = server_->Log();
    size_t from = log.size() > 4000 ? log.size() - 4000 : 0;
    std::printf("--- tail of pstored.log ---\n%s\n---\n",
                log.substr(from).c_str());
  }
  journal_->Flush();
  PrintSummary(absl::Now() - begin, passed);
  if (passed && !flags_.keep_dir) {
    std::error_code error;
    std::filesystem::remove_all(run_dir_, error);
  }
  return passed ? 0 : 1;
}

}  // namespace
}  // namespace pstore::reliability

int main(int argc, char** argv) {
  pstore::reliability::Flags flags;
  CLI::App app(
      "crash_harness: kills pstored with SIGKILL while writers work, restarts "
      "it and checks every acknowledged write",
      "crash_harness");
  app.add_option("--rounds", flags.rounds, "kill/restart rounds")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--writers", flags.writers, "concurrent writers")
      ->check(CLI::Range(1, 32));
  app.add_option("--seed", flags.seed,
                 "seed of the workload and kill delays (default: from the "
                 "clock, printed)");
  app.add_option("--pstored", flags.pstored,
                 "pstored binary (default: $PSTORED_PATH, else the build "
                 "tree's)");
  app.add_option("--dir", flags.dir,
                 "where the run's directory goes (default: $TEST_TMPDIR, "
                 "else /var/tmp; O_DIRECT must work there)");
  app.add_option("--min_kill_ms", flags.min_kill_ms,
                 "shortest time writers run before the kill")
      ->check(CLI::Range(0, 3600000));
  app.add_option("--max_kill_ms", flags.max_kill_ms,
                 "longest time writers run before the kill")
      ->check(CLI::Range(0, 3600000));
  app.add_option("--max_tensor_bytes", flags.max_tensor_bytes,
                 "largest tensor put");
  app.add_option("--dram_bytes", flags.dram_bytes, "pstored --dram_bytes");
  app.add_option("--nvme_bytes", flags.nvme_bytes, "pstored --nvme_bytes");
  app.add_option("--block_bytes", flags.block_bytes, "pstored --block_bytes");
  app.add_option("--audit_every", flags.audit_every,
                 "every N rounds (and at the end) stop pstored cleanly and "
                 "audit its RocksDB: blocks and reference counts exactly "
                 "those of the live tensors (0: only at the end)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--startup_kill_percent", flags.startup_kill_percent,
                 "share of rounds whose crash is followed by a second one, "
                 "within 1-600 ms of the restart (mostly during recovery)")
      ->check(CLI::Range(0, 100));
  app.add_option("--nvme_fault_percent", flags.nvme_fault_percent,
                 "share of rounds that damage one byte of the NVMe tier's "
                 "region files after the kill (a region header, an entry "
                 "header or an entry's data)")
      ->check(CLI::Range(0, 100));
  app.add_option("--ceph_conf", flags.ceph_conf,
                 "run pstored on the RADOS backend of this Ceph (default: "
                 "the embedded RocksDB backend)");
  app.add_option("--rados_pool", flags.rados_pool,
                 "the pool, with --ceph_conf");
  app.add_flag("--keep_dir", flags.keep_dir,
               "keep the data directory and journal after a passing run");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  flags.seed_given = app.count("--seed") > 0;
  if (!flags.seed_given) {
    flags.seed =
        static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) % 1000000007ull;
  }
  absl::StatusOr<uint64_t> max_tensor =
      pstore::ParseByteSize(flags.max_tensor_bytes);
  absl::StatusOr<uint64_t> block = pstore::ParseByteSize(flags.block_bytes);
  if (!max_tensor.ok() || !block.ok() || *block == 0) {
    std::fprintf(stderr,
                 "crash_harness: bad --max_tensor_bytes or "
                 "--block_bytes\n");
    return 2;
  }
  pstore::reliability::Harness harness(flags, *max_tensor, *block);
  return harness.Run();
}
