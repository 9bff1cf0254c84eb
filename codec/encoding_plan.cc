#include "codec/encoding_plan.h"

namespace pstore {

Encoding EncodingForPull(DType dtype, std::span<const int64_t> shape,
                         Encoding requested) {
  if (requested == Encoding::kRaw || !IsConvertibleFloat(dtype)) {
    return Encoding::kRaw;
  }
  if (IsQuantized(requested) &&
      (shape.size() < 2 || !CheckEncodable(dtype, shape, requested).ok())) {
    return Encoding::kRaw;
  }
  return requested;
}

uint64_t EncodedTensorBytes(DType dtype, std::span<const int64_t> shape,
                            Encoding encoding) {
  // The shape is encodable, so its element count fits in 64 bits.
  uint64_t elements = *ElementCount(shape);
  if (encoding == Encoding::kRaw) return elements * DTypeSize(dtype);
  return EncodedByteLength(dtype, encoding, elements);
}

}  // namespace pstore
