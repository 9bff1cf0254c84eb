#include "storage/dram/dram_tier.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/block.h"
#include "storage/buffer_pool.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Blocks of this size are charged exactly this much.
constexpr size_t kBlock = 4096;

struct TestBlock {
  BlockId id;
  BlockRef block;
  std::vector<uint8_t> bytes;  // A copy independent of `block`.
};

TestBlock MakeTestBlock(size_t size, uint64_t seed) {
  TestBlock test_block;
  test_block.bytes = RandomBytes(size, seed);
  test_block.block = CopyBlock(test_block.bytes);
  test_block.id = BlockId::Of(test_block.bytes);
  return test_block;
}

std::vector<TestBlock> MakeTestBlocks(int count, size_t size, uint64_t seed) {
  std::vector<TestBlock> blocks;
  blocks.reserve(count);
  for (int i = 0; i < count; ++i)
    blocks.push_back(MakeTestBlock(size, seed + i));
  return blocks;
}

bool SameBytes(const BlockRef& block, const std::vector<uint8_t>& bytes) {
  return block != nullptr && block->size() == bytes.size() &&
         (bytes.empty() ||
          std::memcmp(block->data(), bytes.data(), bytes.size()) == 0);
}

// Options for a single-shard tier of `blocks` blocks of kBlock bytes whose
// small queue holds one block once it is full.
DramTierOptions BlockOptions(int blocks) {
  DramTierOptions options;
  options.capacity_bytes = uint64_t{kBlock} * blocks;
  options.num_shards = 1;
  options.small_queue_ratio = 1.0 / blocks;
  return options;
}

// Returns a load function for Pin that serves `blocks` and counts its calls.
auto LoaderFor(const std::vector<TestBlock>& blocks, int* calls) {
  return [&blocks, calls](const BlockId& id) -> absl::StatusOr<BlockRef> {
    ++*calls;
    for (const TestBlock& block : blocks) {
      if (block.id == id) return block.block;
    }
    return absl::NotFoundError("no such block");
  };
}

std::vector<PinnedBlockSpec> SpecsOf(const std::vector<TestBlock>& blocks) {
  std::vector<PinnedBlockSpec> specs;
  for (const TestBlock& block : blocks) {
    specs.push_back(PinnedBlockSpec{block.id, block.bytes.size()});
  }
  return specs;
}

// Writes `count` fresh blocks of kBlock bytes and never reads them: they
// pass through the small queue only.
void WriteUnread(DramTier& tier, int count, uint64_t seed) {
  for (int i = 0; i < count; ++i) {
    TestBlock block = MakeTestBlock(kBlock, seed + i);
    ASSERT_OK(tier.Write(block.id, block.block));
  }
}

// Writes `count` fresh blocks of kBlock bytes and reads each once: they
// move to the main queue and push out what is there. A few times the
// capacity in blocks flushes every unpinned block of a single-shard tier.
void WriteAndRead(DramTier& tier, int count, uint64_t seed) {
  for (int i = 0; i < count; ++i) {
    TestBlock block = MakeTestBlock(kBlock, seed + i);
    ASSERT_OK(tier.Write(block.id, block.block));
    ASSERT_OK(tier.Read(block.id).status());
  }
}

