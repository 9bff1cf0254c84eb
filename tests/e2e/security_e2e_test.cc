// End-to-end tests of pstored's security and limits: bearer tokens with
// scopes and model prefixes (reloaded on SIGHUP, never logged), TLS and
// mutual TLS on the gRPC port, and the limits that answer
// RESOURCE_EXHAUSTED instead of running out of memory.

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/pstore_client.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::MakeTestCertificates;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using Code = absl::StatusCode;

constexpr char kReader[] = "reader-0123456789abcdef";
constexpr char kWriter[] = "writer-0123456789abcdef";
constexpr char kLlamaOnly[] = "llama-only-0123456789abcdef";
constexpr char kAdmin[] = "admin-0123456789abcdef";
constexpr char kLater[] = "added-later-0123456789abcdef";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string Tokens(bool with_later) {
  std::string tokens = absl::StrCat(
      R"({"tokens": [)", R"({"name": "reader", "token": ")", kReader,
      R"(", "scopes": ["read"]},)", R"({"name": "writer", "token": ")", kWriter,
      R"(", "scopes": ["read", "write"]},)", R"({"name": "llama", "token": ")",
      kLlamaOnly,
      R"(", "scopes": ["read", "write", "admin"], "models": ["llama"]},)",
      R"({"name": "ops", "token": ")", kAdmin, R"(", "scopes": ["admin"]})");
  if (with_later) {
    absl::StrAppend(&tokens, R"(,{"name": "later", "token": ")", kLater,
                    R"(", "scopes": ["read"]})");
  }
  return tokens + "]}";
}

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_path_ = dir_.Sub("tokens.json");
    WriteFile(tokens_path_, Tokens(false));
    server_ = std::make_unique<PstoredProcess>(
        dir_.Sub("data"),
        std::vector<std::string>{"--tokens_file=" + tokens_path_});
    ASSERT_OK(server_->Start());
  }

  std::unique_ptr<Client> As(const std::string& token) {
    ClientOptions options;
    options.address = server_->address();
    options.token = token;
    options.max_attempts = 1;
    return *Client::Create(options);
  }

  TempDir dir_;
  std::string tokens_path_;
  std::unique_ptr<PstoredProcess> server_;
};

TEST_F(TokensTest, CallsNeedAKnownTokenWithTheScopeAndModel) {
  std::vector<uint8_t> bytes = RandomBytes(4096, 1);
  const std::vector<int64_t> shape = {4096};
  // No token, a wrong token.
  EXPECT_THAT(As("")->StatTensor("m/t"), StatusIs(Code::kUnauthenticated));
  EXPECT_THAT(As("not-a-token-0123456789")->StatTensor("m/t"),
              StatusIs(Code::kUnauthenticated));
  // Scopes.
  EXPECT_THAT(As(kReader)->PutTensor("m@v1/t", "U8", shape, bytes),
              StatusIs(Code::kPermissionDenied));
  ASSERT_OK(As(kWriter)->PutTensor("m@v1/t", "U8", shape, bytes).status());
  ASSERT_OK(As(kWriter)->PublishRevision("m@v1").status());
  ASSERT_OK_AND_ASSIGN(auto got, As(kReader)->GetTensor("m/t"));
  EXPECT_EQ(got.second, bytes);
  EXPECT_THAT(As(kWriter)->Pin("m@v1"), StatusIs(Code::kPermissionDenied));
  EXPECT_OK(As(kAdmin)->Pin("m@v1").status());
  EXPECT_THAT(As(kReader)->DropCache(v1::TIER_DRAM),
              StatusIs(Code::kPermissionDenied));
  EXPECT_OK(As(kAdmin)->DropCache(v1::TIER_DRAM));
  // Model prefixes: the llama token reaches llama* only, and cannot drop
  // every model's cache.
  EXPECT_OK(
      As(kLlamaOnly)->PutTensor("llama-7b@v1/t", "U8", shape, bytes).status());
  EXPECT_THAT(As(kLlamaOnly)->GetTensor("m/t"),
              StatusIs(Code::kPermissionDenied));
  EXPECT_THAT(As(kLlamaOnly)->PutTensor("other@v1/t", "U8", shape, bytes),
              StatusIs(Code::kPermissionDenied));
  EXPECT_THAT(As(kLlamaOnly)->DropCache(v1::TIER_DRAM),
              StatusIs(Code::kPermissionDenied));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Model> models,
                       As(kLlamaOnly)->ListModels());
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].name(), "llama-7b");
  ASSERT_OK_AND_ASSIGN(models, As(kReader)->ListModels());
  EXPECT_EQ(models.size(), 2u);
  // Pulls are reads too.
  PullCallbacks callbacks;
  std::vector<uint8_t> memory;
  callbacks.allocate =
      [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
    memory.resize(info.byte_length());
    return std::span<uint8_t>(memory);
  };
  EXPECT_OK(As(kReader)->PullModel("m", PullOptions(), callbacks).status());
  EXPECT_THAT(As("")->PullModel("m", PullOptions(), callbacks),
              StatusIs(Code::kUnauthenticated));
}

