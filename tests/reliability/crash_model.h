// The reference model of the crash harness: what pstored must hold after a
// crash, given the operations a writer sent and which of them were
// acknowledged.
//
// Each writer of the harness owns one model (MODEL = "w<index>") and sends
// one operation at a time (except a publish raced by a put into the same
// revision), so its acknowledged operations apply in a known order. A
// ModelState is what those operations leave. A crash leaves at most a few
// operations whose outcome the writer could not learn (PendingOp); the
// store may then be in any state that applies a subset of them, in order
// (Candidates). Verification reads the model back from the restarted store
// (ObservedModel), finds the candidate it equals (CheckModel), and adopts
// it as the new base state, so every round starts from an exact state.
//
// Tensor bytes are never kept: a Content describes them (a PRNG seed, a
// length and an optional patch), and ContentBytes regenerates them.
//
// Pure functions and plain values; thread-compatible.

#ifndef PSTORE_TESTS_RELIABILITY_CRASH_MODEL_H_
#define PSTORE_TESTS_RELIABILITY_CRASH_MODEL_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace pstore::reliability {

// Returns a well-mixed 64-bit value of `a` and `b` (splitmix64 finalizer).
uint64_t Mix(uint64_t a, uint64_t b);

// The bytes of one tensor, described so that they can be regenerated:
// byte_length bytes of a splitmix64 stream seeded with `seed`, then, when
// patch_length > 0, bytes [patch_offset, patch_offset + patch_length)
// replaced by a stream seeded with `patch_seed` (a fine-tune that changes
// one region of an existing tensor and shares its other blocks).
struct Content {
  uint64_t seed = 0;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t byte_length = 0;
  uint64_t patch_seed = 0;
  uint64_t patch_offset = 0;
  uint64_t patch_length = 0;

  friend bool operator==(const Content&, const Content&) = default;
};

// Writes the bytes of `content` into `out`. REQUIRES: out.size() ==
// content.byte_length.
void FillContentBytes(const Content& content, std::span<uint8_t> out);
std::vector<uint8_t> ContentBytes(const Content& content);

// Returns "F16[12,512] 12288B seed=0x..." for logs.
std::string DescribeContent(const Content& content);

struct RevisionState {
  bool published = false;
  // Position of the publish among the model's publishes (1, 2, ...); what
  // pstored's publish time orders when a delete moves latest.
  uint64_t publish_order = 0;
  std::map<std::string, std::string> metadata;
  std::map<std::string, Content> tensors;

  friend bool operator==(const RevisionState&, const RevisionState&) = default;
};

struct ModelState {
  std::map<std::string, RevisionState> revisions;
  // The model's latest revision; empty when none is published.
  std::string latest;
  uint64_t next_publish_order = 1;

  friend bool operator==(const ModelState&, const ModelState&) = default;
};

enum class OpType {
  kCreateRevision,  // revision, metadata
  kPutTensor,       // revision, tensor, content; creates the revision
  kDeleteTensor,    // revision, tensor
  kPublish,         // revision
  kDeleteRevision,  // revision
};

// Returns "create", "put", "delete_tensor", "publish", "delete_revision".
const char* OpTypeName(OpType type);

struct Op {
  OpType type = OpType::kPutTensor;
  std::string revision;
  std::string tensor;
  Content content;
  std::map<std::string, std::string> metadata;
};

// Returns a one-line description of `op` for the journal.
std::string DescribeOp(const Op& op);

// Applies `op` to `state` as pstored does: a put creates its revision
// (open, no metadata) and replaces a tensor of the same name; publishing a
// published revision changes nothing; deleting the latest revision moves
// latest to the most recently published remaining one (none: empty).
// REQUIRES: `op` is valid in `state` (the harness sends only valid ones).
void Apply(const Op& op, ModelState* state);

// An operation sent whose outcome is not known, or known only after the
// fact (a racing put refused because its publish landed first proves the
// publish applied: known_applied).
struct PendingOp {
  Op op;
  bool known_applied = false;
  // The revision a put creates when it does not exist: pstored creates it
  // in its own batch before the tensor's, so it may exist without the
  // tensor. Not an operation of its own in the harness's counts.
  bool implicit = false;
};

