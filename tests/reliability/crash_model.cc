#include "tests/reliability/crash_model.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace pstore::reliability {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t Finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Fills `out` with the splitmix64 stream seeded with `seed`.
void FillStream(uint64_t seed, std::span<uint8_t> out) {
  uint64_t state = seed;
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    state += kGolden;
    uint64_t word = Finalize(state);
    std::memcpy(out.data() + i, &word, 8);
  }
  if (i < out.size()) {
    state += kGolden;
    uint64_t word = Finalize(state);
    std::memcpy(out.data() + i, &word, out.size() - i);
  }
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

std::string MetadataString(const std::map<std::string, std::string>& map) {
  return absl::StrCat("{", absl::StrJoin(map, ",", absl::PairFormatter("=")),
                      "}");
}

}  // namespace

uint64_t Mix(uint64_t a, uint64_t b) {
  return Finalize(a + kGolden + Finalize(b + 2 * kGolden));
}

void FillContentBytes(const Content& content, std::span<uint8_t> out) {
  FillStream(content.seed, out);
  if (content.patch_length > 0 && content.patch_offset < out.size()) {
    uint64_t length =
        std::min(content.patch_length, out.size() - content.patch_offset);
    FillStream(content.patch_seed, out.subspan(content.patch_offset, length));
  }
}

std::vector<uint8_t> ContentBytes(const Content& content) {
  std::vector<uint8_t> bytes(content.byte_length);
  FillContentBytes(content, bytes);
  return bytes;
}

std::string DescribeContent(const Content& content) {
  std::string text =
      absl::StrCat(content.dtype, ShapeString(content.shape), " ",
                   content.byte_length, "B seed=", absl::Hex(content.seed));
  if (content.patch_length > 0) {
    absl::StrAppend(&text, " patch=", absl::Hex(content.patch_seed), "@",
                    content.patch_offset, "+", content.patch_length);
  }
  return text;
}

const char* OpTypeName(OpType type) {
  switch (type) {
    case OpType::kCreateRevision:
      return "create";
    case OpType::kPutTensor:
      return "put";
    case OpType::kDeleteTensor:
      return "delete_tensor";
    case OpType::kPublish:
      return "publish";
    case OpType::kDeleteRevision:
      return "delete_revision";
  }
  return "?";
}

std::string DescribeOp(const Op& op) {
  switch (op.type) {
    case OpType::kCreateRevision:
      return absl::StrCat("create @", op.revision, " ",
                          MetadataString(op.metadata));
    case OpType::kPutTensor:
      return absl::StrCat("put @", op.revision, "/", op.tensor, " ",
                          DescribeContent(op.content));
    case OpType::kDeleteTensor:
      return absl::StrCat("delete_tensor @", op.revision, "/", op.tensor);
    case OpType::kPublish:
      return absl::StrCat("publish @", op.revision);
    case OpType::kDeleteRevision:
      return absl::StrCat("delete_revision @", op.revision);
  }
  return "?";
}

void Apply(const Op& op, ModelState* state) {
  auto revision = state->revisions.find(op.revision);
  switch (op.type) {
    case OpType::kCreateRevision:
      if (revision == state->revisions.end()) {
        state->revisions[op.revision].metadata = op.metadata;
      }
      return;
    case OpType::kPutTensor:
      state->revisions[op.revision].tensors[op.tensor] = op.content;
      return;
    case OpType::kDeleteTensor:
      if (revision != state->revisions.end()) {
        revision->second.tensors.erase(op.tensor);
      }
      return;
    case OpType::kPublish:
      if (revision == state->revisions.end() || revision->second.published) {
        return;
      }
      revision->second.published = true;
      revision->second.publish_order = state->next_publish_order++;
      state->latest = op.revision;
      return;
    case OpType::kDeleteRevision: {
      if (revision == state->revisions.end()) return;
      state->revisions.erase(revision);
      if (state->latest != op.revision) return;
      state->latest.clear();
      uint64_t newest = 0;
      for (const auto& [name, other] : state->revisions) {
        if (other.published && other.publish_order > newest) {
          newest = other.publish_order;
          state->latest = name;
        }
      }
      return;
    }
  }
}