TEST_F(TokensTest, SighupReloadsTokensAndTokensNeverReachTheLog) {
  EXPECT_THAT(As(kLater)->ListModels(), StatusIs(Code::kUnauthenticated));
  WriteFile(tokens_path_, Tokens(true));
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  bool accepted = false;
  for (int i = 0; i < 400 && !accepted; ++i) {
    accepted = As(kLater)->ListModels().ok();
    if (!accepted) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(accepted);
  // A broken file keeps the tokens in force.
  WriteFile(tokens_path_, "{not json");
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  for (int i = 0; i < 400; ++i) {
    if (server_->Log().find("event=tokens_reload_failed") !=
        std::string::npos) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_OK(As(kLater)->ListModels().status());
  EXPECT_OK(As(kReader)->ListModels().status());
  std::string log = server_->Log();
  EXPECT_NE(log.find("event=tokens_reloaded"), std::string::npos);
  for (const char* token : {kReader, kWriter, kLlamaOnly, kAdmin, kLater}) {
    EXPECT_EQ(log.find(token), std::string::npos) << "a token is in the log";
  }
}

TEST(TokensFileTest, ABadTokensFileStopsStartUp) {
  TempDir dir;
  WriteFile(
      dir.Sub("tokens.json"),
      R"({"tokens": [{"name": "x", "token": "short", "scopes": ["read"]}]})");
  PstoredProcess server(dir.Sub("data"),
                        {"--tokens_file=" + dir.Sub("tokens.json")});
  absl::Status started = server.Start(absl::Seconds(20));
  EXPECT_FALSE(started.ok());
  EXPECT_NE(std::string(started.message()).find("at least 16"),
            std::string::npos)
      << started;
}

TEST(TlsTest, ServesTlsAndRequiresClientCertificatesWhenAsked) {
  TempDir dir;
  if (!MakeTestCertificates(dir.path().string()))
    GTEST_SKIP() << "openssl is not installed";
  PstoredProcess server(dir.Sub("data"),
                        {"--tls_cert=" + dir.Sub("server.pem"),
                         "--tls_key=" + dir.Sub("server.key"),
                         "--tls_client_ca=" + dir.Sub("ca.pem")});
  ASSERT_OK(server.Start());
  ClientOptions options;
  options.address = server.address();
  options.max_attempts = 1;
  options.call_timeout = absl::Seconds(10);

  // Plaintext is refused; TLS without a client certificate too.
  EXPECT_FALSE((*Client::Create(options))->ListModels().ok());
  options.tls_ca_file = dir.Sub("ca.pem");
  EXPECT_FALSE((*Client::Create(options))->ListModels().ok());
  // With the client certificate, calls work and bytes round-trip.
  options.tls_cert_file = dir.Sub("client.pem");
  options.tls_key_file = dir.Sub("client.key");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Create(options));
  std::vector<uint8_t> bytes = RandomBytes(3 << 20, 2);
  ASSERT_OK(
      client->PutTensor("m@v1/t", "U8", std::vector<int64_t>{3 << 20}, bytes)
          .status());
  ASSERT_OK_AND_ASSIGN(auto got, client->GetTensor("m@v1/t"));
  EXPECT_TRUE(got.second == bytes);
  // A certificate from another CA is not trusted.
  options.tls_ca_file = dir.Sub("client.pem");
  EXPECT_FALSE((*Client::Create(options))->ListModels().ok());
}

TEST(LimitsTest, PastTheLimitsCallsGetResourceExhausted) {
  TempDir dir;
  PstoredProcess server(dir.Sub("data"),
                        {"--max_tensor_bytes=40MiB", "--max_message_bytes=1MiB",
                         "--max_read_streams=2", "--block_bytes=1MiB"});
  ASSERT_OK(server.Start());
  ClientOptions options;
  options.address = server.address();
  options.max_attempts = 1;
  options.chunk_bytes = 256 << 10;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Create(options));
  // Tensor size: refused at the header, before any byte is stored.
  EXPECT_THAT(
      client->PutTensor("m@v1/big", "U8", std::vector<int64_t>{41 << 20},
                        RandomBytes(41 << 20, 1)),
      StatusIs(Code::kResourceExhausted));
  // Larger than what flow control lets the server send ahead of a client
  // that does not read, so a slow reader's stream stays open server-side.
  ASSERT_OK(client
                ->PutTensor("m@v1/t", "U8", std::vector<int64_t>{40 << 20},
                            RandomBytes(40 << 20, 2))
                .status());
  // Message size: a client sending 2 MiB messages.
  ClientOptions big_messages = options;
  big_messages.chunk_bytes = 2 << 20;
  EXPECT_THAT((*Client::Create(big_messages))
                  ->PutTensor("m@v1/u", "U8", std::vector<int64_t>{2 << 20},
                              RandomBytes(2 << 20, 3)),
              StatusIs(Code::kResourceExhausted));
  // Streams: two slow readers hold the two slots; a third is refused.
  std::atomic<int> started{0};
  std::atomic<bool> release{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&] {
      (void)client->GetTensorTo(
          "m@v1/t", GetOptions(),
          [&](const v1::TensorInfo&, std::span<const uint8_t>) {
            ++started;
            for (int j = 0; j < 1000 && !release; ++j) {
              absl::SleepFor(absl::Milliseconds(5));
            }
            return absl::OkStatus();
          });
    });
  }
  for (int i = 0; i < 1000 && started.load() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(started.load(), 2);
  EXPECT_THAT(client->GetTensor("m@v1/t"), StatusIs(Code::kResourceExhausted));
  release = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_OK(client->GetTensor("m@v1/t").status());
}