TEST(DramTierTest, OpenRefusesBadOptions) {
  auto expect_invalid = [](DramTierOptions options, const char* what) {
    EXPECT_THAT(DramTier::Open(std::move(options)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << what;
  };
  DramTierOptions options;
  options.capacity_bytes = 0;
  expect_invalid(options, "zero capacity");

  options = DramTierOptions();
  options.capacity_bytes = 1 << 20;
  options.pin_budget_bytes = (1 << 20) + 1;
  expect_invalid(options, "pin budget above capacity");

  for (int shards : {3, 6, -1, -4}) {
    options = DramTierOptions();
    options.num_shards = shards;
    expect_invalid(options, "shards not a power of two");
  }
  for (double ratio :
       {0.0, 1.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    options = DramTierOptions();
    options.small_queue_ratio = ratio;
    expect_invalid(options, "ratio outside (0, 1)");
  }
}

TEST(DramTierTest, OpenChoosesShardsAndPinBudgetByDefault) {
  DramTierOptions options;  // 1 GiB, 4 MiB blocks: 256 blocks.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier, DramTier::Open(options));
  EXPECT_EQ(tier->num_shards(), 8);
  EXPECT_EQ(tier->pin_budget_bytes(), (uint64_t{1} << 30) / 4 * 3);
  EXPECT_EQ(tier->Stats().capacity_bytes, uint64_t{1} << 30);
  EXPECT_EQ(tier->name(), "dram");

  options.capacity_bytes = uint64_t{1} << 20;
  ASSERT_OK_AND_ASSIGN(tier, DramTier::Open(options));
  EXPECT_EQ(tier->num_shards(), 1);

  options.capacity_bytes = uint64_t{64} << 30;
  options.pin_budget_bytes = uint64_t{1} << 30;
  ASSERT_OK_AND_ASSIGN(tier, DramTier::Open(options));
  EXPECT_EQ(tier->num_shards(), 16);
  EXPECT_EQ(tier->pin_budget_bytes(), uint64_t{1} << 30);
}

TEST(DramTierTest, RoundTripsBlocksOfManySizes) {
  DramTierOptions options;
  options.capacity_bytes = uint64_t{64} << 20;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier, DramTier::Open(options));

  const std::vector<size_t> sizes = {
      0,         1,      100,     4095,          4096,           4097,
      65536 + 3, 100000, 1 << 20, (1 << 20) + 7, size_t{4} << 20};
  std::vector<TestBlock> blocks;
  uint64_t charges = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    blocks.push_back(MakeTestBlock(sizes[i], 1000 + i));
    ASSERT_OK(tier->Write(blocks.back().id, blocks.back().block));
    charges += BufferPool::CapacityFor(sizes[i]);
    bytes += sizes[i];
  }
  for (const TestBlock& block : blocks) {
    EXPECT_TRUE(tier->Contains(block.id));
    ASSERT_OK_AND_ASSIGN(BlockRef read, tier->Read(block.id));
    EXPECT_TRUE(SameBytes(read, block.bytes)) << block.bytes.size();
  }
  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.used_bytes, charges);
  EXPECT_EQ(stats.blocks, sizes.size());
  EXPECT_EQ(stats.writes, sizes.size());
  EXPECT_EQ(stats.write_bytes, bytes);
  EXPECT_EQ(stats.hits, sizes.size());
  EXPECT_EQ(stats.read_bytes, bytes);
  EXPECT_EQ(stats.misses, 0u);
  EXPECT_EQ(stats.evictions, 0u);
}

TEST(DramTierTest, ReadOfAbsentBlockIsNotFoundAndCountsAMiss) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(4)));
  TestBlock block = MakeTestBlock(kBlock, 1);
  EXPECT_FALSE(tier->Contains(block.id));
  EXPECT_THAT(tier->Read(block.id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(tier->Lookup(CacheKey{block.id, 3}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(tier->Stats().misses, 2u);
  EXPECT_EQ(tier->Stats().hits, 0u);
}

TEST(DramTierTest, WriteOfPresentIdKeepsTheFirstBlock) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(4)));
  TestBlock first = MakeTestBlock(kBlock, 1);
  TestBlock other = MakeTestBlock(kBlock, 2);
  ASSERT_OK(tier->Write(first.id, first.block));
  ASSERT_OK(tier->Write(first.id, other.block));
  ASSERT_OK_AND_ASSIGN(BlockRef read, tier->Read(first.id));
  EXPECT_EQ(read, first.block);
  EXPECT_EQ(tier->Stats().writes, 1u);
  EXPECT_EQ(tier->Stats().used_bytes, kBlock);
}

TEST(DramTierTest, WriteOfNullBlockIsInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(4)));
  EXPECT_THAT(tier->Write(MakeTestBlock(1, 1).id, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DramTierTest, BlockLargerThanBudgetIsRefusedWithoutEvicting) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(4)));
  std::vector<TestBlock> small = MakeTestBlocks(4, kBlock, 10);
  for (const TestBlock& block : small) {
    ASSERT_OK(tier->Write(block.id, block.block));
  }
  TestBlock huge = MakeTestBlock(5 * kBlock, 99);
  EXPECT_THAT(tier->Write(huge.id, huge.block),
              StatusIs(absl::StatusCode::kResourceExhausted));
  for (const TestBlock& block : small) EXPECT_TRUE(tier->Contains(block.id));
  EXPECT_EQ(tier->Stats().evictions, 0u);
}