std::vector<Candidate> Candidates(const ModelState& base,
                                  const std::vector<PendingOp>& pending) {
  std::vector<Candidate> candidates;
  const uint32_t subsets = uint32_t{1} << pending.size();
  for (uint32_t mask = 0; mask < subsets; ++mask) {
    bool valid = true;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (pending[i].known_applied && !(mask & (uint32_t{1} << i))) {
        valid = false;
      }
    }
    if (!valid) continue;
    Candidate candidate{base, mask};
    for (size_t i = 0; i < pending.size(); ++i) {
      if (mask & (uint32_t{1} << i)) Apply(pending[i].op, &candidate.state);
    }
    bool duplicate = std::any_of(
        candidates.begin(), candidates.end(),
        [&](const Candidate& other) { return other.state == candidate.state; });
    if (!duplicate) candidates.push_back(std::move(candidate));
  }
  return candidates;
}

bool ContentMatcher::Matches(const std::string& key,
                             const ObservedTensor& tensor,
                             const Content& content, std::string* why) {
  std::string memo = absl::StrCat(key, "|", DescribeContent(content));
  auto found = results_.find(memo);
  if (found != results_.end()) {
    *why = found->second.why;
    return found->second.match;
  }
  Result result;
  if (!tensor.read_status.ok()) {
    result.why =
        absl::StrCat("GetTensor failed: ", tensor.read_status.ToString());
  } else if (tensor.bytes.size() != content.byte_length) {
    result.why = absl::StrCat("GetTensor returned ", tensor.bytes.size(),
                              " bytes, expected ", content.byte_length);
  } else {
    std::vector<uint8_t> expected = ContentBytes(content);
    bytes_compared_ += expected.size();
    if (expected == tensor.bytes) {
      result.match = true;
    } else {
      size_t first = 0;
      while (expected[first] == tensor.bytes[first]) ++first;
      size_t last = expected.size() - 1;
      while (expected[last] == tensor.bytes[last]) --last;
      uint64_t differing = 0;
      for (size_t i = first; i <= last; ++i) {
        differing += expected[i] != tensor.bytes[i];
      }
      result.why = absl::StrCat(
          differing, " of ", expected.size(), " bytes differ from ",
          DescribeContent(content), ", in [", first, ", ", last + 1,
          "]; first: got 0x", absl::Hex(tensor.bytes[first], absl::kZeroPad2),
          " expected 0x", absl::Hex(expected[first], absl::kZeroPad2));
    }
  }
  *why = result.why;
  bool match = result.match;
  results_.emplace(std::move(memo), std::move(result));
  return match;
}

std::vector<Difference> Compare(const ModelState& expected,
                                const ObservedModel& observed,
                                ContentMatcher* matcher) {
  std::vector<Difference> differences;
  auto add = [&](std::string item, std::string what) {
    differences.push_back(Difference{std::move(item), std::move(what)});
  };
  for (const auto& [name, revision] : expected.revisions) {
    if (!observed.revisions.contains(name)) {
      add(absl::StrCat("revision ", name),
          absl::StrCat("missing; expected ",
                       revision.published ? "published" : "open", " with ",
                       revision.tensors.size(), " tensors"));
    }
  }
  for (const auto& [name, seen] : observed.revisions) {
    std::string item = absl::StrCat("revision ", name);
    auto want = expected.revisions.find(name);
    if (want == expected.revisions.end()) {
      add(item,
          absl::StrCat("unexpected (", seen.published ? "published" : "open",
                       ", ", seen.tensors.size(), " tensors)"));
      continue;
    }
    const RevisionState& revision = want->second;
    if (!seen.manifest_status.ok()) {
      add(item, absl::StrCat("GetRevision failed: ",
                             seen.manifest_status.ToString()));
      continue;
    }
    if (seen.published != revision.published) {
      add(item,
          absl::StrCat("expected ", revision.published ? "published" : "open",
                       ", found ", seen.published ? "published" : "open"));
    }
    if (seen.metadata != revision.metadata) {
      add(item, absl::StrCat("metadata ", MetadataString(seen.metadata),
                             ", expected ", MetadataString(revision.metadata)));
    }
    for (const auto& [tensor, content] : revision.tensors) {
      if (!seen.tensors.contains(tensor)) {
        add(absl::StrCat("tensor ", name, "/", tensor),
            absl::StrCat("missing; expected ", DescribeContent(content)));
      }
    }
    for (const auto& [tensor, got] : seen.tensors) {
      std::string tensor_item = absl::StrCat("tensor ", name, "/", tensor);
      auto content = revision.tensors.find(tensor);
      if (content == revision.tensors.end()) {
        add(tensor_item,
            absl::StrCat("unexpected (", got.dtype, ShapeString(got.shape), " ",
                         got.byte_length, "B)"));
        continue;
      }
      const Content& want_content = content->second;
      if (got.dtype != want_content.dtype || got.shape != want_content.shape ||
          got.byte_length != want_content.byte_length) {
        add(tensor_item,
            absl::StrCat("manifest says ", got.dtype, ShapeString(got.shape),
                         " ", got.byte_length, "B, expected ",
                         DescribeContent(want_content)));
        continue;
      }
      if (got.read_status.ok() &&
          (got.read_dtype != got.dtype || got.read_shape != got.shape)) {
        add(tensor_item,
            absl::StrCat("GetTensor says ", got.read_dtype,
                         ShapeString(got.read_shape), ", the manifest ",
                         got.dtype, ShapeString(got.shape)));
        continue;
      }
      std::string why;
      if (!matcher->Matches(tensor_item, got, want_content, &why)) {
        add(tensor_item, why);
      }
    }
  }
  if (observed.latest != expected.latest) {
    add("latest", absl::StrCat("ListModels says latest is '", observed.latest,
                               "', expected '", expected.latest, "'"));
  }
  return differences;
}

