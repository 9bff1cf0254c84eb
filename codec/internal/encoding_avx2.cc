// AVX2 + F16C kernels. Only the functions marked PSTORE_AVX2 use those
// instructions (the file is compiled for the baseline target, so inline
// functions from headers stay baseline too); Avx2Kernels() hands them out
// only when the CPU has both extensions.
//
// Each quantized block is read as four 8-lane vectors. The block maximum is
// taken on the magnitude bits as integers: for non-negative floats integer
// order is float order, and a NaN shows up as a value above infinity, in
// which case the block goes to the scalar reference (whose NaN handling
// depends on the element order). With no NaN the maximum does not depend on
// order, so the tree reduction equals the reference's left-to-right fold.
// roundf (half away from zero) is computed as trunc(p + copysign(0.5 - 2^-25,
// p)), which is exact for every float p, and CVTTPS2DQ gives the same
// integer, NaN and overflow results as the reference's CVTTSS2SI.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "codec/internal/cpu_features.h"
#include "codec/internal/encoding_kernels.h"
#include "codec/internal/float_bits.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PSTORE_HAVE_AVX2_KERNELS 1
#define PSTORE_AVX2 __attribute__((target("avx2,f16c")))
#endif

namespace pstore::codec_internal {

#ifdef PSTORE_HAVE_AVX2_KERNELS
namespace {

constexpr int kBlock = kQuantBlockElements;

PSTORE_AVX2 inline __m256 Load8(const uint8_t* src) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(src));
}

PSTORE_AVX2 inline __m256i MagnitudeBits(__m256 x) {
  return _mm256_and_si256(_mm256_castps_si256(x),
                          _mm256_set1_epi32(0x7fffffff));
}

// Returns the largest of the 8 signed 32-bit lanes.
PSTORE_AVX2 inline int32_t HorizontalMaxI32(__m256i v) {
  __m128i m =
      _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  return _mm_cvtsi128_si32(m);
}

// Returns ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
PSTORE_AVX2 inline float HorizontalSumTree(__m256 a) {
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  __m128 s = _mm_add_ss(c, _mm_shuffle_ps(c, c, 0x55));
  return _mm_cvtss_f32(s);
}

// Returns BlockSumTree of the products p0..p3 (elements 0-7, ..., 24-31).
PSTORE_AVX2 inline float SumTree(__m256 p0, __m256 p1, __m256 p2, __m256 p3) {
  return HorizontalSumTree(
      _mm256_add_ps(_mm256_add_ps(p0, p2), _mm256_add_ps(p1, p3)));
}

// Adds the figures of a block with inputs x and dequantized values y.
PSTORE_AVX2 inline void AddErrorsOfBlock(const __m256 x[4], const __m256 y[4],
                                         QuantizationStats* stats) {
  __m256 e[4];
  __m256i max_bits = _mm256_setzero_si256();
  for (int k = 0; k < 4; ++k) {
    e[k] = _mm256_sub_ps(y[k], x[k]);
    max_bits = _mm256_max_epi32(max_bits, MagnitudeBits(e[k]));
  }
  const float max_error = BitsToFloat(HorizontalMaxI32(max_bits));
  const float sse =
      SumTree(_mm256_mul_ps(e[0], e[0]), _mm256_mul_ps(e[1], e[1]),
              _mm256_mul_ps(e[2], e[2]), _mm256_mul_ps(e[3], e[3]));
  const float ssi =
      SumTree(_mm256_mul_ps(x[0], x[0]), _mm256_mul_ps(x[1], x[1]),
              _mm256_mul_ps(x[2], x[2]), _mm256_mul_ps(x[3], x[3]));
  AddBlockStats(stats, max_error, sse, ssi);
}

// Returns the sign-extended low byte of each lane.
PSTORE_AVX2 inline __m256i SignExtendLowByte(__m256i v) {
  return _mm256_srai_epi32(_mm256_slli_epi32(v, 24), 24);
}

