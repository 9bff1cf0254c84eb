// Read plans and the chunk cursor, without a store: what a read of a
// tensor or of a shard of a revision sends, and how it is cut into checked
// chunks.

#include "storage/read_plan.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "codec/encoding_plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/block_reader.h"
#include "storage/chunk_cursor.h"
#include "storage/dram/dram_tier.h"
#include "storage/encoded_blocks.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;

constexpr uint64_t kBlockBytes = 64 << 10;

Encoding EncodingForPullOf(const TensorMeta& tensor, Encoding requested) {
  return EncodingForPull(tensor.dtype, tensor.shape, requested);
}

// Tensors with real blocks, for plans and cursors.
class PlanFixture : public ::testing::Test {
 protected:
  // Makes tensor `name` of `dtype` and `shape` from random bytes, cut into
  // kBlockBytes blocks, and remembers its blocks' bytes.
  TensorMeta MakeTensor(const std::string& name, DType dtype,
                        std::vector<int64_t> shape, uint64_t seed) {
    TensorMeta meta;
    meta.name = *ParseTensorName("m@v1/" + name);
    meta.dtype = dtype;
    meta.shape = std::move(shape);
    meta.byte_length = *TensorByteLength(dtype, meta.shape);
    meta.block_bytes = kBlockBytes;
    std::vector<uint8_t> bytes = RandomBytes(meta.byte_length, seed);
    if (dtype == DType::kF32) {
      // Finite floats, so encodings are exact functions of the bytes.
      for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        float value = static_cast<float>(i % 977) * 0.25f;
        std::memcpy(&bytes[i], &value, 4);
      }
    }
    meta.xxh3_64 = Xxh3_64(bytes);
    for (uint64_t at = 0; at < bytes.size(); at += kBlockBytes) {
      std::span<const uint8_t> block(
          bytes.data() + at,
          std::min<uint64_t>(kBlockBytes, bytes.size() - at));
      BlockId id = BlockId::Of(block);
      meta.blocks.push_back(id);
      blocks_[id] = CopyBlock(block);
    }
    return meta;
  }

  // Returns the bytes of `part`'s slice `i`, in the part's encoding.
  EncodedBlock BlockOf(const ReadPart& part, size_t i) {
    const BlockRef& stored = blocks_.at(part.slices[i].id);
    if (IsIdentityEncoding(part.tensor.dtype, part.encoding)) {
      return EncodedBlock{stored, QuantizationStats()};
    }
    uint64_t elements = stored->size() / DTypeSize(part.tensor.dtype);
    std::vector<uint8_t> out(
        EncodedByteLength(part.tensor.dtype, part.encoding, elements));
    QuantizationStats stats;
    EXPECT_OK(Encode(part.tensor.dtype, stored->bytes(), part.encoding, out,
                     IsQuantized(part.encoding) ? &stats : nullptr));
    return EncodedBlock{CopyBlock(out), stats};
  }

  absl::flat_hash_map<BlockId, BlockRef> blocks_;
};

using ReadPlanTest = PlanFixture;

TEST_F(ReadPlanTest, ShardsCoverEveryEncodedByteOnceInManifestOrder) {
  std::vector<TensorMeta> tensors = {
      MakeTensor("a", DType::kF32, {64, 1024}, 1),  // 4 blocks; q8_0 fits.
      MakeTensor("b", DType::kF32, {100}, 2),       // 1-D: stays raw.
      MakeTensor("c", DType::kU8, {0}, 3),          // Empty.
      MakeTensor("d", DType::kF32, {96, 2048}, 4),  // 12 blocks.
      MakeTensor("e", DType::kI32, {7, 9}, 5),      // Not float: raw.
  };
  for (Encoding encoding : {Encoding::kRaw, Encoding::kQ8_0, Encoding::kF16}) {
    for (uint32_t count : {1u, 2u, 3u, 7u, 40u}) {
      // Per tensor: the encoded bytes each shard covers, and the count of
      // parts naming an empty tensor.
      std::map<uint32_t, std::vector<std::pair<uint64_t, uint64_t>>> covered;
      int empty_parts = 0;
      uint32_t last_index = 0;
      for (uint32_t shard = 0; shard < count; ++shard) {
        std::vector<ReadPart> parts =
            PlanShard(tensors, encoding, shard, count, nullptr);
        for (const ReadPart& part : parts) {
          EXPECT_GE(part.tensor_index, last_index) << "manifest order";
          last_index = part.tensor_index;
          if (part.slices.empty()) ++empty_parts;
          uint64_t at = part.offset;
          uint64_t sum = 0;
          for (const BlockSlice& slice : part.slices) {
            EXPECT_EQ(slice.tensor_offset + slice.offset, at);
            at += slice.length;
            sum += slice.length;
          }
          EXPECT_EQ(sum, part.byte_length);
          covered[part.tensor_index].emplace_back(part.offset,
                                                  part.byte_length);
        }
      }
      EXPECT_EQ(empty_parts, 1) << "the empty tensor is sent once";
      for (uint32_t i = 0; i < tensors.size(); ++i) {
        uint64_t encoded =
            EncodedView(tensors[i], EncodingForPullOf(tensors[i], encoding))
                .byte_length;
        std::sort(covered[i].begin(), covered[i].end());
        uint64_t at = 0;
        for (const auto& [offset, length] : covered[i]) {
          EXPECT_EQ(offset, at) << "tensor " << i << " count " << count;
          at += length;
        }
        EXPECT_EQ(at, encoded) << "tensor " << i << " count " << count;
      }
    }
  }
}

