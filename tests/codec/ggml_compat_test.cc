// Bit-exactness against ggml itself: loads ggml's shared library (the
// libggml-base.so that npm @node-llama-cpp/linux-x64@3.21.1 ships), has it
// and every kernel table of ours quantize the same f32 values, and compares
// the bytes; likewise dequantization and the f16/bf16 conversions.
//
// PSTORE_LIBGGML names the library. Without it the tests skip; with
// PSTORE_LIBGGML_REQUIRED=1 (set by check_ggml.sh) a library that does not
// load is a failure instead.

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "codec/encoding.h"
#include "codec/internal/encoding_kernels.h"
#include "codec/internal/float_bits.h"
#include "gtest/gtest.h"
#include "tests/codec/encoding_test_util.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::codec_internal::AvailableKernels;
using ::pstore::codec_internal::EncodingKernels;
using ::pstore::testing::AsBytes;
using ::pstore::testing::Bits;
using ::pstore::testing::FromBits;

constexpr int kBlock = kQuantBlockElements;
// enum ggml_type values (include/ggml.h), checked against ggml_type_name.
constexpr int kGgmlTypeQ4_0 = 2;
constexpr int kGgmlTypeQ8_0 = 8;

// The entry points of libggml-base.so that the tests call.
struct Ggml {
  size_t (*quantize_chunk)(int type, const float* src, void* dst, int64_t start,
                           int64_t nrows, int64_t n_per_row,
                           const float* imatrix);
  const char* (*type_name)(int type);
  size_t (*type_size)(int type);
  int64_t (*blck_size)(int type);
  void (*dequantize_row_q8_0)(const void* blocks, float* out, int64_t k);
  void (*dequantize_row_q4_0)(const void* blocks, float* out, int64_t k);
  void (*fp32_to_fp16_row)(const float* in, uint16_t* out, int64_t n);
  void (*fp16_to_fp32_row)(const uint16_t* in, float* out, int64_t n);
  void (*fp32_to_bf16_row_ref)(const float* in, uint16_t* out, int64_t n);
  void (*bf16_to_fp32_row)(const uint16_t* in, float* out, int64_t n);
};

// Loads the library named by PSTORE_LIBGGML, or explains in `why_not`.
const Ggml* LoadGgml(std::string* why_not) {
  const char* path = std::getenv("PSTORE_LIBGGML");
  if (path == nullptr || *path == '\0') {
    *why_not =
        "PSTORE_LIBGGML is not set; run tests/codec/check_ggml.sh, or set it "
        "to the libggml-base.so of npm @node-llama-cpp/linux-x64@3.21.1";
    return nullptr;
  }
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    *why_not = std::string("cannot load ") + path + ": " + dlerror();
    return nullptr;
  }
  auto* ggml = new Ggml;
  bool missing = false;
  auto bind = [&](auto& function, const char* name) {
    void* symbol = dlsym(handle, name);
    if (symbol == nullptr) {
      *why_not += std::string(" missing symbol ") + name;
      missing = true;
    }
    function =
        reinterpret_cast<std::remove_reference_t<decltype(function)>>(symbol);
  };
  bind(ggml->quantize_chunk, "ggml_quantize_chunk");
  bind(ggml->type_name, "ggml_type_name");
  bind(ggml->type_size, "ggml_type_size");
  bind(ggml->blck_size, "ggml_blck_size");
  bind(ggml->dequantize_row_q8_0, "dequantize_row_q8_0");
  bind(ggml->dequantize_row_q4_0, "dequantize_row_q4_0");
  bind(ggml->fp32_to_fp16_row, "ggml_fp32_to_fp16_row");
  bind(ggml->fp16_to_fp32_row, "ggml_fp16_to_fp32_row");
  bind(ggml->fp32_to_bf16_row_ref, "ggml_fp32_to_bf16_row_ref");
  bind(ggml->bf16_to_fp32_row, "ggml_bf16_to_fp32_row");
  if (missing) {
    *why_not = std::string(path) + ":" + *why_not;
    delete ggml;
    return nullptr;
  }
  return ggml;
}

class GgmlCompatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ggml_ = LoadGgml(&why_not_); }

  void SetUp() override {
    if (ggml_ != nullptr) return;
    const char* required = std::getenv("PSTORE_LIBGGML_REQUIRED");
    if (required != nullptr && std::string(required) == "1") {
      FAIL() << why_not_;
    }
    GTEST_SKIP() << why_not_;
  }

  // Returns ggml's quantization of `values` (a multiple of 256 elements,
  // quantized as rows of 256 like a model's tensor).
  static std::vector<uint8_t> GgmlQuantize(Encoding encoding,
                                           const std::vector<float>& values) {
    const int type =
        encoding == Encoding::kQ8_0 ? kGgmlTypeQ8_0 : kGgmlTypeQ4_0;
    constexpr int64_t kRow = 256;
    std::vector<uint8_t> out(
        EncodedByteLength(DType::kF32, encoding, values.size()));
    const size_t written = ggml_->quantize_chunk(
        type, values.data(), out.data(), 0,
        static_cast<int64_t>(values.size()) / kRow, kRow, nullptr);
    EXPECT_EQ(written, out.size());
    return out;
  }

  // Compares ggml's and each kernel table's quantization of `values`;
  // returns the number of blocks compared per table.
  static size_t CompareQuantization(Encoding encoding,
                                    const std::vector<float>& values,
                                    const char* what) {
    const std::vector<uint8_t> want = GgmlQuantize(encoding, values);
    const size_t block_bytes =
        encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
    for (const EncodingKernels* kernels : AvailableKernels()) {
      absl::StatusOr<std::vector<uint8_t>> got =
          testing::EncodeWith(*kernels, DType::kF32, AsBytes(values), encoding);
      EXPECT_TRUE(got.ok()) << got.status();
      if (!got.ok()) continue;
      int reported = 0;
      size_t differing = 0;
      for (size_t b = 0; b < want.size() / block_bytes; ++b) {
        if (std::memcmp(got->data() + b * block_bytes,
                        want.data() + b * block_bytes, block_bytes) == 0) {
          continue;
        }
        ++differing;
        if (++reported > 5) continue;
        std::string detail;
        char hex[16];
        for (int j = 0; j < kBlock; ++j) {
          std::snprintf(hex, sizeof(hex), " %08x",
                        Bits(values[b * kBlock + j]));
          detail += hex;
        }
        detail += "\n  ggml:";
        for (size_t i = 0; i < block_bytes; ++i) {
          std::snprintf(hex, sizeof(hex), " %02x", want[b * block_bytes + i]);
          detail += hex;
        }
        detail += "\n  ours:";
        for (size_t i = 0; i < block_bytes; ++i) {
          std::snprintf(hex, sizeof(hex), " %02x", (*got)[b * block_bytes + i]);
          detail += hex;
        }
        ADD_FAILURE() << kernels->name << " " << EncodingName(encoding) << " "
                      << what << " block " << b << " differs; input:" << detail;
      }
      EXPECT_EQ(differing, 0u)
          << kernels->name << " " << EncodingName(encoding) << " " << what;
    }
    return want.size() / block_bytes;
  }

  static const Ggml* ggml_;
  static std::string why_not_;
};

const Ggml* GgmlCompatTest::ggml_ = nullptr;
std::string GgmlCompatTest::why_not_;

// Pads `values` with zero blocks to a multiple of 256 elements.
void PadToRows(std::vector<float>& values) {
  while (values.size() % 256 != 0) values.push_back(0.0f);
}

// Returns `blocks` blocks of test data; each block draws one of several
// shapes: normal weights over 1e-8..1e6, uniform values, random finite bit
// patterns, fully random bit patterns (NaNs and infinities included), f16
// values, integers and halves (rounding ties), scales whose d is an f16 or
// f32 subnormal, and normal weights with a NaN or infinity dropped in.
std::vector<float> VariedBlocks(size_t blocks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::uniform_real_distribution<float> decade(-8.0f, 6.0f);
  std::uniform_real_distribution<float> tiny_decade(-45.0f, -30.0f);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            FromBits(0x7f800001u),
                            FromBits(0x7fbfffffu),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            0.0f,
                            -0.0f};
  std::vector<float> values(blocks * kBlock);
  for (size_t b = 0; b < blocks; ++b) {
    float* block = &values[b * kBlock];
    const int shape = static_cast<int>(rng() % 10);
    const float scale = std::pow(10.0f, decade(rng));
    for (int j = 0; j < kBlock; ++j) {
      switch (shape) {
        case 0:
        case 1:
          block[j] = scale * normal(rng);
          break;
        case 2:
          block[j] = scale * uniform(rng);
          break;
        case 3: {
          uint32_t bits = static_cast<uint32_t>(rng());
          if ((bits & 0x7f800000u) == 0x7f800000u) bits &= 0xbfffffffu;
          block[j] = FromBits(bits);
          break;
        }
        case 4:
          block[j] = FromBits(static_cast<uint32_t>(rng()));
          break;
        case 5: {
          // A finite f16 value: clear one exponent bit of infinities/NaNs.
          auto half = static_cast<uint16_t>(rng());
          if ((half & 0x7c00) == 0x7c00) half &= 0xfbff;
          block[j] = codec_internal::F16BitsToF32(half);
          break;
        }
        case 6:
          block[j] = static_cast<float>(static_cast<int>(rng() % 255) - 127) /
                     ((rng() & 1) ? 1.0f : 2.0f);
          break;
        case 7:
          block[j] = std::pow(10.0f, tiny_decade(rng)) * normal(rng);
          break;
        case 8:
          block[j] = 1e-5f * normal(rng);
          break;
        default:
          block[j] = scale * normal(rng);
          break;
      }
    }
    if (shape == 9) {
      const int drops = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < drops; ++i) {
        block[rng() % kBlock] = specials[rng() % std::size(specials)];
      }
    }
  }
  return values;
}

