#include "util/status.h"

#include "absl/strings/cord.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(WouldBlockErrorTest, IsUnavailableAndMarkedAsWouldBlock) {
  absl::Status status = WouldBlockError("catalog: read");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("catalog: read")));
  EXPECT_TRUE(IsWouldBlock(status));
}

TEST(WouldBlockErrorTest, APlainUnavailableIsNotWouldBlock) {
  EXPECT_FALSE(IsWouldBlock(absl::UnavailableError("catalog: read")));
  EXPECT_FALSE(IsWouldBlock(absl::UnavailableError("would wait for I/O")));
  EXPECT_FALSE(IsWouldBlock(absl::NotFoundError("no tensor")));
  EXPECT_FALSE(IsWouldBlock(absl::OkStatus()));
}

TEST(WouldBlockErrorTest, AnotherPayloadDoesNotMarkAStatus) {
  absl::Status status = absl::UnavailableError("busy");
  status.SetPayload("type.example/other", absl::Cord("x"));
  EXPECT_FALSE(IsWouldBlock(status));
}

TEST(AnnotateTest, KeepsTheWouldBlockMarkAndPrependsContext) {
  absl::Status annotated =
      Annotate(WouldBlockError("catalog: read"), "tensor m@v1/t");
  EXPECT_TRUE(IsWouldBlock(annotated));
  EXPECT_THAT(annotated, StatusIs(absl::StatusCode::kUnavailable,
                                  StartsWith("tensor m@v1/t: catalog: read")));
  // Once per layer: a second annotation keeps the mark too.
  absl::Status twice = Annotate(annotated, "get");
  EXPECT_TRUE(IsWouldBlock(twice));
  EXPECT_THAT(twice, StatusIs(absl::StatusCode::kUnavailable,
                              StartsWith("get: tensor m@v1/t: ")));
}

TEST(AnnotateTest, KeepsEveryPayloadAndTheCode) {
  absl::Status status = absl::DataLossError("checksum mismatch");
  status.SetPayload("type.example/a", absl::Cord("first"));
  status.SetPayload("type.example/b", absl::Cord("second"));
  absl::Status annotated = Annotate(status, "block 7");
  EXPECT_THAT(annotated, StatusIs(absl::StatusCode::kDataLoss,
                                  "block 7: checksum mismatch"));
  EXPECT_EQ(annotated.GetPayload("type.example/a"), absl::Cord("first"));
  EXPECT_EQ(annotated.GetPayload("type.example/b"), absl::Cord("second"));
  EXPECT_FALSE(IsWouldBlock(annotated));
}

TEST(AnnotateTest, LeavesOkUnchanged) {
  absl::Status annotated = Annotate(absl::OkStatus(), "context");
  EXPECT_TRUE(annotated.ok());
  EXPECT_EQ(annotated, absl::OkStatus());
  EXPECT_EQ(annotated.message(), "");
}

}  // namespace
}  // namespace pstore
