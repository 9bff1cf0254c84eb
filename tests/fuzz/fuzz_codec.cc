// Fuzzes the codec (codec/encoding.h) on arbitrary bytes: Encode and
// DecodeToF32 through every kernel table this CPU runs (scalar, AVX2,
// AVX-512; codec/internal/encoding_kernels.h).
//
// Input: byte 0 picks the dtype (its numeric value, 0-13: 0 and 13 are not
// dtypes), byte 1 the encoding (0-7: 6 and 7 are not encodings), byte 2
// holds flags (bit 0: cut the source to a size the pair can encode; bit 1:
// collect quantization statistics); the rest is the source bytes.
//
// Checks: every kernel table gives the same status, the same bytes and the
// same statistics (bit for bit, NaNs included) as the scalar reference,
// and Encode (the dispatched path) does too; the same for DecodeToF32 on
// the source bytes read as each encoding. And the codec's documented
// equivalences: F16 and BF16 sources encode to f32 as DecodeToF32 decodes
// them, and quantize as their f32 values do; F64 sources quantize as their
// f32 rounding does; non-NaN f16 and bf16 values survive decode-encode.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/internal/encoding_kernels.h"
#include "tests/fuzz/fuzz_util.h"

namespace pstore {
namespace {

using codec_internal::EncodingKernels;

// A heap buffer of exactly `size` bytes, so that ASan sees any access past
// either end (a std::vector may have spare capacity).
class ExactBuffer {
 public:
  explicit ExactBuffer(size_t size)
      : bytes_(new uint8_t[size == 0 ? 1 : size]), size_(size) {}
  ExactBuffer(const uint8_t* data, size_t size) : ExactBuffer(size) {
    if (size > 0) std::memcpy(bytes_.get(), data, size);
  }
  std::span<uint8_t> span() { return {bytes_.get(), size_}; }
  std::span<const uint8_t> span() const { return {bytes_.get(), size_}; }
  bool operator==(const ExactBuffer& other) const {
    return size_ == other.size_ &&
           (size_ == 0 ||
            std::memcmp(bytes_.get(), other.bytes_.get(), size_) == 0);
  }

