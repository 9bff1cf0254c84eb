// AVX-512F kernels: the AVX2 kernels' arithmetic (see encoding_avx2.cc for
// why each step equals the scalar reference) on 16-lane vectors, one
// quantized block in two registers. VPMOVDB/VPMOVDW narrow by truncation,
// which is exactly the reference's "keep the low byte". Only functions
// marked PSTORE_AVX512 use the instructions; Avx512Kernels() hands them out
// only when the CPU and OS support AVX-512F.

// GCC 12's AVX-512 intrinsics start from _mm*_undefined_*() values that
// -Wmaybe-uninitialized flags once inlined (GCC bug 105593); the pragma has
// to precede the header to cover its lines.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "codec/internal/cpu_features.h"
#include "codec/internal/encoding_kernels.h"
#include "codec/internal/float_bits.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PSTORE_HAVE_AVX512_KERNELS 1
#define PSTORE_AVX512 __attribute__((target("avx512f,avx2,f16c")))
#endif

namespace pstore::codec_internal {

#ifdef PSTORE_HAVE_AVX512_KERNELS
namespace {

constexpr int kBlock = kQuantBlockElements;

PSTORE_AVX512 inline __m512 Load16(const uint8_t* src) {
  return _mm512_loadu_ps(reinterpret_cast<const float*>(src));
}

PSTORE_AVX512 inline __m512i MagnitudeBits(__m512 x) {
  return _mm512_and_si512(_mm512_castps_si512(x),
                          _mm512_set1_epi32(0x7fffffff));
}

// Returns the largest of the 16 signed 32-bit lanes.
PSTORE_AVX512 inline int32_t HorizontalMaxI32(__m512i v) {
  __m256i m = _mm256_max_epi32(_mm512_castsi512_si256(v),
                               _mm512_extracti64x4_epi64(v, 1));
  __m128i n =
      _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  n = _mm_max_epi32(n, _mm_shuffle_epi32(n, 0x4e));
  n = _mm_max_epi32(n, _mm_shuffle_epi32(n, 0xb1));
  return _mm_cvtsi128_si32(n);
}

// Returns BlockSumTree of the products of elements 0-15 (p0) and 16-31
// (p1).
PSTORE_AVX512 inline float SumTree(__m512 p0, __m512 p1) {
  const __m512 w = _mm512_add_ps(p0, p1);  // p[k] + p[k+16].
  const __m256 a =
      _mm256_add_ps(_mm512_castps512_ps256(w),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd(
                        _mm512_castps_pd(w), 1)));  // + (p[k+8] + p[k+24]).
  const __m128 b =
      _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps(c, c, 0x55)));
}

// Adds the figures of a block with inputs x and dequantized values y.
PSTORE_AVX512 inline void AddErrorsOfBlock(__m512 x0, __m512 x1, __m512 y0,
                                           __m512 y1,
                                           QuantizationStats* stats) {
  const __m512 e0 = _mm512_sub_ps(y0, x0);
  const __m512 e1 = _mm512_sub_ps(y1, x1);
  const float max_error = BitsToFloat(
      HorizontalMaxI32(_mm512_max_epi32(MagnitudeBits(e0), MagnitudeBits(e1))));
  const float sse = SumTree(_mm512_mul_ps(e0, e0), _mm512_mul_ps(e1, e1));
  const float ssi = SumTree(_mm512_mul_ps(x0, x0), _mm512_mul_ps(x1, x1));
  AddBlockStats(stats, max_error, sse, ssi);
}

PSTORE_AVX512 inline __m512i SignExtendLowByte(__m512i v) {
  return _mm512_srai_epi32(_mm512_slli_epi32(v, 24), 24);
}

template <bool kWithStats>
PSTORE_AVX512 void QuantizeQ8_0Avx512Impl(const uint8_t* src, uint8_t* dst,
                                          size_t blocks,
                                          QuantizationStats* stats) {
  const __m512i sign_mask = _mm512_set1_epi32(INT32_MIN);
  // 0.5 - 2^-25, the largest float below one half.
  const __m512i almost_half = _mm512_set1_epi32(0x3effffff);
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* in = src + b * kBlock * 4;
    uint8_t* out = dst + b * kQ8_0BlockBytes;
    const __m512 x0 = Load16(in);
    const __m512 x1 = Load16(in + 64);
    const int32_t amax_bits = HorizontalMaxI32(
        _mm512_max_epi32(MagnitudeBits(x0), MagnitudeBits(x1)));
    if (amax_bits > 0x7f800000) {
      QuantizeQ8_0BlockScalar(in, out, kWithStats ? stats : nullptr);
      continue;
    }
    const float d = BitsToFloat(static_cast<uint32_t>(amax_bits)) / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t scale = F32ToF16Bits(d);  // d is not NaN here.
    StoreU16(out, scale);
    const __m512 inverse_v = _mm512_set1_ps(inverse);
    const __m512 p0 = _mm512_mul_ps(x0, inverse_v);
    const __m512 p1 = _mm512_mul_ps(x1, inverse_v);
    const __m512i q0 = _mm512_cvttps_epi32(_mm512_add_ps(
        p0, _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(_mm512_castps_si512(p0), sign_mask),
                almost_half))));
    const __m512i q1 = _mm512_cvttps_epi32(_mm512_add_ps(
        p1, _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(_mm512_castps_si512(p1), sign_mask),
                almost_half))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2),
                     _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 18),
                     _mm512_cvtepi32_epi8(q1));
    if constexpr (kWithStats) {
      const __m512 scale_v = _mm512_set1_ps(F16BitsToF32(scale));
      const __m512 y0 =
          _mm512_mul_ps(_mm512_cvtepi32_ps(SignExtendLowByte(q0)), scale_v);
      const __m512 y1 =
          _mm512_mul_ps(_mm512_cvtepi32_ps(SignExtendLowByte(q1)), scale_v);
      AddErrorsOfBlock(x0, x1, y0, y1, stats);
    }
  }
}