TEST_F(ReadPlanTest, OnlyWholePartsCarryTheHashKnownBeforehand) {
  std::vector<TensorMeta> tensors = {
      MakeTensor("a", DType::kF32, {64, 1024}, 1),
      MakeTensor("b", DType::kF32, {16, 64}, 2),
  };
  std::vector<ReadPart> first =
      PlanShard(tensors, Encoding::kRaw, 0, 2, nullptr);
  std::vector<ReadPart> second =
      PlanShard(tensors, Encoding::kRaw, 1, 2, nullptr);
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  for (const std::vector<ReadPart>* parts : {&first, &second}) {
    for (const ReadPart& part : *parts) {
      EXPECT_EQ(part.whole, part.offset == 0 &&
                                part.byte_length == part.tensor.byte_length);
      EXPECT_EQ(part.xxh3_64.has_value(), part.whole);
      if (part.whole) {
        EXPECT_EQ(*part.xxh3_64, part.tensor.xxh3_64);
      }
    }
  }
  // A quantized part's hash is not known until it has been read once.
  std::vector<ReadPart> q8 = PlanShard(tensors, Encoding::kQ8_0, 0, 1, nullptr);
  ASSERT_EQ(q8.size(), 2u);
  EXPECT_TRUE(q8[0].whole);
  EXPECT_FALSE(q8[0].xxh3_64.has_value());
  EXPECT_FALSE(q8[0].quantization.has_value());
}

TEST_F(ReadPlanTest, TensorReadsRefuseWhatTheEncodingCannotSend) {
  TensorMeta floats = MakeTensor("a", DType::kF32, {64, 1024}, 1);
  TensorMeta ints = MakeTensor("b", DType::kI32, {64}, 2);
  EXPECT_THAT(PlanTensorRead(ints, Encoding::kQ8_0, 0, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PlanTensorRead(floats, Encoding::kQ8_0, 1, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PlanTensorRead(floats, Encoding::kQ8_0, 0, 35, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(
      ReadPart range, PlanTensorRead(floats, Encoding::kQ8_0, 34, 68, nullptr));
  EXPECT_FALSE(range.whole);
  EXPECT_EQ(range.byte_length, 68u);
  EXPECT_THAT(
      PlanTensorRead(floats, Encoding::kRaw, floats.byte_length, 1, nullptr),
      StatusIs(absl::StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(ReadPart whole,
                       PlanTensorRead(floats, Encoding::kF32, 0, 0, nullptr));
  EXPECT_TRUE(whole.whole);
  EXPECT_EQ(whole.xxh3_64, floats.xxh3_64);
}

using ChunkCursorTest = PlanFixture;

TEST_F(ChunkCursorTest, ChunksAreContiguousCheckedAndEndWithTheWholeHash) {
  DramTierOptions options;
  options.capacity_bytes = 16 << 20;
  std::unique_ptr<DramTier> dram = *DramTier::Open(options);
  BlockReader reader(TierSet{dram.get(), nullptr, nullptr}, 1, nullptr);
  EncodedBlockCache summaries(dram.get(), &reader, 1);

  std::vector<TensorMeta> tensors = {
      MakeTensor("a", DType::kF32, {64, 1024}, 1),
      MakeTensor("empty", DType::kU8, {0}, 2),
      MakeTensor("c", DType::kF32, {33, 1000}, 3),
  };
  for (Encoding encoding : {Encoding::kRaw, Encoding::kQ8_0}) {
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<ReadPart> parts =
          PlanShard(tensors, encoding, 0, 1, &summaries);
      ChunkCursor cursor(parts, 20000, &summaries);
      std::vector<uint8_t> sent;  // Of the current part.
      size_t firsts = 0, lasts = 0;
      for (size_t unit = 0; unit < cursor.num_units(); ++unit) {
        const ReadPart& part = cursor.part_of(unit);
        EncodedBlock block;
        if (!cursor.is_empty(unit)) {
          block = BlockOf(part, static_cast<size_t>(&cursor.slice_of(unit) -
                                                    &part.slices[0]));
        }
        for (int guard = 0; guard < 1000; ++guard) {
          Chunk chunk = cursor.Next(unit, block);
          if (chunk.first) {
            ++firsts;
            sent.clear();
          }
          EXPECT_EQ(chunk.tensor_offset, part.offset + sent.size());
          EXPECT_LE(chunk.length, 20000u);
          std::span<const uint8_t> bytes;
          if (chunk.length > 0) {
            bytes =
                chunk.block->bytes().subspan(chunk.block_offset, chunk.length);
          }
          EXPECT_EQ(chunk.xxh3_64, Xxh3_64(bytes));
          sent.insert(sent.end(), bytes.begin(), bytes.end());
          if (chunk.last) {
            ++lasts;
            EXPECT_EQ(sent.size(), part.byte_length);
            EXPECT_EQ(chunk.xxh3_64_of_all, Xxh3_64(sent));
            // A quantized tensor's hash and error are learnt on the first
            // pass and known beforehand on the second.
            EXPECT_EQ(chunk.derived,
                      pass == 0 &&
                          !IsIdentityEncoding(part.tensor.dtype, part.encoding))
                << part.tensor.name.ToString();
          }
          if (chunk.unit_done) break;
        }
      }
      EXPECT_EQ(firsts, tensors.size());
      EXPECT_EQ(lasts, tensors.size());
    }
  }
}

}  // namespace
}  // namespace pstore
