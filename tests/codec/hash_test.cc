#include "codec/hash.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;

std::span<const uint8_t> AsBytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

TEST(HashTest, MatchesXxhsumKnownAnswers) {
  // From `printf '' | xxhsum -H3` / `-H2` and `printf abc | ...`.
  EXPECT_EQ(Xxh3_64(AsBytes("")), 0x2d06800538d394c2ull);
  EXPECT_EQ(Xxh3_64(AsBytes("abc")), 0x78af5f94892f3950ull);
  EXPECT_EQ(BlockId::Of(AsBytes("")).ToHex(),
            "99aa06d3014798d86001c324468d497f");
  EXPECT_EQ(BlockId::Of(AsBytes("abc")).ToHex(),
            "06b05ab6733a618578af5f94892f3950");
}

TEST(HashTest, StreamingEqualsOneShotForAnySplit) {
  std::vector<uint8_t> bytes = RandomBytes(100003, 7);
  for (size_t chunk : {1u, 7u, 64u, 4096u, 65536u, 100003u}) {
    Xxh3_64Hasher h64;
    Xxh3_128Hasher h128;
    for (size_t i = 0; i < bytes.size(); i += chunk) {
      std::span<const uint8_t> part(bytes.data() + i,
                                    std::min(chunk, bytes.size() - i));
      h64.Update(part);
      h128.Update(part);
    }
    EXPECT_EQ(h64.Digest(), Xxh3_64(bytes)) << chunk;
    EXPECT_EQ(h128.Digest(), Xxh3_128(bytes)) << chunk;
  }
}

TEST(HashTest, ResetForgetsInput) {
  Xxh3_64Hasher hasher;
  hasher.Update(AsBytes("junk"));
  hasher.Reset();
  hasher.Update(AsBytes("abc"));
  EXPECT_EQ(hasher.Digest(), Xxh3_64(AsBytes("abc")));
}

TEST(BlockIdTest, BytesAndHexRoundTrip) {
  BlockId id = BlockId::Of(RandomBytes(4096, 1));
  ASSERT_OK_AND_ASSIGN(BlockId from_bytes,
                       BlockId::FromBytes(id.ToByteString()));
  EXPECT_EQ(from_bytes, id);
  ASSERT_OK_AND_ASSIGN(BlockId from_hex, BlockId::FromHex(id.ToHex()));
  EXPECT_EQ(from_hex, id);
  EXPECT_EQ(id.ToHex().size(), 32u);
}

TEST(BlockIdTest, RefusesMalformedForms) {
  EXPECT_THAT(BlockId::FromBytes("short"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BlockId::FromHex("xyz"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BlockId::FromHex(std::string(32, 'g')),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BlockIdTest, DistinctBytesGiveDistinctIds) {
  absl::flat_hash_set<BlockId> ids;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    ids.insert(BlockId::Of(RandomBytes(64, seed)));
  }
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace pstore