PSTORE_AVX512 void QuantizeQ8_0Avx512(const uint8_t* src, uint8_t* dst,
                                      size_t blocks, QuantizationStats* stats) {
  if (stats != nullptr) {
    QuantizeQ8_0Avx512Impl<true>(src, dst, blocks, stats);
  } else {
    QuantizeQ8_0Avx512Impl<false>(src, dst, blocks, nullptr);
  }
}

template <bool kWithStats>
PSTORE_AVX512 void QuantizeQ4_0Avx512Impl(const uint8_t* src, uint8_t* dst,
                                          size_t blocks,
                                          QuantizationStats* stats) {
  const __m512 eight_and_half = _mm512_set1_ps(8.5f);
  const __m512i fifteen = _mm512_set1_epi32(15);
  const __m512i low_byte = _mm512_set1_epi32(0xff);
  const __m512i high_nibble = _mm512_set1_epi32(0xf0);
  const __m512i low_nibble = _mm512_set1_epi32(0x0f);
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* in = src + b * kBlock * 4;
    uint8_t* out = dst + b * kQ4_0BlockBytes;
    const __m512 x0 = Load16(in);
    const __m512 x1 = Load16(in + 64);
    const __m512i m0 = MagnitudeBits(x0);
    const __m512i m1 = MagnitudeBits(x1);
    const int32_t amax_bits = HorizontalMaxI32(_mm512_max_epi32(m0, m1));
    if (amax_bits > 0x7f800000) {
      QuantizeQ4_0BlockScalar(in, out, kWithStats ? stats : nullptr);
      continue;
    }
    // The first element reaching the maximum, or +0 for an all-zero block.
    float max = 0.0f;
    if (amax_bits != 0) {
      const __m512i target = _mm512_set1_epi32(amax_bits);
      const uint32_t hits =
          static_cast<uint32_t>(_mm512_cmpeq_epi32_mask(m0, target)) |
          (static_cast<uint32_t>(_mm512_cmpeq_epi32_mask(m1, target)) << 16);
      max = LoadF32(in + 4 * __builtin_ctz(hits));
    }
    const float d = max / -8.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t scale = F32ToF16Bits(d);  // d is not NaN here.
    StoreU16(out, scale);
    const __m512 inverse_v = _mm512_set1_ps(inverse);
    const __m512i level0 =
        _mm512_min_epi32(SignExtendLowByte(_mm512_cvttps_epi32(_mm512_add_ps(
                             _mm512_mul_ps(x0, inverse_v), eight_and_half))),
                         fifteen);
    const __m512i level1 =
        _mm512_min_epi32(SignExtendLowByte(_mm512_cvttps_epi32(_mm512_add_ps(
                             _mm512_mul_ps(x1, inverse_v), eight_and_half))),
                         fifteen);
    const __m512i packed = _mm512_or_si512(
        _mm512_and_si512(level0, low_byte),
        _mm512_and_si512(_mm512_slli_epi32(level1, 4), high_nibble));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2),
                     _mm512_cvtepi32_epi8(packed));
    if constexpr (kWithStats) {
      const __m512 scale_v = _mm512_set1_ps(F16BitsToF32(scale));
      const __m512i eight = _mm512_set1_epi32(8);
      const __m512 y0 =
          _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(
                            _mm512_and_si512(packed, low_nibble), eight)),
                        scale_v);
      const __m512 y1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(
                                          _mm512_srli_epi32(packed, 4), eight)),
                                      scale_v);
      AddErrorsOfBlock(x0, x1, y0, y1, stats);
    }
  }
}

PSTORE_AVX512 void QuantizeQ4_0Avx512(const uint8_t* src, uint8_t* dst,
                                      size_t blocks, QuantizationStats* stats) {
  if (stats != nullptr) {
    QuantizeQ4_0Avx512Impl<true>(src, dst, blocks, stats);
  } else {
    QuantizeQ4_0Avx512Impl<false>(src, dst, blocks, nullptr);
  }
}

