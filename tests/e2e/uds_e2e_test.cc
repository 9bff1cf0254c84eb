// End-to-end tests of pstored's Unix domain socket (--uds_path): the same
// service as over TCP, for clients on the host, with the peer's uid and
// gid checked (SO_PEERCRED), tokens as over TCP, and the socket file's
// life (mode, a stale file replaced, anything else refused).

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/pstore_client.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::RunCommand;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr char kToken[] = "uds-token-0123456789abcdef";

std::unique_ptr<Client> Connect(const std::string& address,
                                const std::string& token = "") {
  ClientOptions options;
  options.address = address;
  options.token = token;
  options.max_attempts = 1;
  options.call_timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

class UdsE2eTest : public ::testing::Test {
 protected:
  // Starts pstored with its socket at socket_path() and `flags`.
  void StartServer(std::vector<std::string> flags = {}) {
    flags.push_back("--uds_path=" + socket_path());
    server_ = std::make_unique<PstoredProcess>(dir_.Sub("data"), flags);
    ASSERT_OK(server_->Start());
  }

  std::string socket_path() const { return dir_.Sub("pstored.sock"); }
  std::string unix_address() const { return "unix:" + socket_path(); }

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
};

TEST_F(UdsE2eTest, ServesTheSameCallsAsTcp) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  struct stat st;
  ASSERT_EQ(lstat(socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  std::unique_ptr<Client> tcp = Connect(server_->address());
  std::unique_ptr<Client> uds = Connect(unix_address());
  ASSERT_NE(tcp, nullptr);
  ASSERT_NE(uds, nullptr);
  std::vector<uint8_t> big = RandomBytes(9 * kMiB + 77, 1);
  std::vector<uint8_t> small = RandomBytes(4096, 2);
  const std::vector<int64_t> big_shape = {static_cast<int64_t>(big.size())};
  const std::vector<int64_t> small_shape = {static_cast<int64_t>(small.size())};
  ASSERT_OK(tcp->PutTensor("m@v1/big", "U8", big_shape, big).status());
  ASSERT_OK(uds->PutTensor("m@v1/small", "U8", small_shape, small).status());
  ASSERT_OK(uds->PublishRevision("m@v1").status());
  // Reads of either size, a range, a pull: the same bytes both ways.
  for (Client* client : {tcp.get(), uds.get()}) {
    ASSERT_OK_AND_ASSIGN(auto got, client->GetTensor("m/big"));
    EXPECT_TRUE(got.second == big);
    ASSERT_OK_AND_ASSIGN(auto got_small, client->GetTensor("m@v1/small"));
    EXPECT_TRUE(got_small.second == small);
    GetOptions range;
    range.offset = 1000;
    range.length = 5000;
    ASSERT_OK_AND_ASSIGN(auto part, client->GetTensor("m@v1/big", range));
    EXPECT_TRUE(
        std::equal(part.second.begin(), part.second.end(), big.begin() + 1000));
    std::vector<uint8_t> pulled_big(big.size()), pulled_small(small.size());
    PullCallbacks callbacks;
    callbacks.allocate = [&](const v1::TensorInfo& info) {
      return absl::StatusOr<std::span<uint8_t>>(
          info.tensor() == "big" ? std::span<uint8_t>(pulled_big)
                                 : std::span<uint8_t>(pulled_small));
    };
    PullOptions options;
    options.streams = 3;
    ASSERT_OK(client->PullModel("m", options, callbacks).status());
    EXPECT_TRUE(pulled_big == big);
    EXPECT_TRUE(pulled_small == small);
  }
  // pstore-cli takes the socket as its address.
  testing::CommandResult ls = RunCommand(absl::StrCat(
      testing::PstoreCliPath(), " --addr ", unix_address(), " ls m@v1"));
  EXPECT_EQ(ls.exit_code, 0) << ls.out;
  EXPECT_NE(ls.out.find("m@v1/small"), std::string::npos) << ls.out;

  // A drain removes the socket file.
  ASSERT_OK(server_->Stop().status());
  EXPECT_NE(lstat(socket_path().c_str(), &st), 0);
}

TEST_F(UdsE2eTest, PeersNotAllowedAreRefusedAndAllowedOnesServed) {
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  // Neither this uid nor this gid: refused.
  ASSERT_NO_FATAL_FAILURE(StartServer(
      {absl::StrCat("--uds_allowed_uids=", uid + 1000),
       absl::StrCat("--uds_allowed_gids=", gid + 1000), "--uds_mode=0666"}));
  std::unique_ptr<Client> refused = Connect(unix_address());
  ASSERT_NE(refused, nullptr);
  EXPECT_THAT(refused->ListModels(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_NE(server_->Log().find("event=uds_peer_refused"), std::string::npos);
  struct stat st;
  ASSERT_EQ(lstat(socket_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  // TCP is not affected.
  std::unique_ptr<Client> tcp = Connect(server_->address());
  ASSERT_OK(tcp->ListModels().status());
  ASSERT_OK(server_->Stop().status());

  // This uid among others, or this gid alone: served.
  for (std::string flag :
       {absl::StrCat("--uds_allowed_uids=", uid + 1000, ",", uid),
        absl::StrCat("--uds_allowed_gids=", gid)}) {
    ASSERT_NO_FATAL_FAILURE(StartServer({flag}));
    std::unique_ptr<Client> allowed = Connect(unix_address());
    EXPECT_OK(allowed->ListModels().status()) << flag;
    ASSERT_OK(server_->Stop().status());
  }
}

TEST_F(UdsE2eTest, TokensWorkOverTheSocketAsOverTcp) {
  std::ofstream(dir_.Sub("tokens.json"))
      << R"({"tokens": [{"name": "w", "token": ")" << kToken
      << R"(", "scopes": ["read", "write"]}]})";
  ASSERT_NO_FATAL_FAILURE(
      StartServer({"--tokens_file=" + dir_.Sub("tokens.json")}));
  std::unique_ptr<Client> anonymous = Connect(unix_address());
  EXPECT_THAT(anonymous->ListModels(),
              StatusIs(absl::StatusCode::kUnauthenticated));
  std::unique_ptr<Client> wrong = Connect(unix_address(), "not-the-token-0000");
  EXPECT_THAT(wrong->ListModels(),
              StatusIs(absl::StatusCode::kUnauthenticated));
  std::unique_ptr<Client> good = Connect(unix_address(), kToken);
  std::vector<uint8_t> bytes = RandomBytes(1000, 3);
  const std::vector<int64_t> shape = {1000};
  ASSERT_OK(good->PutTensor("t@v1/x", "U8", shape, bytes).status());
  ASSERT_OK_AND_ASSIGN(auto got, good->GetTensor("t@v1/x"));
  EXPECT_TRUE(got.second == bytes);
}

TEST_F(UdsE2eTest, AStaleSocketIsReplacedAndAnythingElseRefused) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // Killed, pstored leaves its socket file; the next one replaces it.
  server_->Kill();
  struct stat st;
  ASSERT_EQ(lstat(socket_path().c_str(), &st), 0);
  ASSERT_OK(server_->Start());
  std::unique_ptr<Client> client = Connect(unix_address());
  ASSERT_OK(client->ListModels().status());

  // A second pstored on the same socket (another data dir) is refused
  // while the first serves on it.
  PstoredProcess second(dir_.Sub("data2"), {"--uds_path=" + socket_path()});
  absl::Status started = second.Start(absl::Seconds(30));
  EXPECT_FALSE(started.ok());
  EXPECT_NE(std::string(started.message()).find("another process accepts"),
            std::string::npos)
      << started;
  ASSERT_OK(client->ListModels().status());
  ASSERT_OK(server_->Stop().status());

  // A file that is not a socket is never replaced.
  std::ofstream(socket_path()) << "precious";
  absl::Status refused = server_->Start(absl::Seconds(30));
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.message()).find("is not a socket"),
            std::string::npos)
      << refused;
  std::ifstream in(socket_path());
  std::string kept;
  in >> kept;
  EXPECT_EQ(kept, "precious");

  // Nor a directory that does not exist, nor a bad mode or id list.
  for (std::vector<std::string> flags :
       {std::vector<std::string>{"--uds_path=" + dir_.Sub("no/such/dir/s")},
        std::vector<std::string>{"--uds_path=" + dir_.Sub("s"),
                                 "--uds_mode=0999"},
        std::vector<std::string>{"--uds_path=" + dir_.Sub("s"),
                                 "--uds_allowed_uids=root"}}) {
    PstoredProcess bad(dir_.Sub("data3"), flags);
    absl::Status status = bad.Start(absl::Seconds(30));
    EXPECT_FALSE(status.ok()) << flags.back();
  }
}

}  // namespace
}  // namespace pstore
