// The inner loops of codec/encoding.h, in one table per instruction set:
// a scalar reference, AVX2 + F16C and AVX-512F. All tables give identical
// bytes and identical QuantizationStats for identical input; Encode uses
// DispatchedKernels(), and tests and benchmarks call EncodeWithKernels with
// a table of their choice to compare the paths.
//
// Kernels take raw little-endian bytes at any alignment and never fail:
// the callers in encoding.cc check every size first.
//
// Quantization (ggml's quantize_row_q8_0_ref and quantize_row_q4_0_ref, as
// compiled for x86-64; see quantization.md beside this file):
//   q8_0: amax = max |x| folded left to right as `amax = amax > a ? amax : a`
//         (x86 MAXSS: a NaN is carried only if it is the last element);
//         d = amax / 127; id = d != 0 ? 1 / d : 0 (NaN counts as non-zero);
//         scale = f16(d), NaN as 0x7e00; q = low byte of
//         CVTTSS2SI(roundf(x * id)) (NaN and infinities give 0).
//   q4_0: the first element with the largest |x| (NaNs never win), `max`,
//         or +0 when every |x| is 0; d = max / -8; id as above;
//         scale = f16(d); v = (int8_t) low byte of CVTTSS2SI(x * id + 8.5f)
//         (no fused multiply-add); nibble = min(15, v); byte j of the 16
//         holds element j in its low and element j + 16 in its high nibble.
//
// Error statistics of a block use its dequantized values y = q * f16(d)
// (exactly what DecodeToF32 returns) and, per block, in f32:
//   e_j = y_j - x_j; the block's largest error has the bits of the largest
//   (bits(e_j) & 0x7fffffff) as an unsigned integer, so a NaN error wins
//   over everything and the result does not depend on order; the sums of
//   e_j^2 and x_j^2 add the 32 products in one fixed tree (BlockSumTree).
// Block results are then added to the running QuantizationStats in block
// order, in double.
//
// Pure functions; thread-safe.

#ifndef PSTORE_CODEC_INTERNAL_ENCODING_KERNELS_H_
#define PSTORE_CODEC_INTERNAL_ENCODING_KERNELS_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "codec/dtype.h"
#include "codec/encoding.h"

namespace pstore::codec_internal {

// One instruction set's inner loops. `src` and `dst` point at little-endian
// bytes of any alignment; `count` is in elements, `blocks` in 32-element
// blocks; a null `stats` skips the error figures.
struct EncodingKernels {
  // "scalar", "avx2" or "avx512".
  const char* name;

  void (*f32_to_f16)(const uint8_t* src, uint8_t* dst, size_t count);
  void (*f32_to_bf16)(const uint8_t* src, uint8_t* dst, size_t count);
  void (*f16_to_f32)(const uint8_t* src, uint8_t* dst, size_t count);
  void (*bf16_to_f32)(const uint8_t* src, uint8_t* dst, size_t count);

  // Quantizes `blocks` blocks of 32 f32 values into 34-byte (q8_0) or
  // 18-byte (q4_0) blocks and adds their errors to `stats`.
  void (*quantize_q8_0)(const uint8_t* src, uint8_t* dst, size_t blocks,
                        QuantizationStats* stats);
  void (*quantize_q4_0)(const uint8_t* src, uint8_t* dst, size_t blocks,
                        QuantizationStats* stats);

  // Expands `blocks` quantized blocks into 32 f32 values each.
  void (*dequantize_q8_0)(const uint8_t* src, uint8_t* dst, size_t blocks);
  void (*dequantize_q4_0)(const uint8_t* src, uint8_t* dst, size_t blocks);
};

// Returns the portable reference kernels.
const EncodingKernels& ScalarKernels();

// Return the AVX2 + F16C and AVX-512F kernels, or null when this build or
// this CPU (and OS) lacks the instructions.
const EncodingKernels* Avx2Kernels();
const EncodingKernels* Avx512Kernels();

// Returns the fastest kernels this CPU runs, chosen on first use.
const EncodingKernels& DispatchedKernels();

// Returns every kernel table this CPU runs, scalar first.
std::vector<const EncodingKernels*> AvailableKernels();

// As Encode and DecodeToF32 in codec/encoding.h, with the given kernels.
absl::Status EncodeWithKernels(const EncodingKernels& kernels, DType dtype,
                               std::span<const uint8_t> source,
                               Encoding encoding, std::span<uint8_t> out,
                               QuantizationStats* stats);
absl::Status DecodeToF32WithKernels(const EncodingKernels& kernels,
                                    Encoding encoding,
                                    std::span<const uint8_t> encoded,
                                    std::span<float> out);

// Quantize one block (32 f32 values at `src`, any alignment) the reference
// way. The SIMD kernels hand blocks that contain a NaN to these.
void QuantizeQ8_0BlockScalar(const uint8_t* src, uint8_t* dst,
                             QuantizationStats* stats);
void QuantizeQ4_0BlockScalar(const uint8_t* src, uint8_t* dst,
                             QuantizationStats* stats);

// Returns the sum of the 32 `products` in the canonical order:
//   a_k = (p[k] + p[k+16]) + (p[k+8] + p[k+24])   for k = 0..7,
//   sum = ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)),
// which is what two 16-lane or four 8-lane vector adds followed by a
// halving horizontal reduction compute.
inline float BlockSumTree(const float* products) {
  float a[8];
  for (int k = 0; k < 8; ++k) {
    a[k] =
        (products[k] + products[k + 16]) + (products[k + 8] + products[k + 24]);
  }
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// Returns the larger of two error magnitudes such that a NaN wins.
inline double MaxErrorNanWins(double a, double b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  return a > b ? a : b;
}

// Adds one block's figures (see the header comment) to `stats`.
inline void AddBlockStats(QuantizationStats* stats, float max_abs_error,
                          float sum_squared_error, float sum_squared_input) {
  stats->count += kQuantBlockElements;
  stats->max_abs_error = MaxErrorNanWins(stats->max_abs_error, max_abs_error);
  stats->sum_squared_error += sum_squared_error;
  stats->sum_squared_input += sum_squared_input;
}

}  // namespace pstore::codec_internal

#endif  // PSTORE_CODEC_INTERNAL_ENCODING_KERNELS_H_
