#include "client/internal/raw_chunk.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"

namespace pstore::client_internal {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using Code = ::absl::StatusCode;

// Returns a ByteBuffer of `bytes` cut into slices at `cuts` (ascending
// offsets; a repeated or end offset makes an empty slice). Each slice is a
// refcounted copy, as gRPC receives them, however small.
grpc::ByteBuffer BufferOf(const std::string& bytes,
                          const std::vector<size_t>& cuts = {}) {
  std::vector<grpc::Slice> slices;
  size_t start = 0;
  auto add = [&](size_t end) {
    void* copy = std::malloc(std::max<size_t>(1, end - start));
    if (end > start) std::memcpy(copy, bytes.data() + start, end - start);
    slices.emplace_back(copy, end - start, &std::free);
    start = end;
  };
  for (size_t cut : cuts) add(cut);
  add(bytes.size());
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// Returns a ByteBuffer of `bytes` in slices of one byte each, as gRPC makes
// them from copies: inlined in the grpc_slice itself (and merged).
grpc::ByteBuffer InlinedBufferOf(const std::string& bytes) {
  std::vector<grpc::Slice> slices;
  for (char byte : bytes) slices.emplace_back(&byte, 1);
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// Returns the data of `chunk` in one string; fails the test if a span is
// empty or the sizes disagree.
std::string DataOf(const RawTensorChunk& chunk) {
  std::string data;
  for (std::span<const uint8_t> span : chunk.data()) {
    EXPECT_FALSE(span.empty());
    data.append(reinterpret_cast<const char*>(span.data()), span.size());
  }
  EXPECT_EQ(data.size(), chunk.data_size());
  return data;
}

// Expects `chunk` to hold what `expected` holds.
void ExpectChunk(const RawTensorChunk& chunk, const v1::TensorChunk& expected) {
  v1::TensorChunk fields = expected;
  fields.clear_data();
  std::string difference;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(fields, chunk.fields())) << difference;
  EXPECT_TRUE(chunk.fields().data().empty());
  EXPECT_EQ(DataOf(chunk), expected.data());
}

// A chunk with every field set, `data_size` bytes of data.
v1::TensorChunk FullChunk(size_t data_size) {
  v1::TensorChunk chunk;
  v1::TensorInfo* info = chunk.mutable_info();
  info->set_name("m@v1/layers.0.w");
  info->set_dtype("F32");
  info->add_shape(3);
  info->add_shape(300);
  info->set_stored_byte_length(3600);
  info->set_stored_xxh3_64(0x0123456789abcdef);
  info->set_encoding("raw");
  info->set_byte_length(3600);
  info->set_xxh3_64(0xfedcba9876543210);
  chunk.set_offset(1 << 20);
  std::vector<uint8_t> data = RandomBytes(data_size, data_size);
  chunk.set_data(std::string(data.begin(), data.end()));
  chunk.set_xxh3_64(0x1111222233334444);
  chunk.set_tensor_index(7);
  chunk.set_last(true);
  chunk.set_xxh3_64_of_all(0x5555666677778888);
  chunk.mutable_final_info()->set_name("m@v1/layers.0.w");
  chunk.mutable_final_info()->mutable_quantization_error()->set_rms_error(0.5);
  return chunk;
}

// A small chunk: every boundary and every pair of boundaries is cheap.
v1::TensorChunk SmallChunk() {
  v1::TensorChunk chunk;
  chunk.mutable_info()->set_name("m@v1/t");
  chunk.mutable_info()->set_byte_length(11);
  chunk.set_offset(300);
  chunk.set_data("hello world");
  chunk.set_xxh3_64(0x8000000000000001);
  chunk.set_last(true);
  return chunk;
}

TEST(RawTensorChunkTest, ParsesEveryFieldFromOneSlice) {
  v1::TensorChunk expected = FullChunk(100000);
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf(expected.SerializeAsString())));
  ExpectChunk(chunk, expected);
  EXPECT_EQ(chunk.data().size(), 1u);
}

TEST(RawTensorChunkTest, ParsesASmallChunkCutInTwoAtEveryByte) {
  v1::TensorChunk expected = SmallChunk();
  std::string bytes = expected.SerializeAsString();
  RawTensorChunk chunk;
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut));
    ASSERT_OK(chunk.Parse(BufferOf(bytes, {cut})));
    ExpectChunk(chunk, expected);
  }
}

TEST(RawTensorChunkTest, ParsesASmallChunkCutInThreeAtEveryPairOfBytes) {
  v1::TensorChunk expected = SmallChunk();
  std::string bytes = expected.SerializeAsString();
  RawTensorChunk chunk;
  for (size_t first = 0; first <= bytes.size(); ++first) {
    for (size_t second = first; second <= bytes.size(); ++second) {
      SCOPED_TRACE(absl::StrCat("cuts at ", first, " and ", second));
      ASSERT_OK(chunk.Parse(BufferOf(bytes, {first, second})));
      ExpectChunk(chunk, expected);
    }
  }
}

