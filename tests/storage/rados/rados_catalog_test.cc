// The RADOS catalog with several nodes on one pool: each node is a
// connection of its own (a RadosPool), as separate pstored processes are,
// all on the suite's real Ceph.

#include "storage/rados/rados_catalog.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rados/rados_gc.h"
#include "storage/rados/rados_ops.h"
#include "storage/rados/rados_pool.h"
#include "storage/rados/rados_tier.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_ceph.h"
#include "util/status.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;

class RadosNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
    options_ = ::pstore::testing::TestRadosOptions();
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK_AND_ASSIGN(std::shared_ptr<RadosPool> pool,
                           RadosPool::Connect(options_));
      pools_.push_back(pool);
      nodes_.push_back(std::make_unique<RadosCatalog>(pool));
    }
  }

  TensorMeta Tensor(const RevisionName& revision, const std::string& name) {
    TensorMeta meta;
    meta.name = TensorName{revision, name};
    meta.dtype = DType::kU8;
    meta.block_bytes = 4096;
    meta.blocks = {BlockId::Of(RandomBytes(64, 7))};
    meta.byte_length = 4096;
    meta.shape = {4096};
    meta.xxh3_64 = 1;
    return meta;
  }

  RadosOptions options_;
  std::vector<std::shared_ptr<RadosPool>> pools_;
  std::vector<std::unique_ptr<RadosCatalog>> nodes_;
};