TEST(DramTierTest, EvictsOldestUnpinnedBlockWhenOverBudget) {
  std::vector<CacheKey> evicted;
  DramTierOptions options = BlockOptions(4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  tier->SetEvictCallback(
      [&evicted](const CacheKey& key, BlockRef) { evicted.push_back(key); });
  std::vector<TestBlock> blocks = MakeTestBlocks(6, kBlock, 20);
  for (const TestBlock& block : blocks) {
    ASSERT_OK(tier->Write(block.id, block.block));
    EXPECT_LE(tier->Stats().used_bytes, 4 * kBlock);
  }
  EXPECT_THAT(evicted,
              ElementsAre(CacheKey{blocks[0].id}, CacheKey{blocks[1].id}));
  EXPECT_FALSE(tier->Contains(blocks[0].id));
  EXPECT_FALSE(tier->Contains(blocks[1].id));
  for (int i = 2; i < 6; ++i) EXPECT_TRUE(tier->Contains(blocks[i].id));
  EXPECT_EQ(tier->Stats().evictions, 2u);
  EXPECT_EQ(tier->Stats().used_bytes, 4 * kBlock);
}

// The sequence worked by hand, with 4 blocks of room and a small queue of
// one block (a = A..I below):
//   write A B C D        small: A B C D
//   read A, read B       A, B have frequency 1
//   write E              A, B move to main; C evicted (to ghost)
//   write F              D evicted
//   read A; write G      E evicted
//   write C              F evicted; C is a ghost hit and goes to main
//   read G; write H      G moves to main; small empty, so main turns: A has
//                        frequency 1 (decremented, kept), B is evicted
//   write I              H evicted (small is at its target)
//   left: A C G I.
TEST(DramTierTest, EvictsInS3FifoOrderForAHandWorkedSequence) {
  std::vector<BlockId> evicted;
  DramTierOptions options = BlockOptions(4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  tier->SetEvictCallback(
      [&evicted](const CacheKey& key, BlockRef) { evicted.push_back(key.id); });
  std::vector<TestBlock> b = MakeTestBlocks(9, kBlock, 30);
  enum { A, B, C, D, E, F, G, H, I };
  auto write = [&](int i) { ASSERT_OK(tier->Write(b[i].id, b[i].block)); };
  auto read = [&](int i) { ASSERT_OK(tier->Read(b[i].id).status()); };

  write(A), write(B), write(C), write(D);
  read(A), read(B);
  write(E);
  write(F);
  read(A);
  write(G);
  write(C);
  read(G);
  write(H);
  write(I);

  EXPECT_THAT(evicted, ElementsAre(b[C].id, b[D].id, b[E].id, b[F].id, b[B].id,
                                   b[H].id));
  for (int i : {A, C, G, I}) EXPECT_TRUE(tier->Contains(b[i].id)) << i;
  for (int i : {B, D, E, F, H}) EXPECT_FALSE(tier->Contains(b[i].id)) << i;
  EXPECT_EQ(tier->Stats().used_bytes, 4 * kBlock);
  EXPECT_EQ(tier->Stats().blocks, 4u);
}

TEST(DramTierTest, GhostHitGoesToMainAndOutlivesNewBlocks) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(4)));
  TestBlock x = MakeTestBlock(kBlock, 40);
  TestBlock y = MakeTestBlock(kBlock, 41);
  ASSERT_OK(tier->Write(x.id, x.block));
  WriteUnread(*tier, 4, 100);  // x, never read, is evicted into the ghost.
  ASSERT_FALSE(tier->Contains(x.id));

  ASSERT_OK(tier->Write(x.id, x.block));  // Ghost hit: straight to main.
  ASSERT_OK(tier->Write(y.id, y.block));  // A new block: to small.
  WriteUnread(*tier, 6, 200);

  EXPECT_TRUE(tier->Contains(x.id));
  EXPECT_FALSE(tier->Contains(y.id));
}

TEST(DramTierTest, OnePassScanDoesNotEvictARepeatedlyReadHotSet) {
  constexpr int kCapacityBlocks = 256;
  constexpr int kHotBlocks = kCapacityBlocks / 10;
  constexpr int kScanBlocks = 10 * kCapacityBlocks;
  DramTierOptions options;
  options.capacity_bytes = uint64_t{kBlock} * kCapacityBlocks;
  options.num_shards = 4;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier, DramTier::Open(options));

  std::vector<TestBlock> hot = MakeTestBlocks(kHotBlocks, kBlock, 1'000'000);
  for (const TestBlock& block : hot) {
    ASSERT_OK(tier->Write(block.id, block.block));
  }
  for (int round = 0; round < 2; ++round) {
    for (const TestBlock& block : hot) ASSERT_OK(tier->Read(block.id).status());
  }

  // Each scan block is read once, as the tiered store reads a block that
  // misses: a DRAM miss, then a Write of what the next tier returned.
  int hot_misses = 0;
  for (int i = 0; i < kScanBlocks; ++i) {
    TestBlock scan = MakeTestBlock(kBlock, 2'000'000 + i);
    EXPECT_THAT(tier->Read(scan.id), StatusIs(absl::StatusCode::kNotFound));
    ASSERT_OK(tier->Write(scan.id, scan.block));
    const TestBlock& block = hot[i % kHotBlocks];
    if (!tier->Read(block.id).ok()) {
      ++hot_misses;
      ASSERT_OK(tier->Write(block.id, block.block));
    }
    ASSERT_LE(tier->Stats().used_bytes, options.capacity_bytes);
  }

  EXPECT_EQ(hot_misses, 0);
  for (const TestBlock& block : hot) EXPECT_TRUE(tier->Contains(block.id));
  EXPECT_GE(tier->Stats().evictions,
            static_cast<uint64_t>(kScanBlocks + kHotBlocks - kCapacityBlocks));
}