template <bool kWithStats>
PSTORE_AVX2 void QuantizeQ8_0Avx2Impl(const uint8_t* src, uint8_t* dst,
                                      size_t blocks, QuantizationStats* stats) {
  const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));
  // 0.5 - 2^-25, the largest float below one half.
  const __m256 almost_half = _mm256_castsi256_ps(_mm256_set1_epi32(0x3effffff));
  const __m256i low_byte = _mm256_set1_epi32(0xff);
  const __m256i byte_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* in = src + b * kBlock * 4;
    uint8_t* out = dst + b * kQ8_0BlockBytes;
    __m256 x[4];
    for (int k = 0; k < 4; ++k) x[k] = Load8(in + 32 * k);
    const int32_t amax_bits = HorizontalMaxI32(_mm256_max_epi32(
        _mm256_max_epi32(MagnitudeBits(x[0]), MagnitudeBits(x[1])),
        _mm256_max_epi32(MagnitudeBits(x[2]), MagnitudeBits(x[3]))));
    if (amax_bits > 0x7f800000) {
      QuantizeQ8_0BlockScalar(in, out, kWithStats ? stats : nullptr);
      continue;
    }
    const float d = BitsToFloat(static_cast<uint32_t>(amax_bits)) / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t scale = F32ToF16Bits(d);  // d is not NaN here.
    StoreU16(out, scale);
    const __m256 inverse_v = _mm256_set1_ps(inverse);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 p = _mm256_mul_ps(x[k], inverse_v);
      const __m256 bias =
          _mm256_or_ps(_mm256_and_ps(p, sign_mask), almost_half);
      q[k] = _mm256_cvttps_epi32(_mm256_add_ps(p, bias));
    }
    // Keep the low byte of each lane (the reference stores an int8_t), then
    // pack 32 lanes into 32 bytes without saturation.
    const __m256i w01 = _mm256_packus_epi32(_mm256_and_si256(q[0], low_byte),
                                            _mm256_and_si256(q[1], low_byte));
    const __m256i w23 = _mm256_packus_epi32(_mm256_and_si256(q[2], low_byte),
                                            _mm256_and_si256(q[3], low_byte));
    const __m256i bytes =
        _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w01, w23), byte_order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2), bytes);
    if constexpr (kWithStats) {
      const __m256 scale_v = _mm256_set1_ps(F16BitsToF32(scale));
      __m256 y[4];
      for (int k = 0; k < 4; ++k) {
        y[k] =
            _mm256_mul_ps(_mm256_cvtepi32_ps(SignExtendLowByte(q[k])), scale_v);
      }
      AddErrorsOfBlock(x, y, stats);
    }
  }
}

PSTORE_AVX2 void QuantizeQ8_0Avx2(const uint8_t* src, uint8_t* dst,
                                  size_t blocks, QuantizationStats* stats) {
  if (stats != nullptr) {
    QuantizeQ8_0Avx2Impl<true>(src, dst, blocks, stats);
  } else {
    QuantizeQ8_0Avx2Impl<false>(src, dst, blocks, nullptr);
  }
}

