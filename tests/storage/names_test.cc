#include "storage/names.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;

TEST(NamesTest, ParsesTensorNamesWithAndWithoutRevision) {
  ASSERT_OK_AND_ASSIGN(TensorName full,
                       ParseTensorName("llama-3.1_8B@v2/model.layers.0/attn"));
  EXPECT_EQ(full.revision.model, "llama-3.1_8B");
  EXPECT_EQ(full.revision.revision, "v2");
  EXPECT_EQ(full.tensor, "model.layers.0/attn");
  EXPECT_EQ(full.ToString(), "llama-3.1_8B@v2/model.layers.0/attn");

  ASSERT_OK_AND_ASSIGN(TensorName latest, ParseTensorName("m/embed"));
  EXPECT_EQ(latest.revision.model, "m");
  EXPECT_TRUE(latest.revision.revision.empty());
  EXPECT_EQ(latest.ToString(), "m/embed");
}

TEST(NamesTest, ParsesRevisionNames) {
  ASSERT_OK_AND_ASSIGN(RevisionName name, ParseRevisionName("m@r1"));
  EXPECT_EQ(name.model, "m");
  EXPECT_EQ(name.revision, "r1");
  ASSERT_OK_AND_ASSIGN(RevisionName model_only, ParseRevisionName("m"));
  EXPECT_TRUE(model_only.revision.empty());
}

TEST(NamesTest, AcceptsPrintableUtf8TensorNames) {
  EXPECT_OK(ValidateTensorName("décodeur.couche_0"));
  EXPECT_OK(ValidateTensorName("层/权重"));
  EXPECT_OK(ValidateTensorName("a b"));
  EXPECT_OK(ValidateTensorName(std::string(kMaxTensorNameBytes, 'x')));
}

TEST(NamesTest, RefusesBadNames) {
  const char* bad_tensors[] = {
      "m@r/",
      "m@r/a//b",
      "m@r/../x",
      "m@r/a/..",
      "m@r/./a",
      "m@r/a/",
      "m@r//a",
      "@r/a",
      "m@/a",
      "m@r@s/a",
      "m r@x/a",
      "m@r/a\tb",
      "m@r/a\x7f",
      "m@r/\xc3",
      "m@r/\xff\xfe",
      "m@r/\xc0\xaf",
      "m@r/\xed\xa0\x80",
      "noslash",
      "../m/a",
      "m@../a",
      "m@r/\xc2\x85",
  };
  for (const char* text : bad_tensors) {
    EXPECT_THAT(ParseTensorName(text),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << text;
  }
  EXPECT_THAT(ParseTensorName(std::string("m@r/a\0b", 7)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateTensorName(std::string(kMaxTensorNameBytes + 1, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateModelName(std::string(kMaxModelNameBytes + 1, 'm')),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateModelName(".."),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateRevisionName(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace pstore
