// Many nodes, one store: real pstored processes with --backend=rados over
// one pool of the suite's real Ceph (tests/testing/test_ceph.h), each with
// local tiers of its own that start empty.

#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/pstore_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_ceph.h"
#include "util/child_process.h"
#include "util/units.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoredPath;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

constexpr int kNodes = 3;
// Short, so that a test can wait it out; puts here take well under half.
constexpr absl::Duration kGcGrace = absl::Seconds(4);
// Membership: short, so that a test sees a node leave.
constexpr absl::Duration kHeartbeat = absl::Seconds(1);
constexpr absl::Duration kPeerTimeout = absl::Seconds(3);

class ClusterE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
    rados_ = ::pstore::testing::TestRadosOptions();
    for (int i = 0; i < kNodes; ++i) {
      std::vector<std::string> flags =
          ::pstore::testing::RadosNodeFlags(rados_);
      flags.push_back("--dram_bytes=256MiB");
      flags.push_back("--nvme_bytes=64MiB");
      flags.push_back("--metrics_listen=off");
      flags.push_back(absl::StrCat("--rados_gc_grace_seconds=",
                                   absl::ToInt64Seconds(kGcGrace)));
      ASSERT_NO_FATAL_FAILURE(StartNode(flags));
    }
  }

  void StartNode(std::vector<std::string> flags) {
    flags.push_back(absl::StrCat("--peer_heartbeat_seconds=",
                                 absl::ToInt64Seconds(kHeartbeat)));
    flags.push_back(absl::StrCat("--peer_timeout_seconds=",
                                 absl::ToInt64Seconds(kPeerTimeout)));
    nodes_.push_back(std::make_unique<PstoredProcess>(
        dir_.Sub(absl::StrCat("node", nodes_.size())), flags));
    ASSERT_OK(nodes_.back()->Start());
    ClientOptions options;
    options.address = nodes_.back()->address();
    options.call_timeout = absl::Seconds(120);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client,
                         Client::Create(options));
    clients_.push_back(std::move(client));
  }

  // The addresses node `node` lists as members.
  std::set<std::string> Members(int node) {
    std::set<std::string> addresses;
    absl::StatusOr<v1::ServerStatus> status = clients_[node]->GetServerStatus();
    if (!status.ok()) return addresses;
    for (const v1::NodeStatus& member : status->nodes()) {
      addresses.insert(member.address());
    }
    return addresses;
  }

  // How long it took node `node` to list exactly `want`, polling every
  // 50 ms for at most `limit`; nullopt if it never did.
  std::optional<absl::Duration> TimeUntilMembers(int node,
                                                 std::set<std::string> want,
                                                 absl::Duration limit) {
    const absl::Time start = absl::Now();
    while (absl::Now() - start < limit) {
      if (Members(node) == want) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return std::nullopt;
  }

  TempDir dir_;
  RadosOptions rados_;
  std::vector<std::unique_ptr<PstoredProcess>> nodes_;
  std::vector<std::unique_ptr<Client>> clients_;
};

TEST_F(ClusterE2eTest, PutThroughOneNodePublishThroughAnotherPullFromAThird) {
  std::map<std::string, std::vector<uint8_t>> tensors = {
      {"embed", RandomBytes(9 * kMiB + 123, 1)},
      {"layer.0", RandomBytes(4 * kMiB, 2)},
      {"norm", RandomBytes(4096, 3)},
  };
  for (const auto& [name, bytes] : tensors) {
    ASSERT_OK(clients_[0]
                  ->PutTensor(
                      "m@v1/" + name, "U8",
                      std::vector<int64_t>{static_cast<int64_t>(bytes.size())},
                      bytes)
                  .status());
  }
  ASSERT_OK(clients_[1]->PublishRevision("m@v1").status());

  // Node 2 never saw the puts: everything comes from the pool.
  std::map<std::string, std::vector<uint8_t>> pulled;
  PullCallbacks callbacks;
  callbacks.allocate =
      [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
    std::vector<uint8_t>& memory = pulled[info.name()];
    memory.resize(info.byte_length());
    return std::span<uint8_t>(memory);
  };
  PullOptions options;
  options.streams = 2;
  ASSERT_OK(clients_[2]->PullModel("m", options, callbacks).status());
  ASSERT_EQ(pulled.size(), tensors.size());
  for (const auto& [name, bytes] : tensors) {
    EXPECT_TRUE(pulled["m@v1/" + name] == bytes) << name;
  }
  ASSERT_OK_AND_ASSIGN(auto latest, clients_[2]->GetTensor("m/embed"));
  EXPECT_TRUE(latest.second == tensors["embed"]);
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus status, clients_[2]->GetServerStatus());
  uint64_t cold_served = 0;
  for (const v1::TierStatus& tier : status.tiers()) {
    if (tier.name() == "cold") cold_served = tier.reads_served();
  }
  EXPECT_GT(cold_served, 0u);
}

