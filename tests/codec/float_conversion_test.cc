// Float conversions (f32, f16, bf16, and F64 sources) through every kernel
// table this CPU runs, against rounding computed independently here: by
// searching the sorted list of all f16 values, and by comparing distances
// to the two bf16 neighbours in double.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "codec/encoding.h"
#include "codec/internal/encoding_kernels.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/codec/encoding_test_util.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::codec_internal::AvailableKernels;
using ::pstore::codec_internal::EncodingKernels;
using ::pstore::testing::AsBytes;
using ::pstore::testing::Bits;
using ::pstore::testing::FromBits;
using ::pstore::testing::HalfBytes;
using ::pstore::testing::Halves;
using ::pstore::testing::StatusIs;

// Returns the value of the non-NaN f16 `bits` (infinity as 2^16, the value
// IEEE rounding treats it as when deciding overflow).
double HalfValue(uint16_t bits) {
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  double magnitude = exponent == 0 ? std::ldexp(mantissa, -24)
                                   : std::ldexp(1024 + mantissa, exponent - 25);
  return (bits & 0x8000) ? -magnitude : magnitude;
}

// Returns the f16 nearest to the non-NaN `value`, ties to the even bit
// pattern, by search over every non-negative f16 (whose bit patterns are in
// increasing order of value).
uint16_t ReferenceF32ToF16(float value) {
  static const std::vector<double>* const kMagnitudes = [] {
    auto* values = new std::vector<double>;
    for (uint32_t bits = 0; bits <= 0x7c00; ++bits) {
      values->push_back(HalfValue(static_cast<uint16_t>(bits)));
    }
    return values;
  }();
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  const double magnitude = std::fabs(static_cast<double>(value));
  if (magnitude >= 65520.0) return sign | 0x7c00;
  // The first f16 above `magnitude`, and the one below it.
  auto above =
      std::upper_bound(kMagnitudes->begin(), kMagnitudes->end(), magnitude);
  const auto high = static_cast<uint16_t>(above - kMagnitudes->begin());
  const uint16_t low = high - 1;
  const double to_low = magnitude - (*kMagnitudes)[low];
  const double to_high = (*kMagnitudes)[high] - magnitude;
  if (to_low < to_high) return sign | low;
  if (to_high < to_low) return sign | high;
  return sign | ((low & 1) == 0 ? low : high);
}

// Returns the bf16 nearest to the non-NaN `value`, ties to even, from the
// distances to its two bf16 neighbours.
uint16_t ReferenceF32ToBf16(float value) {
  const uint32_t bits = Bits(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7fffffff;
  const uint32_t low = magnitude & 0xffff0000u;
  if (low == magnitude) return sign | static_cast<uint16_t>(low >> 16);
  const uint32_t high = low + 0x10000u;
  const double exact = FromBits(magnitude);
  const double low_value = FromBits(low);
  const double high_value =
      high == 0x7f800000u ? std::ldexp(1.0, 128) : FromBits(high);
  const double to_low = exact - low_value;
  const double to_high = high_value - exact;
  uint32_t chosen;
  if (to_low != to_high) {
    chosen = to_low < to_high ? low : high;
  } else {
    chosen = ((low >> 16) & 1) == 0 ? low : high;
  }
  return sign | static_cast<uint16_t>(chosen >> 16);
}

bool IsHalfNan(uint16_t bits) {
  return (bits & 0x7c00) == 0x7c00 && (bits & 0x3ff) != 0;
}

// f32 values that probe f16 rounding: a strided sweep over every bit
// pattern, and for each f16 the midpoints to its neighbour and one f32 ulp
// either side of them.
std::vector<float> F16RoundingProbes() {
  std::vector<float> values;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 1021) {
    values.push_back(FromBits(static_cast<uint32_t>(bits)));
  }
  for (uint32_t half = 0; half < 0x7c00; ++half) {
    const double midpoint = (HalfValue(static_cast<uint16_t>(half)) +
                             HalfValue(static_cast<uint16_t>(half + 1))) /
                            2;
    const float mid = static_cast<float>(midpoint);  // Exact in f32.
    for (float value :
         {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      values.push_back(value);
      values.push_back(-value);
    }
  }
  return values;
}

class FloatConversionTest
    : public ::testing::TestWithParam<const EncodingKernels*> {
 protected:
  const EncodingKernels& kernels() const { return *GetParam(); }
};

TEST_P(FloatConversionTest, EveryF16BitPatternRoundTripsThroughF32) {
  std::vector<uint16_t> halves(65536);
  for (uint32_t i = 0; i < 65536; ++i) halves[i] = static_cast<uint16_t>(i);
  const std::vector<uint8_t> source = HalfBytes(halves);
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint8_t> f32,
      testing::EncodeWith(kernels(), DType::kF16, source, Encoding::kF32));
  std::vector<float> values(65536);
  std::memcpy(values.data(), f32.data(), f32.size());
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint8_t> back,
      testing::EncodeWith(kernels(), DType::kF32, f32, Encoding::kF16));
  const std::vector<uint16_t> round_trip = Halves(back);
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto half = static_cast<uint16_t>(i);
    if (IsHalfNan(half)) {
      EXPECT_TRUE(std::isnan(values[i])) << std::hex << i;
      EXPECT_TRUE(IsHalfNan(round_trip[i])) << std::hex << i;
      // A quiet NaN comes back bit for bit; a signalling one comes back
      // quiet with the same payload.
      EXPECT_EQ(round_trip[i], half | 0x0200) << std::hex << i;
    } else if ((half & 0x7fff) == 0x7c00) {
      EXPECT_TRUE(std::isinf(values[i])) << std::hex << i;
      EXPECT_EQ(std::signbit(values[i]), (half & 0x8000) != 0);
      EXPECT_EQ(round_trip[i], half) << std::hex << i;
    } else {
      EXPECT_EQ(static_cast<double>(values[i]), HalfValue(half))
          << std::hex << i;
      EXPECT_EQ(std::signbit(values[i]), (half & 0x8000) != 0);
      EXPECT_EQ(round_trip[i], half) << std::hex << i;
    }
  }
  // Decoding the f16 bytes gives the same f32 values.
  ASSERT_OK_AND_ASSIGN(
      std::vector<float> decoded,
      testing::DecodeWith(kernels(), Encoding::kF16, source, 65536));
  EXPECT_EQ(std::memcmp(decoded.data(), values.data(), f32.size()), 0);
}

