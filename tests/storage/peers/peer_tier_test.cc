#include "storage/peers/peer_tier.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/block.h"
#include "storage/peers/hash_ring.h"
#include "storage/peers/peer_client.h"
#include "storage/records.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The longest a test waits for an answer that should come.
constexpr absl::Duration kBound = absl::Seconds(5);

constexpr char kSelf[] = "10.0.0.1:7070";
constexpr char kPeerB[] = "10.0.0.2:7070";
constexpr char kPeerC[] = "10.0.0.3:7070";

constexpr size_t kBlockSize = 4096;

struct TestBlock {
  BlockId id;
  BlockRef block;
  std::vector<uint8_t> bytes;
};

TestBlock MakeTestBlock(uint64_t seed) {
  TestBlock test_block;
  test_block.bytes = RandomBytes(kBlockSize, seed);
  test_block.block = CopyBlock(test_block.bytes);
  test_block.id = BlockId::Of(test_block.bytes);
  return test_block;
}

std::vector<uint8_t> BytesOf(const BlockRef& block) {
  return {block->bytes().begin(), block->bytes().end()};
}

// A durable tier held in a map; counts its reads. Answers on the caller's
// thread (the default ReadAsync).
class MapTier : public Tier {
 public:
  absl::string_view name() const override { return "cold"; }
  bool Contains(const BlockId& id) const override {
    absl::MutexLock lock(&mu_);
    return blocks_.contains(id);
  }
  absl::StatusOr<BlockRef> Read(const BlockId& id) override {
    reads_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    auto it = blocks_.find(id);
    if (it == blocks_.end()) {
      return absl::NotFoundError("block " + id.ToHex() + " not in map tier");
    }
    return it->second;
  }
  absl::Status Write(const BlockId& id, const BlockRef& block) override {
    absl::MutexLock lock(&mu_);
    blocks_.emplace(id, block);
    return absl::OkStatus();
  }
  absl::Status Erase(const BlockId& id) override {
    absl::MutexLock lock(&mu_);
    blocks_.erase(id);
    return absl::OkStatus();
  }
  TierStats Stats() const override {
    absl::MutexLock lock(&mu_);
    TierStats stats;
    stats.blocks = blocks_.size();
    return stats;
  }

  int reads() const { return reads_.load(); }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<BlockId, BlockRef> blocks_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> reads_{0};
};

// What a fake peer does when asked for a block.
enum class PeerBehaviour {
  kServe,        // Answers at once with the block's bytes (NotFound if none).
  kFlipByte,     // Answers at once with the bytes, one of them flipped.
  kUnavailable,  // Answers at once with Unavailable.
  kHold,         // Answers only when the test calls Release.
};

// A PeerClient over a map of address -> behaviour. Every peer holds the
// blocks given to AddBlock. A peer with no behaviour set is Unavailable.
class FakePeerClient : public PeerClient {
 public:
  void SetBehaviour(const std::string& address, PeerBehaviour behaviour) {
    absl::MutexLock lock(&mu_);
    behaviours_[address] = behaviour;
  }
  void AddBlock(const TestBlock& block) {
    absl::MutexLock lock(&mu_);
    blocks_[block.id] = block.block;
  }