template <bool kWithStats>
PSTORE_AVX2 void QuantizeQ4_0Avx2Impl(const uint8_t* src, uint8_t* dst,
                                      size_t blocks, QuantizationStats* stats) {
  const __m256 eight_and_half = _mm256_set1_ps(8.5f);
  const __m256i fifteen = _mm256_set1_epi32(15);
  const __m256i low_byte = _mm256_set1_epi32(0xff);
  const __m256i high_nibble = _mm256_set1_epi32(0xf0);
  const __m256i low_nibble = _mm256_set1_epi32(0x0f);
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* in = src + b * kBlock * 4;
    uint8_t* out = dst + b * kQ4_0BlockBytes;
    __m256 x[4];
    __m256i magnitude[4];
    for (int k = 0; k < 4; ++k) {
      x[k] = Load8(in + 32 * k);
      magnitude[k] = MagnitudeBits(x[k]);
    }
    const int32_t amax_bits = HorizontalMaxI32(
        _mm256_max_epi32(_mm256_max_epi32(magnitude[0], magnitude[1]),
                         _mm256_max_epi32(magnitude[2], magnitude[3])));
    if (amax_bits > 0x7f800000) {
      QuantizeQ4_0BlockScalar(in, out, kWithStats ? stats : nullptr);
      continue;
    }
    // The reference keeps the first element reaching the final maximum; an
    // all-zero block keeps its initial +0.
    float max = 0.0f;
    if (amax_bits != 0) {
      const __m256i target = _mm256_set1_epi32(amax_bits);
      uint32_t hits = 0;
      for (int k = 0; k < 4; ++k) {
        const int lanes = _mm256_movemask_ps(
            _mm256_castsi256_ps(_mm256_cmpeq_epi32(magnitude[k], target)));
        hits |= static_cast<uint32_t>(lanes) << (8 * k);
      }
      max = LoadF32(in + 4 * __builtin_ctz(hits));
    }
    const float d = max / -8.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t scale = F32ToF16Bits(d);  // d is not NaN here.
    StoreU16(out, scale);
    const __m256 inverse_v = _mm256_set1_ps(inverse);
    __m256i level[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 shifted =
          _mm256_add_ps(_mm256_mul_ps(x[k], inverse_v), eight_and_half);
      // (int8_t) of the truncated value, then min(15, that).
      level[k] = _mm256_min_epi32(
          SignExtendLowByte(_mm256_cvttps_epi32(shifted)), fifteen);
    }
    // Byte j = low byte of element j | (element j + 16) << 4, in 8 bits.
    const __m256i packed_lo = _mm256_or_si256(
        _mm256_and_si256(level[0], low_byte),
        _mm256_and_si256(_mm256_slli_epi32(level[2], 4), high_nibble));
    const __m256i packed_hi = _mm256_or_si256(
        _mm256_and_si256(level[1], low_byte),
        _mm256_and_si256(_mm256_slli_epi32(level[3], 4), high_nibble));
    const __m256i words = _mm256_permute4x64_epi64(
        _mm256_packus_epi32(packed_lo, packed_hi), 0xd8);
    const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words),
                                           _mm256_extracti128_si256(words, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2), bytes);
    if constexpr (kWithStats) {
      // Dequantize what was stored: (nibble - 8) * f16(d).
      const __m256 scale_v = _mm256_set1_ps(F16BitsToF32(scale));
      const __m256i eight = _mm256_set1_epi32(8);
      const __m256i nibbles[4] = {
          _mm256_and_si256(packed_lo, low_nibble),
          _mm256_and_si256(packed_hi, low_nibble),
          _mm256_srli_epi32(packed_lo, 4),
          _mm256_srli_epi32(packed_hi, 4),
      };
      __m256 y[4];
      for (int k = 0; k < 4; ++k) {
        y[k] = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_sub_epi32(nibbles[k], eight)), scale_v);
      }
      AddErrorsOfBlock(x, y, stats);
    }
  }
}

PSTORE_AVX2 void QuantizeQ4_0Avx2(const uint8_t* src, uint8_t* dst,
                                  size_t blocks, QuantizationStats* stats) {
  if (stats != nullptr) {
    QuantizeQ4_0Avx2Impl<true>(src, dst, blocks, stats);
  } else {
    QuantizeQ4_0Avx2Impl<false>(src, dst, blocks, nullptr);
  }
}

PSTORE_AVX2 void DequantizeQ8_0Avx2(const uint8_t* src, uint8_t* dst,
                                    size_t blocks) {
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = src + b * kQ8_0BlockBytes;
    float* out = reinterpret_cast<float*>(dst + 4 * b * kBlock);
    const __m256 scale = _mm256_set1_ps(F16BitsToF32(LoadU16(block)));
    for (int k = 0; k < 4; ++k) {
      const __m128i q8 =
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + 8 * k));
      const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
      _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(q, scale));
    }
  }
}

