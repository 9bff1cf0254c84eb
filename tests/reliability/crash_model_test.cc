// Tests of the crash harness's checker: it must accept every state a crash
// may leave and flag lost, corrupt, half-applied and resurrected data.

#include "tests/reliability/crash_model.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pstore::reliability {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

Content MakeContent(uint64_t seed, uint64_t elements = 1000) {
  Content content;
  content.seed = seed;
  content.dtype = "F32";
  content.shape = {static_cast<int64_t>(elements)};
  content.byte_length = elements * 4;
  return content;
}

Op Put(const std::string& revision, const std::string& tensor,
       const Content& content) {
  Op op;
  op.type = OpType::kPutTensor;
  op.revision = revision;
  op.tensor = tensor;
  op.content = content;
  return op;
}

Op RevisionOp(OpType type, const std::string& revision) {
  Op op;
  op.type = type;
  op.revision = revision;
  return op;
}

// What a correct store holding `state` shows.
ObservedModel Observe(const ModelState& state) {
  ObservedModel observed;
  observed.latest = state.latest;
  observed.resolved_latest = state.latest;
  for (const auto& [name, revision] : state.revisions) {
    ObservedRevision& seen = observed.revisions[name];
    seen.published = revision.published;
    seen.latest = name == state.latest;
    seen.metadata = revision.metadata;
    seen.published_unix_micros =
        revision.published ? 1000000 * revision.publish_order : 0;
    for (const auto& [tensor, content] : revision.tensors) {
      ObservedTensor& t = seen.tensors[tensor];
      t.dtype = t.read_dtype = content.dtype;
      t.shape = t.read_shape = content.shape;
      t.byte_length = content.byte_length;
      t.created_unix_micros = 1;
      t.bytes = ContentBytes(content);
    }
  }
  return observed;
}

ModelState TwoPublished() {
  ModelState state;
  Apply(Put("a", "x", MakeContent(1)), &state);
  Apply(RevisionOp(OpType::kPublish, "a"), &state);
  Apply(Put("b", "x", MakeContent(2)), &state);
  Apply(Put("b", "y", MakeContent(3)), &state);
  Apply(RevisionOp(OpType::kPublish, "b"), &state);
  return state;
}

TEST(CrashModelTest, ContentBytesAreDeterministicAndPatchOneRegion) {
  Content content = MakeContent(7, 4096);
  EXPECT_EQ(ContentBytes(content), ContentBytes(content));
  Content patched = content;
  patched.patch_seed = 9;
  patched.patch_offset = 100;
  patched.patch_length = 50;
  std::vector<uint8_t> a = ContentBytes(content);
  std::vector<uint8_t> b = ContentBytes(patched);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 100, b.begin()));
  EXPECT_TRUE(std::equal(a.begin() + 150, a.end(), b.begin() + 150));
  EXPECT_NE(std::vector<uint8_t>(a.begin() + 100, a.begin() + 150),
            std::vector<uint8_t>(b.begin() + 100, b.begin() + 150));
}

TEST(CrashModelTest, DeletingLatestMovesItToTheNewestPublishedRevision) {
  ModelState state = TwoPublished();
  EXPECT_EQ(state.latest, "b");
  Apply(Put("c", "z", MakeContent(4)), &state);  // Open: never latest.
  Apply(RevisionOp(OpType::kDeleteRevision, "b"), &state);
  EXPECT_EQ(state.latest, "a");
  Apply(RevisionOp(OpType::kDeleteRevision, "a"), &state);
  EXPECT_EQ(state.latest, "");
}

TEST(CrashModelTest, RepublishingChangesNothing) {
  ModelState state = TwoPublished();
  ModelState before = state;
  Apply(RevisionOp(OpType::kPublish, "a"), &state);
  EXPECT_EQ(state, before);
}

TEST(CrashModelTest, AcceptsTheExactState) {
  ModelState state = TwoPublished();
  CheckResult result = CheckModel(state, {}, Observe(state));
  EXPECT_TRUE(result.ok());
  EXPECT_THAT(result.differences, IsEmpty());
  EXPECT_GT(result.bytes_compared, 0u);
}

TEST(CrashModelTest, UnacknowledgedPutIsCompleteOrAbsentNeverMixed) {
  ModelState base = TwoPublished();
  Apply(Put("c", "x", MakeContent(5)), &base);
  Op replace = Put("c", "x", MakeContent(6));
  std::vector<PendingOp> pending = {{replace}};

  EXPECT_EQ(CheckModel(base, pending, Observe(base)).matched, 0);
  ModelState applied = base;
  Apply(replace, &applied);
  EXPECT_EQ(CheckModel(base, pending, Observe(applied)).matched, 1);

  // Half old bytes, half new: neither.
  ObservedModel mixed = Observe(base);
  std::vector<uint8_t> fresh = ContentBytes(MakeContent(6));
  std::vector<uint8_t>& bytes = mixed.revisions["c"].tensors["x"].bytes;
  std::copy(fresh.begin() + 2000, fresh.end(), bytes.begin() + 2000);
  CheckResult result = CheckModel(base, pending, mixed);
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.differences, SizeIs(1));
  // The tensor differs from both candidates: the acknowledged old bytes
  // are lost.
  EXPECT_EQ(result.determinate_differences, 1);
}