// Every node lists every node (pstore-cli status shows the list); a node
// started later joins at once (its join is announced), one killed leaves
// within the peer timeout and a heartbeat, one stopped leaves at once.
TEST_F(ClusterE2eTest, NodesListEachOtherAndANodeThatStopsLeaves) {
  std::set<std::string> all;
  for (const auto& node : nodes_) all.insert(node->address());
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(TimeUntilMembers(i, all, absl::Seconds(10)).has_value())
        << "node " << i;
  }
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus status, clients_[1]->GetServerStatus());
  ASSERT_FALSE(status.nodes().empty());
  EXPECT_TRUE(status.nodes(0).self());
  EXPECT_EQ(status.nodes(0).address(), nodes_[1]->address());

  ASSERT_NO_FATAL_FAILURE(StartNode(::pstore::testing::RadosNodeFlags(rados_)));
  all.insert(nodes_.back()->address());
  std::optional<absl::Duration> joined =
      TimeUntilMembers(0, all, absl::Seconds(10));
  ASSERT_TRUE(joined.has_value());
  EXPECT_LT(*joined, kHeartbeat + absl::Seconds(1));

  nodes_.back()->Kill();
  all.erase(nodes_.back()->address());
  std::optional<absl::Duration> killed =
      TimeUntilMembers(0, all, absl::Seconds(30));
  ASSERT_TRUE(killed.has_value());
  EXPECT_LT(*killed, kPeerTimeout + 2 * kHeartbeat + absl::Seconds(1));
  std::printf("membership: joined seen in %s, killed node gone in %s\n",
              absl::FormatDuration(*joined).c_str(),
              absl::FormatDuration(*killed).c_str());

  ASSERT_OK(nodes_[2]->Stop().status());
  all.erase(nodes_[2]->address());
  std::optional<absl::Duration> stopped =
      TimeUntilMembers(0, all, absl::Seconds(10));
  ASSERT_TRUE(stopped.has_value());
  EXPECT_LT(*stopped, kHeartbeat + absl::Seconds(1));
}