// A call's stream slot is free again by the time its client has the status:
// one client calling one after another is never refused, even with a single
// slot of each kind.
TEST(LimitsTest, SequentialCallsAreNeverRefusedForTheirPredecessors) {
  TempDir dir;
  PstoredProcess server(dir.Sub("data"),
                        {"--max_read_streams=1", "--max_put_streams=1"});
  ASSERT_OK(server.Start());
  ClientOptions options;
  options.address = server.address();
  options.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Create(options));
  constexpr int kCalls = 200;
  int refused = 0;
  for (int i = 0; i < kCalls; ++i) {
    std::vector<uint8_t> bytes = RandomBytes(4096, i);
    std::string name = absl::StrCat("seq@v1/t", i % 8);
    absl::Status put =
        client->PutTensor(name, "U8", std::vector<int64_t>{4096}, bytes)
            .status();
    refused += absl::IsResourceExhausted(put);
    ASSERT_TRUE(put.ok() || absl::IsResourceExhausted(put)) << put;
    absl::StatusOr<std::pair<v1::TensorInfo, std::vector<uint8_t>>> got =
        client->GetTensor(name);
    refused += absl::IsResourceExhausted(got.status());
    if (put.ok() && got.ok()) {
      EXPECT_EQ(got->second, bytes);
    }
  }
  EXPECT_EQ(refused, 0);
}

}  // namespace
}  // namespace pstore