  void ReadBlock(const std::string& address, const BlockId& id,
                 absl::Duration timeout, PeerReadCallback done) override {
    PeerBehaviour behaviour = PeerBehaviour::kUnavailable;
    BlockRef block;
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back(address);
      timeouts_.push_back(timeout);
      auto it = behaviours_.find(address);
      if (it != behaviours_.end()) behaviour = it->second;
      auto block_it = blocks_.find(id);
      if (block_it != blocks_.end()) block = block_it->second;
      if (behaviour == PeerBehaviour::kHold) {
        held_.push_back(Held{id, std::move(done)});
        return;
      }
    }
    std::move(done)(Answer(behaviour, id, block));
  }

  // Answers every held call as `behaviour` would (not kHold); returns how
  // many there were.
  int Release(PeerBehaviour behaviour) {
    std::vector<Held> held;
    std::map<BlockId, BlockRef> blocks;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
      blocks = blocks_;
    }
    for (Held& call : held) {
      auto it = blocks.find(call.id);
      std::move(call.done)(Answer(behaviour, call.id,
                                  it == blocks.end() ? nullptr : it->second));
    }
    return static_cast<int>(held.size());
  }

  // The addresses asked, in order.
  std::vector<std::string> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // The timeouts passed, in order.
  std::vector<absl::Duration> timeouts() const {
    absl::MutexLock lock(&mu_);
    return timeouts_;
  }
  int held() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }

 private:
  struct Held {
    BlockId id;
    PeerReadCallback done;
  };

  // What `behaviour` answers, hashed as a real client hashes it.
  static absl::StatusOr<PeerBlock> Answer(PeerBehaviour behaviour,
                                          const BlockId& id,
                                          const BlockRef& block) {
    absl::StatusOr<BlockRef> bytes = AnswerBytes(behaviour, id, block);
    if (!bytes.ok()) return bytes.status();
    return PeerBlock{*bytes, BlockId::Of((*bytes)->bytes())};
  }

  static absl::StatusOr<BlockRef> AnswerBytes(PeerBehaviour behaviour,
                                              const BlockId& id,
                                              const BlockRef& block) {
    switch (behaviour) {
      case PeerBehaviour::kServe:
      case PeerBehaviour::kHold:
        if (block == nullptr) {
          return absl::NotFoundError("peer: no block " + id.ToHex());
        }
        return block;
      case PeerBehaviour::kFlipByte: {
        if (block == nullptr) {
          return absl::NotFoundError("peer: no block " + id.ToHex());
        }
        std::vector<uint8_t> bytes = BytesOf(block);
        bytes[bytes.size() / 2] ^= 0x01;
        return CopyBlock(bytes);
      }
      case PeerBehaviour::kUnavailable:
        break;
    }
    return absl::UnavailableError("peer: unreachable");
  }

  mutable absl::Mutex mu_;
  std::map<std::string, PeerBehaviour> behaviours_ ABSL_GUARDED_BY(mu_);
  std::map<BlockId, BlockRef> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> timeouts_ ABSL_GUARDED_BY(mu_);
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
};

// The answer to one ReadAsync, and how many times its callback ran.
class ReadResult {
 public:
  ReadCallback Callback() {
    return [state = state_](absl::StatusOr<BlockRef> result) {
      int calls = ++state->calls;
      if (calls == 1) {
        state->result = std::move(result);
        state->answered.Notify();
      }
    };
  }
  // Waits up to kBound for the answer; false if none came.
  bool Wait() {
    return state_->answered.WaitForNotificationWithTimeout(kBound);
  }
  bool answered() const { return state_->answered.HasBeenNotified(); }
  // REQUIRES: answered().
  const absl::StatusOr<BlockRef>& result() const { return state_->result; }
  int calls() const { return state_->calls.load(); }

