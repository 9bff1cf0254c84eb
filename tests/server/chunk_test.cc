// MakeChunkBuffer: the byte buffer it builds around a block's bytes (or
// pieces of several blocks) parses as an ordinary pstore.v1.TensorChunk,
// with the fields given and the bytes in `data`, and holds the blocks until
// it is destroyed.

#include "server/chunk.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "storage/block.h"
#include "tests/testing/random_bytes.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;

// Returns `buffer` parsed as a TensorChunk, or nothing if it does not parse.
std::optional<v1::TensorChunk> Parse(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return std::nullopt;
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  v1::TensorChunk chunk;
  if (!chunk.ParseFromString(bytes)) return std::nullopt;
  return chunk;
}

// Returns a chunk with every field but `data` set.
v1::TensorChunk Fields() {
  v1::TensorChunk fields;
  v1::TensorInfo* info = fields.mutable_info();
  info->set_name("llama@v1/layers.0.w");
  info->set_dtype("BF16");
  info->add_shape(4096);
  info->add_shape(4096);
  info->set_xxh3_64(0x0123456789abcdefu);
  fields.set_offset(uint64_t{3} << 32);
  fields.set_xxh3_64(0xfedcba9876543210u);
  fields.set_tensor_index(17);
  fields.set_last(true);
  fields.set_xxh3_64_of_all(42);
  fields.mutable_final_info()->set_encoding("q8_0");
  return fields;
}

// Expects `chunk` to carry the fields of Fields() and `data`.
void ExpectChunk(const v1::TensorChunk& chunk, const std::string& data) {
  v1::TensorChunk want = Fields();
  want.set_data(data);
  EXPECT_EQ(chunk.SerializeAsString(), want.SerializeAsString());
  EXPECT_EQ(chunk.data().size(), data.size());
  EXPECT_TRUE(chunk.data() == data);
}

std::string Bytes(const std::vector<uint8_t>& bytes, size_t offset,
                  size_t length) {
  return std::string(reinterpret_cast<const char*>(bytes.data()) + offset,
                     length);
}

TEST(ChunkTest, EmptyDataGivesTheFieldsAlone) {
  std::optional<v1::TensorChunk> chunk =
      Parse(MakeChunkBuffer(Fields(), nullptr, 0, 0));
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, "");
  std::vector<uint8_t> bytes = RandomBytes(4096, 1);
  BlockRef block = CopyBlock(bytes);
  chunk = Parse(MakeChunkBuffer(Fields(), block, 100, 0));
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, "");
  // No field set at all: an empty message, data included.
  chunk = Parse(MakeChunkBuffer(v1::TensorChunk(), nullptr, 0, 0));
  ASSERT_TRUE(chunk.has_value());
  EXPECT_EQ(chunk->ByteSizeLong(), 0u);
}

TEST(ChunkTest, DataIsTheRangeOfTheBlockAtAnyOffset) {
  const std::vector<uint8_t> bytes = RandomBytes(100000, 2);
  BlockRef block = CopyBlock(bytes);
  struct Range {
    size_t offset;
    size_t length;
  };
  for (Range range :
       {Range{0, bytes.size()}, Range{0, 1}, Range{1, 127}, Range{1, 128},
        Range{4095, 16385}, Range{99999, 1}, Range{50000, 50000}}) {
    std::optional<v1::TensorChunk> chunk =
        Parse(MakeChunkBuffer(Fields(), block, range.offset, range.length));
    ASSERT_TRUE(chunk.has_value()) << range.offset << "+" << range.length;
    ExpectChunk(*chunk, Bytes(bytes, range.offset, range.length));
  }
  // Without other fields, the message is data alone.
  std::optional<v1::TensorChunk> chunk =
      Parse(MakeChunkBuffer(v1::TensorChunk(), block, 10, 300));
  ASSERT_TRUE(chunk.has_value());
  EXPECT_TRUE(chunk->data() == Bytes(bytes, 10, 300));
  EXPECT_FALSE(chunk->has_info());
}

