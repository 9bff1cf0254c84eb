// The portable reference kernels: one element or one block at a time, in
// plain C++ whose every float operation is the one the SIMD kernels
// reproduce (the codec is built with -ffp-contract=off, so no multiply-add
// is fused behind our back).

#include <cmath>
#include <cstdint>
#include <cstring>

#include "codec/internal/encoding_kernels.h"
#include "codec/internal/float_bits.h"

namespace pstore::codec_internal {
namespace {

constexpr int kBlock = kQuantBlockElements;

// Adds the figures of one block with inputs `x` and dequantized values `y`
// to `stats`, as the header of encoding_kernels.h defines them.
void AddErrorsOfBlock(const float* x, const float* y,
                      QuantizationStats* stats) {
  float squared_errors[kBlock];
  float squared_inputs[kBlock];
  uint32_t max_error_bits = 0;
  for (int j = 0; j < kBlock; ++j) {
    const float error = y[j] - x[j];
    const uint32_t magnitude = FloatBits(error) & 0x7fffffffu;
    if (magnitude > max_error_bits) max_error_bits = magnitude;
    squared_errors[j] = error * error;
    squared_inputs[j] = x[j] * x[j];
  }
  AddBlockStats(stats, BitsToFloat(max_error_bits),
                BlockSumTree(squared_errors), BlockSumTree(squared_inputs));
}

void F32ToF16Scalar(const uint8_t* src, uint8_t* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    StoreU16(dst + 2 * i, F32ToF16Bits(LoadF32(src + 4 * i)));
  }
}

void F32ToBf16Scalar(const uint8_t* src, uint8_t* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    StoreU16(dst + 2 * i, F32ToBf16Bits(LoadF32(src + 4 * i)));
  }
}

void F16ToF32Scalar(const uint8_t* src, uint8_t* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    StoreF32(dst + 4 * i, F16BitsToF32(LoadU16(src + 2 * i)));
  }
}

void Bf16ToF32Scalar(const uint8_t* src, uint8_t* dst, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    StoreF32(dst + 4 * i, Bf16BitsToF32(LoadU16(src + 2 * i)));
  }
}

void QuantizeQ8_0Scalar(const uint8_t* src, uint8_t* dst, size_t blocks,
                        QuantizationStats* stats) {
  for (size_t b = 0; b < blocks; ++b) {
    QuantizeQ8_0BlockScalar(src + b * kBlock * 4, dst + b * kQ8_0BlockBytes,
                            stats);
  }
}

void QuantizeQ4_0Scalar(const uint8_t* src, uint8_t* dst, size_t blocks,
                        QuantizationStats* stats) {
  for (size_t b = 0; b < blocks; ++b) {
    QuantizeQ4_0BlockScalar(src + b * kBlock * 4, dst + b * kQ4_0BlockBytes,
                            stats);
  }
}

void DequantizeQ8_0Scalar(const uint8_t* src, uint8_t* dst, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = src + b * kQ8_0BlockBytes;
    const float scale = F16BitsToF32(LoadU16(block));
    for (int j = 0; j < kBlock; ++j) {
      const auto q = static_cast<int8_t>(block[2 + j]);
      StoreF32(dst + 4 * (b * kBlock + j), static_cast<float>(q) * scale);
    }
  }
}

void DequantizeQ4_0Scalar(const uint8_t* src, uint8_t* dst, size_t blocks) {
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = src + b * kQ4_0BlockBytes;
    const float scale = F16BitsToF32(LoadU16(block));
    uint8_t* out = dst + 4 * b * kBlock;
    for (int j = 0; j < kBlock / 2; ++j) {
      const int low = (block[2 + j] & 0x0f) - 8;
      const int high = (block[2 + j] >> 4) - 8;
      StoreF32(out + 4 * j, static_cast<float>(low) * scale);
      StoreF32(out + 4 * (j + kBlock / 2), static_cast<float>(high) * scale);
    }
  }
}

}  // namespace

void QuantizeQ8_0BlockScalar(const uint8_t* src, uint8_t* dst,
                             QuantizationStats* stats) {
  float x[kBlock];
  std::memcpy(x, src, sizeof(x));
  // Fold left to right exactly as MAXSS does: a NaN |x| replaces the running
  // maximum, and the next comparison with a NaN maximum replaces it again.
  float amax = 0.0f;
  for (int j = 0; j < kBlock; ++j) {
    const float magnitude = std::fabs(x[j]);
    amax = amax > magnitude ? amax : magnitude;
  }
  const float d = amax / 127.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  const uint16_t scale = F32ToF16BitsCanonicalNan(d);
  StoreU16(dst, scale);
  int8_t q[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    const int32_t rounded = TruncateToInt32LikeX86(std::round(x[j] * inverse));
    q[j] = static_cast<int8_t>(static_cast<uint8_t>(rounded & 0xff));
  }
  std::memcpy(dst + 2, q, sizeof(q));
  if (stats == nullptr) return;
  const float dequantized_scale = F16BitsToF32(scale);
  float y[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    y[j] = static_cast<float>(q[j]) * dequantized_scale;
  }
  AddErrorsOfBlock(x, y, stats);
}

void QuantizeQ4_0BlockScalar(const uint8_t* src, uint8_t* dst,
                             QuantizationStats* stats) {
  float x[kBlock];
  std::memcpy(x, src, sizeof(x));
  // The signed value of the first element with the largest magnitude; a
  // NaN never compares greater, so it is never chosen.
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < kBlock; ++j) {
    const float magnitude = std::fabs(x[j]);
    if (amax < magnitude) {
      amax = magnitude;
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
  const uint16_t scale = F32ToF16BitsCanonicalNan(d);
  StoreU16(dst, scale);
  uint8_t nibbles[kBlock];
  for (int j = 0; j < kBlock; ++j) {
    const float shifted = x[j] * inverse + 8.5f;
    const auto level = static_cast<int8_t>(
        static_cast<uint8_t>(TruncateToInt32LikeX86(shifted) & 0xff));
    nibbles[j] = static_cast<uint8_t>(level < 15 ? level : 15);
  }
  for (int j = 0; j < kBlock / 2; ++j) {
    dst[2 + j] =
        static_cast<uint8_t>(nibbles[j] | (nibbles[j + kBlock / 2] << 4));
  }
  if (stats == nullptr) return;
  const float dequantized_scale = F16BitsToF32(scale);
  float y[kBlock];
  for (int j = 0; j < kBlock / 2; ++j) {
    y[j] = static_cast<float>((dst[2 + j] & 0x0f) - 8) * dequantized_scale;
    y[j + kBlock / 2] =
        static_cast<float>((dst[2 + j] >> 4) - 8) * dequantized_scale;
  }
  AddErrorsOfBlock(x, y, stats);
}

const EncodingKernels& ScalarKernels() {
  static constexpr EncodingKernels kKernels = {
      .name = "scalar",
      .f32_to_f16 = F32ToF16Scalar,
      .f32_to_bf16 = F32ToBf16Scalar,
      .f16_to_f32 = F16ToF32Scalar,
      .bf16_to_f32 = Bf16ToF32Scalar,
      .quantize_q8_0 = QuantizeQ8_0Scalar,
      .quantize_q4_0 = QuantizeQ4_0Scalar,
      .dequantize_q8_0 = DequantizeQ8_0Scalar,
      .dequantize_q4_0 = DequantizeQ4_0Scalar,
  };
  return kKernels;
}

}  // namespace pstore::codec_internal