PSTORE_AVX2 void DequantizeQ4_0Avx2(const uint8_t* src, uint8_t* dst,
                                    size_t blocks) {
  const __m128i low_nibble = _mm_set1_epi8(0x0f);
  const __m256i eight = _mm256_set1_epi32(8);
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = src + b * kQ4_0BlockBytes;
    float* out = reinterpret_cast<float*>(dst + 4 * b * kBlock);
    const __m256 scale = _mm256_set1_ps(F16BitsToF32(LoadU16(block)));
    const __m128i packed =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    const __m128i halves[2] = {
        _mm_and_si128(packed, low_nibble),
        _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibble),
    };
    for (int h = 0; h < 2; ++h) {
      const __m128i first8 = halves[h];
      const __m128i next8 = _mm_srli_si128(halves[h], 8);
      const __m256 y0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(
                                          _mm256_cvtepu8_epi32(first8), eight)),
                                      scale);
      const __m256 y1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(
                                          _mm256_cvtepu8_epi32(next8), eight)),
                                      scale);
      _mm256_storeu_ps(out + 16 * h, y0);
      _mm256_storeu_ps(out + 16 * h + 8, y1);
    }
  }
}

PSTORE_AVX2 void F32ToF16Avx2(const uint8_t* src, uint8_t* dst, size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i half = _mm256_cvtps_ph(
        Load8(src + 4 * i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * i), half);
  }
  for (; i < count; ++i) {
    StoreU16(dst + 2 * i, F32ToF16Bits(LoadF32(src + 4 * i)));
  }
}

PSTORE_AVX2 void F16ToF32Avx2(const uint8_t* src, uint8_t* dst, size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i half =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_ps(reinterpret_cast<float*>(dst + 4 * i),
                     _mm256_cvtph_ps(half));
  }
  for (; i < count; ++i) {
    StoreF32(dst + 4 * i, F16BitsToF32(LoadU16(src + 2 * i)));
  }
}

// Returns the bf16 bits of 8 floats in the low 16 bits of each lane.
PSTORE_AVX2 inline __m256i F32ToBf16Lanes(__m256i bits) {
  const __m256i magnitude =
      _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i is_nan =
      _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb =
      _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)),
      16);
  const __m256i quiet_nan =
      _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet_nan, is_nan);
}

PSTORE_AVX2 void F32ToBf16Avx2(const uint8_t* src, uint8_t* dst, size_t count) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256i a = F32ToBf16Lanes(_mm256_castps_si256(Load8(src + 4 * i)));
    const __m256i b =
        F32ToBf16Lanes(_mm256_castps_si256(Load8(src + 4 * i + 32)));
    const __m256i words =
        _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), words);
  }
  for (; i < count; ++i) {
    StoreU16(dst + 2 * i, F32ToBf16Bits(LoadF32(src + 4 * i)));
  }
}

PSTORE_AVX2 void Bf16ToF32Avx2(const uint8_t* src, uint8_t* dst, size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i half =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * i),
                        _mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
  }
  for (; i < count; ++i) {
    StoreF32(dst + 4 * i, Bf16BitsToF32(LoadU16(src + 2 * i)));
  }
}

}  // namespace

const EncodingKernels* Avx2Kernels() {
  static const EncodingKernels* const kKernels = []() -> EncodingKernels* {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !CpuHasF16c()) {
      return nullptr;
    }
    static EncodingKernels kernels = {
        .name = "avx2",
        .f32_to_f16 = F32ToF16Avx2,
        .f32_to_bf16 = F32ToBf16Avx2,
        .f16_to_f32 = F16ToF32Avx2,
        .bf16_to_f32 = Bf16ToF32Avx2,
        .quantize_q8_0 = QuantizeQ8_0Avx2,
        .quantize_q4_0 = QuantizeQ4_0Avx2,
        .dequantize_q8_0 = DequantizeQ8_0Avx2,
        .dequantize_q4_0 = DequantizeQ4_0Avx2,
    };
    return &kernels;
  }();
  return kKernels;
}

#else  // !PSTORE_HAVE_AVX2_KERNELS

const EncodingKernels* Avx2Kernels() { return nullptr; }

#endif  // PSTORE_HAVE_AVX2_KERNELS

}  // namespace pstore::codec_internal