TEST_F(GgmlCompatTest, LibraryHasTheExpectedTypes) {
  EXPECT_STREQ(ggml_->type_name(kGgmlTypeQ8_0), "q8_0");
  EXPECT_STREQ(ggml_->type_name(kGgmlTypeQ4_0), "q4_0");
  EXPECT_EQ(ggml_->type_size(kGgmlTypeQ8_0), size_t{kQ8_0BlockBytes});
  EXPECT_EQ(ggml_->type_size(kGgmlTypeQ4_0), size_t{kQ4_0BlockBytes});
  EXPECT_EQ(ggml_->blck_size(kGgmlTypeQ8_0), kBlock);
  EXPECT_EQ(ggml_->blck_size(kGgmlTypeQ4_0), kBlock);
}

TEST_F(GgmlCompatTest, SpecialBlocksMatchGgmlBitForBit) {
  std::vector<float> values = testing::SpecialQuantBlocks();
  PadToRows(values);
  for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
    const size_t blocks = CompareQuantization(encoding, values, "special");
    std::printf("%s: compared %zu special blocks with ggml\n",
                std::string(EncodingName(encoding)).c_str(), blocks);
  }
}

TEST_F(GgmlCompatTest, VariedBlocksMatchGgmlBitForBit) {
  constexpr size_t kBatchBlocks = 1 << 16;
  constexpr int kBatches = 32;  // 2M blocks per format.
  for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
    size_t compared = 0;
    for (int batch = 0; batch < kBatches && !HasFailure(); ++batch) {
      const std::vector<float> values = VariedBlocks(
          kBatchBlocks, 1000 * batch + (encoding == Encoding::kQ8_0));
      compared += CompareQuantization(encoding, values, "varied");
    }
    std::printf("%s: compared %zu varied blocks with ggml, per kernel table\n",
                std::string(EncodingName(encoding)).c_str(), compared);
  }
}

TEST_F(GgmlCompatTest, HalfAndBfloatSourcesMatchGgmlOnTheirF32Values) {
  constexpr size_t kCount = 256 * 8192;
  std::mt19937_64 rng(42);
  std::vector<uint16_t> halves(kCount);
  for (uint16_t& half : halves) half = static_cast<uint16_t>(rng());
  // Ordinary weights too, so that most blocks have no NaN.
  for (size_t i = 0; i < kCount / 2; ++i) {
    halves[i] = codec_internal::F32ToF16Bits(
        0.02f * std::normal_distribution<float>()(rng));
  }
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    std::vector<float> widened(kCount);
    if (dtype == DType::kF16) {
      ggml_->fp16_to_fp32_row(halves.data(), widened.data(), kCount);
    } else {
      ggml_->bf16_to_fp32_row(halves.data(), widened.data(), kCount);
    }
    for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
      const std::vector<uint8_t> want = GgmlQuantize(encoding, widened);
      for (const EncodingKernels* kernels : AvailableKernels()) {
        ASSERT_OK_AND_ASSIGN(
            std::vector<uint8_t> got,
            testing::EncodeWith(*kernels, dtype, AsBytes(halves), encoding));
        EXPECT_TRUE(got == want) << kernels->name << " " << DTypeName(dtype)
                                 << " as " << EncodingName(encoding);
      }
    }
  }
}

