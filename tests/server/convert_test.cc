// PutDataPieces: a PutTensorRequest that is one `data` field gives the same
// bytes as protobuf's parser, however gRPC cut it into slices; every other
// message is left to the parser.

#include "server/convert.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "pstore/v1/pstore.pb.h"
#include "tests/testing/random_bytes.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;

// Cuts `bytes` into slices at each of `cuts` (ascending offsets).
std::vector<grpc::Slice> Cut(const std::string& bytes,
                             const std::vector<size_t>& cuts) {
  std::vector<grpc::Slice> slices;
  size_t start = 0;
  for (size_t cut : cuts) {
    slices.emplace_back(bytes.data() + start, cut - start);
    start = cut;
  }
  slices.emplace_back(bytes.data() + start, bytes.size() - start);
  return slices;
}

std::string Joined(const std::vector<std::span<const uint8_t>>& pieces) {
  std::string joined;
  for (std::span<const uint8_t> piece : pieces) {
    joined.append(reinterpret_cast<const char*>(piece.data()), piece.size());
  }
  return joined;
}

std::string DataMessage(size_t size) {
  std::vector<uint8_t> bytes = RandomBytes(size, size);
  v1::PutTensorRequest request;
  request.set_data(std::string(bytes.begin(), bytes.end()));
  return request.SerializeAsString();
}

TEST(PutDataPiecesTest, GivesTheParsersBytesForEverySlicing) {
  std::vector<std::span<const uint8_t>> pieces;
  // Lengths of one, two and three varint bytes, and none at all.
  for (size_t size : {size_t{0}, size_t{1}, size_t{127}, size_t{128},
                      size_t{300}, size_t{70000}}) {
    const std::string wire = DataMessage(size);
    v1::PutTensorRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(wire));
    // One slice; a cut inside the key and length; a cut after each byte of
    // the prefix; many small slices.
    std::vector<std::vector<size_t>> slicings = {{}, {1}, {2}};
    if (wire.size() > 3) slicings.push_back({1, 2, 3});
    std::vector<size_t> many;
    for (size_t at = 5; at < wire.size(); at += 7) many.push_back(at);
    slicings.push_back(many);
    for (const std::vector<size_t>& cuts : slicings) {
      if (!cuts.empty() && cuts.back() >= wire.size()) continue;
      // The pieces point into the slices (small ones hold their bytes
      // inline), which must outlive them.
      std::vector<grpc::Slice> slices = Cut(wire, cuts);
      ASSERT_TRUE(PutDataPieces(slices, pieces))
          << size << " bytes, " << cuts.size() << " cuts";
      EXPECT_EQ(Joined(pieces), parsed.data()) << size << " bytes";
    }
  }
}

TEST(PutDataPiecesTest, LeavesEveryOtherMessageToTheParser) {
  std::vector<std::span<const uint8_t>> pieces;
  v1::PutTensorRequest header;
  header.mutable_header()->set_name("m@v1/w");
  EXPECT_FALSE(PutDataPieces(Cut(header.SerializeAsString(), {}), pieces));

  // Data then a header: the parser's last field wins, so it must parse.
  std::string two = DataMessage(10) + header.SerializeAsString();
  EXPECT_FALSE(PutDataPieces(Cut(two, {}), pieces));
  // Two data fields.
  EXPECT_FALSE(
      PutDataPieces(Cut(DataMessage(10) + DataMessage(20), {}), pieces));
  // An unknown field after the data.
  EXPECT_FALSE(PutDataPieces(
      Cut(DataMessage(10) + std::string("\x18\x01", 2), {}), pieces));
  // Cut short: the length says more than there is.
  std::string whole = DataMessage(300);
  EXPECT_FALSE(PutDataPieces(Cut(whole.substr(0, 200), {}), pieces));
  // A length whose varint never ends.
  EXPECT_FALSE(PutDataPieces(Cut(std::string("\x12\xff\xff", 3), {}), pieces));
  // A varint of 11 bytes.
  EXPECT_FALSE(PutDataPieces(Cut(std::string("\x12") + std::string(10, '\xff') +
                                     std::string("\x01", 1),
                                 {}),
                             pieces));
  // Nothing at all (an empty message: neither header nor data).
  EXPECT_FALSE(PutDataPieces({}, pieces));
}

}  // namespace
}  // namespace pstore
