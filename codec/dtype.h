// Element types of stored tensors: the safetensors set, with their names,
// element sizes and name parsing. Pure functions; thread-safe.

#ifndef PSTORE_CODEC_DTYPE_H_
#define PSTORE_CODEC_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore {

// The numeric values are stored in the catalog: never renumber.
enum class DType : uint8_t {
  kF64 = 1,
  kF32 = 2,
  kF16 = 3,
  kBF16 = 4,
  kF8E4M3 = 5,
  kF8E5M2 = 6,
  kI64 = 7,
  kI32 = 8,
  kI16 = 9,
  kI8 = 10,
  kU8 = 11,
  kBool = 12,
};

// Returns every DType, in the order above.
std::span<const DType> AllDTypes();

// Returns the safetensors name of `dtype` ("F32", "BF16", "F8_E4M3", ...).
absl::string_view DTypeName(DType dtype);

// Returns the size of one element of `dtype` in bytes (1, 2, 4 or 8).
size_t DTypeSize(DType dtype);

// Returns true for F64, F32, F16 and BF16: the types that convert to the
// float encodings and quantize.
bool IsConvertibleFloat(DType dtype);

// Parses a safetensors dtype name, ignoring ASCII case ("f32", "Bf16",
// "f8_e4m3"). Returns InvalidArgument naming the text for anything else.
absl::StatusOr<DType> ParseDType(absl::string_view name);

// Returns true if `value` is the numeric value of a DType.
bool IsValidDTypeValue(uint32_t value);

// Returns the number of elements of a tensor of `shape` (1 for a 0-dim
// tensor). Returns InvalidArgument if a dimension is negative or the
// product, or the product times `element_size`, overflows 64 bits.
absl::StatusOr<uint64_t> ElementCount(std::span<const int64_t> shape);

// Returns the byte length of a tensor of `dtype` and `shape`, with the same
// errors as ElementCount.
absl::StatusOr<uint64_t> TensorByteLength(DType dtype,
                                          std::span<const int64_t> shape);

}  // namespace pstore

#endif  // PSTORE_CODEC_DTYPE_H_
