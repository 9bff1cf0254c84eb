// End-to-end tests of pstored through the C++ client library: a real
// pstored process on a free loopback port, real RocksDB and io_uring under
// a temporary directory.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/pstore_client.h"
#include "codec/dtype.h"
#include "codec/hash.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

constexpr uint64_t kMiB = uint64_t{1} << 20;

class ServerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PstoredProcess>(
        dir_.Sub("data"), std::vector<std::string>{"--block_bytes=1MiB"});
    ASSERT_OK(server_->Start());
    Connect();
  }

  void Connect(int channels = 1) {
    ClientOptions options;
    options.address = server_->address();
    options.channels = channels;
    options.call_timeout = absl::Seconds(120);
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(options));
  }

  absl::StatusOr<v1::TensorInfo> Put(const std::string& name,
                                     const std::string& dtype,
                                     std::vector<int64_t> shape,
                                     const std::vector<uint8_t>& bytes) {
    return client_->PutTensor(name, dtype, shape, bytes);
  }

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(ServerE2eTest, PutsAndGetsEveryDtype) {
  uint64_t seed = 0;
  for (DType dtype : AllDTypes()) {
    std::string name = "m@v1/" + std::string(DTypeName(dtype)) + "/weight";
    std::vector<int64_t> shape = {3, 1000};
    std::vector<uint8_t> bytes =
        RandomBytes(*TensorByteLength(dtype, shape), ++seed);
    ASSERT_OK_AND_ASSIGN(
        v1::TensorInfo put,
        Put(name, std::string(DTypeName(dtype)), shape, bytes));
    EXPECT_EQ(put.stored_xxh3_64(), Xxh3_64(bytes));
    ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor(name));
    EXPECT_EQ(got.second, bytes) << name;
    EXPECT_EQ(got.first.dtype(), DTypeName(dtype));
    EXPECT_EQ(std::vector<int64_t>(got.first.shape().begin(),
                                   got.first.shape().end()),
              shape);
  }
  // Scalars and empty tensors.
  ASSERT_OK(Put("m@v1/scalar", "F32", {}, RandomBytes(4, 1)).status());
  ASSERT_OK_AND_ASSIGN(auto scalar, client_->GetTensor("m@v1/scalar"));
  EXPECT_EQ(scalar.second.size(), 4u);
  ASSERT_OK(Put("m@v1/empty", "F16", {0, 7}, {}).status());
  ASSERT_OK_AND_ASSIGN(auto empty, client_->GetTensor("m@v1/empty"));
  EXPECT_TRUE(empty.second.empty());
  EXPECT_EQ(empty.first.shape_size(), 2);
}