 private:
  std::unique_ptr<uint8_t[]> bytes_;
  size_t size_;
};

bool SameBits(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

bool SameStats(const QuantizationStats& a, const QuantizationStats& b) {
  return a.count == b.count && SameBits(a.max_abs_error, b.max_abs_error) &&
         SameBits(a.sum_squared_error, b.sum_squared_error) &&
         SameBits(a.sum_squared_input, b.sum_squared_input);
}

struct Encoded {
  absl::Status status;
  ExactBuffer bytes{0};
  QuantizationStats stats;
};

// Encodes with `kernels`, or through Encode when `kernels` is null.
Encoded EncodeWith(const EncodingKernels* kernels, DType dtype,
                   std::span<const uint8_t> source, Encoding encoding,
                   size_t out_size, bool with_stats) {
  Encoded result;
  result.bytes = ExactBuffer(out_size);
  QuantizationStats* stats = with_stats ? &result.stats : nullptr;
  result.status =
      kernels == nullptr
          ? Encode(dtype, source, encoding, result.bytes.span(), stats)
          : codec_internal::EncodeWithKernels(*kernels, dtype, source, encoding,
                                              result.bytes.span(), stats);
  return result;
}

// Decodes with `kernels`, or through DecodeToF32 when `kernels` is null.
Encoded DecodeWith(const EncodingKernels* kernels, Encoding encoding,
                   std::span<const uint8_t> encoded, size_t elements) {
  Encoded result;
  result.bytes = ExactBuffer(4 * elements);
  std::span<float> out(reinterpret_cast<float*>(result.bytes.span().data()),
                       elements);
  result.status = kernels == nullptr ? DecodeToF32(encoding, encoded, out)
                                     : codec_internal::DecodeToF32WithKernels(
                                           *kernels, encoding, encoded, out);
  return result;
}

bool Same(const Encoded& a, const Encoded& b) {
  return a.status.code() == b.status.code() &&
         (!a.status.ok() ||
          (a.bytes == b.bytes && SameStats(a.stats, b.stats)));
}

bool IsKnownEncoding(Encoding encoding) {
  return static_cast<uint8_t>(encoding) <=
         static_cast<uint8_t>(Encoding::kQ4_0);
}

// Returns the number of elements `bytes` hold as `encoding` (whole blocks
// for the quantized ones).
size_t ElementsOf(Encoding encoding, size_t bytes) {
  switch (encoding) {
    case Encoding::kF32:
      return bytes / 4;
    case Encoding::kF16:
    case Encoding::kBF16:
      return bytes / 2;
    case Encoding::kQ8_0:
      return bytes / kQ8_0BlockBytes * kQuantBlockElements;
    case Encoding::kQ4_0:
      return bytes / kQ4_0BlockBytes * kQuantBlockElements;
    default:
      return 0;
  }
}

size_t EncodedBytesOf(Encoding encoding, size_t elements) {
  return EncodedByteLength(DType::kF32, encoding, elements);
}

void CheckEncode(DType dtype, Encoding encoding,
                 std::span<const uint8_t> source, bool with_stats) {
  const bool valid_pair = IsValidDTypeValue(static_cast<uint32_t>(dtype)) &&
                          IsKnownEncoding(encoding);
  size_t out_size = 0;
  if (valid_pair) {
    out_size =
        EncodedByteLength(dtype, encoding, source.size() / DTypeSize(dtype));
  }
  const std::string context =
      absl::StrCat("dtype ", static_cast<int>(dtype), " encoding ",
                   static_cast<int>(encoding), ", ", source.size(), " bytes");
  const Encoded reference = EncodeWith(&codec_internal::ScalarKernels(), dtype,
                                       source, encoding, out_size, with_stats);
  if (!reference.status.ok()) {
    FUZZ_CHECK_MSG(absl::IsInvalidArgument(reference.status),
                   reference.status.ToString());
  }
  if (reference.status.ok() && IsQuantized(encoding) && with_stats) {
    FUZZ_CHECK(reference.stats.count == source.size() / DTypeSize(dtype));
  }
  for (const EncodingKernels* kernels : codec_internal::AvailableKernels()) {
    const Encoded other =
        EncodeWith(kernels, dtype, source, encoding, out_size, with_stats);
    FUZZ_CHECK_MSG(
        Same(reference, other),
        absl::StrCat(context, ": ", kernels->name, " differs from scalar"));
  }
  FUZZ_CHECK_MSG(Same(reference, EncodeWith(nullptr, dtype, source, encoding,
                                            out_size, with_stats)),
                 absl::StrCat(context, ": Encode differs from scalar"));
  if (!reference.status.ok()) return;

  // A half-precision source encodes to f32 exactly as it decodes.
  if (encoding == Encoding::kF32 &&
      (dtype == DType::kF16 || dtype == DType::kBF16)) {
    const Encoded decoded = DecodeWith(
        nullptr, dtype == DType::kF16 ? Encoding::kF16 : Encoding::kBF16,
        source, source.size() / 2);
    FUZZ_CHECK(decoded.status.ok() && decoded.bytes == reference.bytes);
  }
  // Quantizing a non-f32 source quantizes its f32 values (F64: rounded).
  if (IsQuantized(encoding) && dtype != DType::kF32) {
    const size_t elements = source.size() / DTypeSize(dtype);
    const Encoded f32 =
        EncodeWith(nullptr, dtype, source, Encoding::kF32, 4 * elements, false);
    FUZZ_CHECK(f32.status.ok());
    const Encoded via_f32 = EncodeWith(nullptr, DType::kF32, f32.bytes.span(),
                                       encoding, out_size, with_stats);
    FUZZ_CHECK_MSG(Same(reference, via_f32),
                   absl::StrCat(context, ": differs from quantizing f32"));
  }
}

void CheckDecode(Encoding encoding, std::span<const uint8_t> encoded,
                 bool exact_size) {
  // Without exact_size, a size that does not fit must be refused alike by
  // every path.
  const size_t elements = ElementsOf(encoding, encoded.size());
  if (exact_size) encoded = encoded.first(EncodedBytesOf(encoding, elements));
  const std::string context =
      absl::StrCat("decode ", EncodingName(encoding), ", ", encoded.size(),
                   " bytes to ", elements, " elements");
  const Encoded reference =
      DecodeWith(&codec_internal::ScalarKernels(), encoding, encoded, elements);
  FUZZ_CHECK_MSG(reference.status.ok() ==
                     (encoded.size() == EncodedBytesOf(encoding, elements)),
                 absl::StrCat(context, ": ", reference.status.ToString()));
  for (const EncodingKernels* kernels : codec_internal::AvailableKernels()) {
    FUZZ_CHECK_MSG(
        Same(reference, DecodeWith(kernels, encoding, encoded, elements)),
        absl::StrCat(context, ": ", kernels->name, " differs from scalar"));
  }
  FUZZ_CHECK_MSG(
      Same(reference, DecodeWith(nullptr, encoding, encoded, elements)),
      absl::StrCat(context, ": DecodeToF32 differs from scalar"));
  if (!reference.status.ok()) return;

  // Every f16 or bf16 value but NaN is an f32 value: it encodes back as
  // it was.
  if (encoding == Encoding::kF16 || encoding == Encoding::kBF16) {
    const Encoded back =
        EncodeWith(nullptr, DType::kF32, reference.bytes.span(), encoding,
                   encoded.size(), false);
    FUZZ_CHECK(back.status.ok());
    for (size_t i = 0; i < elements; ++i) {
      const uint16_t before =
          static_cast<uint16_t>(encoded[2 * i] | (encoded[2 * i + 1] << 8));
      const std::span<const uint8_t> out = back.bytes.span();
      const uint16_t after =
          static_cast<uint16_t>(out[2 * i] | (out[2 * i + 1] << 8));
      const bool nan = encoding == Encoding::kF16
                           ? (before & 0x7c00) == 0x7c00 && (before & 0x03ff)
                           : (before & 0x7f80) == 0x7f80 && (before & 0x007f);
      if (!nan) {
        FUZZ_CHECK_MSG(
            before == after,
            absl::StrCat(context, ": element ", i, " ", absl::Hex(before),
                         " came back as ", absl::Hex(after)));
      }
    }
  }
}

}  // namespace
}  // namespace pstore

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pstore;
  if (size < 3) return 0;
  const auto dtype = static_cast<DType>(data[0] % 14);
  const auto encoding = static_cast<Encoding>(data[1] % 8);
  const bool fit = (data[2] & 1) != 0;
  const bool with_stats = (data[2] & 2) != 0;
  size_t source_size = size - 3;
  if (fit && IsValidDTypeValue(static_cast<uint32_t>(dtype))) {
    size_t unit = DTypeSize(dtype);
    if (IsQuantized(encoding)) unit *= kQuantBlockElements;
    source_size -= source_size % unit;
  }
  const ExactBuffer source(data + 3, source_size);
  CheckEncode(dtype, encoding, source.span(), with_stats);
  if (IsKnownEncoding(encoding) && encoding != Encoding::kRaw) {
    CheckDecode(encoding, source.span(), fit);
  }
  return 0;
}
