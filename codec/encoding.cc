#include "codec/encoding.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "codec/internal/encoding_kernels.h"
#include "codec/internal/float_bits.h"

namespace pstore {
namespace codec_internal {
namespace {

// Elements converted to f32 at a time on the way to a quantization or a
// conversion between f16 and bf16: small enough to stay in L1.
constexpr size_t kChunkElements = 2048;
static_assert(kChunkElements % kQuantBlockElements == 0);

// Returns the size in bytes of one element of `encoding`'s output.
size_t FloatEncodingSize(Encoding encoding) {
  return encoding == Encoding::kF32 ? 4 : 2;
}

// Converts `count` elements of the float `dtype` at `src` to f32 at `dst`.
void ToF32(const EncodingKernels& kernels, DType dtype, const uint8_t* src,
           uint8_t* dst, size_t count) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, 4 * count);
      return;
    case DType::kF16:
      kernels.f16_to_f32(src, dst, count);
      return;
    case DType::kBF16:
      kernels.bf16_to_f32(src, dst, count);
      return;
    case DType::kF64:
      for (size_t i = 0; i < count; ++i) {
        // IEEE conversion: ties to even, past the range to infinity.
        StoreF32(dst + 4 * i, static_cast<float>(LoadF64(src + 8 * i)));
      }
      return;
    default:
      return;  // Refused by the caller.
  }
}

// Converts F64 elements to f16 or bf16 with a single rounding each.
void F64ToHalf(Encoding encoding, const uint8_t* src, uint8_t* dst,
               size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const double value = LoadF64(src + 8 * i);
    StoreU16(dst + 2 * i, encoding == Encoding::kF16 ? F64ToF16Bits(value)
                                                     : F64ToBf16Bits(value));
  }
}

// Converts `count` elements of the float `dtype` to the float `encoding`.
void EncodeFloat(const EncodingKernels& kernels, DType dtype,
                 const uint8_t* src, Encoding encoding, uint8_t* dst,
                 size_t count) {
  const bool same_type = (dtype == DType::kF32 && encoding == Encoding::kF32) ||
                         (dtype == DType::kF16 && encoding == Encoding::kF16) ||
                         (dtype == DType::kBF16 && encoding == Encoding::kBF16);
  if (same_type) {
    std::memcpy(dst, src, count * DTypeSize(dtype));
    return;
  }
  if (encoding == Encoding::kF32) {
    ToF32(kernels, dtype, src, dst, count);
    return;
  }
  if (dtype == DType::kF64) {
    F64ToHalf(encoding, src, dst, count);
    return;
  }
  auto from_f32 =
      encoding == Encoding::kF16 ? kernels.f32_to_f16 : kernels.f32_to_bf16;
  if (dtype == DType::kF32) {
    from_f32(src, dst, count);
    return;
  }
  // f16 <-> bf16 through f32, which holds both exactly: one rounding.
  alignas(64) float chunk[kChunkElements];
  auto* chunk_bytes = reinterpret_cast<uint8_t*>(chunk);
  const size_t element_size = DTypeSize(dtype);
  for (size_t done = 0; done < count; done += kChunkElements) {
    const size_t n = std::min(kChunkElements, count - done);
    ToF32(kernels, dtype, src + done * element_size, chunk_bytes, n);
    from_f32(chunk_bytes, dst + done * 2, n);
  }
}

// Quantizes `count` (a multiple of 32) elements of the float `dtype`,
// widening non-f32 sources to f32 one L1-sized chunk at a time.
void Quantize(const EncodingKernels& kernels, DType dtype, const uint8_t* src,
              Encoding encoding, uint8_t* dst, size_t count,
              QuantizationStats* stats) {
  auto quantize = encoding == Encoding::kQ8_0 ? kernels.quantize_q8_0
                                              : kernels.quantize_q4_0;
  const size_t block_bytes =
      encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
  if (dtype == DType::kF32) {
    quantize(src, dst, count / kQuantBlockElements, stats);
    return;
  }
  alignas(64) float chunk[kChunkElements];
  auto* chunk_bytes = reinterpret_cast<uint8_t*>(chunk);
  const size_t element_size = DTypeSize(dtype);
  for (size_t done = 0; done < count; done += kChunkElements) {
    const size_t n = std::min(kChunkElements, count - done);
    ToF32(kernels, dtype, src + done * element_size, chunk_bytes, n);
    quantize(chunk_bytes, dst + done / kQuantBlockElements * block_bytes,
             n / kQuantBlockElements, stats);
  }
}

bool IsKnownEncoding(Encoding encoding) {
  return static_cast<uint8_t>(encoding) <=
         static_cast<uint8_t>(Encoding::kQ4_0);
}