TEST(CrashModelTest, PutIntoANewRevisionMayLeaveItEmpty) {
  ModelState base = TwoPublished();
  Op create = RevisionOp(OpType::kCreateRevision, "c");
  Op put = Put("c", "x", MakeContent(5));
  std::vector<PendingOp> pending = {{create, false, true}, {put}};
  ModelState empty = base;
  Apply(create, &empty);
  EXPECT_TRUE(CheckModel(base, pending, Observe(empty)).ok());
  EXPECT_TRUE(CheckModel(base, pending, Observe(base)).ok());
  ModelState full = base;
  Apply(put, &full);
  EXPECT_TRUE(CheckModel(base, pending, Observe(full)).ok());
}

TEST(CrashModelTest, FlagsALostAcknowledgedPut) {
  ModelState state = TwoPublished();
  ObservedModel observed = Observe(state);
  observed.revisions["b"].tensors.erase("y");
  CheckResult result = CheckModel(state, {}, observed);
  EXPECT_FALSE(result.ok());
  ASSERT_THAT(result.differences, SizeIs(1));
  EXPECT_EQ(result.differences[0].item, "tensor b/y");
  EXPECT_EQ(result.determinate_differences, 1);
}

TEST(CrashModelTest, FlagsOneFlippedByte) {
  ModelState state = TwoPublished();
  ObservedModel observed = Observe(state);
  observed.revisions["a"].tensors["x"].bytes[1234] ^= 0x10;
  CheckResult result = CheckModel(state, {}, observed);
  EXPECT_FALSE(result.ok());
  ASSERT_THAT(result.differences, SizeIs(1));
  EXPECT_THAT(result.differences[0].what,
              ::testing::HasSubstr("1 of 4000 bytes differ"));
}

TEST(CrashModelTest, UnacknowledgedPublishIsAtomic) {
  ModelState base = TwoPublished();
  Apply(Put("c", "x", MakeContent(5)), &base);
  std::vector<PendingOp> pending = {{RevisionOp(OpType::kPublish, "c")}};
  ModelState published = base;
  Apply(pending[0].op, &published);
  EXPECT_TRUE(CheckModel(base, pending, Observe(published)).ok());
  EXPECT_TRUE(CheckModel(base, pending, Observe(base)).ok());

  // Published, but latest did not move: half a publish.
  ObservedModel half = Observe(published);
  half.latest = half.resolved_latest = "b";
  half.revisions["b"].latest = true;
  half.revisions["c"].latest = false;
  half.revisions["c"].published_unix_micros = 100;  // Before b's.
  CheckResult result = CheckModel(base, pending, half);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.determinate_differences, 0);
}

TEST(CrashModelTest, FlagsAHalfPublishedRevision) {
  ModelState base = TwoPublished();
  Apply(Put("c", "x", MakeContent(5)), &base);
  Apply(Put("c", "y", MakeContent(6)), &base);
  std::vector<PendingOp> pending = {{RevisionOp(OpType::kPublish, "c")}};
  ModelState published = base;
  Apply(pending[0].op, &published);
  ObservedModel observed = Observe(published);
  observed.revisions["c"].tensors.erase("y");
  EXPECT_FALSE(CheckModel(base, pending, observed).ok());
}

TEST(CrashModelTest, RacingPutIsInTheManifestOnlyIfItLandedFirst) {
  ModelState base = TwoPublished();
  Apply(Put("c", "x", MakeContent(5)), &base);
  Op put = Put("c", "late", MakeContent(8));
  Op publish = RevisionOp(OpType::kPublish, "c");
  // Both replies lost, but the publish is known to have applied.
  std::vector<PendingOp> pending = {{put}, {publish, true}};
  std::vector<Candidate> candidates = Candidates(base, pending);
  ASSERT_THAT(candidates, SizeIs(2));
  EXPECT_EQ(candidates[0].applied, 0b10u);
  EXPECT_EQ(candidates[1].applied, 0b11u);
  // The publish is lost: not permitted.
  EXPECT_FALSE(CheckModel(base, pending, Observe(base)).ok());
}

TEST(CrashModelTest, FlagsAResurrectedRevision) {
  ModelState before = TwoPublished();
  ModelState after = before;
  Apply(RevisionOp(OpType::kDeleteRevision, "a"), &after);
  CheckResult result = CheckModel(after, {}, Observe(before));
  EXPECT_FALSE(result.ok());
  ASSERT_THAT(result.differences, SizeIs(1));
  EXPECT_EQ(result.differences[0].item, "revision a");
}

TEST(CrashModelTest, InvariantsCatchATensorCreatedAfterItsPublish) {
  ModelState state = TwoPublished();
  ObservedModel observed = Observe(state);
  observed.revisions["b"].tensors["y"].created_unix_micros = 99000000;
  CheckResult result = CheckModel(state, {}, observed);
  EXPECT_GE(result.matched, 0);
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(result.invariant_violations, SizeIs(1));
}

TEST(CrashModelTest, InvariantsCatchDisagreeingViewsOfLatest) {
  ModelState state = TwoPublished();
  ObservedModel observed = Observe(state);
  observed.resolved_latest = "a";
  std::vector<Difference> violations = CheckInvariants(observed);
  ASSERT_THAT(violations, SizeIs(1));
  EXPECT_EQ(violations[0].item, "latest");
  EXPECT_THAT(CheckInvariants(Observe(state)), ElementsAre());
}

}  // namespace
}  // namespace pstore::reliability
