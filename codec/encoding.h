// Encodings of tensor bytes on read: the stored bytes ("raw"), a float
// conversion ("f32", "f16", "bf16"), or a GGUF-compatible quantization
// ("q8_0", "q4_0"), with the error a quantization introduced.
//
// Every encoding works element-wise or on blocks of 32 elements, so a
// tensor's bytes can be encoded one stored block at a time (stored blocks
// hold a multiple of 256 elements, the last one a multiple of 32 when the
// innermost dimension is) and the encoded blocks concatenated.
//
// Pure functions; thread-safe. Encode uses the fastest code path the CPU
// supports (AVX-512, AVX2/F16C or scalar), chosen once at run time; all
// paths give identical bytes.

#ifndef PSTORE_CODEC_ENCODING_H_
#define PSTORE_CODEC_ENCODING_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/dtype.h"

namespace pstore {

// The numeric values are used as DRAM cache variants: never renumber.
enum class Encoding : uint8_t {
  kRaw = 0,
  kF32 = 1,
  kF16 = 2,
  kBF16 = 3,
  kQ8_0 = 4,
  kQ4_0 = 5,
};

// GGUF block layouts.
inline constexpr int kQuantBlockElements = 32;
inline constexpr int kQ8_0BlockBytes = 34;  // fp16 scale, 32 x int8.
inline constexpr int kQ4_0BlockBytes = 18;  // fp16 scale, 16 bytes of nibbles.

// Parses "raw", "f32", "f16", "bf16", "q8_0", "q4_0" (ASCII case ignored;
// empty means raw). InvalidArgument for anything else.
absl::StatusOr<Encoding> ParseEncoding(absl::string_view name);

// Returns every encoding, raw first, in enum order.
std::span<const Encoding> AllEncodings();

// Returns the lower-case name of `encoding`.
absl::string_view EncodingName(Encoding encoding);

// Returns true if reading `dtype` as `encoding` gives the stored bytes:
// raw, or a conversion to the dtype's own float format.
bool IsIdentityEncoding(DType dtype, Encoding encoding);

// Returns true for q8_0 and q4_0.
bool IsQuantized(Encoding encoding);

// Returns OK if a tensor of `dtype` and `shape` can be read as `encoding`:
// the shape is valid (ElementCount is OK) and its bytes in `encoding` fit
// in 64 bits; then raw always; f32/f16/bf16 from F64, F32, F16, BF16;
// q8_0/q4_0 from those when the innermost dimension is a multiple of 32 (a
// 0-dim tensor cannot be quantized). InvalidArgument naming the dtype, the
// dimension or the size otherwise.
absl::Status CheckEncodable(DType dtype, std::span<const int64_t> shape,
                            Encoding encoding);

// Returns the bytes `elements` elements of `dtype` take as `encoding`.
// REQUIRES: the pair is encodable; for quantized encodings `elements` is a
// multiple of 32; the result fits in 64 bits (CheckEncodable checks that for
// a whole tensor, so any part of one does).
uint64_t EncodedByteLength(DType dtype, Encoding encoding, uint64_t elements);

// What a quantization lost, accumulated over any number of Encode calls
// (merge blocks in any order).
struct QuantizationStats {
  uint64_t count = 0;        // Elements seen.
  double max_abs_error = 0;  // Largest |dequantized - input|.
  double sum_squared_error = 0;
  double sum_squared_input = 0;

  void Merge(const QuantizationStats& other);
  // Returns sqrt(sum_squared_error / count), 0 when empty.
  double RmsError() const;
  // Returns RmsError() / RMS of the input, 0 when the input is all zero.
  double RelativeRmsError() const;
};

// Encodes the elements in `source` (raw bytes of `dtype`, little endian)
// into `out`, which must hold exactly EncodedByteLength(...) bytes. For
// quantized encodings, adds the error of these elements to `stats` if not
// null. Codes: InvalidArgument if the pair is not encodable or the sizes do
// not fit (a partial element, or a quantized input not a multiple of 32
// elements).
//
// Conversions round to nearest even; NaN stays NaN (quiet), infinities and
// signed zeros are kept, and values beyond the target's range become
// infinity. F16 and BF16 sources quantize from their exact f32 values; F64
// sources are first rounded to f32. Quantized blocks are bit-for-bit those
// of ggml's reference quantizers (quantize_row_q8_0_ref, q4_0_ref).
absl::Status Encode(DType dtype, std::span<const uint8_t> source,
                    Encoding encoding, std::span<uint8_t> out,
                    QuantizationStats* stats = nullptr);

// Decodes `encoded` (f32, f16, bf16, q8_0 or q4_0 bytes) into f32 values;
// `out` must hold exactly the number of elements encoded. InvalidArgument
// for raw (whose element type is not known here) or a size mismatch.
absl::Status DecodeToF32(Encoding encoding, std::span<const uint8_t> encoded,
                         std::span<float> out);

}  // namespace pstore

#endif  // PSTORE_CODEC_ENCODING_H_