TEST(DramTierTest, EvictionCallbackSeesEachVictimOnceAndNotErasedOrCleared) {
  absl::flat_hash_map<BlockId, int> evicted;
  int evicted_while_cached = 0;
  DramTier* tier_ptr = nullptr;
  DramTierOptions options = BlockOptions(8);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  tier->SetEvictCallback([&](const CacheKey& key, BlockRef block) {
    ++evicted[key.id];
    EXPECT_NE(block, nullptr);
    // Calls back into the tier: no tier lock may be held here.
    if (tier_ptr->Contains(key)) ++evicted_while_cached;
  });
  tier_ptr = tier.get();

  std::vector<TestBlock> blocks = MakeTestBlocks(40, kBlock, 50);
  for (size_t i = 0; i < blocks.size(); ++i) {
    ASSERT_OK(tier->Write(blocks[i].id, blocks[i].block));
    if (i % 3 == 0) {
      ASSERT_OK(tier->Read(blocks[i].id).status());
    }
  }
  EXPECT_EQ(evicted.size(), 32u);
  for (const auto& [id, times] : evicted) EXPECT_EQ(times, 1);
  for (const TestBlock& block : blocks) {
    EXPECT_NE(tier->Contains(block.id), evicted.contains(block.id));
  }
  EXPECT_EQ(evicted_while_cached, 0);
  EXPECT_EQ(tier->Stats().evictions, 32u);

  // Erase and Clear drop blocks without the callback.
  const TestBlock* cached = nullptr;
  for (const TestBlock& block : blocks) {
    if (tier->Contains(block.id)) cached = &block;
  }
  ASSERT_NE(cached, nullptr);
  ASSERT_OK(tier->Erase(cached->id));
  ASSERT_OK(tier->Clear());
  EXPECT_EQ(evicted.size(), 32u);
  EXPECT_EQ(tier->Stats().evictions, 32u);
  EXPECT_EQ(tier->Stats().erases, 1u);
  EXPECT_EQ(tier->Stats().blocks, 0u);
  EXPECT_EQ(tier->Stats().used_bytes, 0u);
}

TEST(DramTierTest, BlockRefStaysValidAfterEviction) {
  BlockRef from_callback;
  TestBlock block = MakeTestBlock(kBlock, 60);
  DramTierOptions options = BlockOptions(2);
  // A small queue target above one block, so that the main queue (where the
  // read block goes) is evicted too.
  options.small_queue_ratio = 0.9;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  tier->SetEvictCallback([&](const CacheKey& key, BlockRef evicted) {
    if (key.id == block.id) from_callback = std::move(evicted);
  });
  ASSERT_OK(tier->Write(block.id, CopyBlock(block.bytes)));
  ASSERT_OK_AND_ASSIGN(BlockRef read, tier->Read(block.id));
  // The tier's copy is the only other reference to `read`'s buffer.
  WriteUnread(*tier, 8, 600);
  ASSERT_FALSE(tier->Contains(block.id));
  EXPECT_TRUE(SameBytes(read, block.bytes));
  EXPECT_EQ(from_callback, read);
}

TEST(DramTierTest, EraseDropsAllVariantsOfAnId) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(16)));
  TestBlock block = MakeTestBlock(kBlock, 70);
  TestBlock other = MakeTestBlock(kBlock, 71);
  std::vector<TestBlock> derived = MakeTestBlocks(3, kBlock / 2, 72);
  ASSERT_OK(tier->Write(block.id, block.block));
  ASSERT_OK(tier->Insert(CacheKey{block.id, 1}, derived[0].block));
  ASSERT_OK(tier->Insert(CacheKey{block.id, 7}, derived[1].block));
  ASSERT_OK(tier->Write(other.id, other.block));
  ASSERT_OK(tier->Insert(CacheKey{other.id, 1}, derived[2].block));

  ASSERT_OK_AND_ASSIGN(BlockRef variant, tier->Lookup(CacheKey{block.id, 7}));
  EXPECT_TRUE(SameBytes(variant, derived[1].bytes));

  ASSERT_OK(tier->Erase(block.id));
  EXPECT_FALSE(tier->Contains(block.id));
  EXPECT_FALSE(tier->Contains(CacheKey{block.id, 1}));
  EXPECT_FALSE(tier->Contains(CacheKey{block.id, 7}));
  EXPECT_TRUE(tier->Contains(other.id));
  EXPECT_TRUE(tier->Contains(CacheKey{other.id, 1}));
  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.erases, 3u);
  EXPECT_EQ(stats.blocks, 2u);
  EXPECT_EQ(stats.used_bytes, 2 * kBlock);
  EXPECT_OK(tier->Erase(block.id));  // Absent: still OK.
  EXPECT_EQ(tier->Stats().erases, 3u);
}