 private:
  // Shared with the callback, which may run after the test has looked.
  struct State {
    std::atomic<int> calls{0};
    absl::Notification answered;
    absl::StatusOr<BlockRef> result;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// A member with the default ring size (PeerOptions::virtual_nodes), or
// `ring_size`.
NodeInfo Node(const std::string& address, bool self,
              uint32_t ring_size = PeerOptions().virtual_nodes) {
  NodeInfo node;
  node.id = "node-" + address;
  node.address = address;
  node.self = self;
  node.ring_size = ring_size;
  return node;
}

// Waits up to kBound for `condition`; returns whether it came true.
template <typename Condition>
bool Eventually(Condition condition) {
  absl::Time deadline = absl::Now() + kBound;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class PeerTierTest : public ::testing::Test {
 protected:
  PeerTierTest() {
    options_.hedge_after = absl::Seconds(60);  // No hedge unless a test asks.
    options_.ring_refresh = absl::Hours(1);    // Refreshed by the tests.
    options_.read_timeout = absl::Seconds(7);
    SetMembers({Node(kSelf, true), Node(kPeerB, false), Node(kPeerC, false)});
  }

  ~PeerTierTest() override {
    // Answers what a failed test left waiting, before the tier goes.
    client_->Release(PeerBehaviour::kUnavailable);
    tier_.reset();
  }

  void SetMembers(std::vector<NodeInfo> members) {
    absl::MutexLock lock(&members_mu_);
    members_ = std::move(members);
  }

  PeerTier& MakeTier() {
    tier_ = std::make_unique<PeerTier>(
        &durable_,
        [this] {
          absl::MutexLock lock(&members_mu_);
          return members_;
        },
        client_, options_);
    return *tier_;
  }

  // Returns a block that the ring of `addresses` gives to `owner`, in the
  // durable tier and on every peer.
  TestBlock BlockOwnedBy(const std::vector<std::string>& addresses,
                         const std::string& owner) {
    HashRing ring(addresses, options_.virtual_nodes);
    for (;; ++next_seed_) {
      TestBlock block = MakeTestBlock(next_seed_);
      if (ring.Owner(block.id) == owner) {
        ++next_seed_;
        EXPECT_OK(durable_.Write(block.id, block.block));
        client_->AddBlock(block);
        return block;
      }
    }
  }
  TestBlock BlockOwnedBy(const std::string& owner) {
    return BlockOwnedBy({kSelf, kPeerB, kPeerC}, owner);
  }

  // Expects `read` answered, once or more, with the bytes of `block`.
  static void ExpectBytes(ReadResult& read, const TestBlock& block) {
    ASSERT_TRUE(read.Wait());
    ASSERT_OK(read.result());
    EXPECT_EQ(BytesOf(*read.result()), block.bytes);
  }

  ReadResult ReadThrough(const BlockId& id) {
    ReadResult read;
    tier_->ReadAsync(id, read.Callback());
    return read;
  }

  PeerOptions options_;
  MapTier durable_;
  std::shared_ptr<FakePeerClient> client_ = std::make_shared<FakePeerClient>();
  uint64_t next_seed_ = 1;
  absl::Mutex members_mu_;
  std::vector<NodeInfo> members_ ABSL_GUARDED_BY(members_mu_);
  std::unique_ptr<PeerTier> tier_;  // Last: destroyed first.
};

TEST_F(PeerTierTest, BlockThisNodeOwnsIsReadFromTheDurableTier) {
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kServe);
  client_->SetBehaviour(kPeerC, PeerBehaviour::kServe);
  TestBlock block = BlockOwnedBy(kSelf);

  ReadResult read = ReadThrough(block.id);
  ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, block));
  EXPECT_EQ(read.calls(), 1);
  EXPECT_THAT(client_->calls(), IsEmpty());
  EXPECT_EQ(durable_.reads(), 1);
  PeerStats stats = tier.peer_stats();
  EXPECT_TRUE(stats.enabled);
  EXPECT_EQ(stats.ring_nodes, 3);
  EXPECT_EQ(stats.peer_blocks, 0);
  EXPECT_EQ(stats.peer_errors, 0);
}

TEST_F(PeerTierTest, BlockAnotherNodeOwnsComesFromThatNode) {
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kServe);
  client_->SetBehaviour(kPeerC, PeerBehaviour::kServe);
  TestBlock owned_by_b = BlockOwnedBy(kPeerB);
  TestBlock owned_by_c = BlockOwnedBy(kPeerC);

  ReadResult read_b = ReadThrough(owned_by_b.id);
  ASSERT_TRUE(read_b.Wait());
  ASSERT_OK(read_b.result());
  EXPECT_EQ(BytesOf(*read_b.result()), owned_by_b.bytes);
  ReadResult read_c = ReadThrough(owned_by_c.id);
  ASSERT_TRUE(read_c.Wait());
  ASSERT_OK(read_c.result());
  EXPECT_EQ(BytesOf(*read_c.result()), owned_by_c.bytes);

  EXPECT_EQ(read_b.calls(), 1);
  EXPECT_EQ(read_c.calls(), 1);
  EXPECT_THAT(client_->calls(), ElementsAre(kPeerB, kPeerC));
  EXPECT_THAT(client_->timeouts(), Each(options_.read_timeout));
  EXPECT_EQ(durable_.reads(), 0);
  PeerStats stats = tier.peer_stats();
  EXPECT_EQ(stats.peer_blocks, 2);
  EXPECT_EQ(stats.peer_bytes, 2 * kBlockSize);
  EXPECT_EQ(stats.peer_errors, 0);
  EXPECT_EQ(stats.peer_bad_blocks, 0);
  EXPECT_EQ(stats.hedges, 0);
}

TEST_F(PeerTierTest, WrongBytesFromThePeerAreReplacedByTheDurableTiers) {
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kFlipByte);
  TestBlock block = BlockOwnedBy(kPeerB);

  ReadResult read = ReadThrough(block.id);
  ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, block));
  EXPECT_EQ(read.calls(), 1);
  EXPECT_THAT(client_->calls(), ElementsAre(kPeerB));
  EXPECT_EQ(durable_.reads(), 1);
  PeerStats stats = tier.peer_stats();
  EXPECT_EQ(stats.peer_bad_blocks, 1);
  EXPECT_EQ(stats.peer_errors, 0);
  EXPECT_EQ(stats.peer_blocks, 0);
  EXPECT_EQ(stats.peer_bytes, 0);
}

