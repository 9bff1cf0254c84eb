#include "codec/dtype.h"

#include <array>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace pstore {
namespace {

struct DTypeInfo {
  DType dtype;
  absl::string_view name;
  size_t size;
};

constexpr std::array<DTypeInfo, 12> kDTypes = {{
    {DType::kF64, "F64", 8},
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kF8E4M3, "F8_E4M3", 1},
    {DType::kF8E5M2, "F8_E5M2", 1},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
}};

constexpr std::array<DType, 12> kAllDTypes = {
    DType::kF64,    DType::kF32,    DType::kF16, DType::kBF16,
    DType::kF8E4M3, DType::kF8E5M2, DType::kI64, DType::kI32,
    DType::kI16,    DType::kI8,     DType::kU8,  DType::kBool,
};

const DTypeInfo& Info(DType dtype) {
  // The enum values are 1..12 in table order.
  return kDTypes[static_cast<size_t>(dtype) - 1];
}

}  // namespace

std::span<const DType> AllDTypes() { return kAllDTypes; }

absl::string_view DTypeName(DType dtype) { return Info(dtype).name; }

size_t DTypeSize(DType dtype) { return Info(dtype).size; }

bool IsConvertibleFloat(DType dtype) {
  return dtype == DType::kF64 || dtype == DType::kF32 || dtype == DType::kF16 ||
         dtype == DType::kBF16;
}

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (absl::EqualsIgnoreCase(name, info.name)) return info.dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name,
                   "': want one of F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 "
                   "I16 I8 U8 BOOL"));
}

bool IsValidDTypeValue(uint32_t value) {
  return value >= 1 && value <= kDTypes.size();
}

absl::StatusOr<uint64_t> ElementCount(std::span<const int64_t> shape) {
  uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("dimension ", i, " is negative (", shape[i], ")"));
    }
    uint64_t dim = static_cast<uint64_t>(shape[i]);
    if (dim != 0 && count > UINT64_MAX / dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape overflows 64 bits at dimension ", i));
    }
    count *= dim;
  }
  return count;
}

absl::StatusOr<uint64_t> TensorByteLength(DType dtype,
                                          std::span<const int64_t> shape) {
  absl::StatusOr<uint64_t> count = ElementCount(shape);
  if (!count.ok()) return count.status();
  uint64_t size = DTypeSize(dtype);
  if (*count > UINT64_MAX / size) {
    return absl::InvalidArgumentError("tensor byte length overflows 64 bits");
  }
  return *count * size;
}

}  // namespace pstore