PSTORE_AVX512 void DequantizeQ8_0Avx512(const uint8_t* src, uint8_t* dst,
                                        size_t blocks) {
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = src + b * kQ8_0BlockBytes;
    float* out = reinterpret_cast<float*>(dst + 4 * b * kBlock);
    const __m512 scale = _mm512_set1_ps(F16BitsToF32(LoadU16(block)));
    for (int h = 0; h < 2; ++h) {
      const __m128i q8 =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 + 16 * h));
      const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q8));
      _mm512_storeu_ps(out + 16 * h, _mm512_mul_ps(q, scale));
    }
  }
}

PSTORE_AVX512 void DequantizeQ4_0Avx512(const uint8_t* src, uint8_t* dst,
                                        size_t blocks) {
  const __m512i low_nibble = _mm512_set1_epi32(0x0f);
  const __m512i eight = _mm512_set1_epi32(8);
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = src + b * kQ4_0BlockBytes;
    float* out = reinterpret_cast<float*>(dst + 4 * b * kBlock);
    const __m512 scale = _mm512_set1_ps(F16BitsToF32(LoadU16(block)));
    const __m512i packed = _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2)));
    const __m512 y0 =
        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(
                          _mm512_and_si512(packed, low_nibble), eight)),
                      scale);
    const __m512 y1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(
                                        _mm512_srli_epi32(packed, 4), eight)),
                                    scale);
    _mm512_storeu_ps(out, y0);
    _mm512_storeu_ps(out + 16, y1);
  }
}

PSTORE_AVX512 void F32ToF16Avx512(const uint8_t* src, uint8_t* dst,
                                  size_t count) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256i half = _mm512_cvtps_ph(
        Load16(src + 4 * i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i), half);
  }
  for (; i < count; ++i) {
    StoreU16(dst + 2 * i, F32ToF16Bits(LoadF32(src + 4 * i)));
  }
}

PSTORE_AVX512 void F16ToF32Avx512(const uint8_t* src, uint8_t* dst,
                                  size_t count) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256i half =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
    _mm512_storeu_ps(reinterpret_cast<float*>(dst + 4 * i),
                     _mm512_cvtph_ps(half));
  }
  for (; i < count; ++i) {
    StoreF32(dst + 4 * i, F16BitsToF32(LoadU16(src + 2 * i)));
  }
}

PSTORE_AVX512 void F32ToBf16Avx512(const uint8_t* src, uint8_t* dst,
                                   size_t count) {
  const __m512i magnitude_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i infinity = _mm512_set1_epi32(0x7f800000);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i rounding_bias = _mm512_set1_epi32(0x7fff);
  const __m512i quiet_bit = _mm512_set1_epi32(0x40);
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512i bits = _mm512_castps_si512(Load16(src + 4 * i));
    const __mmask16 is_nan = _mm512_cmpgt_epi32_mask(
        _mm512_and_si512(bits, magnitude_mask), infinity);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(bits, _mm512_add_epi32(rounding_bias, lsb)), 16);
    const __m512i result = _mm512_mask_or_epi32(
        rounded, is_nan, _mm512_srli_epi32(bits, 16), quiet_bit);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * i),
                        _mm512_cvtepi32_epi16(result));
  }
  for (; i < count; ++i) {
    StoreU16(dst + 2 * i, F32ToBf16Bits(LoadF32(src + 4 * i)));
  }
}

PSTORE_AVX512 void Bf16ToF32Avx512(const uint8_t* src, uint8_t* dst,
                                   size_t count) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256i half =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * i));
    _mm512_storeu_si512(dst + 4 * i,
                        _mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
  }
  for (; i < count; ++i) {
    StoreF32(dst + 4 * i, Bf16BitsToF32(LoadU16(src + 2 * i)));
  }
}

}  // namespace

const EncodingKernels* Avx512Kernels() {
  static const EncodingKernels* const kKernels = []() -> EncodingKernels* {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2") ||
        !CpuHasF16c()) {
      return nullptr;
    }
    static EncodingKernels kernels = {
        .name = "avx512",
        .f32_to_f16 = F32ToF16Avx512,
        .f32_to_bf16 = F32ToBf16Avx512,
        .f16_to_f32 = F16ToF32Avx512,
        .bf16_to_f32 = Bf16ToF32Avx512,
        .quantize_q8_0 = QuantizeQ8_0Avx512,
        .quantize_q4_0 = QuantizeQ4_0Avx512,
        .dequantize_q8_0 = DequantizeQ8_0Avx512,
        .dequantize_q4_0 = DequantizeQ4_0Avx512,
    };
    return &kernels;
  }();
  return kKernels;
}

#else  // !PSTORE_HAVE_AVX512_KERNELS

const EncodingKernels* Avx512Kernels() { return nullptr; }

#endif  // PSTORE_HAVE_AVX512_KERNELS

}  // namespace pstore::codec_internal