TEST_F(PeerTierTest, UnavailablePeerFallsBackToTheDurableTier) {
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kUnavailable);
  TestBlock block = BlockOwnedBy(kPeerB);

  ReadResult read = ReadThrough(block.id);
  ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, block));
  EXPECT_EQ(read.calls(), 1);
  EXPECT_THAT(client_->calls(), ElementsAre(kPeerB));
  EXPECT_EQ(durable_.reads(), 1);
  PeerStats stats = tier.peer_stats();
  EXPECT_EQ(stats.peer_errors, 1);
  EXPECT_EQ(stats.peer_bad_blocks, 0);
  EXPECT_EQ(stats.peer_blocks, 0);
  EXPECT_EQ(stats.hedges, 0);
}

TEST_F(PeerTierTest, SlowPeerIsHedgedAndTheDurableAnswerWins) {
  options_.hedge_after = absl::Milliseconds(50);
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kHold);
  TestBlock block = BlockOwnedBy(kPeerB);

  ReadResult read = ReadThrough(block.id);
  ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, block));
  EXPECT_EQ(durable_.reads(), 1);
  PeerStats stats = tier.peer_stats();
  EXPECT_EQ(stats.hedges, 1);
  EXPECT_EQ(stats.hedge_wins, 1);

  // The peer answers late, with good bytes: the read was answered already.
  EXPECT_EQ(client_->Release(PeerBehaviour::kServe), 1);
  EXPECT_EQ(read.calls(), 1);
  EXPECT_EQ(tier.peer_stats().hedge_wins, 1);
}

TEST_F(PeerTierTest, SlowPeerAnsweringAnErrorAfterTheHedgeWonIsIgnored) {
  options_.hedge_after = absl::Milliseconds(50);
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kHold);
  TestBlock block = BlockOwnedBy(kPeerB);

  ReadResult read = ReadThrough(block.id);
  ASSERT_TRUE(read.Wait());
  ASSERT_OK(read.result());
  EXPECT_EQ(client_->Release(PeerBehaviour::kUnavailable), 1);
  EXPECT_EQ(read.calls(), 1);
  EXPECT_EQ(durable_.reads(), 1);
  EXPECT_EQ(tier.peer_stats().hedges, 1);
}

TEST_F(PeerTierTest, PeerAnsweringBeforeTheDeadlineIsNotHedged) {
  PeerTier& tier = MakeTier();  // hedge_after: 60 s.
  client_->SetBehaviour(kPeerB, PeerBehaviour::kHold);
  TestBlock block = BlockOwnedBy(kPeerB);

  ReadResult read = ReadThrough(block.id);
  EXPECT_EQ(client_->held(), 1);
  EXPECT_FALSE(read.answered());
  EXPECT_EQ(client_->Release(PeerBehaviour::kServe), 1);
  ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, block));
  EXPECT_EQ(read.calls(), 1);
  EXPECT_EQ(durable_.reads(), 0);
  PeerStats stats = tier.peer_stats();
  EXPECT_EQ(stats.hedges, 0);
  EXPECT_EQ(stats.peer_blocks, 1);
}

TEST_F(PeerTierTest, BlockMissingFromTheDurableTierAndThePeerFailsOnce) {
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kUnavailable);
  TestBlock block = BlockOwnedBy(kPeerB);
  ASSERT_OK(durable_.Erase(block.id));

  ReadResult read = ReadThrough(block.id);
  ASSERT_TRUE(read.Wait());
  // The durable tier's answer, the last one asked.
  EXPECT_THAT(read.result(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(read.calls(), 1);
  EXPECT_EQ(durable_.reads(), 1);
  EXPECT_EQ(tier.peer_stats().peer_errors, 1);
}

TEST_F(PeerTierTest, HedgedReadMissingEverywhereFailsOnceWhenThePeerFails) {
  options_.hedge_after = absl::Milliseconds(50);
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kHold);
  TestBlock block = BlockOwnedBy(kPeerB);
  ASSERT_OK(durable_.Erase(block.id));

  ReadResult read = ReadThrough(block.id);
  // The hedge reads the durable tier, which misses; the peer may still
  // answer, so the read waits for it.
  ASSERT_TRUE(Eventually([&] { return durable_.reads() == 1; }));
  EXPECT_EQ(tier.peer_stats().hedges, 1);
  EXPECT_FALSE(read.answered());

  EXPECT_EQ(client_->Release(PeerBehaviour::kUnavailable), 1);
  ASSERT_TRUE(read.Wait());
  EXPECT_THAT(read.result(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(read.calls(), 1);
  PeerStats stats = tier.peer_stats();
  EXPECT_EQ(stats.peer_errors, 1);
  EXPECT_EQ(stats.hedge_wins, 0);
}

TEST_F(PeerTierTest, HedgedReadMissingFromTheDurableTierTakesThePeersAnswer) {
  options_.hedge_after = absl::Milliseconds(50);
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kHold);
  TestBlock block = BlockOwnedBy(kPeerB);
  ASSERT_OK(durable_.Erase(block.id));

  ReadResult read = ReadThrough(block.id);
  ASSERT_TRUE(Eventually([&] { return durable_.reads() == 1; }));
  EXPECT_FALSE(read.answered());

  EXPECT_EQ(client_->Release(PeerBehaviour::kServe), 1);
  ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, block));
  EXPECT_EQ(read.calls(), 1);
  PeerStats stats = tier.peer_stats();
  EXPECT_EQ(stats.hedges, 1);
  EXPECT_EQ(stats.hedge_wins, 0);
  EXPECT_EQ(stats.peer_blocks, 1);
}