TEST(RawTensorChunkTest, ParsesAChunkOfOneByteSlices) {
  v1::TensorChunk expected = FullChunk(1000);
  std::string bytes = expected.SerializeAsString();
  std::vector<size_t> cuts;
  for (size_t i = 1; i < bytes.size(); ++i) cuts.push_back(i);
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf(bytes, cuts)));
  ExpectChunk(chunk, expected);
  EXPECT_EQ(chunk.data().size(), 1000u);
}

TEST(RawTensorChunkTest, ParsesInlinedSlicesAfterTheBufferIsGone) {
  v1::TensorChunk expected = FullChunk(1000);
  RawTensorChunk chunk;
  {
    grpc::ByteBuffer buffer = InlinedBufferOf(expected.SerializeAsString());
    ASSERT_OK(chunk.Parse(buffer));
  }
  ExpectChunk(chunk, expected);
}

TEST(RawTensorChunkTest, ParsesDataSplitAcrossManySlicesOfMixedSizes) {
  v1::TensorChunk expected = FullChunk(1 << 20);
  std::string bytes = expected.SerializeAsString();
  std::vector<size_t> cuts;
  std::vector<uint8_t> sizes = RandomBytes(4096, 1);
  size_t at = 0;
  for (size_t i = 0; at < bytes.size(); ++i) {
    at += 1 + sizes[i % sizes.size()] * 37;
    if (at < bytes.size()) cuts.push_back(at);
  }
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf(bytes, cuts)));
  ExpectChunk(chunk, expected);
  EXPECT_GT(chunk.data().size(), 100u);
}

TEST(RawTensorChunkTest, PointsIntoTheSlicesInsteadOfCopyingData) {
  v1::TensorChunk expected = FullChunk(1 << 20);
  grpc::ByteBuffer buffer = BufferOf(expected.SerializeAsString());
  grpc::Slice slice;
  ASSERT_TRUE(buffer.TrySingleSlice(&slice).ok());
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(buffer));
  ASSERT_EQ(chunk.data().size(), 1u);
  EXPECT_GE(chunk.data()[0].data(), slice.begin());
  EXPECT_LE(chunk.data()[0].data() + chunk.data()[0].size(), slice.end());
}

TEST(RawTensorChunkTest, KeepsTheSlicesAliveAfterTheBufferIsGone) {
  v1::TensorChunk expected = FullChunk(5000);
  RawTensorChunk chunk;
  {
    grpc::ByteBuffer buffer = BufferOf(expected.SerializeAsString(), {10, 99});
    ASSERT_OK(chunk.Parse(buffer));
  }
  ExpectChunk(chunk, expected);
}

TEST(RawTensorChunkTest, ReadsAChunkWithoutDataAsEmpty) {
  v1::TensorChunk expected = FullChunk(0);
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf(expected.SerializeAsString(), {5})));
  ExpectChunk(chunk, expected);
  EXPECT_TRUE(chunk.data().empty());
  EXPECT_EQ(chunk.data_size(), 0u);
}

TEST(RawTensorChunkTest, ReadsAnExplicitEmptyDataField) {
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf(std::string("\x10\x05\x1a\x00", 4))));
  EXPECT_EQ(chunk.fields().offset(), 5u);
  EXPECT_TRUE(chunk.data().empty());
  EXPECT_EQ(chunk.data_size(), 0u);
}

TEST(RawTensorChunkTest, ReadsAnEmptyMessageAsADefaultChunk) {
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf("")));
  ExpectChunk(chunk, v1::TensorChunk());
  ASSERT_OK(chunk.Parse(grpc::ByteBuffer()));
  ExpectChunk(chunk, v1::TensorChunk());
}

TEST(RawTensorChunkTest, KeepsFieldsItDoesNotKnow) {
  v1::TensorChunk expected = SmallChunk();
  // Fields 100 (varint), 101 (fixed64), 102 (length-delimited) and 103
  // (fixed32), as a newer server could send, around the data.
  std::string unknown = std::string("\xa0\x06\x2a", 3) +
                        std::string("\xa9\x06", 2) + std::string(8, '\x01') +
                        std::string("\xb2\x06\x03xyz", 6) +
                        std::string("\xbd\x06", 2) + std::string(4, '\x02');
  std::string bytes = unknown + expected.SerializeAsString() + unknown;
  v1::TensorChunk reference;
  ASSERT_TRUE(reference.ParseFromString(bytes));
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf(bytes, {1, 17, 30})));
  ExpectChunk(chunk, reference);
  EXPECT_EQ(chunk.fields()
                .GetReflection()
                ->GetUnknownFields(chunk.fields())
                .field_count(),
            8);
}

TEST(RawTensorChunkTest, ReplacesWhatItHeldOnEachParse) {
  RawTensorChunk chunk;
  ASSERT_OK(chunk.Parse(BufferOf(FullChunk(3000).SerializeAsString(), {50})));
  v1::TensorChunk expected = SmallChunk();
  ASSERT_OK(chunk.Parse(BufferOf(expected.SerializeAsString())));
  ExpectChunk(chunk, expected);
}

