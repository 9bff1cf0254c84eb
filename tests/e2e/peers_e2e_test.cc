// A fleet starts together: real pstored processes over one pool of the
// suite's real Ceph, each with empty local tiers, pulling the same
// revision, with blocks from their owners on the ring (storage/peers/)
// before the pool. Bytes are read from the pool as pstore counts them
// (each node's durable-tier bytes) and as the OSDs count them
// (`ceph tell osd.N perf dump`: op_out_bytes), so this binary runs alone
// (RUN_SERIAL in CMake).

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/pstore_client.h"
#include "codec/hash.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pstore/v1/pstore.grpc.pb.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_ceph.h"
#include "util/file_io.h"
#include "util/units.h"

namespace pstore {
namespace {

using ::pstore::testing::MakeTestCertificates;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::RunCommand;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

// The revision three nodes pull at once; the other tests use a smaller one.
constexpr uint64_t kRevisionBytes = uint64_t{256} << 20;
constexpr uint64_t kSmallRevisionBytes = uint64_t{64} << 20;
constexpr int kTensors = 32;  // Of a revision's bytes / kTensors each.
constexpr absl::Duration kHeartbeat = absl::Seconds(1);
constexpr absl::Duration kPeerTimeout = absl::Seconds(3);

// The bytes the pool's OSDs have sent to clients since they started
// (op_out_bytes, summed over `ceph osd ls`), or nullopt if the cluster does
// not say.
std::optional<uint64_t> OsdReadBytes(const std::string& ceph_conf) {
  testing::CommandResult osds =
      RunCommand(absl::StrCat("timeout 30 ceph -c ", ceph_conf, " osd ls"));
  if (osds.exit_code != 0) return std::nullopt;
  uint64_t total = 0;
  for (absl::string_view line :
       absl::StrSplit(osds.out, '\n', absl::SkipWhitespace())) {
    int id;
    if (!absl::SimpleAtoi(line, &id)) continue;  // A warning on stderr.
    testing::CommandResult dump = RunCommand(absl::StrCat(
        "timeout 30 ceph -c ", ceph_conf, " tell osd.", id, " perf dump"));
    const std::string kKey = "\"op_out_bytes\":";
    size_t at = dump.out.find(kKey);
    if (dump.exit_code != 0 || at == std::string::npos) return std::nullopt;
    size_t start = at + kKey.size();
    while (start < dump.out.size() && dump.out[start] == ' ') ++start;
    size_t end = dump.out.find_first_not_of("0123456789", start);
    uint64_t bytes = 0;
    if (!absl::SimpleAtoi(dump.out.substr(start, end - start), &bytes)) {
      return std::nullopt;
    }
    total += bytes;
  }
  return total;
}

class PeersE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!::pstore::testing::TestCephConfigured(&why)) GTEST_SKIP() << why;
    rados_ = ::pstore::testing::TestRadosOptions();
  }

  // Starts a node over the test's namespace with empty tiers; `flags` come
  // after the common ones (a later flag wins).
  void StartNode(std::vector<std::string> flags = {}) {
    std::vector<std::string> all = ::pstore::testing::RadosNodeFlags(rados_);
    all.insert(all.end(),
               {"--dram_bytes=512MiB", "--nvme_bytes=0", "--metrics_listen=off",
                absl::StrCat("--peer_heartbeat_seconds=",
                             absl::ToInt64Seconds(kHeartbeat)),
                absl::StrCat("--peer_timeout_seconds=",
                             absl::ToInt64Seconds(kPeerTimeout)),
                "--peer_hedge_seconds=2"});
    all.insert(all.end(), flags.begin(), flags.end());
    nodes_.push_back(std::make_unique<PstoredProcess>(
        dir_.Sub(absl::StrCat("node", nodes_.size())), all));
    ASSERT_OK(nodes_.back()->Start());
    ClientOptions options = client_options_;
    options.address = nodes_.back()->address();
    options.call_timeout = absl::Seconds(120);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client,
                         Client::Create(options));
    clients_.push_back(std::move(client));
  }

  // Stops node `node` (it leaves the ring at once).
  void StopNode(int node) {
    ASSERT_OK(nodes_[node]->Stop().status());
    clients_[node].reset();
  }

  // Puts the test revision, m@v1, of `revision_bytes`, through a node of its
  // own that then stops, so that no node holds a block of it.
  void PutRevision(uint64_t revision_bytes = kSmallRevisionBytes) {
    int writer = static_cast<int>(nodes_.size());
    ASSERT_NO_FATAL_FAILURE(StartNode());
    const uint64_t tensor_bytes = revision_bytes / kTensors;
    for (int i = 0; i < kTensors; ++i) {
      std::vector<uint8_t> bytes = RandomBytes(tensor_bytes, 100 + i);
      std::string name = absl::StrCat("m@v1/layer.", i);
      hashes_[name] = Xxh3_64(bytes);
      ASSERT_OK(clients_[writer]
                    ->PutTensor(name, "U8",
                                std::vector<int64_t>{
                                    static_cast<int64_t>(bytes.size())},
                                bytes)
                    .status());
    }
    ASSERT_OK(clients_[writer]->PublishRevision("m@v1").status());
    ASSERT_NO_FATAL_FAILURE(StopNode(writer));
  }

  // Pulls m on node `node` into memory; returns the first tensor whose
  // bytes are not those put (empty: all equal) or the pull's error.
  // `pause` is slept after each tensor's memory is handed out.
  absl::StatusOr<std::string> Pull(
      int node, absl::Duration pause = absl::ZeroDuration()) {
    std::map<std::string, std::vector<uint8_t>> pulled;
    PullCallbacks callbacks;
    callbacks.allocate =
        [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
      std::vector<uint8_t>& memory = pulled[info.name()];
      memory.resize(info.byte_length());
      if (pause > absl::ZeroDuration()) absl::SleepFor(pause);
      return std::span<uint8_t>(memory);
    };
    PullOptions options;
    options.streams = 2;
    absl::Status status =
        clients_[node]->PullModel("m@v1", options, callbacks).status();
    if (!status.ok()) return status;
    if (pulled.size() != hashes_.size()) return std::string("(count)");
    for (const auto& [name, hash] : hashes_) {
      if (Xxh3_64(pulled[name]) != hash) return name;
    }
    return std::string();
  }

  // Pulls on every node in `which` at once; expects each byte-identical.
  void PullTogether(const std::vector<int>& which) {
    std::vector<absl::StatusOr<std::string>> results(which.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < which.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = Pull(which[i]); });
    }
    for (std::thread& thread : threads) thread.join();
    for (size_t i = 0; i < which.size(); ++i) {
      ASSERT_OK(results[i].status()) << "node " << which[i];
      EXPECT_EQ(*results[i], "") << "node " << which[i];
    }
  }

  v1::ServerStatus Status(int node) {
    absl::StatusOr<v1::ServerStatus> status = clients_[node]->GetServerStatus();
    EXPECT_OK(status.status());
    return status.ok() ? *status : v1::ServerStatus();
  }

  // Bytes node `node` read from the pool.
  uint64_t DurableBytes(int node) {
    v1::ServerStatus status = Status(node);
    for (const v1::TierStatus& tier : status.tiers()) {
      if (tier.name() == "cold") return tier.read_bytes();
    }
    return 0;
  }

  // Waits (at most `limit`) until node `node` has `count` nodes on its
  // ring; false if it never did.
  bool WaitForRing(int node, uint64_t count,
                   absl::Duration limit = absl::Seconds(15)) {
    absl::Time deadline = absl::Now() + limit;
    while (absl::Now() < deadline) {
      if (Status(node).peers().ring_nodes() == count) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  TempDir dir_;
  RadosOptions rados_;
  ClientOptions client_options_;  // TLS and token of the test's clients.
  std::vector<std::unique_ptr<PstoredProcess>> nodes_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::map<std::string, uint64_t> hashes_;
};

// Three nodes with empty tiers pull the same 256 MiB at the same moment:
// with peers, the pool is read about once (each block by its owner, which
// serves the others); without, about three times.
TEST_F(PeersE2eTest, ThreeNodesPullingTogetherReadThePoolAboutOnce) {
  ASSERT_NO_FATAL_FAILURE(PutRevision(kRevisionBytes));
  for (bool peers : {true, false}) {
    SCOPED_TRACE(peers ? "peers on" : "peers off");
    const size_t first = nodes_.size();
    for (int i = 0; i < 3; ++i) {
      ASSERT_NO_FATAL_FAILURE(
          StartNode({absl::StrCat("--peers=", peers ? "true" : "false")}));
    }
    std::vector<int> fleet = {static_cast<int>(first),
                              static_cast<int>(first) + 1,
                              static_cast<int>(first) + 2};
    if (peers) {
      for (int node : fleet) ASSERT_TRUE(WaitForRing(node, 3)) << node;
    }
    std::optional<uint64_t> osd_before = OsdReadBytes(rados_.ceph_conf);
    absl::Time start = absl::Now();
    ASSERT_NO_FATAL_FAILURE(PullTogether(fleet));
    absl::Duration took = absl::Now() - start;
    std::optional<uint64_t> osd_after = OsdReadBytes(rados_.ceph_conf);

    uint64_t durable = 0, from_peers = 0, served = 0, bad = 0;
    for (int node : fleet) {
      durable += DurableBytes(node);
      v1::ServerStatus status = Status(node);
      from_peers += status.peers().peer_bytes();
      served += status.peers().served_bytes();
      bad += status.peers().peer_bad_blocks();
    }
    double ratio = static_cast<double>(durable) / kRevisionBytes;
    std::printf(
        "peers %s: 3 nodes pulled %s each in %s; pool read %s (%.2fx the "
        "revision) by pstore's count, %s by the OSDs'; from peers %s, "
        "served to peers %s\n",
        peers ? "on" : "off", FormatBytes(kRevisionBytes).c_str(),
        absl::FormatDuration(took).c_str(), FormatBytes(durable).c_str(), ratio,
        osd_before && osd_after ? FormatBytes(*osd_after - *osd_before).c_str()
                                : "(not reported)",
        FormatBytes(from_peers).c_str(), FormatBytes(served).c_str());
    EXPECT_EQ(bad, 0u);
    if (peers) {
      EXPECT_LE(ratio, 1.1);
      // An owner's answer that came after a hedge won is served, not used.
      EXPECT_LE(from_peers, served);
      EXPECT_GE(from_peers, kRevisionBytes);  // About 2x: two of three ask.
    } else {
      EXPECT_GE(ratio, 2.9);
      EXPECT_EQ(from_peers, 0u);
    }
    // The OSDs saw what pstore counted, and no more than the catalog's
    // reads on top.
    ASSERT_TRUE(osd_before && osd_after)
        << "ceph tell osd.N perf dump gave no op_out_bytes";
    EXPECT_GE(*osd_after - *osd_before, durable);
    EXPECT_LE(*osd_after - *osd_before, durable + (uint64_t{8} << 20));
    for (int node : fleet) ASSERT_NO_FATAL_FAILURE(StopNode(node));
  }
}

// A node killed with SIGKILL while the others pull through it: they finish
// byte-identical, the blocks it owned read from the pool at once (its
// connection is refused) or past the hedging deadline.
TEST_F(PeersE2eTest, ANodeKilledMidPullLeavesTheOthersToFinish) {
  ASSERT_NO_FATAL_FAILURE(PutRevision());
  for (int i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(StartNode({"--peer_read_timeout_seconds=60"}));
  }
  const std::vector<int> fleet = {1, 2, 3};
  for (int node : fleet) ASSERT_TRUE(WaitForRing(node, 3)) << node;

  // Slow pulls (a pause per tensor), so that the kill comes mid-pull.
  std::vector<absl::StatusOr<std::string>> results(2);
  std::vector<absl::Time> ended(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      results[i] = Pull(fleet[i + 1], absl::Milliseconds(60));
      ended[i] = absl::Now();
    });
  }
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (Status(fleet[0]).peers().served_blocks() == 0 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  nodes_[fleet[0]]->Kill();
  absl::Time killed = absl::Now();
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(results[i].status()) << "node " << fleet[i + 1];
    EXPECT_EQ(*results[i], "") << "node " << fleet[i + 1];
    // The pauses (32 x 60 ms) keep each pull going past the kill, which
    // comes once the first block was served: else this test saw no kill.
    ASSERT_GT(ended[i], killed) << "node " << fleet[i + 1];
    std::printf("node %d finished %s after the kill\n", fleet[i + 1],
                absl::FormatDuration(ended[i] - killed).c_str());
    // The pauses alone take 32 x 60 ms; a pull stuck on the dead node
    // would wait for the 60 s peer timeout.
    EXPECT_LT(ended[i] - killed, absl::Seconds(2) + absl::Seconds(15));
  }
  uint64_t errors = 0;
  for (int node : {fleet[1], fleet[2]}) {
    errors += Status(node).peers().peer_errors();
  }
  std::printf("peer errors after the kill: %lu\n",
              static_cast<unsigned long>(errors));
}