TEST_F(PeerTierTest, MembersChangeMovesOwnershipOnRefresh) {
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kServe);
  client_->SetBehaviour(kPeerC, PeerBehaviour::kServe);
  const std::vector<std::string> three = {kSelf, kPeerB, kPeerC};
  const std::vector<std::string> two = {kSelf, kPeerB};
  // Owned by C on the ring of three; by B, or by this node, once C leaves.
  TestBlock to_b;
  do {
    to_b = BlockOwnedBy(three, kPeerC);
  } while (HashRing(two, options_.virtual_nodes).Owner(to_b.id) != kPeerB);
  TestBlock to_self;
  do {
    to_self = BlockOwnedBy(three, kPeerC);
  } while (HashRing(two, options_.virtual_nodes).Owner(to_self.id) != kSelf);

  ReadResult before = ReadThrough(to_b.id);
  ASSERT_TRUE(before.Wait());
  ASSERT_OK(before.result());
  EXPECT_THAT(client_->calls(), ElementsAre(kPeerC));

  SetMembers({Node(kSelf, true), Node(kPeerB, false)});
  // Not refreshed yet (ring_refresh: 1 h): C still owns it.
  ReadResult stale = ReadThrough(to_b.id);
  ASSERT_TRUE(stale.Wait());
  EXPECT_THAT(client_->calls(), ElementsAre(kPeerC, kPeerC));
  EXPECT_EQ(tier.peer_stats().ring_nodes, 3);

  tier.RefreshRing();
  EXPECT_EQ(tier.peer_stats().ring_nodes, 2);
  ReadResult after = ReadThrough(to_b.id);
  ASSERT_TRUE(after.Wait());
  ASSERT_OK(after.result());
  EXPECT_EQ(BytesOf(*after.result()), to_b.bytes);
  EXPECT_THAT(client_->calls(), ElementsAre(kPeerC, kPeerC, kPeerB));

  ReadResult now_own = ReadThrough(to_self.id);
  ASSERT_TRUE(now_own.Wait());
  ASSERT_OK(now_own.result());
  EXPECT_EQ(BytesOf(*now_own.result()), to_self.bytes);
  EXPECT_THAT(client_->calls(), ElementsAre(kPeerC, kPeerC, kPeerB));
  EXPECT_EQ(durable_.reads(), 1);
}

TEST_F(PeerTierTest, RingIsRebuiltOnItsOwnEveryRefreshPeriod) {
  options_.ring_refresh = absl::Milliseconds(10);
  PeerTier& tier = MakeTier();
  EXPECT_EQ(tier.peer_stats().ring_nodes, 3);
  SetMembers({Node(kSelf, true), Node(kPeerB, false)});
  EXPECT_TRUE(Eventually([&] { return tier.peer_stats().ring_nodes == 2; }));
}

TEST_F(PeerTierTest, NodeThatIsNotAMemberReadsOnlyTheDurableTier) {
  SetMembers({Node(kPeerB, false), Node(kPeerC, false)});
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kServe);
  client_->SetBehaviour(kPeerC, PeerBehaviour::kServe);
  TestBlock owned_by_b = BlockOwnedBy({kPeerB, kPeerC}, kPeerB);
  TestBlock owned_by_c = BlockOwnedBy({kPeerB, kPeerC}, kPeerC);

  for (const TestBlock* block : {&owned_by_b, &owned_by_c}) {
    ReadResult read = ReadThrough(block->id);
    ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, *block));
  }
  EXPECT_THAT(client_->calls(), IsEmpty());
  EXPECT_EQ(durable_.reads(), 2);
  EXPECT_EQ(tier.peer_stats().ring_nodes, 0);
}