TEST_F(RadosNodesTest, WhatOneNodeWritesAnotherReads) {
  RevisionName v1{"m", "v1"};
  ASSERT_OK(nodes_[0]->CreateRevision(v1, {{"k", "v"}}));
  ASSERT_OK(nodes_[0]->CommitTensor(Tensor(v1, "t")).status());
  ASSERT_OK(nodes_[1]->PublishRevision(v1));
  ASSERT_OK_AND_ASSIGN(Manifest manifest,
                       nodes_[2]->GetManifest(RevisionName{"m", ""}));
  EXPECT_EQ(manifest.revision.name, v1);
  EXPECT_TRUE(manifest.revision.published);
  ASSERT_EQ(manifest.tensors.size(), 1u);
  EXPECT_EQ(manifest.tensors[0].name.tensor, "t");
  EXPECT_THAT(nodes_[2]->CommitTensor(Tensor(v1, "u")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(nodes_[2]->DeleteRevision(v1).status());
  EXPECT_THAT(nodes_[0]->GetManifest(v1),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RadosNodesTest, RacingCreatesHaveOneWinner) {
  for (int round = 0; round < 20; ++round) {
    RevisionName name{"m", absl::StrCat("r", round)};
    std::atomic<int> created{0}, exists{0}, other{0};
    std::vector<std::thread> threads;
    for (auto& node : nodes_) {
      threads.emplace_back([&, catalog = node.get()] {
        absl::Status status = catalog->CreateRevision(name, {});
        if (status.ok()) {
          ++created;
        } else if (absl::IsAlreadyExists(status)) {
          ++exists;
        } else {
          ++other;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(created.load(), 1) << name.ToString();
    EXPECT_EQ(exists.load(), 2) << name.ToString();
    EXPECT_EQ(other.load(), 0) << name.ToString();
  }
}

TEST_F(RadosNodesTest, NoCommitJoinsARevisionOncePublished) {
  // Commits on two nodes race a publish on the third: every commit that
  // returned OK is in the published revision, and none that was refused.
  for (int round = 0; round < 5; ++round) {
    RevisionName name{"m", absl::StrCat("p", round)};
    ASSERT_OK(nodes_[0]->CreateRevision(name, {}));
    std::atomic<bool> published{false};
    std::vector<std::vector<std::string>> accepted(2);
    std::vector<std::thread> writers;
    for (int w = 0; w < 2; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; i < 200; ++i) {
          std::string tensor = absl::StrCat("w", w, ".", i);
          absl::StatusOr<std::vector<BlockId>> committed =
              nodes_[w]->CommitTensor(Tensor(name, tensor));
          if (committed.ok()) {
            accepted[w].push_back(tensor);
          } else {
            EXPECT_THAT(committed,
                        StatusIs(absl::StatusCode::kFailedPrecondition));
          }
          if (published.load() && !committed.ok()) break;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_OK(nodes_[2]->PublishRevision(name));
    published = true;
    for (std::thread& writer : writers) writer.join();
    ASSERT_OK_AND_ASSIGN(Manifest manifest, nodes_[2]->GetManifest(name));
    std::vector<std::string> in_manifest;
    for (const TensorMeta& tensor : manifest.tensors) {
      in_manifest.push_back(tensor.name.tensor);
    }
    std::vector<std::string> all = accepted[0];
    all.insert(all.end(), accepted[1].begin(), accepted[1].end());
    EXPECT_THAT(in_manifest, ::testing::UnorderedElementsAreArray(all));
  }
}

TEST_F(RadosNodesTest, ARevisionCreatedAnewHoldsNoneOfTheOldTensors) {
  RevisionName name{"m", "again"};
  ASSERT_OK(nodes_[0]->CreateRevision(name, {}));
  ASSERT_OK(nodes_[0]->CommitTensor(Tensor(name, "old")).status());
  ASSERT_OK(nodes_[1]->DeleteRevision(name).status());
  ASSERT_OK(nodes_[2]->CreateRevision(name, {}));
  ASSERT_OK_AND_ASSIGN(Manifest manifest, nodes_[0]->GetManifest(name));
  EXPECT_TRUE(manifest.tensors.empty());
  EXPECT_THAT(nodes_[1]->GetTensor(TensorName{name, "old"}),
              StatusIs(absl::StatusCode::kNotFound));
}

// As rados_format.md describes the object of revision `name`.
void WriteRevisionObjectByHand(RadosPool& pool, const RevisionName& name,
                               const std::string& state,
                               const std::string& created,
                               const std::string& tensor) {
  rados::WriteOp op;
  op.Create(/*exclusive=*/false);
  op.ClearOmap();
  op.SetXattr("pstore.state", state);
  op.SetXattr("pstore.created", created);
  if (!tensor.empty()) op.SetOmap({{tensor, "not a tensor record"}});
  ASSERT_EQ(op.Operate(pool.io(), absl::StrCat("revision.", name.ToString())),
            0);
}

std::vector<std::string> TensorNames(const Manifest& manifest) {
  std::vector<std::string> names;
  for (const TensorMeta& tensor : manifest.tensors) {
    names.push_back(tensor.name.tensor);
  }
  return names;
}

// A delete stopped after the model's swap leaves the revision object; a
// create of the name stopped before writing its own leaves that one in
// place: the new revision reads empty, and its first commit or its publish
// replaces the old object.
TEST_F(RadosNodesTest, AnObjectLeftByAnEarlierRevisionOfTheNameIsReplaced) {
  for (const std::string left_state : {"open", "published"}) {
    for (const bool commit : {true, false}) {
      SCOPED_TRACE(absl::StrCat(left_state, commit ? ", commit" : ""));
      RevisionName name{"m", absl::StrCat("left-", left_state, commit)};
      ASSERT_OK(nodes_[0]->CreateRevision(name, {}));
      WriteRevisionObjectByHand(*pools_[0], name, left_state, "1", "old");
      ASSERT_OK_AND_ASSIGN(Manifest manifest, nodes_[1]->GetManifest(name));
      EXPECT_THAT(TensorNames(manifest), ::testing::IsEmpty());
      ASSERT_OK_AND_ASSIGN(TensorPage page,
                           nodes_[1]->ListTensors(name, "", 10, ""));
      EXPECT_THAT(page.tensors, ::testing::IsEmpty());
      EXPECT_THAT(nodes_[1]->GetTensor(TensorName{name, "old"}),
                  StatusIs(absl::StatusCode::kNotFound));
      if (commit) {
        ASSERT_OK(nodes_[2]->CommitTensor(Tensor(name, "new")).status());
      }
      ASSERT_OK(nodes_[2]->PublishRevision(name));
      ASSERT_OK_AND_ASSIGN(manifest, nodes_[0]->GetManifest(name));
      EXPECT_TRUE(manifest.revision.published);
      EXPECT_THAT(TensorNames(manifest), commit
                                             ? std::vector<std::string>{"new"}
                                             : std::vector<std::string>{});
    }
  }
}

// The creation times of a name grow even when the node that created an
// earlier revision of it had a clock an hour ahead.
TEST_F(RadosNodesTest, ARevisionCreatedAfterOneFromAClockAheadIsNewer) {
  RevisionName name{"m", "clock"};
  const int64_t ahead = absl::ToUnixMicros(absl::Now() + absl::Hours(1));
  // What a delete of that revision stopped after its model swap left.
  WriteRevisionObjectByHand(*pools_[0], name, "published", absl::StrCat(ahead),
                            "old");
  ASSERT_OK(nodes_[0]->CreateRevision(name, {}));
  ASSERT_OK_AND_ASSIGN(RevisionInfo info, nodes_[1]->GetRevision(name));
  EXPECT_GT(info.created_unix_micros, ahead);
  ASSERT_OK(nodes_[1]->CommitTensor(Tensor(name, "new")).status());
  ASSERT_OK(nodes_[2]->PublishRevision(name));
  ASSERT_OK_AND_ASSIGN(Manifest manifest, nodes_[0]->GetManifest(name));
  EXPECT_TRUE(manifest.revision.published);
  EXPECT_THAT(TensorNames(manifest), ::testing::ElementsAre("new"));
}

// Seals revision `name` as the first step of a publish does, as if its
// publisher stopped before the second (the swap of the model object).
void SealByHand(RadosPool& pool, const RevisionName& name) {
  rados::WriteOp seal;
  seal.SetXattr("pstore.state", "published");
  ASSERT_EQ(seal.Operate(pool.io(), absl::StrCat("revision.", name.ToString())),
            0);
}

// Once sealed a revision is published: a commit that comes next is refused
// (and finishes the publish), a reader sees it published and latest.
TEST_F(RadosNodesTest, APublishStoppedAfterItsSealIsFinishedByWhoeverComes) {
  for (const bool commit_first : {true, false}) {
    SCOPED_TRACE(commit_first ? "commit first" : "read first");
    RevisionName name{"sealed", commit_first ? "commit" : "read"};
    ASSERT_OK(nodes_[0]->CreateRevision(name, {}));
    ASSERT_OK(nodes_[0]->CommitTensor(Tensor(name, "a")).status());
    SealByHand(*pools_[0], name);
    if (commit_first) {
      EXPECT_THAT(nodes_[1]->CommitTensor(Tensor(name, "b")).status(),
                  StatusIs(absl::StatusCode::kFailedPrecondition));
    }
    ASSERT_OK_AND_ASSIGN(RevisionInfo info, nodes_[2]->GetRevision(name));
    EXPECT_TRUE(info.published);
    EXPECT_TRUE(info.latest);
    ASSERT_OK_AND_ASSIGN(Manifest manifest, nodes_[2]->GetManifest(name));
    EXPECT_THAT(TensorNames(manifest), ::testing::ElementsAre("a"));
    EXPECT_THAT(nodes_[0]->CommitTensor(Tensor(name, "c")).status(),
                StatusIs(absl::StatusCode::kFailedPrecondition));
    ASSERT_OK(nodes_[0]->PublishRevision(name));  // A retried publish.
  }
}

TEST(RadosPoolTest, AMissingPoolIsNotFoundAndABadConfInvalid) {
  std::string why;
  if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
  RadosOptions options = ::pstore::testing::TestRadosOptions();
  options.pool = "no-such-pool";
  EXPECT_THAT(RadosPool::Connect(options),
              StatusIs(absl::StatusCode::kNotFound));
  options.ceph_conf = "/nonexistent/ceph.conf";
  EXPECT_THAT(RadosPool::Connect(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RadosTierTest, ACorruptObjectIsDataLoss) {
  std::string why;
  if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<RadosPool> pool,
      RadosPool::Connect(::pstore::testing::TestRadosOptions()));
  RadosTier tier(pool, uint64_t{4} << 20);
  std::vector<uint8_t> bytes = RandomBytes(100000, 3);
  BlockId id = BlockId::Of(bytes);
  ASSERT_OK(tier.Write(id, CopyBlock(bytes)));
  // Flip a byte in place, as a bad disk under the OSD would.
  ASSERT_EQ(rados_write(pool->io(), BlockObjectName(id).c_str(), "x", 1, 500),
            0);
  EXPECT_THAT(tier.Read(id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(tier.Stats().checksum_failures, 1u);
}

TEST(RadosTierTest, ReadsBlocksLargerAndSmallerThanItsBlockSize) {
  std::string why;
  if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<RadosPool> pool,
      RadosPool::Connect(::pstore::testing::TestRadosOptions()));
  // A store with 1 MiB blocks reads what one with bigger blocks wrote.
  RadosTier tier(pool, uint64_t{1} << 20);
  for (size_t size : {size_t{100}, size_t{1} << 20, (size_t{3} << 20) + 7}) {
    std::vector<uint8_t> bytes = RandomBytes(size, size);
    BlockId id = BlockId::Of(bytes);
    ASSERT_OK(tier.Write(id, CopyBlock(bytes)));
    ASSERT_OK_AND_ASSIGN(BlockRef read, tier.Read(id));
    EXPECT_EQ(read->view(), CopyBlock(bytes)->view()) << size;
    absl::Notification done;
    absl::StatusOr<BlockRef> async;
    tier.ReadAsync(id, [&](absl::StatusOr<BlockRef> result) {
      async = std::move(result);
      done.Notify();
    });
    done.WaitForNotification();
    ASSERT_OK(async.status());
    EXPECT_EQ((*async)->view(), CopyBlock(bytes)->view()) << size;
  }
}

// One node of a store with a short grace period, for the collector.
struct GcNode {
  std::shared_ptr<RadosPool> pool;
  std::unique_ptr<RadosCatalog> catalog;
  std::unique_ptr<RadosTier> tier;
};

GcNode OpenGcNode(const RadosOptions& options) {
  GcNode node;
  absl::StatusOr<std::shared_ptr<RadosPool>> pool = RadosPool::Connect(options);
  EXPECT_TRUE(pool.ok()) << pool.status();
  if (!pool.ok()) return node;
  node.pool = *pool;
  node.catalog = std::make_unique<RadosCatalog>(node.pool);
  node.tier = std::make_unique<RadosTier>(node.pool, uint64_t{1} << 20);
  return node;
}

// Puts tensor `name` of `blocks` (64 KiB each) as TensorWriter does: each
// block written (or touched), then the record committed.
absl::Status PutBlocks(GcNode& node, const TensorName& name,
                       const std::vector<std::vector<uint8_t>>& blocks) {
  TensorMeta meta;
  meta.name = name;
  meta.dtype = DType::kU8;
  meta.block_bytes = 65536;
  meta.byte_length = 65536 * blocks.size();
  meta.shape = {static_cast<int64_t>(meta.byte_length)};
  meta.started_unix_micros = absl::ToUnixMicros(absl::Now());
  for (const std::vector<uint8_t>& bytes : blocks) {
    BlockId id = BlockId::Of(bytes);
    PSTORE_RETURN_IF_ERROR(node.tier->Write(id, CopyBlock(bytes)));
    meta.blocks.push_back(id);
  }
  return node.catalog->CommitTensor(meta).status();
}

TEST(RadosGcTest, SweepsOnlyUnreferencedBlocksPastTheGracePeriod) {
  std::string why;
  if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
  RadosOptions options = ::pstore::testing::TestRadosOptions();
  options.gc_grace = absl::Seconds(2);
  GcNode node = OpenGcNode(options);
  ASSERT_NE(node.catalog, nullptr);
  std::vector<std::vector<uint8_t>> bytes;
  for (int i = 0; i < 3; ++i) bytes.push_back(RandomBytes(65536, 100 + i));
  RevisionName r1{"m", "r1"}, r2{"m", "r2"};
  ASSERT_OK(node.catalog->CreateRevision(r1, {}));
  ASSERT_OK(node.catalog->CreateRevision(r2, {}));
  ASSERT_OK(PutBlocks(node, TensorName{r1, "t"}, {bytes[0], bytes[1]}));
  ASSERT_OK(PutBlocks(node, TensorName{r2, "t"}, {bytes[1]}));
  // A block written and never committed (a put that died).
  ASSERT_OK(node.tier->Write(BlockId::Of(bytes[2]), CopyBlock(bytes[2])));
  ASSERT_OK(node.catalog->DeleteRevision(r1).status());

  ASSERT_OK_AND_ASSIGN(GcReport fresh,
                       CollectRadosGarbage(*node.pool, *node.catalog, false));
  EXPECT_EQ(fresh.referenced_blocks, 1u);
  EXPECT_EQ(fresh.block_objects, 3u);
  EXPECT_EQ(fresh.removed, 0u);
  EXPECT_EQ(fresh.kept_recent, 2u);

  absl::SleepFor(absl::Milliseconds(2200));
  ASSERT_OK_AND_ASSIGN(GcReport dry,
                       CollectRadosGarbage(*node.pool, *node.catalog, true));
  EXPECT_EQ(dry.removed, 2u);
  EXPECT_EQ(dry.removed_bytes, 2u * 65536);
  EXPECT_TRUE(node.tier->Contains(BlockId::Of(bytes[0])));
  ASSERT_OK_AND_ASSIGN(GcReport swept,
                       CollectRadosGarbage(*node.pool, *node.catalog, false));
  EXPECT_EQ(swept.removed, 2u);
  EXPECT_FALSE(node.tier->Contains(BlockId::Of(bytes[0])));
  EXPECT_FALSE(node.tier->Contains(BlockId::Of(bytes[2])));
  ASSERT_OK_AND_ASSIGN(BlockRef kept, node.tier->Read(BlockId::Of(bytes[1])));
  EXPECT_EQ(kept->size(), 65536u);
  // A put that reuses a block refreshes it: the next sweep keeps it.
  absl::SleepFor(absl::Milliseconds(2200));
  ASSERT_OK(node.catalog->DeleteRevision(r2).status());
  ASSERT_OK(node.tier->Write(BlockId::Of(bytes[1]), CopyBlock(bytes[1])));
  ASSERT_OK_AND_ASSIGN(GcReport after_reuse,
                       CollectRadosGarbage(*node.pool, *node.catalog, false));
  EXPECT_EQ(after_reuse.removed, 0u);
  EXPECT_EQ(after_reuse.kept_recent, 1u);
}

TEST(RadosGcTest, WritersOnThreeNodesNeverLoseACommittedBlockToSweeps) {
  std::string why;
  if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
  RadosOptions options = ::pstore::testing::TestRadosOptions();
  options.gc_grace = absl::Seconds(1);
  std::vector<GcNode> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(OpenGcNode(options));
    ASSERT_NE(nodes.back().catalog, nullptr);
  }
  // Blocks by seed: twelve shared ones that every writer draws from (puts
  // reuse blocks that deletes have just left unreferenced, all the time),
  // and one of its own per put (garbage for good once its revision goes).
  auto content = [](uint64_t seed) { return RandomBytes(65536, seed); };

  struct Committed {
    TensorName name;
    std::vector<uint64_t> blocks;  // Seeds.
  };
  absl::Mutex mu;
  std::vector<Committed> committed;  // Guarded by mu.
  std::atomic<bool> stop{false};
  std::atomic<int> puts{0}, deletes{0}, refused{0}, sweeps{0}, removed{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      GcNode& node = nodes[w % 3];
      std::mt19937 random(w);
      std::vector<RevisionName> mine;
      for (int round = 0; round < 400 && !stop.load(); ++round) {
        RevisionName revision{absl::StrCat("w", w), absl::StrCat("r", round)};
        if (!node.catalog->CreateRevision(revision, {}).ok()) continue;
        std::vector<uint64_t> picked = {500 + random() % 12,
                                        500 + random() % 12,
                                        uint64_t{1000000} + w * 1000 + round};
        std::vector<std::vector<uint8_t>> blocks;
        for (uint64_t seed : picked) blocks.push_back(content(seed));
        TensorName name{revision, "t"};
        absl::Status put = PutBlocks(node, name, blocks);
        if (put.ok()) {
          ++puts;
          absl::MutexLock lock(&mu);
          committed.push_back({name, picked});
        } else {
          ++refused;
        }
        mine.push_back(revision);
        // Delete an older revision of this writer now and then.
        if (mine.size() > 3 && random() % 2 == 0) {
          RevisionName old = mine.front();
          mine.erase(mine.begin());
          if (node.catalog->DeleteRevision(old).ok()) {
            ++deletes;
            absl::MutexLock lock(&mu);
            std::erase_if(committed, [&](const Committed& c) {
              return c.name.revision == old;
            });
          }
        }
      }
    });
  }
  std::thread sweeper([&] {
    // 8 s and at least 6 sweeps (slow builds sweep slowly), 60 s at most.
    const absl::Time end = absl::Now() + absl::Seconds(8);
    const absl::Time last = absl::Now() + absl::Seconds(60);
    while ((absl::Now() < end || sweeps.load() < 6) && absl::Now() < last) {
      absl::StatusOr<GcReport> report = CollectRadosGarbage(
          *nodes[sweeps % 3].pool, *nodes[sweeps % 3].catalog, false);
      if (report.ok()) {
        ++sweeps;
        removed += static_cast<int>(report->removed);
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    stop = true;
  });
  sweeper.join();
  for (std::thread& writer : writers) writer.join();
  EXPECT_GT(puts.load(), 50);
  EXPECT_GT(deletes.load(), 10);
  EXPECT_GT(sweeps.load(), 5);
  EXPECT_GT(removed.load(), 0);

  // Every committed tensor reads back, block for block.
  GcNode reader = OpenGcNode(options);
  ASSERT_NE(reader.catalog, nullptr);
  for (const Committed& c : committed) {
    ASSERT_OK_AND_ASSIGN(TensorMeta meta, reader.catalog->GetTensor(c.name));
    ASSERT_EQ(meta.blocks.size(), c.blocks.size());
    for (size_t i = 0; i < c.blocks.size(); ++i) {
      absl::StatusOr<BlockRef> block = reader.tier->Read(meta.blocks[i]);
      ASSERT_TRUE(block.ok())
          << c.name.ToString() << " block " << i << ": " << block.status();
      EXPECT_EQ((*block)->view(), CopyBlock(content(c.blocks[i]))->view());
    }
  }
  // Past the grace period, one more sweep leaves only referenced blocks.
  absl::SleepFor(absl::Milliseconds(1200));
  ASSERT_OK(CollectRadosGarbage(*reader.pool, *reader.catalog, false).status());
  ASSERT_OK_AND_ASSIGN(
      GcReport last, CollectRadosGarbage(*reader.pool, *reader.catalog, true));
  EXPECT_EQ(last.removed, 0u);
  EXPECT_EQ(last.kept_recent, 0u);
  EXPECT_EQ(last.block_objects, last.referenced_blocks);
  std::printf(
      "gc race: %d puts (%d refused), %d deletes, %d sweeps removed "
      "%d blocks; %zu tensors checked\n",
      puts.load(), refused.load(), deletes.load(), sweeps.load(),
      removed.load(), committed.size());
}

}  // namespace
}  // namespace pstore