// A peer that answers with a flipped byte: the hash catches it, the block
// comes from the pool, the event is counted, the client sees right bytes.
TEST_F(PeersE2eTest, APeerThatFlipsAByteIsCaughtAndTheBlockComesFromThePool) {
  ASSERT_NO_FATAL_FAILURE(PutRevision());
  ASSERT_NO_FATAL_FAILURE(StartNode({"--fault_corrupt_peer_replies"}));
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ASSERT_TRUE(WaitForRing(2, 2));
  absl::StatusOr<std::string> pulled = Pull(2);
  ASSERT_OK(pulled.status());
  EXPECT_EQ(*pulled, "");
  v1::ServerStatus status = Status(2);
  std::printf("bad blocks caught: %lu of %lu blocks asked of the bad peer\n",
              static_cast<unsigned long>(status.peers().peer_bad_blocks()),
              static_cast<unsigned long>(Status(1).peers().served_blocks()));
  EXPECT_GT(status.peers().peer_bad_blocks(), 0u);
  EXPECT_EQ(status.peers().peer_bad_blocks(),
            Status(1).peers().served_blocks());
  EXPECT_EQ(status.peers().peer_blocks(), 0u);
}

// A node started later joins the ring and serves the blocks it owns; a
// node stopped leaves it within a heartbeat (and the ring's refresh), and
// then no read is sent its way.
TEST_F(PeersE2eTest, ANodeThatJoinsServesAndANodeThatStopsIsNotAsked) {
  ASSERT_NO_FATAL_FAILURE(PutRevision());
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ASSERT_TRUE(WaitForRing(1, 2));
  ASSERT_NO_FATAL_FAILURE(StartNode());
  absl::Time started = absl::Now();
  ASSERT_TRUE(WaitForRing(1, 3));
  std::printf("a joining node was on the ring in %s\n",
              absl::FormatDuration(absl::Now() - started).c_str());
  absl::StatusOr<std::string> pulled = Pull(1);
  ASSERT_OK(pulled.status());
  EXPECT_EQ(*pulled, "");
  EXPECT_GT(Status(3).peers().served_blocks(), 0u);

  ASSERT_NO_FATAL_FAILURE(StopNode(3));
  absl::Time stopped = absl::Now();
  ASSERT_TRUE(WaitForRing(2, 2, kHeartbeat + absl::Seconds(2)));
  std::printf("a stopped node was off the ring in %s\n",
              absl::FormatDuration(absl::Now() - stopped).c_str());
  uint64_t errors_before = Status(2).peers().peer_errors();
  pulled = Pull(2);
  ASSERT_OK(pulled.status());
  EXPECT_EQ(*pulled, "");
  EXPECT_EQ(Status(2).peers().peer_errors(), errors_before);
}

