// ParseDaemonFlags: defaults, sizes, derived budgets, and the values that
// must stop start-up; IsLocalOnlyAddress, which decides the warning about
// an address others can reach.

#include "server/flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

absl::StatusOr<DaemonConfig> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "pstored");
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  return ParseDaemonFlags(static_cast<int>(argv.size()), argv.data());
}

TEST(FlagsTest, DefaultsAreLoopbackAndFollowTheDramBudget) {
  ASSERT_OK_AND_ASSIGN(DaemonConfig config, Parse({}));
  EXPECT_EQ(config.server.listen, "127.0.0.1:7070");
  EXPECT_EQ(config.server.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(config.server.store.dram_bytes, 1024 * kMiB);
  EXPECT_EQ(config.server.store.cold_dir, "./pstore-data/cold");
  EXPECT_EQ(config.server.store.nvme_dir, "./pstore-data/nvme");
  // A quarter of the DRAM budget, between 32 MiB and 256 MiB.
  EXPECT_EQ(config.server.service.readahead_budget_bytes, 256 * kMiB);
  ASSERT_OK_AND_ASSIGN(DaemonConfig small, Parse({"--dram_bytes=256MiB"}));
  EXPECT_EQ(small.server.service.readahead_budget_bytes, 64 * kMiB);
  ASSERT_OK_AND_ASSIGN(DaemonConfig tiny, Parse({"--dram_bytes=64MiB"}));
  EXPECT_EQ(tiny.server.service.readahead_budget_bytes, 32 * kMiB);
  ASSERT_OK_AND_ASSIGN(DaemonConfig set,
                       Parse({"--readahead_budget_bytes=100MiB"}));
  EXPECT_EQ(set.server.service.readahead_budget_bytes, 100 * kMiB);
}

TEST(FlagsTest, SizesTakeSuffixesAndTheLastOfARepeatedFlagWins) {
  ASSERT_OK_AND_ASSIGN(
      DaemonConfig config,
      Parse({"--dram_bytes=2GiB", "--nvme_bytes", "512MiB",
             "--block_bytes=1MiB", "--dram_bytes=3GiB", "--nvme_dir=/x"}));
  EXPECT_EQ(config.server.store.dram_bytes, 3072 * kMiB);
  EXPECT_EQ(config.server.store.nvme_bytes, 512 * kMiB);
  EXPECT_EQ(config.server.store.block_bytes, 1 * kMiB);
  EXPECT_EQ(config.server.store.nvme_dir, "/x");
  ASSERT_OK_AND_ASSIGN(DaemonConfig no_nvme, Parse({"--nvme_bytes=0"}));
  EXPECT_EQ(no_nvme.server.store.nvme_dir, "");
}

TEST(FlagsTest, AnEmptyOrOffMetricsAddressTurnsMetricsOff) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--metrics_listen=", "--dram_bytes=2GiB"},
        std::vector<std::string>{"--metrics_listen", "", "--dram_bytes=2GiB"},
        std::vector<std::string>{"--metrics_listen=off", "--dram_bytes=2GiB"},
        std::vector<std::string>{"--dram_bytes=2GiB", "--metrics_listen="}}) {
    ASSERT_OK_AND_ASSIGN(DaemonConfig config, Parse(args));
    EXPECT_EQ(config.server.metrics_listen, "") << args[0];
    // The next flag is not taken as the address.
    EXPECT_EQ(config.server.store.dram_bytes, 2048 * kMiB) << args[0];
  }
  ASSERT_OK_AND_ASSIGN(DaemonConfig set,
                       Parse({"--metrics_listen=0.0.0.0:9000"}));
  EXPECT_EQ(set.server.metrics_listen, "0.0.0.0:9000");
}

TEST(FlagsTest, BadValuesStopStartUpWithOneLine) {
  for (std::vector<std::string> args : {
           std::vector<std::string>{"--dram_bytes=lots"},
           std::vector<std::string>{"--dram_bytes=-1GiB"},
           std::vector<std::string>{"--block_bytes=3"},
           std::vector<std::string>{"--max_message_bytes=1KiB"},
           std::vector<std::string>{"--max_read_streams=0"},
           std::vector<std::string>{"--log_level=loud"},
           std::vector<std::string>{"--no_such_flag=1"},
       }) {
    absl::StatusOr<DaemonConfig> config = Parse(args);
    // --block_bytes is checked when the store opens; the rest here.
    if (args[0] == "--block_bytes=3") continue;
    EXPECT_THAT(config.status(), StatusIs(absl::StatusCode::kInvalidArgument))
        << args[0];
    EXPECT_EQ(std::string(config.status().message()).find('\n'),
              std::string::npos)
        << config.status();
  }
  EXPECT_THAT(Parse({"--help"}).status(), StatusIs(absl::StatusCode::kCancelled,
                                                   HasSubstr("--dram_bytes")));
}