TEST_F(ClusterE2eTest, ARevisionDeletedOnOneNodeIsGoneOnTheOthers) {
  std::vector<uint8_t> bytes = RandomBytes(5 * kMiB, 4);
  ASSERT_OK(
      clients_[0]
          ->PutTensor("m@v1/w", "U8",
                      std::vector<int64_t>{static_cast<int64_t>(bytes.size())},
                      bytes)
          .status());
  ASSERT_OK(clients_[0]->PublishRevision("m@v1").status());
  // Nodes 1 and 2 read it (and cache its blocks).
  for (int node : {1, 2}) {
    ASSERT_OK_AND_ASSIGN(auto got, clients_[node]->GetTensor("m/w"));
    EXPECT_TRUE(got.second == bytes);
  }
  ASSERT_OK(clients_[2]->DeleteRevision("m@v1"));
  // The others hear of it through a notice, or re-read within the refresh
  // bound (RadosOptions::catalog_refresh, 10 s): gone by then at the latest.
  const absl::Time deleted = absl::Now();
  for (int node : {0, 1}) {
    bool gone = false;
    while (!gone && absl::Now() - deleted < absl::Seconds(15)) {
      gone = absl::IsNotFound(clients_[node]->GetTensor("m/w").status()) &&
             absl::IsNotFound(clients_[node]->GetTensor("m@v1/w").status());
      if (!gone) absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_TRUE(gone) << "node " << node;
  }
  EXPECT_LT(absl::Now() - deleted, absl::Seconds(12));
}

TEST_F(ClusterE2eTest, NodesRacingToCreateOrPublishGetOneWinner) {
  for (int round = 0; round < 5; ++round) {
    const std::string revision = absl::StrCat("m@r", round);
    std::atomic<int> created{0}, exists{0};
    std::vector<std::thread> threads;
    for (int node = 0; node < kNodes; ++node) {
      threads.emplace_back([&, node] {
        absl::StatusOr<v1::Revision> made =
            clients_[node]->CreateRevision(revision, {});
        if (made.ok()) {
          ++created;
        } else if (absl::IsAlreadyExists(made.status())) {
          ++exists;
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(created.load(), 1) << revision;
    EXPECT_EQ(exists.load(), kNodes - 1) << revision;
    // Publishing on every node at once: all succeed (a publish of a
    // published revision is a no-op), and the revision is latest.
    std::atomic<int> published{0};
    threads.clear();
    for (int node = 0; node < kNodes; ++node) {
      threads.emplace_back([&, node] {
        if (clients_[node]->PublishRevision(revision).ok()) ++published;
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(published.load(), kNodes);
    ASSERT_OK_AND_ASSIGN(v1::Revision latest, clients_[1]->GetRevision("m"));
    EXPECT_EQ(latest.name(), revision);
  }
}

TEST_F(ClusterE2eTest, GcRemovesWhatADeleteLeftAfterTheGracePeriod) {
  std::vector<uint8_t> kept = RandomBytes(3 * kMiB, 7);
  std::vector<uint8_t> dropped = RandomBytes(2 * kMiB, 8);
  auto put = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    return clients_[0]
        ->PutTensor(name, "U8",
                    std::vector<int64_t>{static_cast<int64_t>(bytes.size())},
                    bytes)
        .status();
  };
  ASSERT_OK(put("m@v1/kept", kept));
  ASSERT_OK(put("m@v2/dropped", dropped));
  ASSERT_OK(clients_[1]->DeleteRevision("m@v2"));
  ASSERT_OK_AND_ASSIGN(v1::CollectGarbageResponse early,
                       clients_[2]->CollectGarbage(/*dry_run=*/false));
  EXPECT_EQ(early.removed(), 0u);
  EXPECT_EQ(early.kept_recent(), 1u);  // dropped's one block.
  absl::SleepFor(kGcGrace + absl::Milliseconds(300));
  ASSERT_OK_AND_ASSIGN(v1::CollectGarbageResponse dry,
                       clients_[2]->CollectGarbage(/*dry_run=*/true));
  EXPECT_EQ(dry.removed(), 1u);
  EXPECT_EQ(dry.removed_bytes(), dropped.size());
  ASSERT_OK_AND_ASSIGN(v1::CollectGarbageResponse swept,
                       clients_[1]->CollectGarbage(/*dry_run=*/false));
  EXPECT_EQ(swept.removed(), 1u);
  EXPECT_EQ(swept.referenced_blocks(), 1u);
  // What a revision names is untouched.
  ASSERT_OK(clients_[2]->DropCache(v1::TIER_DRAM));
  ASSERT_OK_AND_ASSIGN(auto got, clients_[2]->GetTensor("m@v1/kept"));
  EXPECT_TRUE(got.second == kept);
}

TEST_F(ClusterE2eTest, CopyMovesARocksDbRevisionIntoTheClusterVerified) {
  // The store being moved in: one machine, RocksDB.
  PstoredProcess single(dir_.Sub("single"), {"--metrics_listen=off"});
  ASSERT_OK(single.Start());
  ClientOptions options;
  options.address = single.address();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> source, Client::Create(options));
  std::vector<uint8_t> big = RandomBytes(9 * kMiB + 5, 11);
  std::vector<uint8_t> small = RandomBytes(1000, 12);
  ASSERT_OK(source->CreateRevision("m@v1", {{"author", "a"}}).status());
  ASSERT_OK(source
                ->PutTensor(
                    "m@v1/big", "U8",
                    std::vector<int64_t>{static_cast<int64_t>(big.size())}, big)
                .status());
  ASSERT_OK(
      source
          ->PutTensor("m@v1/small", "U8",
                      std::vector<int64_t>{static_cast<int64_t>(small.size())},
                      small)
          .status());
  ASSERT_OK(source->PublishRevision("m@v1").status());

  auto copy = [&](const std::string& name) -> std::pair<int, std::string> {
    ChildProcess cli(
        "pstore-cli",
        {::pstore::testing::PstoreCliPath(), "--addr=" + single.address(),
         "copy", name, "--to=" + nodes_[0]->address()},
        dir_.Sub("copy.log"));
    if (!cli.Start().ok()) return {-1, ""};
    absl::StatusOr<int> status = cli.Wait(absl::Minutes(2));
    int code = status.ok() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return {code, cli.LogTail()};
  };
  auto [code, log] = copy("m");
  ASSERT_EQ(code, 0) << log;
  EXPECT_THAT(log, ::testing::HasSubstr("2 tensors"));
  // Read back through another node of the cluster.
  ASSERT_OK_AND_ASSIGN(v1::Revision copied, clients_[1]->GetRevision("m"));
  EXPECT_TRUE(copied.published());
  EXPECT_EQ(copied.metadata().at("author"), "a");
  ASSERT_OK_AND_ASSIGN(auto got_big, clients_[1]->GetTensor("m@v1/big"));
  EXPECT_TRUE(got_big.second == big);
  ASSERT_OK_AND_ASSIGN(auto got_small, clients_[1]->GetTensor("m@v1/small"));
  EXPECT_TRUE(got_small.second == small);
  // Again: nothing left to copy.
  auto [again_code, again_log] = copy("m@v1");
  ASSERT_EQ(again_code, 0) << again_log;
  EXPECT_THAT(again_log, ::testing::HasSubstr("0 tensors"));
  EXPECT_THAT(again_log, ::testing::HasSubstr("2 already there"));
  // A published revision of that name with other tensors is not touched.
  ASSERT_OK(source->CreateRevision("n@v1", {}).status());
  ASSERT_OK(
      source
          ->PutTensor("n@v1/t", "U8",
                      std::vector<int64_t>{static_cast<int64_t>(small.size())},
                      small)
          .status());
  ASSERT_OK(clients_[2]->CreateRevision("n@v1", {}).status());
  ASSERT_OK(clients_[2]->PublishRevision("n@v1").status());
  auto [conflict_code, conflict_log] = copy("n@v1");
  EXPECT_NE(conflict_code, 0);
  EXPECT_THAT(conflict_log, ::testing::HasSubstr("other tensors"));
}

TEST(ClusterStartTest, GcOnTheRocksDbBackendIsAFailedPrecondition) {
  TempDir dir;
  PstoredProcess server(dir.Sub("node"), {"--metrics_listen=off"});
  ASSERT_OK(server.Start());
  ClientOptions options;
  options.address = server.address();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Create(options));
  EXPECT_THAT(client->CollectGarbage(true),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ClusterStartTest, AnUnreachableClusterOrMissingPoolExitsWithCode2) {
  std::string why;
  if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
  TempDir dir;
  RadosOptions missing_pool = ::pstore::testing::TestRadosOptions();
  missing_pool.pool = "no-such-pool";
  RadosOptions no_monitor = ::pstore::testing::TestRadosOptions();
  no_monitor.ceph_conf = dir.Sub("unreachable.conf");
  {
    // A monitor address nothing listens on.
    FILE* conf = fopen(no_monitor.ceph_conf.c_str(), "w");
    ASSERT_NE(conf, nullptr);
    fputs("[global]\nmon_host = v2:127.0.0.1:1\n", conf);
    fclose(conf);
  }
  for (const RadosOptions& rados : {missing_pool, no_monitor}) {
    std::vector<std::string> argv = {PstoredPath(), "--listen=127.0.0.1:0",
                                     "--metrics_listen=off",
                                     "--data_dir=" + dir.Sub("data")};
    for (std::string& flag : ::pstore::testing::RadosNodeFlags(rados))
      argv.push_back(flag);
    argv.push_back("--rados_connect_timeout_seconds=2");
    ChildProcess pstored("pstored", argv, dir.Sub("pstored.log"));
    ASSERT_OK(pstored.Start());
    ASSERT_OK_AND_ASSIGN(int status, pstored.Wait(absl::Seconds(60)));
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2)
        << rados.ceph_conf << " " << rados.pool << ": " << pstored.LogTail();
    EXPECT_THAT(pstored.LogTail(), ::testing::HasSubstr("event=start_failed"));
  }
}

}  // namespace
}  // namespace pstore