TEST_F(ServerE2eTest, Streams256MiBAndByteRanges) {
  std::vector<uint8_t> bytes = RandomBytes(256 * kMiB, 5);
  ASSERT_OK(Put("big@v1/w", "BF16", {8192, 16384}, bytes).status());
  std::vector<uint8_t> out(bytes.size());
  ASSERT_OK_AND_ASSIGN(v1::TensorInfo info,
                       client_->GetTensor("big@v1/w", std::span<uint8_t>(out)));
  EXPECT_EQ(info.byte_length(), bytes.size());
  EXPECT_TRUE(out == bytes);
  for (auto [offset, length] :
       std::vector<std::pair<uint64_t, uint64_t>>{{0, 10},
                                                  {kMiB - 1, 2},
                                                  {100 * kMiB + 3, 7 * kMiB},
                                                  {256 * kMiB - 5, 0}}) {
    GetOptions options;
    options.offset = offset;
    options.length = length;
    ASSERT_OK_AND_ASSIGN(auto part, client_->GetTensor("big@v1/w", options));
    uint64_t expected = length == 0 ? bytes.size() - offset : length;
    ASSERT_EQ(part.second.size(), expected);
    EXPECT_TRUE(std::equal(part.second.begin(), part.second.end(),
                           bytes.begin() + offset));
    EXPECT_EQ(part.first.offset(), offset);
  }
  GetOptions past;
  past.offset = 256 * kMiB - 1;
  past.length = 2;
  EXPECT_THAT(client_->GetTensor("big@v1/w", past),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(ServerE2eTest, RestartKeepsEverythingPublished) {
  std::vector<uint8_t> a = RandomBytes(3 * kMiB + 5, 1);
  ASSERT_OK(Put("m@v1/a", "U8", {static_cast<int64_t>(a.size())}, a).status());
  ASSERT_OK(client_->CreateRevision("m@v2", {{"note", "second"}}).status());
  ASSERT_OK(Put("m@v2/a", "U8", {static_cast<int64_t>(a.size())}, a).status());
  ASSERT_OK(client_->PublishRevision("m@v1").status());
  ASSERT_OK(client_->Pin("m@v1").status());

  ASSERT_OK_AND_ASSIGN(int exit_status, server_->Stop());
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0)
      << server_->Log();
  ASSERT_OK(server_->Start());
  Connect();

  ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor("m/a"));
  EXPECT_EQ(got.second, a);
  EXPECT_EQ(got.first.revision(), "v1");
  ASSERT_OK_AND_ASSIGN(v1::Revision v2, client_->GetRevision("m@v2"));
  EXPECT_FALSE(v2.published());
  EXPECT_EQ(v2.metadata().at("note"), "second");
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Model> models, client_->ListModels());
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].latest_revision(), "v1");
}

TEST_F(ServerE2eTest, PullsAModelOverParallelStreams) {
  std::vector<std::vector<uint8_t>> contents;
  for (int i = 0; i < 12; ++i) {
    contents.push_back(RandomBytes((i % 4) * 3 * kMiB + 1000 * i + 8, 10 + i));
    ASSERT_OK(Put("llm@r1/layer." + std::to_string(i), "U8",
                  {static_cast<int64_t>(contents.back().size())},
                  contents.back())
                  .status());
  }
  ASSERT_OK(Put("llm@r1/empty", "F32", {0}, {}).status());
  ASSERT_OK(client_->PublishRevision("llm@r1").status());
  Connect(/*channels=*/4);
  for (int streams : {1, 2, 4, 8}) {
    std::map<std::string, std::vector<uint8_t>> received;
    int done = 0;
    PullCallbacks callbacks;
    callbacks.allocate =
        [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
      auto& memory = received[info.tensor()];
      memory.resize(info.byte_length());
      return std::span<uint8_t>(memory);
    };
    callbacks.done = [&](const v1::TensorInfo&) { ++done; };
    PullOptions options;
    options.streams = streams;
    ASSERT_OK_AND_ASSIGN(PullResult result,
                         client_->PullModel("llm", options, callbacks));
    EXPECT_EQ(done, 13) << streams;
    EXPECT_EQ(result.revision.revision(), "r1");
    for (int i = 0; i < 12; ++i) {
      EXPECT_EQ(received["layer." + std::to_string(i)], contents[i])
          << streams << " streams, tensor " << i;
    }
  }
}