TEST_P(FloatConversionTest, F32ToF16MatchesIndependentRounding) {
  const std::vector<float> values = F16RoundingProbes();
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> encoded,
                       testing::EncodeWith(kernels(), DType::kF32,
                                           AsBytes(values), Encoding::kF16));
  const std::vector<uint16_t> halves = Halves(encoded);
  int mismatches = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) {
      EXPECT_TRUE(IsHalfNan(halves[i])) << std::hex << Bits(values[i]);
      // The sign and the top payload bits survive; the NaN is quiet.
      EXPECT_EQ(halves[i], ((Bits(values[i]) >> 16) & 0x8000) | 0x7e00 |
                               ((Bits(values[i]) >> 13) & 0x3ff));
      continue;
    }
    const uint16_t want = ReferenceF32ToF16(values[i]);
    if (halves[i] != want && ++mismatches <= 10) {
      ADD_FAILURE() << "f32 0x" << std::hex << Bits(values[i]) << " -> 0x"
                    << halves[i] << ", want 0x" << want;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << values.size();
}

TEST_P(FloatConversionTest, F32ToF16RoundsTiesToEvenAndOverflowsToInfinity) {
  struct Case {
    float value;
    uint16_t want;
  };
  const Case cases[] = {
      {1.0f, 0x3c00},
      {1.0f + 0x1p-11f, 0x3c00},  // Tie between 0x3c00 and 0x3c01.
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},
      {1.0f + 3 * 0x1p-11f, 0x3c02},  // Tie between 0x3c01 and 0x3c02.
      {-1.0f - 3 * 0x1p-11f, 0xbc02},
      {2048.0f + 1.0f, 0x6800},  // Tie: 2048 (even) wins over 2050.
      {65504.0f, 0x7bff},        // Largest finite f16.
      {65519.996f, 0x7bff},
      {65520.0f, 0x7c00},  // Halfway to 2^16: infinity.
      {1e10f, 0x7c00},
      {-1e10f, 0xfc00},
      {std::numeric_limits<float>::infinity(), 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {0x1p-14f, 0x0400},             // Smallest normal.
      {0x1p-14f - 0x1p-25f, 0x0400},  // Rounds up out of the subnormals.
      {0x1p-24f, 0x0001},             // Smallest subnormal.
      {0x1p-25f, 0x0000},             // Tie between 0 and 0x0001: 0.
      {0x1p-25f + 0x1p-40f, 0x0001},
      {3 * 0x1p-25f, 0x0002},  // Tie between 0x0001 and 0x0002.
      {5 * 0x1p-25f, 0x0002},  // Tie between 0x0002 and 0x0003.
      {-0x1p-30f, 0x8000},
      {1e-45f, 0x0000},  // f32 subnormal.
  };
  std::vector<float> values;
  for (const Case& c : cases) values.push_back(c.value);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> encoded,
                       testing::EncodeWith(kernels(), DType::kF32,
                                           AsBytes(values), Encoding::kF16));
  const std::vector<uint16_t> halves = Halves(encoded);
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(halves[i], cases[i].want)
        << "f32 " << values[i] << " (0x" << std::hex << Bits(values[i]) << ")";
  }
}