TEST_F(PeerTierTest, OnlyMemberReadsOnlyTheDurableTier) {
  SetMembers({Node(kSelf, true)});
  PeerTier& tier = MakeTier();
  TestBlock block = BlockOwnedBy({kSelf}, kSelf);

  ReadResult read = ReadThrough(block.id);
  ASSERT_TRUE(read.Wait());
  ASSERT_OK(read.result());
  EXPECT_THAT(client_->calls(), IsEmpty());
  EXPECT_EQ(tier.peer_stats().ring_nodes, 1);
}

TEST_F(PeerTierTest, DisabledPeersReadOnlyTheDurableTier) {
  options_.enabled = false;
  PeerTier& tier = MakeTier();
  client_->SetBehaviour(kPeerB, PeerBehaviour::kServe);
  TestBlock block = BlockOwnedBy(kPeerB);

  ReadResult read = ReadThrough(block.id);
  ASSERT_NO_FATAL_FAILURE(ExpectBytes(read, block));
  EXPECT_THAT(client_->calls(), IsEmpty());
  EXPECT_FALSE(tier.peer_stats().enabled);
}

TEST_F(PeerTierTest, EverythingButReadsGoesToTheDurableTier) {
  PeerTier& tier = MakeTier();
  TestBlock block = MakeTestBlock(1000);
  EXPECT_EQ(tier.name(), "cold");
  EXPECT_FALSE(tier.Contains(block.id));
  ASSERT_OK(tier.Write(block.id, block.block));
  EXPECT_TRUE(durable_.Contains(block.id));
  EXPECT_TRUE(tier.Contains(block.id));
  EXPECT_EQ(tier.Stats().blocks, 1);
  ASSERT_OK(tier.Erase(block.id));
  EXPECT_FALSE(durable_.Contains(block.id));
  EXPECT_THAT(client_->calls(), IsEmpty());
}

// A member whose ring differs (another --peer_ring_size, or a node from
// before peers: 0) is never asked: with it, two nodes could each name the
// other the owner.
TEST_F(PeerTierTest, MembersWithAnotherRingSizeAreLeftOffTheRing) {
  SetMembers(
      {Node(kSelf, true), Node(kPeerB, false, 128), Node(kPeerC, false, 0)});
  PeerTier& tier = MakeTier();
  EXPECT_EQ(tier.peer_stats().ring_nodes, 1u);
  // Blocks the full ring would give to B or C.
  for (const char* owner : {kPeerB, kPeerC}) {
    TestBlock block = BlockOwnedBy(owner);
    ASSERT_OK_AND_ASSIGN(BlockRef got, tier.Read(block.id));
    EXPECT_EQ(BlockId::Of(got->bytes()), block.id);
  }
  EXPECT_THAT(client_->calls(), IsEmpty());
}

// A ring refresh running while the tier is destroyed finishes, and the
// next one it schedules is dropped (it once crashed on a queue already
// gone).
TEST(PeerTierDestructionTest, DestroyedWhileTheRingRefreshRuns) {
  MapTier durable;
  auto client = std::make_shared<FakePeerClient>();
  PeerOptions options;
  options.ring_refresh = absl::Milliseconds(5);
  std::atomic<int> member_calls{0};
  absl::Notification in_refresh;
  absl::Notification release;
  auto tier = std::make_unique<PeerTier>(
      &durable,
      [&]() -> std::vector<NodeInfo> {
        if (++member_calls == 2) {  // The first refresh on the timer thread.
          in_refresh.Notify();
          if (!release.WaitForNotificationWithTimeout(kBound)) {
            ADD_FAILURE() << "the refresh was never released";
          }
        }
        return {Node(kSelf, true), Node(kPeerB, false)};
      },
      client, options);
  ASSERT_TRUE(in_refresh.WaitForNotificationWithTimeout(kBound));
  std::thread destroyer([&] { tier.reset(); });
  absl::SleepFor(absl::Milliseconds(50));  // The destructor reaches join.
  release.Notify();
  destroyer.join();
  EXPECT_EQ(tier, nullptr);
}

}  // namespace
}  // namespace pstore