TEST_F(GgmlCompatTest, DequantizationMatchesGgml) {
  std::vector<float> values = VariedBlocks(1 << 16, 77);
  const std::vector<float> specials = testing::SpecialQuantBlocks();
  values.insert(values.end(), specials.begin(), specials.end());
  PadToRows(values);
  for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
    const std::vector<uint8_t> encoded = GgmlQuantize(encoding, values);
    std::vector<float> want(values.size());
    (encoding == Encoding::kQ8_0 ? ggml_->dequantize_row_q8_0
                                 : ggml_->dequantize_row_q4_0)(
        encoded.data(), want.data(), static_cast<int64_t>(values.size()));
    for (const EncodingKernels* kernels : AvailableKernels()) {
      ASSERT_OK_AND_ASSIGN(
          std::vector<float> got,
          testing::DecodeWith(*kernels, encoding, encoded, values.size()));
      size_t differing = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const bool same = Bits(got[i]) == Bits(want[i]) ||
                          (std::isnan(got[i]) && std::isnan(want[i]));
        if (!same && ++differing <= 5) {
          ADD_FAILURE() << kernels->name << " " << EncodingName(encoding)
                        << " element " << i << ": " << got[i] << " vs ggml "
                        << want[i];
        }
      }
      EXPECT_EQ(differing, 0u);
    }
  }
}

TEST_F(GgmlCompatTest, F16AndBf16ConversionsMatchGgml) {
  // f16 -> f32 on every bit pattern: identical bits, NaNs included.
  std::vector<uint16_t> halves(65536);
  for (uint32_t i = 0; i < 65536; ++i) halves[i] = static_cast<uint16_t>(i);
  std::vector<float> want(65536);
  ggml_->fp16_to_fp32_row(halves.data(), want.data(), 65536);
  for (const EncodingKernels* kernels : AvailableKernels()) {
    ASSERT_OK_AND_ASSIGN(
        std::vector<float> got,
        testing::DecodeWith(*kernels, Encoding::kF16,
                            testing::HalfBytes(halves), 65536));
    EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * 65536), 0)
        << kernels->name;
  }

  // f32 -> f16 and f32 -> bf16 on random bit patterns and on every f16
  // midpoint. ggml turns every NaN into sign | 0x7e00 for f16, where we keep
  // the payload's top bits (as F16C does); otherwise the bits match.
  std::mt19937_64 rng(3);
  std::vector<float> values;
  for (int i = 0; i < (1 << 22); ++i) {
    values.push_back(FromBits(static_cast<uint32_t>(rng())));
  }
  for (uint32_t half = 0; half < 0x7c00; ++half) {
    const float low = codec_internal::F16BitsToF32(static_cast<uint16_t>(half));
    const float high =
        codec_internal::F16BitsToF32(static_cast<uint16_t>(half + 1));
    const float mid = static_cast<float>((double{low} + high) / 2);
    values.push_back(mid);
    values.push_back(-mid);
    values.push_back(std::nextafter(mid, 0.0f));
    values.push_back(std::nextafter(mid, 1e30f));
  }
  std::vector<uint16_t> want_f16(values.size());
  std::vector<uint16_t> want_bf16(values.size());
  ggml_->fp32_to_fp16_row(values.data(), want_f16.data(),
                          static_cast<int64_t>(values.size()));
  ggml_->fp32_to_bf16_row_ref(values.data(), want_bf16.data(),
                              static_cast<int64_t>(values.size()));
  for (const EncodingKernels* kernels : AvailableKernels()) {
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> f16,
                         testing::EncodeWith(*kernels, DType::kF32,
                                             AsBytes(values), Encoding::kF16));
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> bf16,
                         testing::EncodeWith(*kernels, DType::kF32,
                                             AsBytes(values), Encoding::kBF16));
    const std::vector<uint16_t> got_f16 = testing::Halves(f16);
    const std::vector<uint16_t> got_bf16 = testing::Halves(bf16);
    size_t f16_differing = 0;
    size_t nans = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      if (std::isnan(values[i])) {
        ++nans;
        const bool both_nan =
            (got_f16[i] & 0x7c00) == 0x7c00 && (got_f16[i] & 0x3ff) != 0 &&
            (want_f16[i] & 0x7c00) == 0x7c00 && (want_f16[i] & 0x3ff) != 0 &&
            (got_f16[i] & 0x8000) == (want_f16[i] & 0x8000);
        if (!both_nan) ++f16_differing;
      } else if (got_f16[i] != want_f16[i]) {
        if (++f16_differing <= 5) {
          ADD_FAILURE() << kernels->name << " f32 0x" << std::hex
                        << Bits(values[i]) << " -> f16 0x" << got_f16[i]
                        << ", ggml 0x" << want_f16[i];
        }
      }
    }
    EXPECT_EQ(f16_differing, 0u) << kernels->name;
    EXPECT_GT(nans, 0u);
    EXPECT_TRUE(got_bf16 == want_bf16) << kernels->name;
  }
}

}  // namespace
}  // namespace pstore