TEST_P(FloatConversionTest, F32ToBf16RoundsTiesToEvenAndKeepsSpecials) {
  struct Case {
    uint32_t bits;
    uint16_t want;
  };
  const Case cases[] = {
      {0x3f800000, 0x3f80},  // 1.0
      {0x3f808000, 0x3f80},  // Tie between 0x3f80 and 0x3f81: even.
      {0x3f818000, 0x3f82},  // Tie between 0x3f81 and 0x3f82: even.
      {0x3f808001, 0x3f81},
      {0x3f807fff, 0x3f80},
      {0xbf808000, 0xbf80},
      {0x7f7fffff, 0x7f80},  // FLT_MAX rounds past the bf16 range.
      {0x7f7f7fff, 0x7f7f},
      {0x7f7f8000, 0x7f80},  // Tie at the top: to even,
                             // which is infinity.
      {0x7f800000, 0x7f80},  // Infinity.
      {0xff800000, 0xff80},
      {0x7f800001, 0x7fc0},  // Signalling NaN: made
                             // quiet.
      {0x7fc00000, 0x7fc0},
      {0xffa12345, 0xffe1},  // Sign and top payload bits
                             // kept.
      {0x7fffffff, 0x7fff},  // Rounding must not carry a NaN into the sign.
      {0x00000000, 0x0000},
      {0x80000000, 0x8000},  // -0.0
      {0x00008000, 0x0000},  // Subnormal tie: even.
      {0x00018000, 0x0002},
      {0x00007fff, 0x0000},
  };
  std::vector<float> values;
  for (const Case& c : cases) values.push_back(FromBits(c.bits));
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> encoded,
                       testing::EncodeWith(kernels(), DType::kF32,
                                           AsBytes(values), Encoding::kBF16));
  const std::vector<uint16_t> halves = Halves(encoded);
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(halves[i], cases[i].want)
        << std::hex << "f32 0x" << cases[i].bits;
  }
}

TEST_P(FloatConversionTest, F32ToBf16MatchesIndependentRounding) {
  std::vector<float> values;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 997) {
    values.push_back(FromBits(static_cast<uint32_t>(bits)));
  }
  // Every tie and its neighbours for a range of exponents.
  for (uint32_t high = 0; high < 0x10000; high += 7) {
    for (uint32_t low : {0x7fffu, 0x8000u, 0x8001u}) {
      values.push_back(FromBits((high << 16) | low));
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> encoded,
                       testing::EncodeWith(kernels(), DType::kF32,
                                           AsBytes(values), Encoding::kBF16));
  const std::vector<uint16_t> halves = Halves(encoded);
  int mismatches = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const uint32_t bits = Bits(values[i]);
    const uint16_t want = std::isnan(values[i])
                              ? static_cast<uint16_t>((bits >> 16) | 0x40)
                              : ReferenceF32ToBf16(values[i]);
    if (halves[i] != want && ++mismatches <= 10) {
      ADD_FAILURE() << "f32 0x" << std::hex << bits << " -> 0x" << halves[i]
                    << ", want 0x" << want;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << values.size();
}

TEST_P(FloatConversionTest, Bf16ToF32IsExact) {
  std::vector<uint16_t> halves(65536);
  for (uint32_t i = 0; i < 65536; ++i) halves[i] = static_cast<uint16_t>(i);
  const std::vector<uint8_t> source = HalfBytes(halves);
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint8_t> f32,
      testing::EncodeWith(kernels(), DType::kBF16, source, Encoding::kF32));
  ASSERT_OK_AND_ASSIGN(
      std::vector<float> decoded,
      testing::DecodeWith(kernels(), Encoding::kBF16, source, 65536));
  for (uint32_t i = 0; i < 65536; ++i) {
    uint32_t bits;
    std::memcpy(&bits, f32.data() + 4 * i, 4);
    EXPECT_EQ(bits, i << 16);
    EXPECT_EQ(Bits(decoded[i]), i << 16);
  }
}

