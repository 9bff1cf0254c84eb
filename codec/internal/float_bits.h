// Scalar conversions between the bit patterns of IEEE binary32 (f32),
// binary16 (f16), bfloat16 (bf16) and binary64, shared by the scalar
// kernels and by the scalar tails and fallbacks of the SIMD kernels, so that
// every code path rounds the same way.
//
// The f16 conversions mirror the x86 F16C instructions bit for bit
// (VCVTPS2PH with round-to-nearest-even, VCVTPH2PS): NaNs are quieted and
// keep the top bits of their payload. The bf16 conversion is the usual
// "add 0x7fff plus the lsb" rounding with quiet NaNs (that of ggml,
// PyTorch and TensorFlow). Header-only and free of any target-specific
// code: the SIMD translation units inline it into their kernels.
//
// Pure functions; thread-safe.

#ifndef PSTORE_CODEC_INTERNAL_FLOAT_BITS_H_
#define PSTORE_CODEC_INTERNAL_FLOAT_BITS_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace pstore::codec_internal {

static_assert(std::numeric_limits<float>::is_iec559 &&
                  std::numeric_limits<double>::is_iec559,
              "the encodings assume IEEE 754 binary32 and binary64");

inline uint32_t FloatBits(float value) {
  return std::bit_cast<uint32_t>(value);
}
inline float BitsToFloat(uint32_t bits) { return std::bit_cast<float>(bits); }

// Reads the little-endian value at `bytes` (any alignment).
inline float LoadF32(const uint8_t* bytes) {
  float value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}
inline uint16_t LoadU16(const uint8_t* bytes) {
  uint16_t value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}
inline double LoadF64(const uint8_t* bytes) {
  double value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}
// Writes `value` little endian at `bytes` (any alignment).
inline void StoreU16(uint8_t* bytes, uint16_t value) {
  std::memcpy(bytes, &value, sizeof(value));
}
inline void StoreF32(uint8_t* bytes, float value) {
  std::memcpy(bytes, &value, sizeof(value));
}

// Returns the f32 value of the f16 `half`: exact for every finite value and
// infinity; a NaN becomes a quiet f32 NaN with the same sign and payload in
// its top bits (what VCVTPH2PS does).
inline float F16BitsToF32(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1f) {
    if (mantissa == 0) return BitsToFloat(sign | 0x7f800000u);
    return BitsToFloat(sign | 0x7fc00000u | (mantissa << 13));
  }
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in f32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return BitsToFloat(sign | FloatBits(magnitude));
  }
  // Rebias the exponent from 15 to 127.
  return BitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Returns the f16 nearest to `value`, ties to even; magnitudes from 65520
// up become infinity; a NaN becomes a quiet NaN keeping its sign and the top
// 9 bits of its payload (what VCVTPS2PH does).
inline uint16_t F32ToF16Bits(float value) {
  const uint32_t bits = FloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  }
  // 65520 is halfway between the largest f16 (65504) and 65536: it and
  // everything above round to infinity.
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (magnitude >= 0x38800000u) {
    // Normal f16 (from 2^-14): rebias the exponent from 127 to 15, then
    // round the 23-bit mantissa to 10 bits; a carry out of the mantissa
    // correctly bumps the exponent.
    const uint32_t rebiased = magnitude - 0x38000000u;
    const uint32_t rounded = rebiased + 0xfffu + ((rebiased >> 13) & 1u);
    return static_cast<uint16_t>(sign | (rounded >> 13));
  }
  // Subnormal f16 or zero: the result is value / 2^-24 rounded to an
  // integer in 0..1024 (1024 being the smallest normal, 0x0400).
  const uint32_t exponent = magnitude >> 23;
  // value = significand * 2^(exponent - 150); value / 2^-24 =
  // significand >> (126 - exponent).
  const uint32_t shift = 126 - exponent;  // >= 14 here.
  if (exponent == 0 || shift >= 25) {
    // Below 2^-25: less than half the smallest subnormal.
    return sign;
  }
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  uint32_t quotient = significand >> shift;
  const uint32_t remainder = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (remainder > half || (remainder == half && (quotient & 1u) != 0)) {
    ++quotient;
  }
  return static_cast<uint16_t>(sign | quotient);
}

// As F32ToF16Bits, except that every NaN becomes sign | 0x7e00 (no
// payload): the conversion ggml applies to a block scale.
inline uint16_t F32ToF16BitsCanonicalNan(float value) {
  const uint32_t bits = FloatBits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>(((bits >> 16) & 0x8000u) | 0x7e00u);
  }
  return F32ToF16Bits(value);
}

// Returns the f32 value of the bf16 `bf16` (always exact; NaNs unchanged).
inline float Bf16BitsToF32(uint16_t bf16) {
  return BitsToFloat(static_cast<uint32_t>(bf16) << 16);
}

// Returns the bf16 nearest to `value`, ties to even (values past the bf16
// range become infinity); a NaN keeps its sign and top payload bits and is
// made quiet.
inline uint16_t F32ToBf16Bits(float value) {
  const uint32_t bits = FloatBits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((bits >> 16) | 0x40u);
  }
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// Returns `value` rounded to f32 with round-to-odd: truncated toward zero,
// then the lowest mantissa bit set if anything was lost. Rounding that
// result to a format with at least two fewer significand bits (f16, bf16)
// gives the correctly rounded (ties-to-even) result of `value` itself,
// which a double rounding through an ordinary f32 would not.
inline float F64ToF32RoundToOdd(double value) {
  if (std::isnan(value)) return static_cast<float>(value);
  float nearest = static_cast<float>(value);  // IEEE: ties to even.
  if (static_cast<double>(nearest) == value) return nearest;
  uint32_t bits = FloatBits(nearest);
  // Step back toward zero if rounding went away from zero (this also
  // brings an overflow to infinity back to the largest finite f32).
  if (std::fabs(static_cast<double>(nearest)) > std::fabs(value)) --bits;
  return BitsToFloat(bits | 1u);
}

// Returns the f16 nearest to `value` (ties to even, a single rounding).
inline uint16_t F64ToF16Bits(double value) {
  return F32ToF16Bits(F64ToF32RoundToOdd(value));
}

// Returns the bf16 nearest to `value` (ties to even, a single rounding).
inline uint16_t F64ToBf16Bits(double value) {
  return F32ToBf16Bits(F64ToF32RoundToOdd(value));
}

// Returns what x86's CVTTSS2SI gives for `value`: the value truncated
// toward zero, or INT32_MIN (the "integer indefinite") for NaN and values
// outside the int32 range. Defined for every input, unlike a C++ cast.
inline int32_t TruncateToInt32LikeX86(float value) {
  if (value >= -2147483648.0f && value < 2147483648.0f) {
    return static_cast<int32_t>(value);
  }
  return std::numeric_limits<int32_t>::min();
}

}  // namespace pstore::codec_internal

#endif  // PSTORE_CODEC_INTERNAL_FLOAT_BITS_H_
