// The encoding API (names, encodability, sizes, errors), the quantization
// statistics, hand-computed q8_0 and q4_0 blocks, the error each format
// allows, and identical bytes and statistics from every kernel table.

#include "codec/encoding.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "codec/encoding_plan.h"
#include "codec/internal/encoding_kernels.h"
#include "codec/internal/float_bits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/codec/encoding_test_util.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::codec_internal::AvailableKernels;
using ::pstore::codec_internal::EncodingKernels;
using ::pstore::codec_internal::ScalarKernels;
using ::pstore::testing::AsBytes;
using ::pstore::testing::SameStats;
using ::pstore::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr int kBlock = kQuantBlockElements;

// ---------------------------------------------------------------------------
// Names, encodability and sizes.

TEST(EncodingTest, ParsesNamesInAnyCase) {
  EXPECT_EQ(*ParseEncoding(""), Encoding::kRaw);
  EXPECT_EQ(*ParseEncoding("raw"), Encoding::kRaw);
  EXPECT_EQ(*ParseEncoding("f32"), Encoding::kF32);
  EXPECT_EQ(*ParseEncoding("F16"), Encoding::kF16);
  EXPECT_EQ(*ParseEncoding("BF16"), Encoding::kBF16);
  EXPECT_EQ(*ParseEncoding("q8_0"), Encoding::kQ8_0);
  EXPECT_EQ(*ParseEncoding("Q4_0"), Encoding::kQ4_0);
  for (Encoding encoding : AllEncodings()) {
    EXPECT_EQ(*ParseEncoding(EncodingName(encoding)), encoding);
  }
  EXPECT_EQ(AllEncodings().size(), 6u);
  EXPECT_EQ(AllEncodings().front(), Encoding::kRaw);
  for (const char* bad : {"q8", "int8", "f32 ", "q4_1", "fp16", "bfloat16"}) {
    EXPECT_THAT(ParseEncoding(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bad)));
  }
}

TEST(EncodingTest, NamesAndQuantizedFlag) {
  EXPECT_EQ(EncodingName(Encoding::kRaw), "raw");
  EXPECT_EQ(EncodingName(Encoding::kBF16), "bf16");
  EXPECT_EQ(EncodingName(Encoding::kQ8_0), "q8_0");
  EXPECT_TRUE(IsQuantized(Encoding::kQ8_0));
  EXPECT_TRUE(IsQuantized(Encoding::kQ4_0));
  EXPECT_FALSE(IsQuantized(Encoding::kF16));
  EXPECT_FALSE(IsQuantized(Encoding::kRaw));
}

