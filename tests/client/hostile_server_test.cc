// The client against a broken or hostile server: a fake ParamStore on a
// loopback port answers GetRevision with a one-tensor manifest and
// PullModel/GetTensor with whatever chunks a test gives it, and ReadTensor
// with the reply a test gives it (UNIMPLEMENTED, as a pstored older than
// the call, when none). The real pstore::Client must refuse every chunk or
// reply that does not fit the tensor with DataLoss, and never write outside
// the memory the caller gave it (each destination has guard bytes on both
// sides, checked after the call); a refused ReadTensor reply writes nothing
// at all.
//
// The fake also loses the reply of every call that changes state: it
// applies the change, then answers UNAVAILABLE. The client must not send a
// call that is not idempotent again (the retry would fail where the call
// succeeded), and must retry one that is.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/pstore_client.h"
#include "codec/hash.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "pstore/v1/pstore.grpc.pb.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;

constexpr uint64_t kTensorBytes = 64;
constexpr char kModel[] = "m@v1";
constexpr char kTensor[] = "m@v1/t";

std::string AsString(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

uint64_t Hash(const std::string& bytes) {
  return Xxh3_64(bytes.data(), bytes.size());
}

// The bytes of the one tensor the fake serves.
const std::string& TensorBytes() {
  static const std::string* bytes =
      new std::string(AsString(testing::RandomBytes(kTensorBytes, 7)));
  return *bytes;
}

// Returns the info of the tensor as the fake's manifest and first chunks
// give it: U8 of kTensorBytes elements, raw.
v1::TensorInfo Info() {
  v1::TensorInfo info;
  info.set_name(kTensor);
  info.set_model("m");
  info.set_revision("v1");
  info.set_tensor("t");
  info.set_dtype("U8");
  info.add_shape(kTensorBytes);
  info.set_stored_byte_length(kTensorBytes);
  info.set_stored_xxh3_64(Hash(TensorBytes()));
  info.set_encoding("raw");
  info.set_byte_length(kTensorBytes);
  info.set_offset(0);
  info.set_xxh3_64(Hash(TensorBytes()));
  return info;
}

v1::Revision Manifest() {
  v1::Revision revision;
  revision.set_name(kModel);
  revision.set_model("m");
  revision.set_revision("v1");
  revision.set_published(true);
  revision.set_latest(true);
  *revision.add_tensors() = Info();
  revision.set_total_bytes(kTensorBytes);
  return revision;
}

// Returns a chunk of `data` at `offset`, hashed as a server hashes it; the
// first of its part carries `info`, the last the hash of the part.
v1::TensorChunk Chunk(uint64_t offset, const std::string& data,
                      const v1::TensorInfo* info, bool last,
                      const std::string& part) {
  v1::TensorChunk chunk;
  if (info != nullptr) *chunk.mutable_info() = *info;
  chunk.set_offset(offset);
  chunk.set_data(data);
  chunk.set_xxh3_64(Hash(data));
  chunk.set_tensor_index(0);
  if (last) {
    chunk.set_last(true);
    chunk.set_xxh3_64_of_all(Hash(part));
  }
  return chunk;
}

// Returns the whole tensor as one well-formed chunk.
v1::TensorChunk WholeChunk() {
  v1::TensorInfo info = Info();
  return Chunk(0, TensorBytes(), &info, /*last=*/true, TensorBytes());
}

// A ParamStore that sends what it is given, checking nothing. Tests set the
// chunks before the server starts; handlers only read them.
class FakeParamStore final : public v1::ParamStore::Service {
 public:
  grpc::Status GetRevision(grpc::ServerContext* /*context*/,
                           const v1::GetRevisionRequest* /*request*/,
                           v1::Revision* response) override {
    *response = Manifest();
    if (!manifest_hashes) response->mutable_tensors(0)->clear_xxh3_64();
    return grpc::Status::OK;
  }

  grpc::Status PullModel(grpc::ServerContext* context,
                         const v1::PullModelRequest* /*request*/,
                         grpc::ServerWriter<v1::TensorChunk>* writer) override {
    if (pull_stalls) {
      // Sends nothing until the client goes away (or 60 s pass).
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!context->IsCancelled() &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return grpc::Status(grpc::StatusCode::CANCELLED, "fake: stalled");
    }
    if (pull_calls.fetch_add(1) == 0 && first_pull_fails_after >= 0) {
      std::vector<v1::TensorChunk> first(
          pull_chunks.begin(), pull_chunks.begin() + first_pull_fails_after);
      (void)Send(first, writer);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake: cut");
    }
    return Send(pull_chunks, writer);
  }

  grpc::Status GetTensor(grpc::ServerContext* /*context*/,
                         const v1::GetTensorRequest* /*request*/,
                         grpc::ServerWriter<v1::TensorChunk>* writer) override {
    get_calls.fetch_add(1);
    return Send(get_chunks, writer);
  }

  grpc::Status ReadTensor(grpc::ServerContext* /*context*/,
                          const v1::GetTensorRequest* /*request*/,
                          v1::TensorChunk* response) override {
    const int call = read_calls.fetch_add(1);
    if (!read_reply.has_value()) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "fake: old server");
    }
    if (call < read_failures) {
      return grpc::Status(read_failure, "fake: read refused");
    }
    *response = *read_reply;
    return grpc::Status::OK;
  }

  // The calls that change state. Each applies its change to the names
  // below and then answers UNAVAILABLE, as when the reply is lost on the
  // way; the same call again gets what pstored would answer then.
  grpc::Status CreateRevision(grpc::ServerContext* /*context*/,
                              const v1::CreateRevisionRequest* request,
                              v1::Revision* /*response*/) override {
    return Apply("CreateRevision", revisions, request->name(), /*add=*/true);
  }
  grpc::Status DeleteRevision(
      grpc::ServerContext* /*context*/,
      const v1::DeleteRevisionRequest* request,
      v1::DeleteRevisionResponse* /*response*/) override {
    return Apply("DeleteRevision", revisions, request->name(), /*add=*/false);
  }
  grpc::Status DeleteTensor(grpc::ServerContext* /*context*/,
                            const v1::DeleteTensorRequest* request,
                            v1::DeleteTensorResponse* /*response*/) override {
    return Apply("DeleteTensor", tensors, request->name(), /*add=*/false);
  }
  grpc::Status Pin(grpc::ServerContext* /*context*/,
                   const v1::PinRequest* request,
                   v1::PinResponse* /*response*/) override {
    return Apply("Pin", pins, request->name(), /*add=*/true);
  }
  grpc::Status Unpin(grpc::ServerContext* /*context*/,
                     const v1::UnpinRequest* request,
                     v1::UnpinResponse* /*response*/) override {
    return Apply("Unpin", pins, request->name(), /*add=*/false);
  }
  // Idempotent: publishing a published revision is OK.
  grpc::Status PublishRevision(grpc::ServerContext* /*context*/,
                               const v1::PublishRevisionRequest* /*request*/,
                               v1::Revision* /*response*/) override {
    std::lock_guard<std::mutex> lock(mu);
    ++calls["PublishRevision"];
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake: reply lost");
  }

  // Returns how many times `method` was called.
  int Calls(const std::string& method) {
    std::lock_guard<std::mutex> lock(mu);
    return calls[method];
  }

  // False: the manifest gives no whole-tensor hash (as for encoded pulls).
  bool manifest_hashes = true;
  // At least 0: the first PullModel sends this many chunks, then fails
  // with UNAVAILABLE (the client retries).
  int first_pull_fails_after = -1;
  // True: PullModel sends nothing and waits for the client to go away.
  bool pull_stalls = false;
  std::vector<v1::TensorChunk> pull_chunks;
  std::vector<v1::TensorChunk> get_chunks;
  // ReadTensor's reply; none: UNIMPLEMENTED. The first `read_failures`
  // calls fail with `read_failure` instead.
  std::optional<v1::TensorChunk> read_reply;
  int read_failures = 0;
  grpc::StatusCode read_failure = grpc::StatusCode::UNAVAILABLE;
  std::atomic<int> pull_calls{0};
  std::atomic<int> get_calls{0};
  std::atomic<int> read_calls{0};
  // What the state-changing calls change; tests may add names before the
  // server starts.
  std::mutex mu;
  std::set<std::string> revisions{kModel};
  std::set<std::string> tensors{kTensor};
  std::set<std::string> pins;
  std::map<std::string, int> calls;

 private:
  // Counts a call of `method`, adds `name` to or removes it from `names`,
  // and answers UNAVAILABLE. ALREADY_EXISTS if it is there to add,
  // NOT_FOUND if it is not there to remove: the answer to a call sent again
  // after its reply was lost.
  grpc::Status Apply(const std::string& method, std::set<std::string>& names,
                     const std::string& name, bool add) {
    std::lock_guard<std::mutex> lock(mu);
    ++calls[method];
    if (add && !names.insert(name).second) {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                          "fake: " + name + " exists");
    }
    if (!add && names.erase(name) == 0) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "fake: no " + name);
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake: reply lost");
  }

  static grpc::Status Send(const std::vector<v1::TensorChunk>& chunks,
                           grpc::ServerWriter<v1::TensorChunk>* writer) {
    for (const v1::TensorChunk& chunk : chunks) {
      // The client cancels once it refuses a chunk: stop there.
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }
};