// Returns OK if elements of `dtype` can be encoded as `encoding` at all.
absl::Status CheckDTypeEncodable(DType dtype, Encoding encoding) {
  if (!IsKnownEncoding(encoding)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown encoding value ", static_cast<int>(encoding)));
  }
  if (!IsValidDTypeValue(static_cast<uint32_t>(dtype))) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown dtype value ", static_cast<int>(dtype)));
  }
  if (encoding == Encoding::kRaw || IsConvertibleFloat(dtype)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "dtype ", DTypeName(dtype), " cannot be read as ", EncodingName(encoding),
      ": only F64, F32, F16 and BF16 tensors convert"));
}

}  // namespace

absl::Status EncodeWithKernels(const EncodingKernels& kernels, DType dtype,
                               std::span<const uint8_t> source,
                               Encoding encoding, std::span<uint8_t> out,
                               QuantizationStats* stats) {
  if (absl::Status status = CheckDTypeEncodable(dtype, encoding);
      !status.ok()) {
    return status;
  }
  const size_t element_size = DTypeSize(dtype);
  if (source.size() % element_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source.size(), " bytes are not a whole number of ",
                     DTypeName(dtype), " elements"));
  }
  const uint64_t count = source.size() / element_size;
  if (IsQuantized(encoding) && count % kQuantBlockElements != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        count, " elements cannot be read as ", EncodingName(encoding),
        ": not a multiple of ", kQuantBlockElements));
  }
  const uint64_t expected = EncodedByteLength(dtype, encoding, count);
  if (out.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output of ", out.size(), " bytes for ", count, " ", DTypeName(dtype),
        " elements as ", EncodingName(encoding), ": want ", expected));
  }
  if (count == 0) return absl::OkStatus();
  switch (encoding) {
    case Encoding::kRaw:
      std::memcpy(out.data(), source.data(), source.size());
      break;
    case Encoding::kF32:
    case Encoding::kF16:
    case Encoding::kBF16:
      EncodeFloat(kernels, dtype, source.data(), encoding, out.data(), count);
      break;
    case Encoding::kQ8_0:
    case Encoding::kQ4_0: {
      QuantizationStats block_stats;
      Quantize(kernels, dtype, source.data(), encoding, out.data(), count,
               stats != nullptr ? &block_stats : nullptr);
      if (stats != nullptr) stats->Merge(block_stats);
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeToF32WithKernels(const EncodingKernels& kernels,
                                    Encoding encoding,
                                    std::span<const uint8_t> encoded,
                                    std::span<float> out) {
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  auto size_error = [&](uint64_t want) {
    return absl::InvalidArgumentError(absl::StrCat(
        encoded.size(), " bytes of ", EncodingName(encoding),
        " do not decode to ", out.size(), " elements: want ", want, " bytes"));
  };
  switch (encoding) {
    case Encoding::kF32:
      if (encoded.size() != 4 * out.size()) return size_error(4 * out.size());
      if (!out.empty()) std::memcpy(dst, encoded.data(), encoded.size());
      return absl::OkStatus();
    case Encoding::kF16:
    case Encoding::kBF16:
      if (encoded.size() != 2 * out.size()) return size_error(2 * out.size());
      (encoding == Encoding::kF16 ? kernels.f16_to_f32 : kernels.bf16_to_f32)(
          encoded.data(), dst, out.size());
      return absl::OkStatus();
    case Encoding::kQ8_0:
    case Encoding::kQ4_0: {
      const size_t block_bytes =
          encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
      const size_t blocks = out.size() / kQuantBlockElements;
      if (out.size() % kQuantBlockElements != 0 ||
          encoded.size() != blocks * block_bytes) {
        return size_error(out.size() / kQuantBlockElements * block_bytes);
      }
      (encoding == Encoding::kQ8_0
           ? kernels.dequantize_q8_0
           : kernels.dequantize_q4_0)(encoded.data(), dst, blocks);
      return absl::OkStatus();
    }
    case Encoding::kRaw:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot decode ", EncodingName(encoding), " bytes to f32"));
}

const EncodingKernels& DispatchedKernels() {
  static const EncodingKernels* const kKernels = [] {
    if (const EncodingKernels* kernels = Avx512Kernels()) return kernels;
    if (const EncodingKernels* kernels = Avx2Kernels()) return kernels;
    return &ScalarKernels();
  }();
  return *kKernels;
}

std::vector<const EncodingKernels*> AvailableKernels() {
  std::vector<const EncodingKernels*> kernels = {&ScalarKernels()};
  if (const EncodingKernels* avx2 = Avx2Kernels()) kernels.push_back(avx2);
  if (const EncodingKernels* avx512 = Avx512Kernels()) {
    kernels.push_back(avx512);
  }
  return kernels;
}

}  // namespace codec_internal

namespace {

struct EncodingInfo {
  Encoding encoding;
  absl::string_view name;
};

constexpr EncodingInfo kEncodings[] = {
    {Encoding::kRaw, "raw"},   {Encoding::kF32, "f32"},
    {Encoding::kF16, "f16"},   {Encoding::kBF16, "bf16"},
    {Encoding::kQ8_0, "q8_0"}, {Encoding::kQ4_0, "q4_0"},
};

constexpr std::array<Encoding, 6> kAllEncodings = {
    Encoding::kRaw,  Encoding::kF32,  Encoding::kF16,
    Encoding::kBF16, Encoding::kQ8_0, Encoding::kQ4_0,
};

}  // namespace

std::span<const Encoding> AllEncodings() { return kAllEncodings; }

absl::StatusOr<Encoding> ParseEncoding(absl::string_view name) {
  if (name.empty()) return Encoding::kRaw;
  for (const EncodingInfo& info : kEncodings) {
    if (absl::EqualsIgnoreCase(name, info.name)) return info.encoding;
  }
  std::string names;
  for (const EncodingInfo& info : kEncodings) {
    absl::StrAppend(&names, " ", info.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown encoding '", name, "': want one of", names));
}

absl::string_view EncodingName(Encoding encoding) {
  for (const EncodingInfo& info : kEncodings) {
    if (info.encoding == encoding) return info.name;
  }
  return "unknown";
}

bool IsIdentityEncoding(DType dtype, Encoding encoding) {
  return encoding == Encoding::kRaw ||
         (encoding == Encoding::kF32 && dtype == DType::kF32) ||
         (encoding == Encoding::kF16 && dtype == DType::kF16) ||
         (encoding == Encoding::kBF16 && dtype == DType::kBF16);
}

bool IsQuantized(Encoding encoding) {
  return encoding == Encoding::kQ8_0 || encoding == Encoding::kQ4_0;
}

absl::Status CheckEncodable(DType dtype, std::span<const int64_t> shape,
                            Encoding encoding) {
  if (absl::Status status =
          codec_internal::CheckDTypeEncodable(dtype, encoding);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<uint64_t> elements = ElementCount(shape);
  if (!elements.ok()) return elements.status();
  // The exact size, in 128 bits (quantized: whole blocks; the innermost
  // dimension is checked below).
  const unsigned __int128 bytes =
      encoding == Encoding::kRaw
          ? static_cast<unsigned __int128>(*elements) * DTypeSize(dtype)
      : IsQuantized(encoding)
          ? static_cast<unsigned __int128>(*elements / kQuantBlockElements) *
                (encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes
                                             : kQ4_0BlockBytes)
          : static_cast<unsigned __int128>(*elements) *
                codec_internal::FloatEncodingSize(encoding);
  if (bytes > std::numeric_limits<uint64_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a tensor of ", *elements, " elements of ", DTypeName(dtype),
        " is larger than 2^64 bytes as ", EncodingName(encoding)));
  }
  if (!IsQuantized(encoding)) return absl::OkStatus();
  if (shape.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a 0-dim tensor cannot be read as ", EncodingName(encoding)));
  }
  const int64_t innermost = shape.back();
  if (innermost < 0 || innermost % kQuantBlockElements != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "innermost dimension (dimension ", shape.size() - 1, ") is ", innermost,
        ", not a multiple of ", kQuantBlockElements, ": cannot read as ",
        EncodingName(encoding)));
  }
  return absl::OkStatus();
}

uint64_t EncodedByteLength(DType dtype, Encoding encoding, uint64_t elements) {
  switch (encoding) {
    case Encoding::kRaw:
      return elements * DTypeSize(dtype);
    case Encoding::kF32:
    case Encoding::kF16:
    case Encoding::kBF16:
      return elements * codec_internal::FloatEncodingSize(encoding);
    case Encoding::kQ8_0:
      return elements / kQuantBlockElements * kQ8_0BlockBytes;
    case Encoding::kQ4_0:
      return elements / kQuantBlockElements * kQ4_0BlockBytes;
  }
  return 0;
}

void QuantizationStats::Merge(const QuantizationStats& other) {
  count += other.count;
  max_abs_error =
      codec_internal::MaxErrorNanWins(max_abs_error, other.max_abs_error);
  sum_squared_error += other.sum_squared_error;
  sum_squared_input += other.sum_squared_input;
}

double QuantizationStats::RmsError() const {
  if (count == 0) return 0;
  return std::sqrt(sum_squared_error / static_cast<double>(count));
}

double QuantizationStats::RelativeRmsError() const {
  if (count == 0 || sum_squared_input == 0) return 0;
  // RmsError() / sqrt(sum_squared_input / count), with the counts cancelled.
  return std::sqrt(sum_squared_error / sum_squared_input);
}

absl::Status Encode(DType dtype, std::span<const uint8_t> source,
                    Encoding encoding, std::span<uint8_t> out,
                    QuantizationStats* stats) {
  return codec_internal::EncodeWithKernels(codec_internal::DispatchedKernels(),
                                           dtype, source, encoding, out, stats);
}

absl::Status DecodeToF32(Encoding encoding, std::span<const uint8_t> encoded,
                         std::span<float> out) {
  return codec_internal::DecodeToF32WithKernels(
      codec_internal::DispatchedKernels(), encoding, encoded, out);
}

}  // namespace pstore
