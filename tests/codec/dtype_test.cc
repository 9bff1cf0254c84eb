#include "codec/dtype.h"

#include <cstdint>
#include <vector>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;

TEST(DTypeTest, NamesRoundTripInAnyCase) {
  for (DType dtype : AllDTypes()) {
    std::string name(DTypeName(dtype));
    EXPECT_EQ(*ParseDType(name), dtype);
    EXPECT_EQ(*ParseDType(absl::AsciiStrToLower(name)), dtype);
  }
  EXPECT_EQ(*ParseDType("Bf16"), DType::kBF16);
  EXPECT_EQ(*ParseDType("f8_e4m3"), DType::kF8E4M3);
}

TEST(DTypeTest, ElementSizesMatchSafetensors) {
  EXPECT_EQ(DTypeSize(DType::kF64), 8u);
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF8E4M3), 1u);
  EXPECT_EQ(DTypeSize(DType::kF8E5M2), 1u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
  EXPECT_EQ(DTypeSize(DType::kI32), 4u);
  EXPECT_EQ(DTypeSize(DType::kI16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI8), 1u);
  EXPECT_EQ(DTypeSize(DType::kU8), 1u);
  EXPECT_EQ(DTypeSize(DType::kBool), 1u);
  EXPECT_EQ(AllDTypes().size(), 12u);
}

TEST(DTypeTest, RefusesUnknownNames) {
  for (const char* bad : {"", "F128", "float32", "F8", "I4", "F32 "}) {
    EXPECT_THAT(ParseDType(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(DTypeTest, ByteLengthOfShapes) {
  std::vector<int64_t> scalar;
  EXPECT_EQ(*TensorByteLength(DType::kF32, scalar), 4u);
  std::vector<int64_t> empty = {3, 0, 7};
  EXPECT_EQ(*TensorByteLength(DType::kF64, empty), 0u);
  std::vector<int64_t> matrix = {29528, 2};
  EXPECT_EQ(*TensorByteLength(DType::kF16, matrix), 118112u);
}

TEST(DTypeTest, RefusesNegativeAndOverflowingShapes) {
  std::vector<int64_t> negative = {4, -1};
  EXPECT_THAT(TensorByteLength(DType::kF32, negative),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<int64_t> overflow = {int64_t{1} << 32, int64_t{1} << 32};
  EXPECT_THAT(ElementCount(overflow),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<int64_t> bytes_overflow = {int64_t{1} << 62};
  EXPECT_TRUE(ElementCount(bytes_overflow).ok());
  EXPECT_THAT(TensorByteLength(DType::kF32, bytes_overflow),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace pstore