TEST(DramTierTest, PinsHoldUnderPressure) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  std::vector<TestBlock> pinned = MakeTestBlocks(4, kBlock, 80);
  ASSERT_OK(tier->Write(pinned[0].id, pinned[0].block));  // One cached.
  int loads = 0;
  ASSERT_OK(tier->Pin("model@1", SpecsOf(pinned), LoaderFor(pinned, &loads)));
  EXPECT_EQ(loads, 3);
  EXPECT_EQ(tier->pinned_bytes(), 4 * kBlock);
  EXPECT_THAT(tier->ListPins(), ElementsAre("model@1"));

  for (int i = 0; i < 80; ++i) {
    TestBlock block = MakeTestBlock(kBlock, 800 + i);
    ASSERT_OK(tier->Write(block.id, block.block));
    ASSERT_OK(tier->Read(block.id).status());
    ASSERT_LE(tier->Stats().used_bytes, 8 * kBlock);
  }
  for (const TestBlock& block : pinned) {
    ASSERT_OK_AND_ASSIGN(BlockRef read, tier->Read(block.id));
    EXPECT_TRUE(SameBytes(read, block.bytes));
  }
  EXPECT_GE(tier->Stats().evictions, 76u);

  ASSERT_OK(tier->Unpin("model@1"));
  EXPECT_EQ(tier->pinned_bytes(), 0u);
  EXPECT_THAT(tier->ListPins(), IsEmpty());
  WriteAndRead(*tier, 24, 900);
  for (const TestBlock& block : pinned) EXPECT_FALSE(tier->Contains(block.id));
}