// A state the store may be in: `state`, reached by applying the pending
// operations whose bit is set in `applied` (bit i for pending[i]).
struct Candidate {
  ModelState state;
  uint32_t applied = 0;
};

// Returns every state reachable from `base` by applying a subset of
// `pending` in order (known_applied ones always). Duplicate states are
// kept once (the first subset reaching them).
std::vector<Candidate> Candidates(const ModelState& base,
                                  const std::vector<PendingOp>& pending);

// What the restarted store holds for one model.
struct ObservedTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t byte_length = 0;         // From the manifest.
  int64_t created_unix_micros = 0;  // From the manifest.
  absl::Status read_status;         // Of GetTensor.
  std::string read_dtype;           // What GetTensor's info said.
  std::vector<int64_t> read_shape;
  std::vector<uint8_t> bytes;  // What GetTensor returned.
};

struct ObservedRevision {
  absl::Status manifest_status;  // Of GetRevision("MODEL@REV").
  bool published = false;
  bool latest = false;  // The revision's own latest flag.
  int64_t published_unix_micros = 0;
  std::map<std::string, std::string> metadata;
  std::map<std::string, ObservedTensor> tensors;
};

struct ObservedModel {
  // From ListModels.
  std::map<std::string, ObservedRevision> revisions;
  std::string latest;
  // From GetRevision("MODEL"): the revision it resolved to, empty on
  // NotFound; resolve_status is any other error.
  std::string resolved_latest;
  absl::Status resolve_status;
};

// Memoizes byte comparisons of observed tensors with expected contents
// (candidates share most tensors). One per verification of one model.
class ContentMatcher {
 public:
  // Returns true if `tensor` (identified by `key`) holds exactly the bytes
  // of `content`; else sets *why to where they differ.
  bool Matches(const std::string& key, const ObservedTensor& tensor,
               const Content& content, std::string* why);

  uint64_t bytes_compared() const { return bytes_compared_; }

 private:
  struct Result {
    bool match = false;
    std::string why;
  };
  absl::flat_hash_map<std::string, Result> results_;
  uint64_t bytes_compared_ = 0;
};

// One way the observed store differs from a candidate state. `item` names
// what differs ("revision r1-2", "tensor r1-2/layer.0", "latest") so that
// differences can be compared across candidates.
struct Difference {
  std::string item;
  std::string what;
};

// Returns how `observed` differs from `expected` (empty: equal). Compares
// revisions (names, published or not, metadata), their manifests (tensor
// names, dtype, shape, length), every tensor's bytes in full, and latest
// (ListModels, GetRevision("MODEL") and the revisions' flags).
std::vector<Difference> Compare(const ModelState& expected,
                                const ObservedModel& observed,
                                ContentMatcher* matcher);

// Returns violations of rules that hold whatever the operations were: a
// published revision holds no tensor created after its publish; latest is
// a published revision and every view of it agrees.
std::vector<Difference> CheckInvariants(const ObservedModel& observed);

struct CheckResult {
  // Index into candidates of the state the store is in; -1 if none.
  int matched = -1;
  // Violations of CheckInvariants.
  std::vector<Difference> invariant_violations;
  std::vector<Candidate> candidates;
  // When nothing matched: the differences from the closest candidate, and
  // how many of them concern items every candidate agrees on (acknowledged
  // state lost or corrupted).
  std::vector<Difference> differences;
  int determinate_differences = 0;
  uint64_t bytes_compared = 0;

  bool ok() const { return matched >= 0 && invariant_violations.empty(); }
};

// Checks `observed` against the candidates of (base, pending) and the
// invariants. The check passes when a candidate matches and no invariant
// is violated (ok() below).
CheckResult CheckModel(const ModelState& base,
                       const std::vector<PendingOp>& pending,
                       const ObservedModel& observed);

}  // namespace pstore::reliability

#endif  // PSTORE_TESTS_RELIABILITY_CRASH_MODEL_H_
