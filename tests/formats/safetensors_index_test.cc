#include "formats/safetensors_index.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;
using ::testing::HasSubstr;

TEST(SafetensorsIndexTest, ReadsTheWeightMapAndTotalSize) {
  ASSERT_OK_AND_ASSIGN(
      SafetensorsIndex index,
      ParseSafetensorsIndex(R"({"metadata": {"total_size": 12, "x": [1, {}]},
        "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                       "b.weight": "model-00002-of-00002.safetensors"}})"));
  EXPECT_EQ(index.total_size, 12u);
  EXPECT_THAT(index.weight_map,
              ::testing::ElementsAre(
                  std::pair<const std::string, std::string>(
                      "a.weight", "model-00001-of-00002.safetensors"),
                  std::pair<const std::string, std::string>(
                      "b.weight", "model-00002-of-00002.safetensors")));
  EXPECT_TRUE(IsSafetensorsIndexName("sub/model.safetensors.index.json"));
  EXPECT_FALSE(IsSafetensorsIndexName("model.safetensors"));
}

TEST(SafetensorsIndexTest, RefusesWhatALoaderWouldGetWrong) {
  EXPECT_THAT(ParseSafetensorsIndex(R"({"weight_map": {"a": "x", "a": "y"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("names tensor \"a\" twice")));
  EXPECT_THAT(ParseSafetensorsIndex(R"({"weight_map": {"a": 3}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("maps \"a\" to a number")));
  EXPECT_THAT(ParseSafetensorsIndex(R"({"metadata": {}})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no \"weight_map\"")));
  EXPECT_THAT(ParseSafetensorsIndex(R"({"weight_map": [})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not valid JSON")));
  EXPECT_THAT(ParseSafetensorsIndex(std::string("{\"weight_map\": {}}\0", 19)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::string deep(100, '[');
  EXPECT_THAT(ParseSafetensorsIndex(R"({"a": )" + deep),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SafetensorsIndexTest, SetsTheTotalSizeKeepingTheRest) {
  ASSERT_OK_AND_ASSIGN(std::string rewritten,
                       SetSafetensorsIndexTotalSize(
                           R"({"metadata": {"total_size": 12, "format": "pt"},
              "weight_map": {"a": "x.safetensors"}})",
                           96));
  ASSERT_OK_AND_ASSIGN(SafetensorsIndex index,
                       ParseSafetensorsIndex(rewritten));
  EXPECT_EQ(index.total_size, 96u);
  EXPECT_EQ(index.weight_map.at("a"), "x.safetensors");
  EXPECT_THAT(rewritten, HasSubstr("\"format\": \"pt\""));
}

}  // namespace
}  // namespace pstore