std::vector<Difference> CheckInvariants(const ObservedModel& observed) {
  std::vector<Difference> violations;
  auto add = [&](std::string item, std::string what) {
    violations.push_back(Difference{std::move(item), std::move(what)});
  };
  if (!observed.resolve_status.ok()) {
    add("latest", absl::StrCat("GetRevision(MODEL) failed: ",
                               observed.resolve_status.ToString()));
  } else if (observed.resolved_latest != observed.latest) {
    add("latest",
        absl::StrCat("GetRevision(MODEL) resolves to '",
                     observed.resolved_latest, "' but ListModels says '",
                     observed.latest, "'"));
  }
  if (!observed.latest.empty()) {
    auto latest = observed.revisions.find(observed.latest);
    if (latest == observed.revisions.end()) {
      add("latest", absl::StrCat("latest '", observed.latest,
                                 "' is not a revision of the model"));
    } else if (!latest->second.published) {
      add("latest",
          absl::StrCat("latest '", observed.latest, "' is not published"));
    }
  }
  int64_t newest_publish = 0;
  std::string newest;
  for (const auto& [name, revision] : observed.revisions) {
    std::string item = absl::StrCat("revision ", name);
    if (revision.latest != (name == observed.latest)) {
      add(item,
          absl::StrCat("its latest flag is ", revision.latest,
                       " but the model's latest is '", observed.latest, "'"));
    }
    if (!revision.published) continue;
    if (revision.published_unix_micros > newest_publish) {
      newest_publish = revision.published_unix_micros;
      newest = name;
    }
    for (const auto& [tensor, seen] : revision.tensors) {
      if (seen.created_unix_micros > revision.published_unix_micros) {
        add(absl::StrCat("tensor ", name, "/", tensor),
            absl::StrCat("created at ", seen.created_unix_micros,
                         " us, after its revision was published at ",
                         revision.published_unix_micros, " us"));
      }
    }
  }
  if (newest != observed.latest) {
    add("latest", absl::StrCat("latest is '", observed.latest,
                               "' but the most recently published revision "
                               "is '",
                               newest, "'"));
  }
  return violations;
}

CheckResult CheckModel(const ModelState& base,
                       const std::vector<PendingOp>& pending,
                       const ObservedModel& observed) {
  CheckResult result;
  result.candidates = Candidates(base, pending);
  result.invariant_violations = CheckInvariants(observed);
  ContentMatcher matcher;
  std::vector<std::vector<Difference>> all;
  for (size_t i = 0; i < result.candidates.size(); ++i) {
    std::vector<Difference> differences =
        Compare(result.candidates[i].state, observed, &matcher);
    if (differences.empty()) {
      result.matched = static_cast<int>(i);
      break;
    }
    all.push_back(std::move(differences));
  }
  result.bytes_compared = matcher.bytes_compared();
  if (result.matched >= 0) return result;

  // Items that differ whatever the pending operations did: acknowledged
  // state lost or corrupted.
  std::set<std::string> determinate;
  for (const Difference& difference : all[0]) {
    determinate.insert(difference.item);
  }
  for (size_t i = 1; i < all.size(); ++i) {
    std::set<std::string> items;
    for (const Difference& difference : all[i]) {
      if (determinate.contains(difference.item)) {
        items.insert(difference.item);
      }
    }
    determinate = std::move(items);
  }
  size_t closest = 0;
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].size() < all[closest].size()) closest = i;
  }
  result.differences = all[closest];
  result.determinate_differences = static_cast<int>(determinate.size());
  return result;
}

}  // namespace pstore::reliability
