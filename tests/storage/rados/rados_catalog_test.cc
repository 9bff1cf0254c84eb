// The RADOS catalog with several nodes on one pool: each node is a
// connection of its own (a RadosPool), as separate pstored processes are,
// all on the suite's real Ceph.

#include "storage/rados/rados_catalog.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rados/rados_pool.h"
#include "storage/rados/rados_tier.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_ceph.h"

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

}  // namespace
}  // namespace pstore