TEST_F(ServerE2eTest, ACancellerStopsPullsAndReadsInFlight) {
  // 64 MiB over one stream: cancelled from its first progress report, the
  // pull stops well before its last byte.
  std::vector<uint8_t> bytes = RandomBytes(64 * kMiB, 7);
  ASSERT_OK(Put("big@r1/t", "U8", {static_cast<int64_t>(bytes.size())}, bytes)
                .status());
  std::vector<uint8_t> memory(bytes.size());
  Canceller canceller;
  uint64_t received_when_cancelled = 0;
  PullCallbacks callbacks;
  callbacks.allocate = [&](const v1::TensorInfo&) {
    return absl::StatusOr<std::span<uint8_t>>(std::span<uint8_t>(memory));
  };
  callbacks.progress = [&](uint64_t received, uint64_t) {
    if (received_when_cancelled == 0) received_when_cancelled = received;
    canceller.Cancel();
  };
  PullOptions options;
  options.chunk_bytes = 256 << 10;
  options.canceller = &canceller;
  EXPECT_THAT(client_->PullModel("big@r1", options, callbacks),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(received_when_cancelled, bytes.size());

  // A canceller cancelled before the call: CANCELLED at once, for a pull
  // and for a read of either size.
  EXPECT_THAT(client_->PullModel("big@r1", options, callbacks),
              StatusIs(absl::StatusCode::kCancelled));
  GetOptions get;
  get.canceller = &canceller;
  EXPECT_THAT(client_->GetTensor("big@r1/t", get),
              StatusIs(absl::StatusCode::kCancelled));
  get.length = 1000;
  EXPECT_THAT(client_->GetTensor("big@r1/t", get),
              StatusIs(absl::StatusCode::kCancelled));

  // A read cancelled from its sink stops; the same client reads on.
  Canceller read_canceller;
  get = GetOptions();
  get.chunk_bytes = 256 << 10;
  get.canceller = &read_canceller;
  uint64_t sunk = 0;
  EXPECT_THAT(client_->GetTensorTo(
                  "big@r1/t", get,
                  [&](const v1::TensorInfo&, std::span<const uint8_t> piece) {
                    sunk += piece.size();
                    read_canceller.Cancel();
                    return absl::OkStatus();
                  }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_LT(sunk, bytes.size());
  ASSERT_OK_AND_ASSIGN(auto whole, client_->GetTensor("big@r1/t"));
  EXPECT_TRUE(whole.second == bytes);
}

TEST_F(ServerE2eTest, ConcurrentPullersAndPutters) {
  std::vector<std::vector<uint8_t>> contents;
  for (int i = 0; i < 6; ++i) {
    contents.push_back(RandomBytes(2 * kMiB + 333 * i, 50 + i));
    ASSERT_OK(Put("shared@v1/t" + std::to_string(i), "U8",
                  {static_cast<int64_t>(contents.back().size())},
                  contents.back())
                  .status());
  }
  ASSERT_OK(client_->PublishRevision("shared@v1").status());
  std::atomic<int> wrong{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 4; ++round) {
        std::vector<std::vector<uint8_t>> memory(6);
        PullCallbacks callbacks;
        callbacks.allocate = [&](const v1::TensorInfo& info)
            -> absl::StatusOr<std::span<uint8_t>> {
          int index = std::stoi(info.tensor().substr(1));
          memory[index].resize(info.byte_length());
          return std::span<uint8_t>(memory[index]);
        };
        PullOptions options;
        options.streams = 1 + (t + round) % 3;
        absl::StatusOr<PullResult> result =
            client_->PullModel("shared", options, callbacks);
        if (!result.ok()) {
          ++errors;
          continue;
        }
        for (int i = 0; i < 6; ++i) {
          if (memory[i] != contents[i]) ++wrong;
        }
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        std::vector<uint8_t> bytes = RandomBytes(kMiB + round, 100 * t + round);
        std::string name =
            "writer" + std::to_string(t) + "@r" + std::to_string(round) + "/w";
        if (!Put(name, "U8", {static_cast<int64_t>(bytes.size())}, bytes)
                 .ok()) {
          ++errors;
          continue;
        }
        absl::StatusOr<std::pair<v1::TensorInfo, std::vector<uint8_t>>> got =
            client_->GetTensor(name);
        if (!got.ok()) {
          ++errors;
        } else if (got->second != bytes) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
}

TEST_F(ServerE2eTest, ReadersSeeAPublishAllOrNothing) {
  for (const char* revision : {"v1", "v2"}) {
    for (int i = 0; i < 5; ++i) {
      std::vector<uint8_t> bytes(4096, revision[1]);
      ASSERT_OK(
          Put(std::string("atomic@") + revision + "/t" + std::to_string(i),
              "U8", {4096}, bytes)
              .status());
    }
  }
  ASSERT_OK(client_->PublishRevision("atomic@v1").status());
  std::atomic<bool> stop{false};
  std::atomic<int> mixed{0}, reads{0};
  std::thread reader([&] {
    for (int i = 0; i < 100000 && !stop; ++i) {
      absl::StatusOr<v1::Revision> manifest = client_->GetRevision("atomic");
      if (!manifest.ok()) {
        ++mixed;
        continue;
      }
      ++reads;
      if (manifest->tensors_size() != 5) ++mixed;
      char expected = manifest->revision()[1];
      for (const v1::TensorInfo& info : manifest->tensors()) {
        if (info.revision()[1] != expected) ++mixed;
      }
    }
  });
  // Publish only once the reader is reading (bounded wait).
  for (int i = 0; i < 2000 && reads.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_OK(client_->PublishRevision("atomic@v2").status());
  int reads_at_publish = reads.load();
  for (int i = 0; i < 2000 && reads.load() < reads_at_publish + 5; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_GT(reads.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor("atomic/t0"));
  EXPECT_EQ(got.second[0], '2');
}

TEST_F(ServerE2eTest, BadInputGetsItsCodeAndTheServerKeepsServing) {
  std::vector<uint8_t> four = RandomBytes(4, 1);
  using Code = absl::StatusCode;
  EXPECT_THAT(Put("no-revision/t", "F32", {1}, four),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Put("m@v1/../x", "F32", {1}, four),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Put("m@v1/t", "F128", {1}, four),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Put("m@v1/t", "F32", {2}, four),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Put("m@v1/t", "F32", {-1}, four),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(Put("m@v1/t", "F32", {int64_t{1} << 40, int64_t{1} << 40}, four),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(client_->GetTensor("m@v1/missing"), StatusIs(Code::kNotFound));
  EXPECT_THAT(client_->GetTensor("nomodel/t"), StatusIs(Code::kNotFound));
  GetOptions encoding;
  encoding.encoding = "q9_9";
  ASSERT_OK(Put("m@v1/t", "F32", {1}, four).status());
  EXPECT_THAT(client_->GetTensor("m@v1/t", encoding),
              StatusIs(Code::kInvalidArgument));
  ASSERT_OK(client_->PublishRevision("m@v1").status());
  EXPECT_THAT(Put("m@v1/t2", "F32", {1}, four),
              StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(client_->DeleteTensor("m@v1/t"),
              StatusIs(Code::kFailedPrecondition));
  EXPECT_THAT(client_->CreateRevision("m@v1"), StatusIs(Code::kAlreadyExists));
  EXPECT_THAT(client_->DropCache(v1::TIER_COLD),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(client_->Prefetch("m@v1", v1::TIER_UNSPECIFIED),
              StatusIs(Code::kInvalidArgument));
  EXPECT_THAT(client_->Unpin("m@v1"), StatusIs(Code::kNotFound));
  // Still serving, and nothing partial was stored.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TensorInfo> tensors,
                       client_->ListTensors("m@v1"));
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors[0].tensor(), "t");
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus status, client_->GetServerStatus());
  EXPECT_EQ(status.tiers_size(), 3);
}

TEST_F(ServerE2eTest, StatusReportsTiersAndDropCacheIsolatesThem) {
  std::vector<uint8_t> bytes = RandomBytes(4 * kMiB, 9);
  ASSERT_OK(Put("m@v1/w", "U8", {4 * int64_t{kMiB}}, bytes).status());
  ASSERT_OK_AND_ASSIGN(v1::PrefetchResponse prefetched,
                       client_->Prefetch("m@v1", v1::TIER_NVME));
  EXPECT_EQ(prefetched.blocks(), 4u);
  ASSERT_OK(client_->DropCache(v1::TIER_DRAM));
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus before, client_->GetServerStatus());
  ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor("m@v1/w"));
  EXPECT_EQ(got.second, bytes);
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus after, client_->GetServerStatus());
  EXPECT_EQ(after.tiers(1).reads_served() - before.tiers(1).reads_served(), 4u);
  EXPECT_EQ(after.tiers(0).reads_served(), before.tiers(0).reads_served());
  EXPECT_FALSE(after.version().empty());
}

}  // namespace
}  // namespace pstore