TEST(DramTierTest, WriteIsRefusedWhenEverythingIsPinned) {
  DramTierOptions options = BlockOptions(4);
  options.pin_budget_bytes = 4 * kBlock;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  std::vector<TestBlock> pinned = MakeTestBlocks(4, kBlock, 90);
  int loads = 0;
  ASSERT_OK(tier->Pin("all", SpecsOf(pinned), LoaderFor(pinned, &loads)));
  TestBlock block = MakeTestBlock(kBlock, 95);
  EXPECT_THAT(tier->Write(block.id, block.block),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(tier->Contains(block.id));
  EXPECT_EQ(tier->Stats().used_bytes, 4 * kBlock);
  ASSERT_OK(tier->Unpin("all"));
  ASSERT_OK(tier->Write(block.id, block.block));
}

TEST(DramTierTest, PinPastBudgetIsRefusedAndPinsNothing) {
  DramTierOptions options = BlockOptions(16);
  options.pin_budget_bytes = 4 * kBlock;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  std::vector<TestBlock> first = MakeTestBlocks(3, kBlock, 100);
  int loads = 0;
  ASSERT_OK(tier->Pin("a@1", SpecsOf(first), LoaderFor(first, &loads)));
  ASSERT_EQ(tier->pinned_bytes(), 3 * kBlock);

  // Shares one block with a@1 and adds two: one block over the budget.
  std::vector<TestBlock> second = {first[2], MakeTestBlock(kBlock, 110),
                                   MakeTestBlock(kBlock, 111)};
  ASSERT_OK(tier->Write(second[1].id, second[1].block));  // One cached.
  loads = 0;
  EXPECT_THAT(tier->Pin("b@1", SpecsOf(second), LoaderFor(second, &loads)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("8192 bytes, 4096 free")));
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(tier->pinned_bytes(), 3 * kBlock);
  EXPECT_THAT(tier->ListPins(), ElementsAre("a@1"));
  EXPECT_THAT(tier->Unpin("b@1"), StatusIs(absl::StatusCode::kNotFound));

  // None of b@1's own blocks is pinned: pressure pushes them out.
  WriteAndRead(*tier, 40, 1100);
  EXPECT_FALSE(tier->Contains(second[1].id));
  EXPECT_FALSE(tier->Contains(second[2].id));
  for (const TestBlock& block : first) EXPECT_TRUE(tier->Contains(block.id));

  // Sharing is free: the shared block plus one new block fits exactly.
  second.pop_back();
  ASSERT_OK(tier->Pin("b@1", SpecsOf(second), LoaderFor(second, &loads)));
  EXPECT_EQ(tier->pinned_bytes(), 4 * kBlock);
  EXPECT_THAT(tier->ListPins(), ElementsAre("a@1", "b@1"));
}

TEST(DramTierTest, LoadFailureUndoesAPartialPin) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  std::vector<TestBlock> blocks = MakeTestBlocks(4, kBlock, 120);
  ASSERT_OK(tier->Write(blocks[0].id, blocks[0].block));  // Pinned in place.
  int loads = 0;
  auto failing_load = [&](const BlockId& id) -> absl::StatusOr<BlockRef> {
    if (++loads == 3) return absl::UnavailableError("disk hiccup");
    for (const TestBlock& block : blocks) {
      if (block.id == id) return block.block;
    }
    return absl::NotFoundError("no such block");
  };
  EXPECT_THAT(tier->Pin("m@1", SpecsOf(blocks), failing_load),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("m@1")));
  EXPECT_EQ(loads, 3);
  EXPECT_EQ(tier->pinned_bytes(), 0u);
  EXPECT_THAT(tier->ListPins(), IsEmpty());
  EXPECT_THAT(tier->Unpin("m@1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_LE(tier->Stats().used_bytes, 8 * kBlock);

  // What the failed call cached or pinned in place is evictable again.
  WriteAndRead(*tier, 24, 1200);
  for (const TestBlock& block : blocks) EXPECT_FALSE(tier->Contains(block.id));

  // The name is free for a new attempt.
  loads = 0;
  ASSERT_OK(tier->Pin("m@1", SpecsOf(blocks), LoaderFor(blocks, &loads)));
  EXPECT_EQ(loads, 4);
  EXPECT_EQ(tier->pinned_bytes(), 4 * kBlock);
}

TEST(DramTierTest, LoadReturningNullIsInternalAndPinsNothing) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  std::vector<TestBlock> blocks = MakeTestBlocks(2, kBlock, 130);
  auto null_load = [](const BlockId&) -> absl::StatusOr<BlockRef> {
    return BlockRef();
  };
  EXPECT_THAT(tier->Pin("m@1", SpecsOf(blocks), null_load),
              StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(tier->pinned_bytes(), 0u);
  EXPECT_THAT(tier->ListPins(), IsEmpty());
}

TEST(DramTierTest, UnpinOfUnknownNameIsNotFound) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  EXPECT_THAT(tier->Unpin("nobody@1"), StatusIs(absl::StatusCode::kNotFound));
  std::vector<TestBlock> blocks = MakeTestBlocks(1, kBlock, 140);
  int loads = 0;
  ASSERT_OK(tier->Pin("m@1", SpecsOf(blocks), LoaderFor(blocks, &loads)));
  ASSERT_OK(tier->Unpin("m@1"));
  EXPECT_THAT(tier->Unpin("m@1"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(DramTierTest, PinOfExistingNameIsAlreadyExists) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  std::vector<TestBlock> first = MakeTestBlocks(2, kBlock, 150);
  std::vector<TestBlock> other = MakeTestBlocks(2, kBlock, 160);
  int loads = 0;
  ASSERT_OK(tier->Pin("m@1", SpecsOf(first), LoaderFor(first, &loads)));
  loads = 0;
  EXPECT_THAT(tier->Pin("m@1", SpecsOf(other), LoaderFor(other, &loads)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(tier->pinned_bytes(), 2 * kBlock);
  EXPECT_FALSE(tier->Contains(other[0].id));
  EXPECT_THAT(tier->ListPins(), ElementsAre("m@1"));
}

TEST(DramTierTest, BlocksSharedByTwoPinsAreChargedOnce) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  std::vector<TestBlock> b = MakeTestBlocks(3, kBlock, 170);
  std::vector<TestBlock> first = {b[0], b[1], b[1]};  // A repeat, too.
  std::vector<TestBlock> second = {b[1], b[2]};
  int loads = 0;
  ASSERT_OK(tier->Pin("m@1", SpecsOf(first), LoaderFor(b, &loads)));
  EXPECT_EQ(tier->pinned_bytes(), 2 * kBlock);
  ASSERT_OK(tier->Pin("m@2", SpecsOf(second), LoaderFor(b, &loads)));
  EXPECT_EQ(loads, 3);
  EXPECT_EQ(tier->pinned_bytes(), 3 * kBlock);
  EXPECT_EQ(tier->Stats().used_bytes, 3 * kBlock);

  ASSERT_OK(tier->Unpin("m@1"));
  EXPECT_EQ(tier->pinned_bytes(), 2 * kBlock);
  WriteAndRead(*tier, 24, 1700);
  EXPECT_FALSE(tier->Contains(b[0].id));
  EXPECT_TRUE(tier->Contains(b[1].id));
  EXPECT_TRUE(tier->Contains(b[2].id));

  ASSERT_OK(tier->Unpin("m@2"));
  EXPECT_EQ(tier->pinned_bytes(), 0u);
}

TEST(DramTierTest, ClearKeepsPinnedBlocks) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  std::vector<TestBlock> pinned = MakeTestBlocks(2, kBlock, 180);
  std::vector<TestBlock> loose = MakeTestBlocks(3, kBlock, 190);
  int loads = 0;
  ASSERT_OK(tier->Pin("m@1", SpecsOf(pinned), LoaderFor(pinned, &loads)));
  for (const TestBlock& block : loose) {
    ASSERT_OK(tier->Write(block.id, block.block));
  }
  ASSERT_OK(tier->Insert(CacheKey{pinned[0].id, 1}, loose[0].block));

  ASSERT_OK(tier->Clear());
  for (const TestBlock& block : pinned) EXPECT_TRUE(tier->Contains(block.id));
  for (const TestBlock& block : loose) EXPECT_FALSE(tier->Contains(block.id));
  EXPECT_FALSE(tier->Contains(CacheKey{pinned[0].id, 1}));
  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.blocks, 2u);
  EXPECT_EQ(stats.used_bytes, 2 * kBlock);
  EXPECT_EQ(stats.evictions, 0u);
  EXPECT_EQ(tier->pinned_bytes(), 2 * kBlock);
}

TEST(DramTierTest, EraseOfPinnedBlockDropsItAndKeepsThePinUnpinnable) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(BlockOptions(8)));
  std::vector<TestBlock> blocks = MakeTestBlocks(2, kBlock, 200);
  int loads = 0;
  ASSERT_OK(tier->Pin("m@1", SpecsOf(blocks), LoaderFor(blocks, &loads)));
  ASSERT_OK(tier->Erase(blocks[0].id));
  EXPECT_FALSE(tier->Contains(blocks[0].id));
  EXPECT_EQ(tier->pinned_bytes(), kBlock);
  EXPECT_EQ(tier->Stats().used_bytes, kBlock);
  EXPECT_EQ(tier->Stats().erases, 1u);

  // A pin naming the erased block loads it again, charged once.
  loads = 0;
  ASSERT_OK(tier->Pin("m@2", SpecsOf(blocks), LoaderFor(blocks, &loads)));
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(tier->pinned_bytes(), 2 * kBlock);

  ASSERT_OK(tier->Unpin("m@1"));
  ASSERT_OK(tier->Unpin("m@2"));
  EXPECT_EQ(tier->pinned_bytes(), 0u);
  EXPECT_THAT(tier->ListPins(), IsEmpty());
  EXPECT_EQ(tier->Stats().used_bytes, 2 * kBlock);
}