TEST(ChunkTest, LargeBlocksNeedLongLengthPrefixes) {
  // 16 MiB + 3, four times the default block size: a four-byte varint
  // length.
  const size_t size = (size_t{16} << 20) + 3;
  const std::vector<uint8_t> bytes = RandomBytes(size, 3);
  BlockRef block = CopyBlock(bytes);
  std::optional<v1::TensorChunk> chunk =
      Parse(MakeChunkBuffer(Fields(), block, 0, size));
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, Bytes(bytes, 0, size));
  chunk = Parse(MakeChunkBuffer(Fields(), block, 1, size - 2));
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, Bytes(bytes, 1, size - 2));
}

TEST(ChunkTest, TheBufferHoldsTheBlockUntilItIsDestroyed) {
  const std::vector<uint8_t> bytes = RandomBytes(8192, 4);
  BlockRef block = CopyBlock(bytes);
  std::weak_ptr<const BlockData> watch = block;
  auto buffer = std::make_unique<grpc::ByteBuffer>(
      MakeChunkBuffer(Fields(), block, 4096, 4096));
  block.reset();
  EXPECT_FALSE(watch.expired());
  std::optional<v1::TensorChunk> chunk = Parse(*buffer);
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, Bytes(bytes, 4096, 4096));
  // The data slice points into the block: no copy was made.
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(buffer->Dump(&slices).ok());
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[1].begin(), watch.lock()->data() + 4096);
  slices.clear();
  buffer.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(ChunkTest, DataIsThePiecesOfSeveralBlocksInOrder) {
  const std::vector<uint8_t> first = RandomBytes(70000, 5);
  const std::vector<uint8_t> second = RandomBytes(300, 6);
  const std::vector<uint8_t> third = RandomBytes(200000, 7);
  BlockRef a = CopyBlock(first);
  BlockRef b = CopyBlock(second);
  BlockRef c = CopyBlock(third);
  std::weak_ptr<const BlockData> watch_a = a;
  std::vector<DataPiece> pieces = {{a, 69000, 1000},
                                   {b, 0, 300},
                                   {c, 5, 0},  // Empty: left out.
                                   {c, 0, 150000}};
  auto buffer =
      std::make_unique<grpc::ByteBuffer>(MakeChunkBuffer(Fields(), pieces));
  pieces.clear();
  a.reset();
  EXPECT_FALSE(watch_a.expired());
  std::optional<v1::TensorChunk> chunk = Parse(*buffer);
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, Bytes(first, 69000, 1000) + Bytes(second, 0, 300) +
                          Bytes(third, 0, 150000));
  // One slice of fields, then one per non-empty piece, in place.
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(buffer->Dump(&slices).ok());
  ASSERT_EQ(slices.size(), 4u);
  EXPECT_EQ(slices[1].begin(), watch_a.lock()->data() + 69000);
  EXPECT_EQ(slices[2].begin(), b->data());
  EXPECT_EQ(slices[3].begin(), c->data());
  slices.clear();
  buffer.reset();
  EXPECT_TRUE(watch_a.expired());

  // No piece, or only empty ones: the fields alone.
  chunk = Parse(MakeChunkBuffer(Fields(), std::vector<DataPiece>()));
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, "");
  chunk = Parse(MakeChunkBuffer(Fields(), std::vector<DataPiece>{{b, 3, 0}}));
  ASSERT_TRUE(chunk.has_value());
  ExpectChunk(*chunk, "");
}

}  // namespace
// A peer's answer: a BlockData whose data is the whole block, any size.
TEST(ChunkTest, BlockDataIsTheWholeBlock) {
  for (size_t size : {size_t{1}, size_t{127}, size_t{128}, size_t{4} << 20}) {
    const std::vector<uint8_t> bytes = RandomBytes(size, 7);
    grpc::ByteBuffer buffer = MakeBlockDataBuffer(CopyBlock(bytes));
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(buffer.Dump(&slices).ok());
    std::string serialized;
    for (const grpc::Slice& slice : slices) {
      serialized.append(reinterpret_cast<const char*>(slice.begin()),
                        slice.size());
    }
    v1::BlockData data;
    ASSERT_TRUE(data.ParseFromString(serialized)) << size;
    EXPECT_TRUE(data.data() == Bytes(bytes, 0, size)) << size;
  }
}

}  // namespace pstore
