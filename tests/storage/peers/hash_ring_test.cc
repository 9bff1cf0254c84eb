#include "storage/peers/hash_ring.h"

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/random_bytes.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr int kVirtualNodes = 64;

// Returns `count` ids spread as the ids of real blocks are (they are
// hashes), from a generator seeded with `seed`.
std::vector<BlockId> RandomIds(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BlockId> ids;
  ids.reserve(count);
  for (int i = 0; i < count; ++i) {
    uint64_t low = rng();
    uint64_t high = rng();
    ids.push_back(BlockId(Hash128{low, high}));
  }
  return ids;
}

const std::vector<std::string> kFourNodes = {"10.0.0.1:7070", "10.0.0.2:7070",
                                             "10.0.0.3:7070", "10.0.0.4:7070"};

TEST(HashRingTest, EmptyRingHasNoOwner) {
  HashRing ring({}, kVirtualNodes);
  EXPECT_THAT(ring.addresses(), IsEmpty());
  for (const BlockId& id : RandomIds(100, 1)) {
    EXPECT_EQ(ring.Owner(id), "");
  }
}

TEST(HashRingTest, OneNodeOwnsEveryBlock) {
  HashRing ring({"10.0.0.1:7070"}, kVirtualNodes);
  for (const BlockId& id : RandomIds(1000, 2)) {
    EXPECT_EQ(ring.Owner(id), "10.0.0.1:7070");
  }
  // Ids at the ends of the ring wrap to the node too.
  EXPECT_EQ(ring.Owner(BlockId(Hash128{0, 0})), "10.0.0.1:7070");
  EXPECT_EQ(ring.Owner(BlockId(Hash128{UINT64_MAX, UINT64_MAX})),
            "10.0.0.1:7070");
}

TEST(HashRingTest, OneVirtualNodePerNodeStillNamesAnOwner) {
  HashRing ring(kFourNodes, 1);
  EXPECT_EQ(ring.virtual_nodes(), 1);
  for (const BlockId& id : RandomIds(1000, 3)) {
    EXPECT_THAT(kFourNodes, ::testing::Contains(ring.Owner(id)));
  }
}

TEST(HashRingTest, SameMembersInAnyOrderNameTheSameOwners) {
  HashRing ring(kFourNodes, kVirtualNodes);
  HashRing reversed(
      {kFourNodes[3], kFourNodes[2], kFourNodes[1], kFourNodes[0]},
      kVirtualNodes);
  HashRing shuffled(
      {kFourNodes[2], kFourNodes[0], kFourNodes[3], kFourNodes[1]},
      kVirtualNodes);
  EXPECT_EQ(ring.addresses(), reversed.addresses());
  EXPECT_EQ(ring.addresses(), shuffled.addresses());
  for (const BlockId& id : RandomIds(5000, 4)) {
    EXPECT_EQ(ring.Owner(id), reversed.Owner(id));
    EXPECT_EQ(ring.Owner(id), shuffled.Owner(id));
  }
}

TEST(HashRingTest, RealBlockIdsHaveOwnersOnTheRing) {
  HashRing ring(kFourNodes, kVirtualNodes);
  for (uint64_t seed = 0; seed < 100; ++seed) {
    BlockId id = BlockId::Of(RandomBytes(256, seed));
    EXPECT_THAT(kFourNodes, ::testing::Contains(ring.Owner(id)));
  }
}

TEST(HashRingTest, FourNodesShareTheIdsRoughlyEvenly) {
  constexpr int kIds = 20000;
  HashRing ring(kFourNodes, kVirtualNodes);
  std::map<std::string, int> owned;
  for (const BlockId& id : RandomIds(kIds, 5)) ++owned[ring.Owner(id)];
  ASSERT_EQ(owned.size(), 4);
  for (const auto& [address, count] : owned) {
    EXPECT_GE(count, kIds / 10) << address;      // 10%
    EXPECT_LE(count, kIds * 4 / 10) << address;  // 40%
  }
}

TEST(HashRingTest, RemovingANodeMovesOnlyTheIdsItOwned) {
  HashRing before(kFourNodes, kVirtualNodes);
  const std::string& leaving = kFourNodes[2];
  HashRing after({kFourNodes[0], kFourNodes[1], kFourNodes[3]}, kVirtualNodes);
  int moved = 0;
  for (const BlockId& id : RandomIds(20000, 6)) {
    const std::string& owner_before = before.Owner(id);
    const std::string& owner_after = after.Owner(id);
    EXPECT_NE(owner_after, leaving);
    if (owner_before == leaving) {
      ++moved;
    } else {
      EXPECT_EQ(owner_after, owner_before);
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(HashRingTest, AddingANodeTakesIdsOnlyForItself) {
  HashRing before({kFourNodes[0], kFourNodes[1], kFourNodes[3]}, kVirtualNodes);
  HashRing after(kFourNodes, kVirtualNodes);
  for (const BlockId& id : RandomIds(20000, 7)) {
    const std::string& owner_after = after.Owner(id);
    if (owner_after != kFourNodes[2]) {
      EXPECT_EQ(owner_after, before.Owner(id));
    }
  }
}

TEST(HashRingTest, DuplicateAddressesCountOnce) {
  HashRing ring(kFourNodes, kVirtualNodes);
  HashRing with_duplicates(
      {kFourNodes[0], kFourNodes[1], kFourNodes[1], kFourNodes[2],
       kFourNodes[3], kFourNodes[0], kFourNodes[3]},
      kVirtualNodes);
  EXPECT_THAT(with_duplicates.addresses(),
              UnorderedElementsAre(kFourNodes[0], kFourNodes[1], kFourNodes[2],
                                   kFourNodes[3]));
  EXPECT_EQ(with_duplicates.addresses(), ring.addresses());
  for (const BlockId& id : RandomIds(5000, 8)) {
    EXPECT_EQ(with_duplicates.Owner(id), ring.Owner(id));
  }
}

}  // namespace
}  // namespace pstore