TEST_P(FloatConversionTest, ConversionToTheSameTypeIsTheIdentity) {
  // Random bits include signalling NaNs and every other special value.
  const std::vector<uint8_t> bytes = testing::RandomBytes(4 * 4099, 17);
  for (auto [dtype, encoding] : {std::pair{DType::kF32, Encoding::kF32},
                                 std::pair{DType::kF16, Encoding::kF16},
                                 std::pair{DType::kBF16, Encoding::kBF16}}) {
    ASSERT_OK_AND_ASSIGN(
        std::vector<uint8_t> out,
        testing::EncodeWith(kernels(), dtype, bytes, encoding));
    EXPECT_EQ(out, bytes) << DTypeName(dtype);
    ASSERT_OK_AND_ASSIGN(
        out, testing::EncodeWith(kernels(), dtype, bytes, Encoding::kRaw));
    EXPECT_EQ(out, bytes) << DTypeName(dtype);
  }
}

TEST_P(FloatConversionTest, F16AndBf16ConvertToEachOtherWithOneRounding) {
  const std::vector<uint8_t> bytes = testing::RandomBytes(2 * 5000, 23);
  // Via f32, which holds both exactly, and then one rounding.
  for (auto [from, to] : {std::pair{DType::kF16, Encoding::kBF16},
                          std::pair{DType::kBF16, Encoding::kF16}}) {
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> direct,
                         testing::EncodeWith(kernels(), from, bytes, to));
    ASSERT_OK_AND_ASSIGN(
        std::vector<uint8_t> f32,
        testing::EncodeWith(kernels(), from, bytes, Encoding::kF32));
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> via_f32,
                         testing::EncodeWith(kernels(), DType::kF32, f32, to));
    EXPECT_EQ(direct, via_f32) << DTypeName(from);
  }
}

TEST_P(FloatConversionTest, F64SourcesRoundOnceToEachTarget) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> values = {
      1.0,
      1.0 + 0x1p-11,            // f16 tie: even (0x3c00).
      1.0 + 0x1p-11 + 0x1p-40,  // Above the f16 tie, below the f32 one.
      1.0 + 0x1p-8,             // bf16 tie: even (0x3f80).
      1.0 + 0x1p-8 + 0x1p-40,   // Above the bf16 tie.
      1.0 + 0x1p-24,            // f32 tie: even (1.0f).
      1.0 + 0x1p-24 + 0x1p-50,  // Above the f32 tie.
      65519.99999,              // Just below the f16 overflow threshold.
      65520.0,
      1e300,
      -1e300,
      inf,
      -inf,
      -0.0,
      0x1p-25,  // f16 tie between 0 and 0x0001: 0.
      0x1p-25 + 0x1p-60,
      0x1p-200,  // Below every target's range.
      nan,
      -nan,
  };
  struct Want {
    uint32_t f32;
    uint16_t f16;
    uint16_t bf16;
  };
  const Want wants[] = {
      {0x3f800000, 0x3c00, 0x3f80}, {0x3f801000, 0x3c00, 0x3f80},
      {0x3f801000, 0x3c01, 0x3f80}, {0x3f808000, 0x3c04, 0x3f80},
      {0x3f808000, 0x3c04, 0x3f81}, {0x3f800000, 0x3c00, 0x3f80},
      {0x3f800001, 0x3c00, 0x3f80}, {0x477ff000, 0x7bff, 0x4780},
      {0x477ff000, 0x7c00, 0x4780}, {0x7f800000, 0x7c00, 0x7f80},
      {0xff800000, 0xfc00, 0xff80}, {0x7f800000, 0x7c00, 0x7f80},
      {0xff800000, 0xfc00, 0xff80}, {0x80000000, 0x8000, 0x8000},
      {0x33000000, 0x0000, 0x3300}, {0x33000000, 0x0001, 0x3300},
      {0x00000000, 0x0000, 0x0000},
  };
  const std::vector<uint8_t> source(
      reinterpret_cast<const uint8_t*>(values.data()),
      reinterpret_cast<const uint8_t*>(values.data() + values.size()));
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint8_t> f32,
      testing::EncodeWith(kernels(), DType::kF64, source, Encoding::kF32));
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint8_t> f16,
      testing::EncodeWith(kernels(), DType::kF64, source, Encoding::kF16));
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint8_t> bf16,
      testing::EncodeWith(kernels(), DType::kF64, source, Encoding::kBF16));
  const std::vector<uint16_t> f16_values = Halves(f16);
  const std::vector<uint16_t> bf16_values = Halves(bf16);
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t f32_bits;
    std::memcpy(&f32_bits, f32.data() + 4 * i, 4);
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(FromBits(f32_bits)));
      EXPECT_TRUE(IsHalfNan(f16_values[i]));
      EXPECT_TRUE(std::isnan(FromBits(uint32_t{bf16_values[i]} << 16)));
      continue;
    }
    EXPECT_EQ(f32_bits, wants[i].f32) << std::hexfloat << values[i];
    EXPECT_EQ(f16_values[i], wants[i].f16) << std::hexfloat << values[i];
    EXPECT_EQ(bf16_values[i], wants[i].bf16) << std::hexfloat << values[i];
  }
}