TEST(EncodingTest, ChecksWhichTensorsCanBeEncoded) {
  const std::vector<int64_t> matrix = {4, 64};
  const std::vector<int64_t> odd = {64, 48};
  const std::vector<int64_t> scalar;
  const std::vector<int64_t> empty = {0};
  EXPECT_OK(CheckEncodable(DType::kI32, matrix, Encoding::kRaw));
  EXPECT_OK(CheckEncodable(DType::kBool, scalar, Encoding::kRaw));
  EXPECT_OK(CheckEncodable(DType::kF64, odd, Encoding::kF16));
  EXPECT_OK(CheckEncodable(DType::kBF16, scalar, Encoding::kF32));
  EXPECT_OK(CheckEncodable(DType::kF32, matrix, Encoding::kQ8_0));
  EXPECT_OK(CheckEncodable(DType::kF16, matrix, Encoding::kQ4_0));
  EXPECT_OK(CheckEncodable(DType::kF32, empty, Encoding::kQ4_0));
  EXPECT_THAT(CheckEncodable(DType::kI32, matrix, Encoding::kF16),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("I32")));
  EXPECT_THAT(
      CheckEncodable(DType::kF8E4M3, matrix, Encoding::kBF16),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("F8_E4M3")));
  EXPECT_THAT(CheckEncodable(DType::kBool, matrix, Encoding::kQ8_0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("BOOL")));
  EXPECT_THAT(CheckEncodable(DType::kF32, odd, Encoding::kQ8_0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("48")));
  EXPECT_THAT(CheckEncodable(DType::kF32, scalar, Encoding::kQ4_0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0-dim")));
}

TEST(EncodingTest, EncodedByteLengths) {
  EXPECT_EQ(EncodedByteLength(DType::kF32, Encoding::kRaw, 10), 40u);
  EXPECT_EQ(EncodedByteLength(DType::kI64, Encoding::kRaw, 3), 24u);
  EXPECT_EQ(EncodedByteLength(DType::kF64, Encoding::kF16, 10), 20u);
  EXPECT_EQ(EncodedByteLength(DType::kBF16, Encoding::kF32, 10), 40u);
  EXPECT_EQ(EncodedByteLength(DType::kF32, Encoding::kBF16, 7), 14u);
  EXPECT_EQ(EncodedByteLength(DType::kF16, Encoding::kQ8_0, 32), 34u);
  EXPECT_EQ(EncodedByteLength(DType::kF32, Encoding::kQ8_0, 256), 272u);
  EXPECT_EQ(EncodedByteLength(DType::kF64, Encoding::kQ4_0, 256), 144u);
  EXPECT_EQ(EncodedByteLength(DType::kF32, Encoding::kQ4_0, 0), 0u);
}

TEST(EncodingTest, RefusesShapesThatAreNotValidOrTooLargeInTheEncoding) {
  const std::vector<int64_t> negative = {-1};
  const std::vector<int64_t> elements_overflow = {int64_t{1} << 32,
                                                  int64_t{1} << 32};
  // 2^62 F16 elements are 2^63 bytes raw but 2^64 as f32.
  const std::vector<int64_t> wide_as_f32 = {int64_t{1} << 62};
  for (Encoding encoding : {Encoding::kRaw, Encoding::kF32, Encoding::kQ8_0}) {
    EXPECT_THAT(CheckEncodable(DType::kF32, negative, encoding),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(CheckEncodable(DType::kF32, elements_overflow, encoding),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_OK(CheckEncodable(DType::kF16, wide_as_f32, Encoding::kRaw));
  EXPECT_OK(CheckEncodable(DType::kF16, wide_as_f32, Encoding::kF16));
  EXPECT_THAT(CheckEncodable(DType::kF16, wide_as_f32, Encoding::kF32),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckEncodable(DType::kF32, wide_as_f32, Encoding::kRaw),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // What CheckEncodable allows, EncodedTensorBytes sizes exactly.
  EXPECT_EQ(EncodedTensorBytes(DType::kF16, wide_as_f32, Encoding::kF16),
            uint64_t{1} << 63);
}

TEST(EncodingTest, RefusesMismatchedSizes) {
  std::vector<uint8_t> source(4 * 64);
  std::vector<uint8_t> out(1024);
  auto out_of = [&](size_t size) { return std::span(out.data(), size); };
  // A partial element.
  EXPECT_THAT(Encode(DType::kF32, std::span(source.data(), 6), Encoding::kF16,
                     out_of(2)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Encode(DType::kF16, std::span(source.data(), 3), Encoding::kRaw,
                     out_of(3)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Not a whole number of blocks.
  EXPECT_THAT(Encode(DType::kF32, std::span(source.data(), 4 * 48),
                     Encoding::kQ8_0, out_of(34)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("48")));
  // Output too small or too large.
  EXPECT_THAT(Encode(DType::kF32, source, Encoding::kQ8_0, out_of(67)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("68")));
  EXPECT_THAT(Encode(DType::kF32, source, Encoding::kQ4_0, out_of(37)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("36")));
  EXPECT_THAT(Encode(DType::kF32, source, Encoding::kF16, out_of(4 * 64)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Encode(DType::kF32, source, Encoding::kRaw, out_of(4 * 64 - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Values outside the enums.
  EXPECT_THAT(Encode(DType::kF32, source, static_cast<Encoding>(9), out_of(0)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Encode(static_cast<DType>(0), source, Encoding::kF16, out_of(0)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The right sizes work, and nothing at all is fine too.
  EXPECT_OK(Encode(DType::kF32, source, Encoding::kQ8_0, out_of(68)));
  EXPECT_OK(Encode(DType::kF32, std::span(source.data(), 0), Encoding::kQ4_0,
                   out_of(0)));
}

TEST(EncodingTest, DecodeRefusesRawAndMismatchedSizes) {
  std::vector<uint8_t> bytes(68);
  std::vector<float> out(64);
  EXPECT_THAT(DecodeToF32(Encoding::kRaw, bytes, out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("raw")));
  EXPECT_THAT(DecodeToF32(Encoding::kF16, std::span(bytes.data(), 127), out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeToF32(Encoding::kF32, bytes, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeToF32(Encoding::kQ8_0, std::span(bytes.data(), 67), out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeToF32(Encoding::kQ8_0, std::span(bytes.data(), 34),
                          std::span(out.data(), 33)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeToF32(Encoding::kQ4_0, bytes, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(DecodeToF32(Encoding::kQ8_0, bytes, out));
  EXPECT_OK(DecodeToF32(Encoding::kQ4_0, std::span(bytes.data(), 36), out));
}

// ---------------------------------------------------------------------------
// QuantizationStats.

TEST(QuantizationStatsTest, MergesAndDerivesRms) {
  QuantizationStats empty;
  EXPECT_EQ(empty.RmsError(), 0);
  EXPECT_EQ(empty.RelativeRmsError(), 0);

  QuantizationStats a{.count = 32,
                      .max_abs_error = 0.5,
                      .sum_squared_error = 2.0,
                      .sum_squared_input = 50.0};
  QuantizationStats b{.count = 96,
                      .max_abs_error = 0.25,
                      .sum_squared_error = 6.0,
                      .sum_squared_input = 150.0};
  QuantizationStats merged = a;
  merged.Merge(b);
  EXPECT_EQ(merged.count, 128u);
  EXPECT_EQ(merged.max_abs_error, 0.5);
  EXPECT_EQ(merged.sum_squared_error, 8.0);
  EXPECT_EQ(merged.sum_squared_input, 200.0);
  EXPECT_DOUBLE_EQ(merged.RmsError(), 0.25);         // sqrt(8 / 128)
  EXPECT_DOUBLE_EQ(merged.RelativeRmsError(), 0.2);  // 0.25 / sqrt(200 / 128)

  // Order does not matter, and merging nothing changes nothing.
  QuantizationStats other_order = b;
  other_order.Merge(a);
  EXPECT_TRUE(SameStats(other_order, merged));
  merged.Merge(QuantizationStats());
  EXPECT_TRUE(SameStats(other_order, merged));

  // A NaN error (from a NaN input) sticks.
  QuantizationStats nan_block{.count = 32,
                              .max_abs_error = std::nan(""),
                              .sum_squared_error = std::nan(""),
                              .sum_squared_input = std::nan("")};
  merged.Merge(nan_block);
  EXPECT_TRUE(std::isnan(merged.max_abs_error));
  merged.Merge(b);
  EXPECT_TRUE(std::isnan(merged.max_abs_error));

  // An all-zero input has no relative error.
  QuantizationStats zeros{.count = 32};
  EXPECT_EQ(zeros.RelativeRmsError(), 0);
}

// ---------------------------------------------------------------------------
// Hand-computed blocks, for every kernel table.

class QuantizationTest
    : public ::testing::TestWithParam<const EncodingKernels*> {
 protected:
  const EncodingKernels& kernels() const { return *GetParam(); }

  // Returns the encoded block of the 32 `values`, and its stats in `stats`.
  std::vector<uint8_t> Quantize(Encoding encoding,
                                const std::vector<float>& values,
                                QuantizationStats* stats = nullptr) {
    EXPECT_EQ(values.size() % kBlock, 0u);
    absl::StatusOr<std::vector<uint8_t>> out = testing::EncodeWith(
        kernels(), DType::kF32, AsBytes(values), encoding, stats);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : std::vector<uint8_t>();
  }
};

// Returns a q8_0 block: the scale bits, then the 32 values.
std::vector<uint8_t> Q8Block(uint16_t scale, const std::vector<int>& q) {
  std::vector<uint8_t> block(2 + q.size());
  block[0] = static_cast<uint8_t>(scale & 0xff);
  block[1] = static_cast<uint8_t>(scale >> 8);
  for (size_t j = 0; j < q.size(); ++j) {
    block[2 + j] = static_cast<uint8_t>(q[j]);
  }
  return block;
}

// Returns a q4_0 block: the scale bits, then the 16 packed bytes.
std::vector<uint8_t> Q4Block(uint16_t scale,
                             const std::vector<uint8_t>& packed) {
  std::vector<uint8_t> block(2 + packed.size());
  block[0] = static_cast<uint8_t>(scale & 0xff);
  block[1] = static_cast<uint8_t>(scale >> 8);
  std::copy(packed.begin(), packed.end(), block.begin() + 2);
  return block;
}

TEST_P(QuantizationTest, Q8_0RoundsHalvesAwayFromZeroWithUnitScale) {
  // amax = 127, so d = 1 (f16 0x3c00) and q = roundf(x).
  std::vector<float> x = {127,   -127,  2.5f,   -2.5f,  0.5f,
                          -0.5f, 1.49f, -1.51f, 126.5f, -126.5f,
                          0.0f,  -0.0f, 3.0f,   100.25f};
  std::vector<int> q = {127, -127, 3,    -3, 1, -1, 1,
                        -2,  127,  -127, 0,  0, 3,  100};
  for (int j = 14; j < kBlock; ++j) {
    x.push_back(static_cast<float>(j - 20));
    q.push_back(j - 20);
  }
  QuantizationStats stats;
  EXPECT_THAT(Quantize(Encoding::kQ8_0, x, &stats),
              ElementsAreArray(Q8Block(0x3c00, q)));
  EXPECT_EQ(stats.count, 32u);
  EXPECT_EQ(stats.max_abs_error, 0.5);
}

TEST_P(QuantizationTest, Q8_0BlockWithOneHugeOutlier) {
  std::vector<float> x(kBlock, 1.0f);
  x[5] = 10000.0f;
  // d = 10000 / 127 = 78.74..., whose nearest f16 is 78.75 (0x54ec); every
  // 1.0 becomes 0 and the outlier 127 (127 * 78.75 = 10001.25).
  std::vector<int> q(kBlock, 0);
  q[5] = 127;
  QuantizationStats stats;
  EXPECT_THAT(Quantize(Encoding::kQ8_0, x, &stats),
              ElementsAreArray(Q8Block(0x54ec, q)));
  EXPECT_EQ(stats.max_abs_error, 1.25);
  EXPECT_EQ(stats.sum_squared_error, 31 + 1.25 * 1.25);
  EXPECT_NEAR(stats.sum_squared_input, 31 + 1e8, 1e8 * 1e-6);
}

TEST_P(QuantizationTest, Q8_0ZeroBlocks) {
  QuantizationStats stats;
  EXPECT_THAT(
      Quantize(Encoding::kQ8_0, std::vector<float>(kBlock, 0.0f), &stats),
      ElementsAreArray(std::vector<uint8_t>(34, 0)));
  EXPECT_THAT(Quantize(Encoding::kQ8_0, std::vector<float>(kBlock, -0.0f)),
              ElementsAreArray(std::vector<uint8_t>(34, 0)));
  EXPECT_EQ(stats.max_abs_error, 0);
  EXPECT_EQ(stats.sum_squared_error, 0);
  EXPECT_EQ(stats.RelativeRmsError(), 0);
}

TEST_P(QuantizationTest, Q8_0SubnormalScales) {
  // amax = 127 * 2^-20: d = 2^-20, the f16 subnormal 16 * 2^-24 (0x0010).
  std::vector<float> x(kBlock);
  std::vector<int> q(kBlock);
  x[0] = 127 * 0x1p-20f;
  q[0] = 127;
  for (int j = 1; j < kBlock; ++j) {
    q[j] = (j - 16) * 4;
    x[j] = static_cast<float>(q[j]) * 0x1p-20f;
  }
  QuantizationStats stats;
  EXPECT_THAT(Quantize(Encoding::kQ8_0, x, &stats),
              ElementsAreArray(Q8Block(0x0010, q)));
  EXPECT_EQ(stats.max_abs_error, 0);

  // amax = 1e-6: d = 7.9e-9 is below half the smallest f16 subnormal, so
  // the stored scale is 0 while q is still computed from the f32 d.
  std::vector<float> tiny(kBlock, 0.0f);
  tiny[0] = 1e-6f;
  std::vector<int> tiny_q(kBlock, 0);
  tiny_q[0] = 127;
  EXPECT_THAT(Quantize(Encoding::kQ8_0, tiny, &stats),
              ElementsAreArray(Q8Block(0x0000, tiny_q)));
  EXPECT_EQ(stats.max_abs_error, static_cast<double>(1e-6f));
}

TEST_P(QuantizationTest, Q4_0PositiveMaximumGivesNegativeScale) {
  // The first largest magnitude is +8: d = 8 / -8 = -1 (0xbc00), id = -1,
  // nibble = min(15, trunc(8.5 - x)).
  std::vector<float> x = {8,    -8,    0,    1,     -1, 0.5f, -0.5f, 0.4999f,
                          7.6f, -7.6f, 3.5f, -3.5f, 2,  -2,   6,     -6};
  for (int j = 16; j < kBlock; ++j) x.push_back(static_cast<float>(j - 24));
  // Low nibbles 0 15 8 7 9 8 9 8 0 15 5 12 6 10 2 14; high nibbles
  // (x = -8..7) 15 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1.
  const std::vector<uint8_t> packed = {0xf0, 0xff, 0xe8, 0xd7, 0xc9, 0xb8,
                                       0xa9, 0x98, 0x80, 0x7f, 0x65, 0x5c,
                                       0x46, 0x3a, 0x22, 0x1e};
  EXPECT_THAT(Quantize(Encoding::kQ4_0, x),
              ElementsAreArray(Q4Block(0xbc00, packed)));
  // Negated, the first largest magnitude is -8: d = 1, id = 1, and
  // trunc(-x + 8.5) gives the same nibbles.
  std::vector<float> negated;
  for (float value : x) negated.push_back(-value);
  QuantizationStats stats;
  EXPECT_THAT(Quantize(Encoding::kQ4_0, negated, &stats),
              ElementsAreArray(Q4Block(0x3c00, packed)));
  // +8 (element 1 and 16 of the negation) clamps to 15: dequantized 7, a
  // full step off.
  EXPECT_EQ(stats.max_abs_error, 1.0);
}

TEST_P(QuantizationTest, Q4_0FirstOfEqualMagnitudesSetsTheSign) {
  std::vector<float> x(kBlock, 0.0f);
  x[0] = -3.0f;
  x[1] = 3.0f;
  // max = -3: d = 0.375 (0x3600), 3 -> 16 -> 15, -3 -> 0, 0 -> 8.
  std::vector<uint8_t> packed(16, 0x88);
  packed[0] = 0x80;
  packed[1] = 0x8f;
  EXPECT_THAT(Quantize(Encoding::kQ4_0, x),
              ElementsAreArray(Q4Block(0x3600, packed)));
  // Swapped, max = +3: d = -0.375, and again the first element (now 3)
  // gets nibble 0 and the second (-3) 15: only the scale's sign changes.
  std::swap(x[0], x[1]);
  EXPECT_THAT(Quantize(Encoding::kQ4_0, x),
              ElementsAreArray(Q4Block(0xb600, packed)));
}

TEST_P(QuantizationTest, Q4_0ZeroBlockHasNegativeZeroScale) {
  // max stays +0, so d = 0 / -8 = -0 (0x8000) and every nibble is 8.
  const std::vector<uint8_t> want =
      Q4Block(0x8000, std::vector<uint8_t>(16, 0x88));
  EXPECT_THAT(Quantize(Encoding::kQ4_0, std::vector<float>(kBlock, 0.0f)),
              ElementsAreArray(want));
  EXPECT_THAT(Quantize(Encoding::kQ4_0, std::vector<float>(kBlock, -0.0f)),
              ElementsAreArray(want));
}

TEST_P(QuantizationTest, Q4_0SubnormalScale) {
  // max = 8 * 2^-18: d = -2^-18, the f16 subnormal -64 * 2^-24 (0x8040);
  // x = (8 - k) * 2^-18 becomes nibble k.
  std::vector<float> x(kBlock);
  for (int j = 0; j < kBlock; ++j) {
    x[j] = static_cast<float>(8 - j % 16) * 0x1p-18f;
  }
  std::vector<uint8_t> packed(16);
  for (int j = 0; j < 16; ++j) packed[j] = static_cast<uint8_t>(0x11 * j);
  QuantizationStats stats;
  EXPECT_THAT(Quantize(Encoding::kQ4_0, x, &stats),
              ElementsAreArray(Q4Block(0x8040, packed)));
  EXPECT_EQ(stats.max_abs_error, 0);
}

// Returns `count` weights in blocks of random scale (1e-4 .. 1e3), normally
// distributed, some blocks with an outlier, some with a tiny (f16
// subnormal) scale.
std::vector<float> RandomWeights(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-4.0f, 3.0f);
  std::vector<float> values(count);
  for (size_t b = 0; b < count / kBlock; ++b) {
    float scale = std::pow(10.0f, exponent(rng));
    if (b % 17 == 5) scale = 1e-6f;
    for (int j = 0; j < kBlock; ++j)
      values[b * kBlock + j] = scale * normal(rng);
    if (b % 7 == 3) values[b * kBlock + rng() % kBlock] *= 50.0f;
  }
  return values;
}

TEST_P(QuantizationTest, ErrorsStayWithinWhatEachFormatAllows) {
  const std::vector<float> x = RandomWeights(kBlock * 20000, 7);
  for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
    QuantizationStats stats;
    const std::vector<uint8_t> encoded = Quantize(encoding, x, &stats);
    ASSERT_OK_AND_ASSIGN(
        std::vector<float> y,
        testing::DecodeWith(kernels(), encoding, encoded, x.size()));
    const size_t block_bytes =
        encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
    float max_error = 0;
    double sum_squared_error = 0;
    double sum_squared_input = 0;
    for (size_t b = 0; b < x.size() / kBlock; ++b) {
      const float* block = &x[b * kBlock];
      double amax = 0;
      double max = 0;
      for (int j = 0; j < kBlock; ++j) {
        if (std::fabs(block[j]) > amax) {
          amax = std::fabs(block[j]);
          max = block[j];
        }
      }
      // d exactly, and the f16 scale actually stored.
      const double d = encoding == Encoding::kQ8_0 ? amax / 127 : max / -8;
      const double stored = codec_internal::F16BitsToF32(
          codec_internal::LoadU16(&encoded[b * block_bytes]));
      const int levels = encoding == Encoding::kQ8_0 ? 127 : 8;
      // The f16 rounding of d moves a value by up to `levels` times the
      // rounding; the product q * stored rounds once more in f32.
      const double slack = levels * std::fabs(d - stored) +
                           levels * std::fabs(stored) * 0x1p-24 + 1e-30;
      for (int j = 0; j < kBlock; ++j) {
        const size_t i = b * kBlock + j;
        const double error = std::fabs(static_cast<double>(y[i]) - x[i]);
        // q8_0: half a step (plus a few f32 roundings of x / d). q4_0: half
        // a step, except that levels only reach +7: values of x / d above
        // 7.5 lose up to a full step.
        double steps = 0.5;
        if (encoding == Encoding::kQ4_0 && d != 0) {
          steps = std::max(0.5, x[i] / d - 7.0);
        }
        const double bound = steps * std::fabs(d) * (1 + 1e-4) + slack;
        ASSERT_LE(error, bound)
            << EncodingName(encoding) << " block " << b << " element " << j
            << " x " << x[i] << " y " << y[i] << " d " << d;
        max_error = std::max(max_error, std::fabs(y[i] - x[i]));
        const double e = y[i] - x[i];
        sum_squared_error += e * e;
        sum_squared_input += static_cast<double>(x[i]) * x[i];
      }
    }
    // The stats describe exactly these dequantized values.
    EXPECT_EQ(stats.count, x.size());
    EXPECT_EQ(stats.max_abs_error, max_error);
    EXPECT_NEAR(stats.sum_squared_error, sum_squared_error,
                sum_squared_error * 1e-5);
    EXPECT_NEAR(stats.sum_squared_input, sum_squared_input,
                sum_squared_input * 1e-5);
    EXPECT_GT(stats.RelativeRmsError(), 0);
    // Loose sanity bounds: outlier blocks and f16-subnormal scales lose
    // much more than typical weights.
    EXPECT_LT(stats.RelativeRmsError(),
              encoding == Encoding::kQ8_0 ? 0.02 : 0.3);
  }
}

TEST_P(QuantizationTest, HalfAndBfloatSourcesQuantizeTheirExactValues) {
  const std::vector<uint8_t> bits = testing::RandomBytes(2 * kBlock * 2000, 3);
  const std::vector<float> weights = RandomWeights(kBlock * 2000, 4);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> weight_halves,
                       testing::EncodeWith(kernels(), DType::kF32,
                                           AsBytes(weights), Encoding::kF16));
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    for (const std::vector<uint8_t>* source :
         {&bits, static_cast<const std::vector<uint8_t>*>(&weight_halves)}) {
      ASSERT_OK_AND_ASSIGN(
          std::vector<uint8_t> f32,
          testing::EncodeWith(kernels(), dtype, *source, Encoding::kF32));
      for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
        QuantizationStats direct_stats;
        QuantizationStats via_stats;
        ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> direct,
                             testing::EncodeWith(kernels(), dtype, *source,
                                                 encoding, &direct_stats));
        ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> via_f32,
                             testing::EncodeWith(kernels(), DType::kF32, f32,
                                                 encoding, &via_stats));
        EXPECT_EQ(direct, via_f32) << DTypeName(dtype);
        EXPECT_TRUE(SameStats(direct_stats, via_stats));
      }
    }
  }
}

TEST_P(QuantizationTest, DoubleSourcesQuantizeTheirF32Rounding) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 0.05);
  std::vector<double> values(kBlock * 500);
  for (double& value : values) value = normal(rng);
  values[3] = 1e300;
  values[40] = std::numeric_limits<double>::quiet_NaN();
  values[100] = 1e-300;
  std::vector<float> rounded;
  for (double value : values) rounded.push_back(static_cast<float>(value));
  for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
    ASSERT_OK_AND_ASSIGN(
        std::vector<uint8_t> direct,
        testing::EncodeWith(kernels(), DType::kF64, AsBytes(values), encoding));
    EXPECT_EQ(direct, Quantize(encoding, rounded));
  }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, QuantizationTest,
                         ::testing::ValuesIn(AvailableKernels()),
                         testing::KernelName());

// ---------------------------------------------------------------------------
// Every kernel table against the scalar reference.

// Returns `bytes` viewed from offset 1 of a copy, so no SIMD load is aligned.
std::vector<uint8_t> Misaligned(std::span<const uint8_t> bytes) {
  std::vector<uint8_t> copy(bytes.size() + 1);
  std::memcpy(copy.data() + 1, bytes.data(), bytes.size());
  return copy;
}

TEST(KernelAgreementTest, EveryPathGivesTheScalarBytesAndStats) {
  const std::vector<const EncodingKernels*> kernels = AvailableKernels();
  std::printf("kernel tables on this CPU:");
  for (const EncodingKernels* k : kernels) std::printf(" %s", k->name);
  std::printf("\n");

  struct Source {
    const char* name;
    DType dtype;
    std::vector<uint8_t> bytes;
  };
  std::vector<Source> sources;
  const std::vector<float> specials = testing::SpecialQuantBlocks();
  sources.push_back({"special f32", DType::kF32,
                     std::vector<uint8_t>(AsBytes(specials).begin(),
                                          AsBytes(specials).end())});
  for (size_t count : {32u, 64u, 96u, 288u, 1024u, 32000u, 1u << 20}) {
    const std::vector<float> weights = RandomWeights(count, count);
    sources.push_back({"weights f32", DType::kF32,
                       std::vector<uint8_t>(AsBytes(weights).begin(),
                                            AsBytes(weights).end())});
    sources.push_back({"random-bit f32", DType::kF32,
                       testing::RandomBytes(4 * count, count)});
    sources.push_back({"random-bit f16", DType::kF16,
                       testing::RandomBytes(2 * count, count + 1)});
    sources.push_back({"random-bit bf16", DType::kBF16,
                       testing::RandomBytes(2 * count, count + 2)});
  }
  {
    std::vector<double> values(4096);
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal(0.0, 1e3);
    for (double& value : values) value = normal(rng);
    values[7] = 1e300;
    values[77] = -std::numeric_limits<double>::infinity();
    sources.push_back(
        {"f64", DType::kF64,
         std::vector<uint8_t>(AsBytes(values).begin(), AsBytes(values).end())});
  }

  size_t compared_blocks = 0;
  for (const Source& source : sources) {
    const std::vector<uint8_t> shifted = Misaligned(source.bytes);
    const std::span<const uint8_t> unaligned(shifted.data() + 1,
                                             source.bytes.size());
    for (Encoding encoding : {Encoding::kF32, Encoding::kF16, Encoding::kBF16,
                              Encoding::kQ8_0, Encoding::kQ4_0}) {
      QuantizationStats want_stats;
      ASSERT_OK_AND_ASSIGN(
          std::vector<uint8_t> want,
          testing::EncodeWith(ScalarKernels(), source.dtype, source.bytes,
                              encoding, &want_stats));
      for (const EncodingKernels* k : kernels) {
        QuantizationStats stats;
        ASSERT_OK_AND_ASSIGN(
            std::vector<uint8_t> got,
            testing::EncodeWith(*k, source.dtype, unaligned, encoding, &stats));
        ASSERT_EQ(got.size(), want.size());
        const auto mismatch =
            std::mismatch(got.begin(), got.end(), want.begin());
        EXPECT_TRUE(mismatch.first == got.end())
            << k->name << " " << source.name << " (" << source.bytes.size()
            << " bytes) as " << EncodingName(encoding)
            << ": first differing byte " << (mismatch.first - got.begin());
        EXPECT_TRUE(SameStats(stats, want_stats))
            << k->name << " " << source.name << " as " << EncodingName(encoding)
            << ": max " << stats.max_abs_error << " vs "
            << want_stats.max_abs_error << ", sse " << stats.sum_squared_error
            << " vs " << want_stats.sum_squared_error;
        if (IsQuantized(encoding)) {
          compared_blocks +=
              got.size() /
              (encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes);
          // Decoding agrees too (bit for bit, NaNs included).
          const size_t count = source.bytes.size() / DTypeSize(source.dtype);
          const std::vector<uint8_t> shifted_got = Misaligned(got);
          ASSERT_OK_AND_ASSIGN(
              std::vector<float> decoded,
              testing::DecodeWith(
                  *k, encoding,
                  std::span<const uint8_t>(shifted_got.data() + 1, got.size()),
                  count));
          ASSERT_OK_AND_ASSIGN(
              std::vector<float> want_decoded,
              testing::DecodeWith(ScalarKernels(), encoding, want, count));
          EXPECT_EQ(std::memcmp(decoded.data(), want_decoded.data(), 4 * count),
                    0)
              << k->name << " " << source.name << " decoding "
              << EncodingName(encoding);
        }
      }
    }
  }
  std::printf("compared %zu quantized blocks across %zu kernel tables\n",
              compared_blocks, kernels.size());
}

TEST(KernelAgreementTest, DecodesUnalignedEncodedBytes) {
  const std::vector<float> weights = RandomWeights(kBlock * 64, 99);
  for (Encoding encoding :
       {Encoding::kQ8_0, Encoding::kQ4_0, Encoding::kF16, Encoding::kBF16}) {
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> encoded,
                         testing::EncodeWith(ScalarKernels(), DType::kF32,
                                             AsBytes(weights), encoding));
    const std::vector<uint8_t> shifted = Misaligned(encoded);
    const std::span<const uint8_t> unaligned(shifted.data() + 1,
                                             encoded.size());
    ASSERT_OK_AND_ASSIGN(std::vector<float> want,
                         testing::DecodeWith(ScalarKernels(), encoding, encoded,
                                             weights.size()));
    for (const EncodingKernels* k : AvailableKernels()) {
      ASSERT_OK_AND_ASSIGN(
          std::vector<float> got,
          testing::DecodeWith(*k, encoding, unaligned, weights.size()));
      EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * want.size()), 0)
          << k->name << " " << EncodingName(encoding);
    }
  }
}

TEST(KernelAgreementTest, StatsAccumulateOverCalls) {
  const std::vector<float> weights = RandomWeights(kBlock * 1000, 8);
  const std::span<const uint8_t> bytes = AsBytes(weights);
  for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
    QuantizationStats whole;
    std::vector<uint8_t> out(
        EncodedByteLength(DType::kF32, encoding, weights.size()));
    ASSERT_OK(Encode(DType::kF32, bytes, encoding, out, &whole));
    QuantizationStats parts;
    const size_t half = bytes.size() / 2;
    const size_t half_out = out.size() / 2;
    std::vector<uint8_t> out_parts(out.size());
    ASSERT_OK(Encode(DType::kF32, bytes.subspan(0, half), encoding,
                     std::span(out_parts).subspan(0, half_out), &parts));
    ASSERT_OK(Encode(DType::kF32, bytes.subspan(half), encoding,
                     std::span(out_parts).subspan(half_out), &parts));
    EXPECT_EQ(out_parts, out);
    EXPECT_EQ(parts.count, whole.count);
    EXPECT_EQ(parts.max_abs_error, whole.max_abs_error);
    EXPECT_NEAR(parts.sum_squared_error, whole.sum_squared_error,
                whole.sum_squared_error * 1e-12);
    EXPECT_NEAR(parts.sum_squared_input, whole.sum_squared_input,
                whole.sum_squared_input * 1e-12);
  }
}

}  // namespace
}  // namespace pstore