// Memory for one tensor with kGuardBytes of a pattern on each side.
class GuardedBuffer {
 public:
  static constexpr size_t kGuardBytes = 4096;
  static constexpr uint8_t kPattern = 0xA5;

  explicit GuardedBuffer(size_t size)
      : size_(size), bytes_(size + 2 * kGuardBytes, kPattern) {}

  std::span<uint8_t> inner() { return {bytes_.data() + kGuardBytes, size_}; }
  std::string InnerString() const {
    return std::string(bytes_.begin() + kGuardBytes,
                       bytes_.begin() + kGuardBytes + size_);
  }
  // Returns the number of guard bytes that no longer hold the pattern.
  size_t DamagedGuardBytes() const {
    size_t damaged = 0;
    for (size_t i = 0; i < kGuardBytes; ++i) {
      if (bytes_[i] != kPattern) ++damaged;
      if (bytes_[kGuardBytes + size_ + i] != kPattern) ++damaged;
    }
    return damaged;
  }

 private:
  size_t size_;
  std::vector<uint8_t> bytes_;
};

class HostileServerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) {
      // Bounded: calls still open after the deadline are cancelled.
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::seconds(5));
    }
  }

  // Starts the fake on a free loopback port and connects a client to it
  // that gives up fast: `max_attempts` attempts, 1 ms apart, 10 s per call.
  void Start(int max_attempts = 2) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(port);
    address_ = options.address;
    options.call_timeout = absl::Seconds(10);
    options.max_attempts = max_attempts;
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(1);
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(options));
  }

  // Pulls the model into `buffer`; counts the tensors reported done.
  absl::StatusOr<PullResult> Pull(GuardedBuffer* buffer) {
    PullCallbacks callbacks;
    callbacks.allocate =
        [buffer](
            const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
      if (info.byte_length() != kTensorBytes) {
        return absl::InternalError("allocate asked for the wrong size");
      }
      return buffer->inner();
    };
    callbacks.done = [this](const v1::TensorInfo& /*info*/) { ++done_; };
    return client_->PullModel(kModel, PullOptions(), callbacks);
  }

  // Pulls the model through PullCallbacks::write and read_back into
  // `stored`; counts the bytes read back.
  absl::StatusOr<PullResult> PullThroughWrite(std::string* stored) {
    stored->assign(kTensorBytes, '\0');
    PullCallbacks callbacks;
    callbacks.write = [stored](const v1::TensorInfo& /*info*/, uint64_t offset,
                               std::span<const uint8_t> bytes) {
      if (offset + bytes.size() > stored->size()) {
        return absl::InternalError("write past the tensor");
      }
      std::memcpy(stored->data() + offset, bytes.data(), bytes.size());
      return absl::OkStatus();
    };
    callbacks.read_back = [this, stored](const v1::TensorInfo& /*info*/,
                                         uint64_t offset,
                                         std::span<uint8_t> out) {
      if (offset + out.size() > stored->size()) {
        return absl::InternalError("read back past the tensor");
      }
      std::memcpy(out.data(), stored->data() + offset, out.size());
      read_back_bytes_ += out.size();
      return absl::OkStatus();
    };
    callbacks.done = [this](const v1::TensorInfo& /*info*/) { ++done_; };
    return client_->PullModel(kModel, PullOptions(), callbacks);
  }

  // Runs `pstore-cli pull` of the model into `path` against the fake;
  // returns its wait status.
  int RunCliPull(const std::string& path, pid_t* pid_out = nullptr,
                 bool wait = true) {
    std::string cli = testing::PstoreCliPath();
    pid_t pid = fork();
    if (pid == 0) {
      // Its output goes to `path`.out. One stream: the fake sends the
      // same chunks on every stream.
      int out =
          open((path + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
      }
      execl(cli.c_str(), cli.c_str(), "--addr", address_.c_str(), "pull",
            kModel, path.c_str(), "--streams", "1",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_out != nullptr) *pid_out = pid;
    if (!wait) return 0;
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  }

  // Serves `chunks` as the PullModel stream and pulls: DataLoss on the
  // first attempt (it is not retried), nothing written outside the
  // destination, no tensor reported done.
  void ExpectPullRefused(std::vector<v1::TensorChunk> chunks) {
    fake_.pull_chunks = std::move(chunks);
    Start();
    GuardedBuffer buffer(kTensorBytes);
    EXPECT_THAT(Pull(&buffer), StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
    EXPECT_EQ(done_, 0);
    EXPECT_EQ(fake_.pull_calls.load(), 1);
  }

  // Serves `chunks` as the GetTensor stream and gets: DataLoss on the first
  // attempt, nothing written outside the destination.
  void ExpectGetRefused(std::vector<v1::TensorChunk> chunks) {
    fake_.get_chunks = std::move(chunks);
    Start();
    GuardedBuffer buffer(kTensorBytes);
    EXPECT_THAT(client_->GetTensor(kTensor, buffer.inner()),
                StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
    EXPECT_EQ(fake_.get_calls.load(), 1);
  }

  // Serves `reply` to ReadTensor and gets: DataLoss on the first attempt,
  // not one byte written to the destination, no stream opened.
  void ExpectReadRefused(v1::TensorChunk reply) {
    fake_.read_reply = std::move(reply);
    Start();
    GuardedBuffer buffer(kTensorBytes);
    EXPECT_THAT(client_->GetTensor(kTensor, buffer.inner()),
                StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(buffer.InnerString(),
              std::string(kTensorBytes, GuardedBuffer::kPattern));
    EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
    EXPECT_EQ(fake_.read_calls.load(), 1);
    EXPECT_EQ(fake_.get_calls.load(), 0);
  }

  FakeParamStore fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
  std::string address_;
  int done_ = 0;
  uint64_t read_back_bytes_ = 0;
};

TEST_F(HostileServerTest, PullsAWellFormedStreamFromTheFake) {
  // The control: the fake's chunks are right unless a test spoils them.
  fake_.pull_chunks = {WholeChunk()};
  Start();
  GuardedBuffer buffer(kTensorBytes);
  ASSERT_OK_AND_ASSIGN(PullResult result, Pull(&buffer));
  EXPECT_EQ(result.bytes, kTensorBytes);
  EXPECT_EQ(buffer.InnerString(), TensorBytes());
  EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
  EXPECT_EQ(done_, 1);
}

TEST_F(HostileServerTest, PullRefusesAPartStartingPastTheTensor) {
  // Before the fix the client took this part's offset as where to write,
  // its remaining-bytes count wrapped, and the chunk (whose own offset and
  // hash agree with the part) went 100 bytes past the caller's memory.
  const uint64_t past = kTensorBytes + 100;
  const std::string data = TensorBytes().substr(0, 16);
  v1::TensorInfo info = Info();
  info.set_offset(past);
  ExpectPullRefused({Chunk(past, data, &info, /*last=*/true, data)});
}

TEST_F(HostileServerTest, PullRefusesAChunkThatOverrunsTheTensor) {
  // The part starts in the tensor; its second chunk runs 16 bytes past it.
  const std::string first = TensorBytes().substr(0, 48);
  const std::string second = AsString(testing::RandomBytes(32, 8));
  v1::TensorInfo info = Info();
  ExpectPullRefused({
      Chunk(0, first, &info, /*last=*/false, ""),
      Chunk(48, second, nullptr, /*last=*/true, first + second),
  });
}

TEST_F(HostileServerTest, PullRefusesAFirstChunkLongerThanTheTensor) {
  const std::string data =
      TensorBytes() + AsString(testing::RandomBytes(100, 9));
  v1::TensorInfo info = Info();
  ExpectPullRefused({Chunk(0, data, &info, /*last=*/true, data)});
}

TEST_F(HostileServerTest, PullRefusesAChunkNamingATensorNotInTheManifest) {
  v1::TensorChunk chunk = WholeChunk();
  chunk.set_tensor_index(1);  // The manifest has one tensor: index 0.
  ExpectPullRefused({chunk});
}

TEST_F(HostileServerTest, PullRefusesAChunkWithTheLargestTensorIndex) {
  v1::TensorChunk chunk = WholeChunk();
  chunk.set_tensor_index(std::numeric_limits<uint32_t>::max());
  ExpectPullRefused({chunk});
}

TEST_F(HostileServerTest, GetsAWellFormedStreamFromTheFake) {
  fake_.get_chunks = {WholeChunk()};
  Start();
  GuardedBuffer buffer(kTensorBytes);
  ASSERT_OK_AND_ASSIGN(v1::TensorInfo info,
                       client_->GetTensor(kTensor, buffer.inner()));
  EXPECT_EQ(info.byte_length(), kTensorBytes);
  EXPECT_EQ(buffer.InnerString(), TensorBytes());
  EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
}

TEST_F(HostileServerTest, GetRefusesAStreamWhoseFirstChunkHasNoInfo) {
  v1::TensorChunk chunk = WholeChunk();
  chunk.clear_info();
  ExpectGetRefused({chunk});
}

TEST_F(HostileServerTest, GetRefusesAChunkThatOverrunsTheTensor) {
  const std::string data =
      TensorBytes() + AsString(testing::RandomBytes(100, 10));
  v1::TensorInfo info = Info();
  info.clear_xxh3_64();  // Each chunk is then checked before it is passed on.
  ExpectGetRefused({Chunk(0, data, &info, /*last=*/true, data)});
}

TEST_F(HostileServerTest, PullRefusesAPartSentTwice) {
  // Two parts of the first half, each well-formed on its own: the bytes
  // received add up to the tensor, yet its second half never came. Without
  // a whole-tensor hash only the ranges tell.
  fake_.manifest_hashes = false;
  const std::string half = TensorBytes().substr(0, kTensorBytes / 2);
  v1::TensorInfo info = Info();
  info.clear_xxh3_64();
  info.set_byte_length(kTensorBytes / 2);
  ExpectPullRefused({
      Chunk(0, half, &info, /*last=*/true, half),
      Chunk(0, half, &info, /*last=*/true, half),
  });
}

TEST_F(HostileServerTest, PullRetriesACutStreamAndResendsWhatItHad) {
  // The first attempt delivers half the tensor and fails; the retry sends
  // it all again. The half already received is taken back, not refused as
  // sent twice, and every byte ends up right.
  const std::string first = TensorBytes().substr(0, kTensorBytes / 2);
  const std::string second = TensorBytes().substr(kTensorBytes / 2);
  v1::TensorInfo info = Info();
  fake_.pull_chunks = {
      Chunk(0, first, &info, /*last=*/false, ""),
      Chunk(first.size(), second, nullptr, /*last=*/true, TensorBytes()),
  };
  fake_.first_pull_fails_after = 1;
  Start();
  GuardedBuffer buffer(kTensorBytes);
  ASSERT_OK_AND_ASSIGN(PullResult result, Pull(&buffer));
  EXPECT_EQ(result.bytes, kTensorBytes);
  EXPECT_EQ(buffer.InnerString(), TensorBytes());
  EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
  EXPECT_EQ(done_, 1);
  EXPECT_EQ(fake_.pull_calls.load(), 2);
}

TEST_F(HostileServerTest, SmallGetsFallBackToTheStreamOnAnOldServer) {
  // The fake has no ReadTensor (UNIMPLEMENTED): the client streams, and
  // does not try the call again.
  fake_.get_chunks = {WholeChunk()};
  Start();
  for (int i = 0; i < 3; ++i) {
    GuardedBuffer buffer(kTensorBytes);
    ASSERT_OK(client_->GetTensor(kTensor, buffer.inner()).status());
    EXPECT_EQ(buffer.InnerString(), TensorBytes());
    EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
  }
  ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor(kTensor));
  EXPECT_EQ(AsString(got.second), TensorBytes());
  EXPECT_EQ(fake_.read_calls.load(), 1);
  EXPECT_EQ(fake_.get_calls.load(), 4);
}

TEST_F(HostileServerTest, SmallGetsReadAWellFormedReplyInOneCall) {
  // A ReadTensor reply is the one chunk that carries the whole read.
  fake_.read_reply = WholeChunk();
  Start();
  GuardedBuffer buffer(kTensorBytes);
  ASSERT_OK_AND_ASSIGN(v1::TensorInfo info,
                       client_->GetTensor(kTensor, buffer.inner()));
  EXPECT_EQ(info.xxh3_64(), Hash(TensorBytes()));
  EXPECT_EQ(buffer.InnerString(), TensorBytes());
  EXPECT_EQ(buffer.DamagedGuardBytes(), 0u);
  std::string streamed;
  ASSERT_OK(client_
                ->GetTensorTo(
                    kTensor, GetOptions(),
                    [&](const v1::TensorInfo&, std::span<const uint8_t> bytes) {
                      streamed.append(bytes.begin(), bytes.end());
                      return absl::OkStatus();
                    })
                .status());
  EXPECT_EQ(streamed, TensorBytes());
  EXPECT_EQ(fake_.read_calls.load(), 2);
  EXPECT_EQ(fake_.get_calls.load(), 0);
}

TEST_F(HostileServerTest, SmallGetsRetryAnUnavailableRead) {
  fake_.read_reply = WholeChunk();
  fake_.read_failures = 1;
  Start(/*max_attempts=*/2);
  GuardedBuffer buffer(kTensorBytes);
  ASSERT_OK(client_->GetTensor(kTensor, buffer.inner()).status());
  EXPECT_EQ(buffer.InnerString(), TensorBytes());
  EXPECT_EQ(fake_.read_calls.load(), 2);
  EXPECT_EQ(fake_.get_calls.load(), 0);
}

TEST_F(HostileServerTest, ASmallGetRefusedAsTooLargeIsStreamed) {
  // RESOURCE_EXHAUSTED: the read is over ReadTensor's limit (or the server
  // has no slot); the stream says which.
  fake_.read_reply = WholeChunk();
  fake_.read_failures = 1;
  fake_.read_failure = grpc::StatusCode::RESOURCE_EXHAUSTED;
  fake_.get_chunks = {WholeChunk()};
  Start();
  GuardedBuffer buffer(kTensorBytes);
  ASSERT_OK(client_->GetTensor(kTensor, buffer.inner()).status());
  EXPECT_EQ(buffer.InnerString(), TensorBytes());
  EXPECT_EQ(fake_.read_calls.load(), 1);
  EXPECT_EQ(fake_.get_calls.load(), 1);
}

TEST_F(HostileServerTest, SmallGetRefusesAReplyWhoseBytesWereDamaged) {
  // One byte flipped on the way: every hash still describes the original.
  v1::TensorChunk reply = WholeChunk();
  (*reply.mutable_data())[kTensorBytes / 2] ^= 0x40;
  ExpectReadRefused(reply);
}

TEST_F(HostileServerTest, SmallGetRefusesAReplyHashedAfterTheDamage) {
  // The chunk's hash describes the damaged bytes; the info's, the tensor's.
  v1::TensorChunk reply = WholeChunk();
  (*reply.mutable_data())[0] ^= 0x01;
  reply.set_xxh3_64(Hash(reply.data()));
  reply.set_xxh3_64_of_all(Hash(reply.data()));
  ExpectReadRefused(reply);
}

TEST_F(HostileServerTest, SmallGetRefusesOtherBytesThanThoseThatWerePut) {
  // Every hash of the reply agrees with its bytes, but a whole raw read
  // must hash to what the tensor was put with.
  v1::TensorChunk reply = WholeChunk();
  (*reply.mutable_data())[1] ^= 0x01;
  reply.set_xxh3_64(Hash(reply.data()));
  reply.set_xxh3_64_of_all(Hash(reply.data()));
  reply.mutable_info()->set_xxh3_64(Hash(reply.data()));
  ExpectReadRefused(reply);
}

TEST_F(HostileServerTest, SmallGetRefusesAReplyWithoutInfo) {
  v1::TensorChunk reply = WholeChunk();
  reply.clear_info();
  ExpectReadRefused(reply);
}

TEST_F(HostileServerTest, SmallGetRefusesAReplyWithoutHash) {
  v1::TensorChunk reply = WholeChunk();
  reply.mutable_info()->clear_xxh3_64();
  ExpectReadRefused(reply);
}

TEST_F(HostileServerTest, SmallGetRefusesAShortReply) {
  const std::string half = TensorBytes().substr(0, kTensorBytes / 2);
  v1::TensorInfo info = Info();
  ExpectReadRefused(Chunk(0, half, &info, /*last=*/true, half));
}

TEST_F(HostileServerTest, SmallGetRefusesALongReply) {
  const std::string more =
      TensorBytes() + AsString(testing::RandomBytes(100, 11));
  v1::TensorInfo info = Info();
  ExpectReadRefused(Chunk(0, more, &info, /*last=*/true, more));
}

TEST_F(HostileServerTest, SmallGetRefusesAReplyForAnotherRange) {
  // Well-formed bytes 8..63 of the tensor, for a read of all of it.
  const std::string tail = TensorBytes().substr(8);
  v1::TensorInfo info = Info();
  info.set_offset(8);
  info.set_byte_length(tail.size());
  info.set_xxh3_64(Hash(tail));
  ExpectReadRefused(Chunk(8, tail, &info, /*last=*/true, tail));
}

// A call that is not idempotent is sent once: after a lost reply, sending
// it again would fail (ALREADY_EXISTS, NOT_FOUND) where it succeeded.
// gRPC itself still retries a call that never left the client.
TEST_F(HostileServerTest, CreateRevisionIsSentOnceWhenTheReplyIsLost) {
  Start(/*max_attempts=*/4);
  EXPECT_THAT(client_->CreateRevision("m@v2").status(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(fake_.Calls("CreateRevision"), 1);
}

TEST_F(HostileServerTest, DeleteRevisionIsSentOnceWhenTheReplyIsLost) {
  Start(/*max_attempts=*/4);
  EXPECT_THAT(client_->DeleteRevision(kModel),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(fake_.Calls("DeleteRevision"), 1);
}

TEST_F(HostileServerTest, DeleteTensorIsSentOnceWhenTheReplyIsLost) {
  Start(/*max_attempts=*/4);
  EXPECT_THAT(client_->DeleteTensor(kTensor),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(fake_.Calls("DeleteTensor"), 1);
}

TEST_F(HostileServerTest, PinIsSentOnceWhenTheReplyIsLost) {
  Start(/*max_attempts=*/4);
  EXPECT_THAT(client_->Pin(kModel).status(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(fake_.Calls("Pin"), 1);
}

TEST_F(HostileServerTest, UnpinIsSentOnceWhenTheReplyIsLost) {
  fake_.pins.insert(kModel);
  Start(/*max_attempts=*/4);
  EXPECT_THAT(client_->Unpin(kModel), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(fake_.Calls("Unpin"), 1);
}

TEST_F(HostileServerTest, PublishIsRetriedWhenTheReplyIsLost) {
  // Publishing a published revision is OK: the client may send it again.
  Start(/*max_attempts=*/4);
  EXPECT_THAT(client_->PublishRevision(kModel).status(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(fake_.Calls("PublishRevision"), 4);
}

// Two well-formed parts of the tensor, as two streams would send a tensor
// split between them.
std::vector<v1::TensorChunk> TwoParts(const std::string& bytes) {
  const std::string first = bytes.substr(0, kTensorBytes / 2);
  const std::string second = bytes.substr(kTensorBytes / 2);
  v1::TensorInfo first_info = Info();
  v1::TensorInfo second_info = Info();
  second_info.set_offset(first.size());
  return {Chunk(0, first, &first_info, /*last=*/true, first),
          Chunk(first.size(), second, &second_info, /*last=*/true, second)};
}

TEST_F(HostileServerTest, PullThroughWriteTakesAWholePartByItsHash) {
  fake_.pull_chunks = {WholeChunk()};
  Start();
  std::string stored;
  ASSERT_OK_AND_ASSIGN(PullResult result, PullThroughWrite(&stored));
  EXPECT_EQ(result.bytes, kTensorBytes);
  EXPECT_EQ(stored, TensorBytes());
  EXPECT_EQ(done_, 1);
  // The part's hash, checked as it came, is the tensor's.
  EXPECT_EQ(read_back_bytes_, 0u);
}

TEST_F(HostileServerTest, PullThroughWriteReadsATensorOfTwoPartsBack) {
  fake_.pull_chunks = TwoParts(TensorBytes());
  Start();
  std::string stored;
  ASSERT_OK_AND_ASSIGN(PullResult result, PullThroughWrite(&stored));
  EXPECT_EQ(stored, TensorBytes());
  EXPECT_EQ(done_, 1);
  EXPECT_EQ(read_back_bytes_, kTensorBytes);
}

TEST_F(HostileServerTest, PullThroughWriteRefusesPartsThatAreNotTheTensor) {
  // Each part is well-formed on its own, but the bytes are not the ones
  // the manifest's hash names: only the hash read back tells.
  std::string other = AsString(testing::RandomBytes(kTensorBytes, 11));
  fake_.pull_chunks = TwoParts(other);
  Start();
  std::string stored;
  EXPECT_THAT(PullThroughWrite(&stored), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(done_, 0);
  EXPECT_EQ(read_back_bytes_, kTensorBytes);
}

TEST_F(HostileServerTest, PullThroughWriteRefusesAPartSentTwice) {
  fake_.manifest_hashes = false;
  const std::string half = TensorBytes().substr(0, kTensorBytes / 2);
  v1::TensorInfo info = Info();
  info.clear_xxh3_64();
  fake_.pull_chunks = {Chunk(0, half, &info, /*last=*/true, half),
                       Chunk(0, half, &info, /*last=*/true, half)};
  Start();
  std::string stored;
  EXPECT_THAT(PullThroughWrite(&stored), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(done_, 0);
}

// pstore-cli pull against the fake: a refused pull exits 1 and leaves no
// file; what arrived stays in PATH.tmp, which the next pull checks byte by
// byte (against block ids, or whole where it has none) before it keeps any.
class CliPullTest : public HostileServerTest {
 protected:
  void ExpectCliPullRefused(std::vector<v1::TensorChunk> chunks) {
    fake_.manifest_hashes = false;
    fake_.pull_chunks = std::move(chunks);
    Start();
    const std::string path = dir_.Sub("m.safetensors");
    int status = RunCliPull(path);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
    std::ifstream in(path + ".out");
    std::string out((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
    EXPECT_NE(out.find("DATA_LOSS"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(path));
  }

  testing::TempDir dir_;
};

TEST_F(CliPullTest, PullsAWellFormedStreamIntoAFile) {
  fake_.pull_chunks = TwoParts(TensorBytes());
  Start();
  const std::string path = dir_.Sub("m.safetensors");
  int status = RunCliPull(path);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::string file;
  {
    std::ifstream in(path, std::ios::binary);
    file.assign(std::istreambuf_iterator<char>(in),
                std::istreambuf_iterator<char>());
  }
  ASSERT_GE(file.size(), kTensorBytes);
  EXPECT_EQ(file.substr(file.size() - kTensorBytes), TensorBytes());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_F(CliPullTest, ACorruptedPartLeavesNoFile) {
  // Every chunk hashes right; the part's hash does not.
  std::vector<v1::TensorChunk> chunks = TwoParts(TensorBytes());
  chunks[1].set_xxh3_64_of_all(chunks[1].xxh3_64_of_all() ^ 1);
  ExpectCliPullRefused(chunks);
}

TEST_F(CliPullTest, ADuplicatedPartLeavesNoFile) {
  // The first half twice, before the tensor is complete: its range is
  // claimed already.
  std::vector<v1::TensorChunk> chunks = TwoParts(TensorBytes());
  chunks.insert(chunks.begin() + 1, chunks[0]);
  ExpectCliPullRefused(chunks);
}

// Interrupted, a pull leaves no file but keeps its PATH.tmp for the next.
TEST_F(CliPullTest, AnInterruptedPullLeavesItsTempFileAndNoFile) {
  fake_.pull_stalls = true;
  Start();
  const std::string path = dir_.Sub("m.safetensors");
  pid_t pid = 0;
  RunCliPull(path, &pid, /*wait=*/false);
  ASSERT_GT(pid, 0);
  // The pull has made its PATH.tmp and waits for bytes that never come.
  for (int i = 0; i < 6000 && !std::filesystem::exists(path + ".tmp"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace pstore