TEST_P(FloatConversionTest, DecodesF32AsTheIdentity) {
  const std::vector<uint8_t> bytes = testing::RandomBytes(4 * 100, 5);
  ASSERT_OK_AND_ASSIGN(
      std::vector<float> decoded,
      testing::DecodeWith(kernels(), Encoding::kF32, bytes, 100));
  EXPECT_EQ(std::memcmp(decoded.data(), bytes.data(), bytes.size()), 0);
}

TEST_P(FloatConversionTest, HandlesUnalignedSourcesAndEveryTailLength) {
  const std::vector<uint8_t> bytes = testing::RandomBytes(4 * 100 + 3, 9);
  const auto& scalar = codec_internal::ScalarKernels();
  for (size_t count = 0; count <= 100; ++count) {
    // Start one byte in, so nothing is aligned.
    std::span<const uint8_t> f32(bytes.data() + 1, 4 * count);
    std::span<const uint8_t> half(bytes.data() + 3, 2 * count);
    for (Encoding encoding : {Encoding::kF16, Encoding::kBF16}) {
      ASSERT_OK_AND_ASSIGN(
          auto got, testing::EncodeWith(kernels(), DType::kF32, f32, encoding));
      ASSERT_OK_AND_ASSIGN(
          auto want, testing::EncodeWith(scalar, DType::kF32, f32, encoding));
      EXPECT_EQ(got, want) << count;
    }
    for (DType dtype : {DType::kF16, DType::kBF16}) {
      ASSERT_OK_AND_ASSIGN(auto got, testing::EncodeWith(kernels(), dtype, half,
                                                         Encoding::kF32));
      ASSERT_OK_AND_ASSIGN(
          auto want, testing::EncodeWith(scalar, dtype, half, Encoding::kF32));
      EXPECT_EQ(got, want) << count;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, FloatConversionTest,
                         ::testing::ValuesIn(AvailableKernels()),
                         testing::KernelName());

TEST(FloatConversionTest, EncodeUsesTheFastestKernelsAndAgreesWithThem) {
  const std::vector<const EncodingKernels*> kernels = AvailableKernels();
  EXPECT_EQ(&codec_internal::DispatchedKernels(), kernels.back());
  const std::vector<float> values = F16RoundingProbes();
  std::vector<uint8_t> out(2 * values.size());
  ASSERT_OK(Encode(DType::kF32, AsBytes(values), Encoding::kF16, out));
  ASSERT_OK_AND_ASSIGN(
      std::vector<uint8_t> scalar,
      testing::EncodeWith(codec_internal::ScalarKernels(), DType::kF32,
                          AsBytes(values), Encoding::kF16));
  EXPECT_EQ(out, scalar);
}

TEST(FloatConversionTest, RefusesNonFloatSources) {
  const std::vector<uint8_t> bytes(64);
  for (DType dtype : AllDTypes()) {
    if (IsConvertibleFloat(dtype)) continue;
    for (Encoding encoding : {Encoding::kF32, Encoding::kF16, Encoding::kBF16,
                              Encoding::kQ8_0, Encoding::kQ4_0}) {
      std::vector<uint8_t> out(256);
      EXPECT_THAT(Encode(dtype, bytes, encoding, out),
                  StatusIs(absl::StatusCode::kInvalidArgument,
                           ::testing::HasSubstr(std::string(DTypeName(dtype)))))
          << DTypeName(dtype) << " as " << EncodingName(encoding);
    }
    std::vector<uint8_t> raw(bytes.size());
    EXPECT_OK(Encode(dtype, bytes, Encoding::kRaw, raw));
    EXPECT_EQ(raw, bytes);
  }
}

}  // namespace
}  // namespace pstore