// A fixed set of blocks of mixed sizes shared by the threads of a test.
struct Universe {
  explicit Universe(int count, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < count; ++i) {
      size_t size = 1 + rng() % (64 * 1024);
      blocks.push_back(MakeTestBlock(size, seed * 1000 + i));
      index[blocks.back().id] = i;
    }
  }

  // Checks that the tier's accounting equals the blocks it holds.
  void ExpectAccountingMatches(const DramTier& tier) const {
    uint64_t charges = 0;
    uint64_t held = 0;
    for (const TestBlock& block : blocks) {
      if (tier.Contains(block.id)) {
        charges += block.block->charge();
        ++held;
      }
    }
    TierStats stats = tier.Stats();
    EXPECT_EQ(stats.used_bytes, charges);
    EXPECT_EQ(stats.blocks, held);
    EXPECT_LE(stats.used_bytes, stats.capacity_bytes);
  }

  std::vector<TestBlock> blocks;
  absl::flat_hash_map<BlockId, int> index;
};

TEST(DramTierTest, UsedBytesStayInBudgetAndMatchHeldBlocksAcrossThreads) {
  constexpr int kThreads = 8;
  constexpr int kOpsPerThread = 3000;
  Universe universe(600, 7);
  std::atomic<uint64_t> callbacks{0};
  DramTierOptions options;
  options.capacity_bytes = uint64_t{2} << 20;
  options.num_shards = 4;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  tier->SetEvictCallback([&callbacks](const CacheKey&, BlockRef) {
    callbacks.fetch_add(1, std::memory_order_relaxed);
  });

  std::atomic<int> bad_reads{0};
  std::atomic<int> failed_writes{0};
  std::atomic<int> over_budget{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int op = 0; op < kOpsPerThread; ++op) {
        // Skewed picks: low indexes are read far more often.
        size_t pick = rng() % universe.blocks.size();
        if (rng() % 2 == 0) pick %= 60;
        const TestBlock& block = universe.blocks[pick];
        absl::StatusOr<BlockRef> read = tier->Read(block.id);
        if (read.ok()) {
          if (!SameBytes(*read, block.bytes)) bad_reads.fetch_add(1);
        } else if (!tier->Write(block.id, block.block).ok()) {
          failed_writes.fetch_add(1);
        }
        if (op % 16 == 0) {
          TierStats stats = tier->Stats();
          if (stats.used_bytes > stats.capacity_bytes) over_budget.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_EQ(failed_writes.load(), 0);
  EXPECT_EQ(over_budget.load(), 0);
  universe.ExpectAccountingMatches(*tier);
  TierStats stats = tier->Stats();
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_EQ(stats.evictions, callbacks.load());
  EXPECT_EQ(stats.hits + stats.misses,
            static_cast<uint64_t>(kThreads) * kOpsPerThread);
}

TEST(DramTierTest, ConcurrentInsertsReadsAndPinsKeepBytesAndBudgets) {
  constexpr int kThreads = 8;
  constexpr int kOpsPerThread = 1500;
  constexpr int kPinnable = 500;  // Blocks past this are also erased.
  Universe universe(600, 11);
  DramTierOptions options;
  options.capacity_bytes = uint64_t{3} << 20;
  options.pin_budget_bytes = uint64_t{1} << 20;
  options.num_shards = 4;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DramTier> tier,
                       DramTier::Open(std::move(options)));
  auto load = [&universe](const BlockId& id) -> absl::StatusOr<BlockRef> {
    auto it = universe.index.find(id);
    if (it == universe.index.end()) return absl::NotFoundError("unknown");
    return universe.blocks[it->second].block;
  };

  std::atomic<int> bad_reads{0};
  std::atomic<int> lost_pinned{0};
  absl::Mutex errors_mu;
  std::vector<std::string> unexpected_errors;  // Guarded by errors_mu.
  auto expect_ok = [&](const absl::Status& status, absl::string_view what) {
    if (status.ok()) return;
    absl::MutexLock lock(&errors_mu);
    unexpected_errors.push_back(absl::StrCat(what, ": ", status.ToString()));
  };
  std::atomic<int> pins_granted{0};
  std::atomic<int> pins_refused{0};
  std::atomic<int> over_budget{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      for (int op = 0; op < kOpsPerThread; ++op) {
        int kind = static_cast<int>(rng() % 100);
        if (kind < 10) {
          // Pin a few blocks, check they are held, unpin them.
          std::vector<PinnedBlockSpec> specs;
          std::vector<const TestBlock*> pinned;
          for (int i = 0; i < 4; ++i) {
            const TestBlock& block = universe.blocks[rng() % kPinnable];
            specs.push_back({block.id, block.bytes.size()});
            pinned.push_back(&block);
          }
          std::string name = absl::StrCat("t", t, "@", op);
          absl::Status status = tier->Pin(name, specs, load);
          if (status.code() == absl::StatusCode::kResourceExhausted) {
            pins_refused.fetch_add(1);
            continue;
          }
          if (!status.ok()) {
            expect_ok(status, "Pin");
            continue;
          }
          pins_granted.fetch_add(1);
          if (tier->pinned_bytes() > tier->pin_budget_bytes()) {
            over_budget.fetch_add(1);
          }
          for (const TestBlock* block : pinned) {
            absl::StatusOr<BlockRef> read = tier->Read(block->id);
            if (!read.ok()) {
              lost_pinned.fetch_add(1);
            } else if (!SameBytes(*read, block->bytes)) {
              bad_reads.fetch_add(1);
            }
          }
          expect_ok(tier->Unpin(name), "Unpin");
        } else if (kind < 12) {
          const TestBlock& block =
              universe.blocks[kPinnable + rng() % (600 - kPinnable)];
          expect_ok(tier->Erase(block.id), "Erase");
        } else if (kind == 12 && op % 7 == 0) {
          expect_ok(tier->Clear(), "Clear");
        } else {
          const TestBlock& block = universe.blocks[rng() % 600];
          uint8_t variant = static_cast<uint8_t>(rng() % 2);
          CacheKey key{block.id, variant};
          absl::StatusOr<BlockRef> read = tier->Lookup(key);
          if (read.ok()) {
            if (!SameBytes(*read, block.bytes)) bad_reads.fetch_add(1);
          } else {
            expect_ok(tier->Insert(key, block.block), "Insert");
          }
        }
        TierStats stats = tier->Stats();
        if (stats.used_bytes > stats.capacity_bytes) over_budget.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_EQ(lost_pinned.load(), 0);
  EXPECT_THAT(unexpected_errors, IsEmpty());
  EXPECT_EQ(over_budget.load(), 0);
  EXPECT_GT(pins_granted.load(), 0);
  EXPECT_EQ(tier->pinned_bytes(), 0u);
  EXPECT_THAT(tier->ListPins(), IsEmpty());

  // Variant 1 holds the same bytes as variant 0: count both.
  uint64_t charges = 0;
  uint64_t held = 0;
  for (const TestBlock& block : universe.blocks) {
    for (uint8_t variant : {0, 1}) {
      if (tier->Contains(CacheKey{block.id, variant})) {
        charges += block.block->charge();
        ++held;
      }
    }
  }
  TierStats stats = tier->Stats();
  EXPECT_EQ(stats.used_bytes, charges);
  EXPECT_EQ(stats.blocks, held);
  EXPECT_LE(stats.used_bytes, stats.capacity_bytes);
}

}  // namespace
}  // namespace pstore