TEST(FlagsTest, LoopbackAndUnixSocketAddressesAreLocalOnly) {
  for (const char* listen :
       {"127.0.0.1:7070", "127.0.0.2:0", "localhost:7070", "[::1]:7070",
        "::1:7070", "unix:/run/pstore/pstored.sock", "unix:pstored.sock",
        "unix:///run/pstore/pstored.sock", "unix-abstract:pstored",
        "unix:/run/pstore:a/pstored.sock"}) {
    EXPECT_TRUE(IsLocalOnlyAddress(listen)) << listen;
  }
  for (const char* listen :
       {"0.0.0.0:7070", "[::]:7070", "10.1.2.3:7070", "pstore.internal:7070",
        "128.0.0.1:7070", "[::ffff:10.0.0.1]:7070", "unixhost:7070"}) {
    EXPECT_FALSE(IsLocalOnlyAddress(listen)) << listen;
  }
}

TEST(FlagsTest, RadosBackendNeedsItsConfAndPoolAndTakesItsTimes) {
  ASSERT_OK_AND_ASSIGN(DaemonConfig embedded, Parse({}));
  EXPECT_FALSE(embedded.server.store.rados.has_value());
  EXPECT_FALSE(embedded.server.store.cold_dir.empty());
  EXPECT_THAT(Parse({"--backend=rados"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse({"--backend=rados", "--ceph_conf=/c.conf"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Parse({"--backend=s3"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(
      DaemonConfig cluster,
      Parse({"--backend=rados", "--ceph_conf=/c.conf", "--rados_pool=p",
             // An empty namespace, as a manifest's empty variable gives.
             "--rados_namespace=", "--rados_user=node",
             "--rados_connect_timeout_seconds=3",
             "--rados_op_timeout_seconds=7", "--rados_gc_grace_seconds=600",
             "--gc_interval_seconds=60"}));
  ASSERT_TRUE(cluster.server.store.rados.has_value());
  const RadosOptions& rados = *cluster.server.store.rados;
  EXPECT_EQ(rados.ceph_conf, "/c.conf");
  EXPECT_EQ(rados.pool, "p");
  EXPECT_EQ(rados.name_space, "");
  EXPECT_EQ(rados.user, "node");
  EXPECT_EQ(rados.connect_timeout, absl::Seconds(3));
  EXPECT_EQ(rados.op_timeout, absl::Seconds(7));
  EXPECT_EQ(rados.gc_grace, absl::Seconds(600));
  EXPECT_EQ(cluster.server.store.gc_interval, absl::Seconds(60));
  EXPECT_TRUE(cluster.server.store.cold_dir.empty());
  EXPECT_THAT(Parse({"--backend=rados", "--ceph_conf=/c.conf", "--rados_pool=p",
                     "--rados_op_timeout_seconds=0"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FlagsTest, PeerReadsAreOnByDefaultAndTakeTheirRingAndDeadlines) {
  const std::vector<std::string> rados = {
      "--backend=rados", "--ceph_conf=/c.conf", "--rados_pool=p"};
  ASSERT_OK_AND_ASSIGN(DaemonConfig defaults, Parse(rados));
  const PeerOptions& peers = defaults.server.store.peers;
  EXPECT_TRUE(peers.enabled);
  EXPECT_EQ(peers.virtual_nodes, 64);
  EXPECT_EQ(peers.hedge_after, absl::Seconds(1));
  EXPECT_EQ(peers.read_timeout, absl::Seconds(10));
  EXPECT_FALSE(defaults.server.fault_corrupt_peer_replies);

  std::vector<std::string> flags = rados;
  for (const char* flag :
       {"--peers=false", "--peer_ring_size=128", "--peer_hedge_seconds=0.25",
        "--peer_read_timeout_seconds=4", "--peer_token_file=/t",
        "--peer_tls_ca_file=/ca.pem", "--fault_corrupt_peer_replies"}) {
    flags.push_back(flag);
  }
  ASSERT_OK_AND_ASSIGN(DaemonConfig set, Parse(flags));
  EXPECT_FALSE(set.server.store.peers.enabled);
  EXPECT_EQ(set.server.store.peers.virtual_nodes, 128);
  EXPECT_EQ(set.server.store.peers.hedge_after, absl::Milliseconds(250));
  EXPECT_EQ(set.server.store.peers.read_timeout, absl::Seconds(4));
  EXPECT_EQ(set.server.peer_token_file, "/t");
  EXPECT_EQ(set.server.peer_tls_ca_file, "/ca.pem");
  EXPECT_TRUE(set.server.fault_corrupt_peer_replies);

  for (const char* bad :
       {"--peer_ring_size=0", "--peer_hedge_seconds=0", "--peers=maybe"}) {
    flags = rados;
    flags.push_back(bad);
    EXPECT_THAT(Parse(flags), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  flags = rados;
  flags.push_back("--peer_hedge_seconds=5");
  flags.push_back("--peer_read_timeout_seconds=1");
  EXPECT_THAT(Parse(flags), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace pstore