// Every prefix of a message that ends inside a field is DataLoss, however
// it is sliced; a prefix that ends between fields is a valid chunk.
TEST(RawTensorChunkTest, RefusesEveryTruncationInsideAField) {
  v1::TensorChunk full = FullChunk(40);
  // The message, one field at a time, in field order: SerializeAsString
  // writes the same bytes.
  std::vector<std::string> fields;
  for (int number = 1; number <= 8; ++number) {
    v1::TensorChunk one = full;
    const auto* descriptor = one.GetDescriptor();
    for (int i = 0; i < descriptor->field_count(); ++i) {
      if (descriptor->field(i)->number() != number) {
        one.GetReflection()->ClearField(&one, descriptor->field(i));
      }
    }
    fields.push_back(one.SerializeAsString());
  }
  std::string bytes;
  std::vector<size_t> boundaries = {0};
  for (const std::string& field : fields) {
    bytes += field;
    boundaries.push_back(bytes.size());
  }
  ASSERT_EQ(bytes, full.SerializeAsString());

  RawTensorChunk chunk;
  for (size_t length = 0; length < bytes.size(); ++length) {
    SCOPED_TRACE(absl::StrCat("first ", length, " bytes"));
    std::string prefix = bytes.substr(0, length);
    std::vector<size_t> one_byte_cuts;
    for (size_t i = 1; i < length; ++i) one_byte_cuts.push_back(i);
    bool between_fields = std::find(boundaries.begin(), boundaries.end(),
                                    length) != boundaries.end();
    for (const grpc::ByteBuffer& buffer :
         {BufferOf(prefix), BufferOf(prefix, one_byte_cuts)}) {
      absl::Status status = chunk.Parse(buffer);
      if (between_fields) {
        EXPECT_OK(status);
      } else {
        EXPECT_THAT(status, StatusIs(Code::kDataLoss));
        EXPECT_TRUE(chunk.data().empty());
        EXPECT_EQ(chunk.data_size(), 0u);
      }
    }
  }
}

TEST(RawTensorChunkTest, RefusesMalformedMessages) {
  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"truncated tag", std::string("\x80", 1), "truncated or overlong tag"},
      {"overlong tag", std::string(11, '\x80') + std::string("\x01", 1),
       "truncated or overlong tag"},
      {"tag past 32 bits", std::string("\x80\x80\x80\x80\x80\x01\x00", 7),
       "is not valid"},
      {"field 0", std::string("\x00\x00", 2), "is not valid"},
      {"truncated varint value", std::string("\x10\x80\x80", 3),
       "truncated or overlong varint"},
      {"overlong varint value",
       std::string("\x10", 1) + std::string(10, '\xff') +
           std::string("\x01", 1),
       "truncated or overlong varint"},
      {"truncated length", std::string("\x1a\x80", 2),
       "truncated or overlong length"},
      {"data past the end",
       std::string("\x1a\x05"
                   "abcd",
                   6),
       "runs past the end"},
      {"huge length",
       std::string("\x1a\xff\xff\xff\xff\xff\xff\xff\xff\x7f"
                   "ab",
                   12),
       "runs past the end"},
      {"truncated fixed64", std::string("\x21\x01\x02\x03", 4),
       "runs past the end"},
      {"truncated fixed32", std::string("\x25\x01\x02\x03", 4),
       "runs past the end"},
      {"wire type 3 (group)", std::string("\x0b\x0c", 2), "wire type 3"},
      {"wire type 4", std::string("\x0c", 1), "wire type 4"},
      {"wire type 6", std::string("\x0e\x00", 2), "wire type 6"},
      {"wire type 7", std::string("\x0f\x00", 2), "wire type 7"},
      {"data as a varint", std::string("\x18\x01", 2), "data has wire type 0"},
      {"data twice", std::string("\x1a\x01x\x10\x01\x1a\x01y", 8),
       "data appears twice"},
      {"info that does not parse", std::string("\x0a\x02\xff\xff", 4),
       "do not parse"},
      {"info with a bad string", std::string("\x0a\x03\x0a\x01\xff", 5),
       "do not parse"},
  };
  RawTensorChunk chunk;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<size_t> one_byte_cuts;
    for (size_t i = 1; i < c.bytes.size(); ++i) one_byte_cuts.push_back(i);
    for (const grpc::ByteBuffer& buffer :
         {BufferOf(c.bytes), BufferOf(c.bytes, one_byte_cuts)}) {
      EXPECT_THAT(chunk.Parse(buffer),
                  StatusIs(Code::kDataLoss, ::testing::HasSubstr(c.message)));
      EXPECT_TRUE(chunk.data().empty());
    }
  }
  // The object is usable again.
  v1::TensorChunk expected = SmallChunk();
  ASSERT_OK(chunk.Parse(BufferOf(expected.SerializeAsString())));
  ExpectChunk(chunk, expected);
}

}  // namespace
}  // namespace pstore::client_internal