// With TLS and tokens, nodes read from each other over mutual TLS with the
// peer token, which reads nothing else; other tokens cannot read blocks;
// and a node with tokens but no peer token starts without peers.
TEST_F(PeersE2eTest, PeersUseMutualTlsAndAPeerTokenThatReadsNothingElse) {
  if (!MakeTestCertificates(dir_.path().string())) {
    GTEST_SKIP() << "openssl is not installed";
  }
  const std::string kWriter = "writer-0123456789abcdef";
  const std::string kNode = "node-0123456789abcdef";
  {
    std::FILE* tokens = std::fopen(dir_.Sub("tokens.json").c_str(), "w");
    ASSERT_NE(tokens, nullptr);
    std::fprintf(tokens,
                 R"({"tokens": [
                   {"name": "writer", "token": "%s",
                    "scopes": ["read", "write", "admin"]},
                   {"name": "nodes", "token": "%s", "scopes": ["peer"]}]})",
                 kWriter.c_str(), kNode.c_str());
    std::fclose(tokens);
    std::FILE* token = std::fopen(dir_.Sub("node.token").c_str(), "w");
    ASSERT_NE(token, nullptr);
    std::fprintf(token, "%s\n", kNode.c_str());
    std::fclose(token);
  }
  const std::vector<std::string> secure = {
      "--tls_cert=" + dir_.Sub("server.pem"),
      "--tls_key=" + dir_.Sub("server.key"),
      "--tls_client_ca=" + dir_.Sub("ca.pem"),
      "--tokens_file=" + dir_.Sub("tokens.json")};

  // Tokens without the node's own peer token (a node configured before
  // peers existed): it starts, without peers, and says why.
  {
    std::vector<std::string> flags = ::pstore::testing::RadosNodeFlags(rados_);
    flags.insert(flags.end(), secure.begin(), secure.end());
    PstoredProcess alone(dir_.Sub("alone"), flags);
    ASSERT_OK(alone.Start());
    std::string log = alone.Log();
    EXPECT_NE(log.find("event=peers_off"), std::string::npos) << log;
    EXPECT_NE(log.find("--peer_token_file"), std::string::npos) << log;
    ASSERT_OK(alone.Stop().status());
  }

  ASSERT_NO_FATAL_FAILURE(PutRevision());  // Through node 0, plaintext.
  client_options_.tls_ca_file = dir_.Sub("ca.pem");
  client_options_.tls_cert_file = dir_.Sub("client.pem");
  client_options_.tls_key_file = dir_.Sub("client.key");
  client_options_.token = kWriter;
  std::vector<std::string> flags = secure;
  flags.push_back("--peer_token_file=" + dir_.Sub("node.token"));
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(StartNode(flags));
  ASSERT_TRUE(WaitForRing(1, 2));
  ASSERT_TRUE(WaitForRing(2, 2));
  absl::StatusOr<std::string> pulled = Pull(1);
  ASSERT_OK(pulled.status());
  EXPECT_EQ(*pulled, "");
  v1::ServerStatus status = Status(1);
  EXPECT_GT(status.peers().peer_blocks(), 0u);
  EXPECT_EQ(status.peers().peer_errors(), 0u);
  EXPECT_EQ(Status(2).peers().served_blocks(), status.peers().peer_blocks());

  // ReadBlock itself: the peer token only.
  grpc::SslCredentialsOptions tls;
  for (auto [out, file] : {std::pair{&tls.pem_root_certs, "ca.pem"},
                           std::pair{&tls.pem_cert_chain, "client.pem"},
                           std::pair{&tls.pem_private_key, "client.key"}}) {
    ASSERT_OK_AND_ASSIGN(*out, ReadFileToString(dir_.Sub(file)));
  }
  auto stub = v1::PeerStore::NewStub(
      grpc::CreateChannel(nodes_[2]->address(), grpc::SslCredentials(tls)));
  v1::ReadBlockRequest request;
  request.set_block_id(std::string(16, '\0'));
  for (auto [token, code] :
       {std::pair{std::string(), grpc::StatusCode::UNAUTHENTICATED},
        std::pair{kWriter, grpc::StatusCode::PERMISSION_DENIED},
        std::pair{kNode, grpc::StatusCode::NOT_FOUND}}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::BlockData data;
    grpc::Status answer = stub->ReadBlock(&context, request, &data);
    EXPECT_EQ(answer.error_code(), code)
        << token << ": " << answer.error_message();
  }
  // And the peer token reads no tensor.
  ClientOptions as_node = client_options_;
  as_node.address = nodes_[2]->address();
  as_node.token = kNode;
  as_node.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> node_client,
                       Client::Create(as_node));
  EXPECT_THAT(node_client->GetTensor("m@v1/layer.0").status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace pstore
