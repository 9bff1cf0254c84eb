// Helpers shared by the codec encoding tests: byte views of vectors, bit
// casts, and running Encode/DecodeToF32 with one kernel table.

#ifndef PSTORE_TESTS_CODEC_ENCODING_TEST_UTIL_H_
#define PSTORE_TESTS_CODEC_ENCODING_TEST_UTIL_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/internal/encoding_kernels.h"
#include "gtest/gtest.h"

namespace pstore::testing {

using codec_internal::EncodingKernels;

template <typename T>
std::span<const uint8_t> AsBytes(const std::vector<T>& values) {
  return {reinterpret_cast<const uint8_t*>(values.data()),
          values.size() * sizeof(T)};
}

inline uint32_t Bits(float value) { return std::bit_cast<uint32_t>(value); }
inline float FromBits(uint32_t bits) { return std::bit_cast<float>(bits); }

// Returns `source` encoded with `kernels`, or the error.
inline absl::StatusOr<std::vector<uint8_t>> EncodeWith(
    const EncodingKernels& kernels, DType dtype,
    std::span<const uint8_t> source, Encoding encoding,
    QuantizationStats* stats = nullptr) {
  const uint64_t count = source.size() / DTypeSize(dtype);
  std::vector<uint8_t> out(EncodedByteLength(dtype, encoding, count));
  absl::Status status = codec_internal::EncodeWithKernels(
      kernels, dtype, source, encoding, out, stats);
  if (!status.ok()) return status;
  return out;
}

// Returns `encoded` decoded to f32 with `kernels`.
inline absl::StatusOr<std::vector<float>> DecodeWith(
    const EncodingKernels& kernels, Encoding encoding,
    std::span<const uint8_t> encoded, size_t count) {
  std::vector<float> out(count);
  absl::Status status =
      codec_internal::DecodeToF32WithKernels(kernels, encoding, encoded, out);
  if (!status.ok()) return status;
  return out;
}

// Returns the f16 bit patterns of `halves` as little-endian bytes.
inline std::vector<uint8_t> HalfBytes(const std::vector<uint16_t>& halves) {
  std::vector<uint8_t> bytes(2 * halves.size());
  std::memcpy(bytes.data(), halves.data(), bytes.size());
  return bytes;
}

// Returns the 16-bit values stored little endian in `bytes`.
inline std::vector<uint16_t> Halves(std::span<const uint8_t> bytes) {
  std::vector<uint16_t> halves(bytes.size() / 2);
  std::memcpy(halves.data(), bytes.data(), 2 * halves.size());
  return halves;
}

// Returns true if two stats are identical, bit for bit (NaN equals NaN).
inline bool SameDouble(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}
inline bool SameStats(const QuantizationStats& a, const QuantizationStats& b) {
  return a.count == b.count && SameDouble(a.max_abs_error, b.max_abs_error) &&
         SameDouble(a.sum_squared_error, b.sum_squared_error) &&
         SameDouble(a.sum_squared_input, b.sum_squared_input);
}

// Returns blocks of 32 f32 values that probe the corners of q8_0 and q4_0
// (and of ggml's undefined behaviour, which the encodings reproduce): NaNs
// in every position, infinities, zeros of both signs, f32 subnormals,
// scales that are f16 subnormals or f32 subnormals or overflow f16,
// magnitude ties of opposite sign, and exact rounding ties.
inline std::vector<float> SpecialQuantBlocks() {
  constexpr int kBlock = kQuantBlockElements;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float signalling = std::bit_cast<float>(uint32_t{0x7f812345});
  const float negative_nan = std::bit_cast<float>(uint32_t{0xffc00001});
  const float big_payload = std::bit_cast<float>(uint32_t{0x7fffffff});
  const float max = std::numeric_limits<float>::max();
  const float denorm = std::numeric_limits<float>::denorm_min();
  std::vector<std::vector<float>> blocks;
  auto ramp = [](float scale) {
    std::vector<float> block(kBlock);
    for (int j = 0; j < kBlock; ++j) block[j] = scale * (j - 13.25f);
    return block;
  };
  auto with = [&](std::vector<float> block, int position, float value) {
    block[position] = value;
    return block;
  };
  blocks.push_back(std::vector<float>(kBlock, 0.0f));
  blocks.push_back(std::vector<float>(kBlock, -0.0f));
  blocks.push_back(std::vector<float>(kBlock, nan));
  blocks.push_back(std::vector<float>(kBlock, inf));
  blocks.push_back(std::vector<float>(kBlock, -inf));
  blocks.push_back(std::vector<float>(kBlock, max));
  blocks.push_back(std::vector<float>(kBlock, denorm));
  for (float special : {nan, signalling, negative_nan, big_payload, inf, -inf,
                        max, -max, denorm, -denorm, 0.0f, -0.0f}) {
    for (int position : {0, 1, 15, 16, 17, 30, 31}) {
      blocks.push_back(with(ramp(1.0f), position, special));
      blocks.push_back(
          with(std::vector<float>(kBlock, 0.0f), position, special));
    }
  }
  // NaN together with infinities, and a NaN in an otherwise zero block
  // that also holds a value.
  blocks.push_back(with(with(ramp(1.0f), 3, inf), 31, nan));
  blocks.push_back(with(with(ramp(1.0f), 3, nan), 20, -inf));
  blocks.push_back(
      with(with(std::vector<float>(kBlock, 0.0f), 5, 1.0f), 31, nan));
  // Scales across the ranges: f32 subnormal d (and infinite 1/d), f16
  // subnormal d, f16 overflow of d.
  for (float scale : {1e-45f, 1e-44f, 3e-43f, 1e-41f, 1e-39f, 3e-39f, 1e-38f,
                      2e-38f, 1e-37f, 1e-30f, 1e-9f,  6e-8f,  1e-7f,  1e-6f,
                      1e-5f,  6e-5f,  1e-3f,  1.0f,   500.0f, 520.0f, 3e5f,
                      8.4e6f, 1e10f,  1e30f,  1e37f,  1e38f,  3e38f}) {
    blocks.push_back(ramp(scale));
    blocks.push_back(ramp(-scale));
  }
  // Magnitude ties of opposite sign, in both orders.
  for (float value : {3.0f, 1e-6f, 7.0f}) {
    std::vector<float> block(kBlock, 0.5f);
    block[4] = value;
    block[9] = -value;
    blocks.push_back(block);
    block[4] = -value;
    block[9] = value;
    blocks.push_back(block);
  }
  // Exact ties after scaling: d = 1 (q8_0) with halves, d = -1 (q4_0).
  {
    std::vector<float> block(kBlock);
    block[0] = 127.0f;
    for (int j = 1; j < kBlock; ++j) block[j] = (j - 16) * 4 + 0.5f;
    blocks.push_back(block);
    std::vector<float> q4(kBlock);
    q4[0] = 8.0f;
    for (int j = 1; j < kBlock; ++j) q4[j] = (j - 16) * 0.5f;
    blocks.push_back(q4);
  }
  std::vector<float> flat;
  for (const std::vector<float>& block : blocks) {
    flat.insert(flat.end(), block.begin(), block.end());
  }
  return flat;
}

// Names a parameterised test after its kernel table.
struct KernelName {
  std::string operator()(
      const ::testing::TestParamInfo<const EncodingKernels*>& info) const {
    return info.param->name;
  }
};

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_CODEC_ENCODING_TEST_UTIL_H_
