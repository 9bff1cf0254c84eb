// The read-stream reactor in process: a PstoreServer (the service, its
// reactors and a real store) on a free loopback port, read by the client
// library and by a raw stub. Every byte is checked; streams give back their
// slot and their read-ahead however they end. ReadTensor (server/
// unary_read.h) shares the streams' read slots and the drain. Runs under
// the sanitizers in CI like every test.

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/pstore_client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "pstore/v1/pstore.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

constexpr uint64_t kMiB = uint64_t{1} << 20;

class ReadStreamTest : public ::testing::Test {
 protected:
  void Start(int max_read_streams = 128) {
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "";
    config.store.cold_dir = dir_.Sub("cold");
    config.store.nvme_dir = dir_.Sub("nvme");
    config.store.nvme_bytes = 64 * kMiB;
    config.store.dram_bytes = 64 * kMiB;
    config.store.block_bytes = 1 * kMiB;
    config.store.sync_commits = false;
    config.store.cold_min_free_bytes = 16 * kMiB;
    config.service.max_read_streams = max_read_streams;
    config.service.readahead_bytes = 4 * kMiB;
    ASSERT_OK_AND_ASSIGN(server_, PstoreServer::Start(std::move(config)));
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    ClientOptions options;
    options.address = address_;
    options.max_attempts = 1;
    options.chunk_bytes = 256 << 10;
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(options));
    channel_ =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = v1::ParamStore::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  // Waits (bounded) until no stream holds a slot or read-ahead; returns
  // whether that happened.
  bool StreamsSettle() {
    const StreamCounters& counters = server_->service()->stream_counters();
    for (int i = 0; i < 1000; ++i) {
      if (counters.streams_in_flight.load() == 0 &&
          counters.readahead_bytes.load() == 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void PutFloats(const std::string& name, int64_t rows, int64_t cols,
                 std::vector<uint8_t>* bytes) {
    *bytes = RandomBytes(rows * cols * 4, rows * 31 + cols);
    // Finite values, so quantizing is well defined.
    for (size_t i = 0; i + 4 <= bytes->size(); i += 4) {
      float value = static_cast<float>((i / 4) % 1013) * 0.125f - 60.0f;
      std::memcpy(bytes->data() + i, &value, 4);
    }
    std::vector<int64_t> shape = {rows, cols};
    ASSERT_OK(client_->PutTensor(name, "F32", shape, *bytes).status());
  }

  TempDir dir_;
  std::unique_ptr<PstoreServer> server_;
  std::string address_;
  std::unique_ptr<Client> client_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ParamStore::Stub> stub_;
};

TEST_F(ReadStreamTest, GetsAndPullsSendEveryByteAndGiveBackTheirSlots) {
  Start();
  std::vector<uint8_t> a, b;
  PutFloats("m@v1/a", 1024, 1280, &a);  // 5 MiB: 5 blocks.
  PutFloats("m@v1/b", 3, 64, &b);       // Smaller than a chunk.
  ASSERT_OK(client_->PublishRevision("m@v1").status());

  ASSERT_OK_AND_ASSIGN(auto whole, client_->GetTensor("m/a"));
  EXPECT_TRUE(whole.second == a);
  GetOptions range;
  range.offset = kMiB - 100;
  range.length = 2 * kMiB + 200;  // Across three blocks.
  ASSERT_OK_AND_ASSIGN(auto part, client_->GetTensor("m@v1/a", range));
  EXPECT_TRUE(std::equal(part.second.begin(), part.second.end(),
                         a.begin() + range.offset));
  EXPECT_EQ(part.second.size(), range.length);

  std::vector<std::vector<uint8_t>> pulled(2);
  PullCallbacks callbacks;
  int next = 0;
  callbacks.allocate =
      [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
    pulled[next].resize(info.byte_length());
    return std::span<uint8_t>(pulled[next++]);
  };
  PullOptions pull;
  pull.streams = 3;
  ASSERT_OK(client_->PullModel("m", pull, callbacks).status());
  EXPECT_TRUE(pulled[0] == a);
  EXPECT_TRUE(pulled[1] == b);
  EXPECT_TRUE(StreamsSettle());
}

TEST_F(ReadStreamTest, AnEncodedTensorIsHashedOnceSentAndKnownAfter) {
  Start();
  std::vector<uint8_t> a;
  PutFloats("m@v1/a", 512, 1024, &a);  // 2 MiB.
  GetOptions q8;
  q8.encoding = "q8_0";
  ASSERT_OK_AND_ASSIGN(auto first, client_->GetTensor("m@v1/a", q8));
  ASSERT_OK_AND_ASSIGN(auto second, client_->GetTensor("m@v1/a", q8));
  EXPECT_TRUE(first.second == second.second);
  EXPECT_EQ(first.first.xxh3_64(), second.first.xxh3_64());
  EXPECT_TRUE(first.first.has_quantization_error());
  EXPECT_EQ(second.first.quantization_error().max_abs_error(),
            first.first.quantization_error().max_abs_error());
  // The second read's first chunk already carries the hash and the error.
  grpc::ClientContext context;
  v1::GetTensorRequest request;
  request.set_name("m@v1/a");
  request.set_encoding("q8_0");
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
      stub_->GetTensor(&context, request);
  v1::TensorChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  ASSERT_TRUE(chunk.has_info());
  EXPECT_EQ(chunk.info().xxh3_64(), first.first.xxh3_64());
  EXPECT_TRUE(chunk.info().has_quantization_error());
  while (reader->Read(&chunk)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(StreamsSettle());
}

TEST_F(ReadStreamTest, ACancelledStreamGivesBackItsSlotAndReadAhead) {
  Start();
  std::vector<uint8_t> a;
  PutFloats("m@v1/a", 4096, 2048, &a);  // 32 MiB.
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext context;
    v1::GetTensorRequest request;
    request.set_name("m@v1/a");
    request.set_max_chunk_bytes(64 << 10);
    std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
        stub_->GetTensor(&context, request);
    v1::TensorChunk chunk;
    ASSERT_TRUE(reader->Read(&chunk));
    context.TryCancel();
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_TRUE(StreamsSettle()) << "round " << round;
  }
}

TEST_F(ReadStreamTest, StreamsPastTheLimitAreRefusedUntilASlotFrees) {
  Start(/*max_read_streams=*/1);
  std::vector<uint8_t> a;
  PutFloats("m@v1/a", 4096, 2048, &a);  // 32 MiB.
  auto open_stream =
      [&](grpc::ClientContext* context,
          std::unique_ptr<grpc::ClientReader<v1::TensorChunk>>* reader) {
        v1::GetTensorRequest request;
        request.set_name("m@v1/a");
        request.set_max_chunk_bytes(64 << 10);
        *reader = stub_->GetTensor(context, request);
      };
  grpc::ClientContext held_context;
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> held;
  open_stream(&held_context, &held);
  v1::TensorChunk chunk;
  ASSERT_TRUE(held->Read(&chunk));  // The slot is taken.

  grpc::ClientContext refused_context;
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> refused;
  open_stream(&refused_context, &refused);
  EXPECT_FALSE(refused->Read(&chunk));
  EXPECT_EQ(refused->Finish().error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  held_context.TryCancel();
  (void)held->Finish();  // CANCELLED: this test cancelled it.
  ASSERT_TRUE(StreamsSettle());
  ASSERT_OK_AND_ASSIGN(auto whole, client_->GetTensor("m@v1/a"));
  EXPECT_TRUE(whole.second == a);
}

TEST_F(ReadStreamTest, AMissingTensorOrBadRangeEndsTheStreamWithItsCode) {
  Start();
  std::vector<uint8_t> a;
  PutFloats("m@v1/a", 64, 64, &a);
  EXPECT_THAT(client_->GetTensor("m@v1/nope"),
              StatusIs(absl::StatusCode::kNotFound));
  GetOptions past;
  past.offset = a.size() + 1;
  EXPECT_THAT(client_->GetTensor("m@v1/a", past),
              StatusIs(absl::StatusCode::kOutOfRange));
  GetOptions unaligned;
  unaligned.encoding = "q4_0";
  unaligned.offset = 1;
  EXPECT_THAT(client_->GetTensor("m@v1/a", unaligned),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(StreamsSettle());
}

TEST_F(ReadStreamTest, ReadTensorTakesAReadSlotAndGivesItBack) {
  Start(/*max_read_streams=*/1);
  std::vector<uint8_t> a, b;
  PutFloats("m@v1/a", 4096, 2048, &a);  // 32 MiB.
  PutFloats("m@v1/b", 64, 256, &b);     // 64 KiB.
  auto read = [&](v1::TensorChunk* reply) {
    grpc::ClientContext context;
    v1::GetTensorRequest request;
    request.set_name("m@v1/b");
    return stub_->ReadTensor(&context, request, reply);
  };
  // Sequential reads never wait for one another's slot.
  for (int i = 0; i < 20; ++i) {
    v1::TensorChunk reply;
    grpc::Status status = read(&reply);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(reply.data().size(), b.size());
    EXPECT_TRUE(reply.data() == std::string(b.begin(), b.end()));
    ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor("m@v1/b"));
    EXPECT_TRUE(got.second == b);
  }
  EXPECT_TRUE(StreamsSettle());

  // A stream holds the only slot: ReadTensor is refused, and so is the
  // client's read (which then tries the stream).
  grpc::ClientContext held_context;
  v1::GetTensorRequest request;
  request.set_name("m@v1/a");
  request.set_max_chunk_bytes(64 << 10);
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> held =
      stub_->GetTensor(&held_context, request);
  v1::TensorChunk chunk;
  ASSERT_TRUE(held->Read(&chunk));
  v1::TensorChunk reply;
  EXPECT_EQ(read(&reply).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(client_->GetTensor("m@v1/b"),
              StatusIs(absl::StatusCode::kResourceExhausted));
  held_context.TryCancel();
  (void)held->Finish();  // CANCELLED: this test cancelled it.
  ASSERT_TRUE(StreamsSettle());
  ASSERT_TRUE(read(&reply).ok());
  EXPECT_TRUE(StreamsSettle());
}

TEST_F(ReadStreamTest, ReadTensorIsRefusedWhileTheServerDrains) {
  Start();
  std::vector<uint8_t> b;
  PutFloats("m@v1/b", 64, 256, &b);
  server_->service()->gate().Close();
  grpc::ClientContext context;
  v1::GetTensorRequest request;
  request.set_name("m@v1/b");
  v1::TensorChunk reply;
  EXPECT_EQ(stub_->ReadTensor(&context, request, &reply).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(StreamsSettle());
}

}  // namespace
}  // namespace pstore
