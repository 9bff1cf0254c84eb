// Hostile-input end-to-end test of pstored: a corpus of malformed, abusive
// and limit-breaking requests sent to one real pstored over the real gRPC
// API, with the raw generated stub (and hand-made wire bytes where the
// generated code would not build the message), each with the status code
// the contract in proto/pstore/v1/pstore.proto gives it. A few valid but
// unusual requests (10,000 one-byte chunks, lower-case names of dtypes and
// encodings, one-byte read chunks) run among them and must succeed.
//
// After the corpus the daemon must still serve, and hold exactly the
// tensors the valid requests put, byte for byte: no partial tensor, and no
// block of a refused put left in the cold tier.

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/sync_stream.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/pstore_client.h"
#include "codec/hash.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "pstore/v1/pstore.grpc.pb.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::grpc::StatusCode;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::TempDir;

constexpr uint64_t kBlockBytes = 64 << 10;
constexpr uint64_t kMaxTensorBytes = 64 << 20;
constexpr uint64_t kMaxMessageBytes = 4 << 20;
constexpr int kMaxPutStreams = 4;
constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kMaxU32 = std::numeric_limits<uint32_t>::max();
constexpr int64_t kMinI64 = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

// Returns `size` deterministic pseudo-random bytes.
std::string Bytes(size_t size, uint64_t seed) {
  std::vector<uint8_t> bytes = testing::RandomBytes(size, seed);
  return std::string(bytes.begin(), bytes.end());
}

uint64_t Hash(const std::string& bytes) {
  return Xxh3_64(bytes.data(), bytes.size());
}

std::string CodeName(StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Protobuf wire encoding by hand, for messages the generated code will not
// build cleanly (invalid UTF-8 in string fields) and for garbage.
std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

// A length-delimited field.
std::string Field(int number, absl::string_view payload) {
  return absl::StrCat(Varint(static_cast<uint64_t>(number) << 3 | 2),
                      Varint(payload.size()), payload);
}

// A PutTensorRequest holding a header, as wire bytes.
std::string RawHeader(absl::string_view name, absl::string_view dtype,
                      const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t dim : shape) dims += Varint(static_cast<uint64_t>(dim));
  return Field(1,
               absl::StrCat(Field(1, name), Field(2, dtype), Field(3, dims)));
}

// A PutTensorRequest holding data, as wire bytes.
std::string RawData(absl::string_view data) { return Field(2, data); }

// Bytes that are no protobuf message: a length-delimited field 1 that
// claims 16 bytes and holds 3.
constexpr absl::string_view kGarbage(
    "\x0a\x10"
    "abc",
    5);

v1::PutTensorRequest Header(const std::string& name, const std::string& dtype,
                            const std::vector<int64_t>& shape,
                            std::optional<uint64_t> hash = std::nullopt) {
  v1::PutTensorRequest request;
  v1::PutTensorRequest::Header* header = request.mutable_header();
  header->set_name(name);
  header->set_dtype(dtype);
  header->mutable_shape()->Assign(shape.begin(), shape.end());
  if (hash.has_value()) header->set_xxh3_64(*hash);
  return request;
}

v1::PutTensorRequest Data(const std::string& bytes) {
  v1::PutTensorRequest request;
  request.set_data(bytes);
  return request;
}

// The header and data messages (of at most 1 MiB) of a well-formed put.
std::vector<v1::PutTensorRequest> WholePut(const std::string& name,
                                           const std::string& dtype,
                                           const std::vector<int64_t>& shape,
                                           const std::string& bytes,
                                           std::optional<uint64_t> hash) {
  std::vector<v1::PutTensorRequest> messages = {
      Header(name, dtype, shape, hash)};
  for (size_t offset = 0; offset < bytes.size(); offset += 1 << 20) {
    messages.push_back(Data(bytes.substr(offset, 1 << 20)));
  }
  return messages;
}

// How a put stream ends after its messages.
enum class PutEnd {
  kWritesDone,  // Half-close: the client is done.
  kCancel,      // ClientContext::TryCancel.
  kNothing,     // Neither: the call runs until its deadline.
};

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

struct Case {
  std::string name;
  std::function<grpc::Status()> send;
  StatusCode expected;
};

struct Outcome {
  std::string name;
  StatusCode expected;
  StatusCode actual;
  std::string message;
};

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PstoredProcess>(
        dir_.Sub("data"),
        std::vector<std::string>{
            absl::StrCat("--max_tensor_bytes=", kMaxTensorBytes),
            absl::StrCat("--max_message_bytes=", kMaxMessageBytes),
            absl::StrCat("--block_bytes=", kBlockBytes),
            absl::StrCat("--max_put_streams=", kMaxPutStreams)});
    ASSERT_OK(server_->Start());
    grpc::ChannelArguments args;
    // Send what the server must refuse: no client-side size limit.
    args.SetMaxSendMessageSize(-1);
    args.SetMaxReceiveMessageSize(-1);
    http_ =
        std::make_unique<httplib::Client>("127.0.0.1", server_->metrics_port());
    channel_ = grpc::CreateCustomChannel(
        server_->address(), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::ParamStore::NewStub(channel_);
  }

  static void SetDeadline(grpc::ClientContext* context,
                          absl::Duration timeout = absl::Seconds(60)) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(timeout));
  }

  // Runs one unary call of the stub with a fresh context.
  grpc::Status Call(
      const std::function<grpc::Status(grpc::ClientContext*)>& call) {
    grpc::ClientContext context;
    SetDeadline(&context);
    return call(&context);
  }

  // Returns pstored's count of put streams in flight, from /metrics; -1 if
  // it cannot be read.
  int PutStreamsInFlight() {
    httplib::Result result = http_->Get("/metrics");
    if (!result || result->status != 200) return -1;
    const std::string gauge = "pstore_streams_in_flight{kind=\"put\"} ";
    size_t at = result->body.find(gauge);
    if (at == std::string::npos) return -1;
    return std::atoi(result->body.c_str() + at + gauge.size());
  }

  // Waits until pstored serves no put stream. A put counts against
  // --max_put_streams until the server is done with it, which may be a
  // little after the client has its status (and, for a put the client
  // cancelled, after the server has aborted it): each case starts from an
  // idle server, so that one case's put is never refused for another's.
  void WaitForNoPutStreams() {
    for (int i = 0; i < 2000; ++i) {
      if (PutStreamsInFlight() == 0) return;
      absl::SleepFor(absl::Milliseconds(5));
    }
    ADD_FAILURE() << "pstored still counts " << PutStreamsInFlight()
                  << " put streams in flight after 10 s with none open";
  }

  // Sends `messages` on one PutTensor stream, ends it as `end` says and
  // returns the call's status. Stops writing once the stream is broken
  // (the server answered early).
  grpc::Status StreamPut(const std::vector<v1::PutTensorRequest>& messages,
                         PutEnd end = PutEnd::kWritesDone,
                         absl::Duration timeout = absl::Seconds(60)) {
    grpc::ClientContext context;
    SetDeadline(&context, timeout);
    v1::TensorInfo response;
    std::unique_ptr<grpc::ClientWriter<v1::PutTensorRequest>> writer =
        stub_->PutTensor(&context, &response);
    bool open = true;
    for (const v1::PutTensorRequest& message : messages) {
      if (!writer->Write(message)) {
        open = false;
        break;
      }
    }
    if (end == PutEnd::kWritesDone && open) {
      // False only when the server has answered already; Finish says how.
      (void)writer->WritesDone();
    } else if (end == PutEnd::kCancel) {
      context.TryCancel();
    }
    return writer->Finish();
  }

  // As StreamPut, once the server serves no other put.
  grpc::Status SendPut(const std::vector<v1::PutTensorRequest>& messages,
                       PutEnd end = PutEnd::kWritesDone,
                       absl::Duration timeout = absl::Seconds(60)) {
    WaitForNoPutStreams();
    return StreamPut(messages, end, timeout);
  }

  // As SendPut, with each message given as wire bytes. The raw calls use
  // the grpc::internal factories the generated stubs are made of: the
  // public GenericStub has no synchronous streaming calls.
  grpc::Status SendRawPut(const std::vector<std::string>& frames) {
    WaitForNoPutStreams();
    grpc::ClientContext context;
    SetDeadline(&context);
    grpc::ByteBuffer response;
    grpc::internal::RpcMethod method(
        "/pstore.v1.ParamStore/PutTensor",
        grpc::internal::RpcMethod::CLIENT_STREAMING);
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
            channel_.get(), method, &context, &response));
    bool open = true;
    for (const std::string& frame : frames) {
      if (!writer->Write(Buffer(frame))) {
        open = false;
        break;
      }
    }
    // False only when the server has answered already; Finish says how.
    if (open) (void)writer->WritesDone();
    return writer->Finish();
  }

  // Calls unary `method` with `request` as its wire bytes.
  grpc::Status SendRawUnary(const char* method, const std::string& request) {
    grpc::ClientContext context;
    SetDeadline(&context);
    grpc::ByteBuffer response;
    return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer,
                                             grpc::ByteBuffer>(
        channel_.get(),
        grpc::internal::RpcMethod(method,
                                  grpc::internal::RpcMethod::NORMAL_RPC),
        &context, Buffer(request), &response);
  }

  // Calls server-streaming `method` with `request` as its wire bytes and
  // drains the stream.
  grpc::Status SendRawStreaming(const char* method,
                                const std::string& request) {
    grpc::ClientContext context;
    SetDeadline(&context);
    std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
        grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
            channel_.get(),
            grpc::internal::RpcMethod(
                method, grpc::internal::RpcMethod::SERVER_STREAMING),
            &context, Buffer(request)));
    grpc::ByteBuffer chunk;
    while (reader->Read(&chunk)) {
    }
    return reader->Finish();
  }

  // Reads with GetTensor; the data of every chunk goes to `bytes`.
  grpc::Status Get(const v1::GetTensorRequest& request,
                   std::string* bytes = nullptr) {
    grpc::ClientContext context;
    SetDeadline(&context);
    std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
        stub_->GetTensor(&context, request);
    v1::TensorChunk chunk;
    std::string received;
    while (reader->Read(&chunk)) received += chunk.data();
    grpc::Status status = reader->Finish();
    if (bytes != nullptr) *bytes = std::move(received);
    return status;
  }

  grpc::Status Get(const std::string& name, const std::string& encoding,
                   uint64_t offset = 0, uint64_t length = 0,
                   uint32_t max_chunk_bytes = 0) {
    v1::GetTensorRequest request;
    request.set_name(name);
    request.set_encoding(encoding);
    request.set_offset(offset);
    request.set_length(length);
    request.set_max_chunk_bytes(max_chunk_bytes);
    return Get(request);
  }

  // Reads with ReadTensor; the reply's data goes to `bytes`.
  grpc::Status Read(const std::string& name, const std::string& encoding,
                    uint64_t offset = 0, uint64_t length = 0,
                    uint32_t max_chunk_bytes = 0,
                    std::string* bytes = nullptr) {
    v1::GetTensorRequest request;
    request.set_name(name);
    request.set_encoding(encoding);
    request.set_offset(offset);
    request.set_length(length);
    request.set_max_chunk_bytes(max_chunk_bytes);
    v1::TensorChunk reply;
    grpc::Status status = Call([&](grpc::ClientContext* context) {
      return stub_->ReadTensor(context, request, &reply);
    });
    if (bytes != nullptr) *bytes = reply.data();
    return status;
  }

  // Reads `name` (bytes [offset, offset + length)) with ReadTensor and
  // checks the bytes against what was put: DATA_LOSS if they differ.
  grpc::Status ReadBack(const std::string& name, uint64_t offset,
                        uint64_t length, uint32_t max_chunk_bytes = 0) {
    std::string bytes;
    grpc::Status status =
        Read(name, "", offset, length, max_chunk_bytes, &bytes);
    if (status.ok() && bytes != stored_.at(name).substr(offset, length)) {
      return grpc::Status(StatusCode::DATA_LOSS, "bytes differ");
    }
    return status;
  }

  grpc::Status Pull(const std::string& name, uint32_t shard_index,
                    uint32_t shard_count, const std::string& encoding = "",
                    uint32_t max_chunk_bytes = 0) {
    v1::PullModelRequest request;
    request.set_name(name);
    request.set_shard_index(shard_index);
    request.set_shard_count(shard_count);
    request.set_encoding(encoding);
    request.set_max_chunk_bytes(max_chunk_bytes);
    grpc::ClientContext context;
    SetDeadline(&context);
    std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
        stub_->PullModel(&context, request);
    v1::TensorChunk chunk;
    while (reader->Read(&chunk)) {
    }
    return reader->Finish();
  }

  grpc::Status List(const std::string& revision, int32_t page_size,
                    const std::string& prefix = "",
                    const std::string& page_token = "") {
    v1::ListTensorsRequest request;
    request.set_revision(revision);
    request.set_page_size(page_size);
    request.set_prefix(prefix);
    request.set_page_token(page_token);
    v1::ListTensorsResponse response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->ListTensors(context, request, &response);
    });
  }

  grpc::Status Stat(const std::string& name, v1::TensorInfo* info = nullptr) {
    v1::StatTensorRequest request;
    request.set_name(name);
    v1::TensorInfo response;
    grpc::Status status = Call([&](grpc::ClientContext* context) {
      return stub_->StatTensor(context, request, &response);
    });
    if (info != nullptr) *info = response;
    return status;
  }

  grpc::Status DeleteTensor(const std::string& name) {
    v1::DeleteTensorRequest request;
    request.set_name(name);
    v1::DeleteTensorResponse response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->DeleteTensor(context, request, &response);
    });
  }

  grpc::Status CreateRevision(
      const std::string& name,
      const std::map<std::string, std::string>& metadata = {}) {
    v1::CreateRevisionRequest request;
    request.set_name(name);
    request.mutable_metadata()->insert(metadata.begin(), metadata.end());
    v1::Revision response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->CreateRevision(context, request, &response);
    });
  }

  grpc::Status Publish(const std::string& name) {
    v1::PublishRevisionRequest request;
    request.set_name(name);
    v1::Revision response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->PublishRevision(context, request, &response);
    });
  }

  grpc::Status DeleteRevision(const std::string& name) {
    v1::DeleteRevisionRequest request;
    request.set_name(name);
    v1::DeleteRevisionResponse response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->DeleteRevision(context, request, &response);
    });
  }

  grpc::Status GetRevision(const std::string& name,
                           v1::Revision* revision = nullptr) {
    v1::GetRevisionRequest request;
    request.set_name(name);
    v1::Revision response;
    grpc::Status status = Call([&](grpc::ClientContext* context) {
      return stub_->GetRevision(context, request, &response);
    });
    if (revision != nullptr) *revision = response;
    return status;
  }

  grpc::Status Pin(const std::string& name) {
    v1::PinRequest request;
    request.set_name(name);
    v1::PinResponse response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->Pin(context, request, &response);
    });
  }

  grpc::Status Unpin(const std::string& name) {
    v1::UnpinRequest request;
    request.set_name(name);
    v1::UnpinResponse response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->Unpin(context, request, &response);
    });
  }

  grpc::Status Prefetch(const std::string& name, int tier) {
    v1::PrefetchRequest request;
    request.set_name(name);
    request.set_tier(static_cast<v1::Tier>(tier));
    v1::PrefetchResponse response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->Prefetch(context, request, &response);
    });
  }

  grpc::Status DropCache(int tier) {
    v1::DropCacheRequest request;
    request.set_tier(static_cast<v1::Tier>(tier));
    v1::DropCacheResponse response;
    return Call([&](grpc::ClientContext* context) {
      return stub_->DropCache(context, request, &response);
    });
  }

  grpc::Status Verify(const std::string& name,
                      v1::VerifyResponse* report = nullptr) {
    v1::VerifyRequest request;
    request.set_name(name);
    v1::VerifyResponse response;
    grpc::Status status = Call([&](grpc::ClientContext* context) {
      return stub_->Verify(context, request, &response);
    });
    if (report != nullptr) *report = response;
    return status;
  }

  grpc::Status ServerStatus(v1::ServerStatus* out) {
    v1::GetServerStatusRequest request;
    return Call([&](grpc::ClientContext* context) {
      return stub_->GetServerStatus(context, request, out);
    });
  }

  // Puts a tensor that must be stored, and remembers its bytes.
  void PutValid(const std::string& name, const std::string& dtype,
                const std::vector<int64_t>& shape, const std::string& bytes) {
    grpc::Status status =
        SendPut(WholePut(name, dtype, shape, bytes, Hash(bytes)));
    ASSERT_TRUE(status.ok()) << name << ": " << status.error_message();
    stored_[name] = bytes;
  }

  // A put that is valid but unusual: remembered when the server takes it.
  grpc::Status PutUnusual(const std::string& name,
                          const std::vector<v1::PutTensorRequest>& messages,
                          const std::string& bytes) {
    grpc::Status status = SendPut(messages);
    if (status.ok()) stored_[name] = bytes;
    return status;
  }

  // Holds kMaxPutStreams puts open, then opens one more: the server must
  // refuse it. Returns the status of that extra put.
  grpc::Status PutPastStreamLimit() {
    WaitForNoPutStreams();
    struct Held {
      grpc::ClientContext context;
      v1::TensorInfo response;
      std::unique_ptr<grpc::ClientWriter<v1::PutTensorRequest>> writer;
    };
    std::vector<std::unique_ptr<Held>> held;
    for (int i = 0; i < kMaxPutStreams; ++i) {
      auto put = std::make_unique<Held>();
      SetDeadline(&put->context);
      put->writer = stub_->PutTensor(&put->context, &put->response);
      (void)put->writer->Write(
          Header(absl::StrCat("open@v1/held", i), "U8", {16}));
      held.push_back(std::move(put));
    }
    // The server counts a put from the moment its call arrives.
    for (int i = 0; i < 2000 && PutStreamsInFlight() < kMaxPutStreams; ++i) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    // Sends nothing: INVALID_ARGUMENT if admitted.
    grpc::Status extra = StreamPut({});
    for (std::unique_ptr<Held>& put : held) {
      put->context.TryCancel();
      (void)put->writer->Finish();  // CANCELLED, as asked.
    }
    return extra;
  }

  // Starts a put into an open revision, publishes the revision half-way,
  // then sends the rest: the put must not land in the published revision.
  grpc::Status PublishDuringPut() {
    if (grpc::Status created = CreateRevision("race@v1"); !created.ok()) {
      return created;
    }
    std::string bytes = Bytes(3 * kBlockBytes, 901);
    WaitForNoPutStreams();
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::TensorInfo response;
    std::unique_ptr<grpc::ClientWriter<v1::PutTensorRequest>> writer =
        stub_->PutTensor(&context, &response);
    bool open = writer->Write(Header(
        "race@v1/t", "U8", {static_cast<int64_t>(bytes.size())}, Hash(bytes)));
    open = open && writer->Write(Data(bytes.substr(0, 2 * kBlockBytes)));
    grpc::Status published = Publish("race@v1");
    if (!published.ok()) {
      context.TryCancel();
      (void)writer->Finish();
      return published;
    }
    open = open && writer->Write(Data(bytes.substr(2 * kBlockBytes)));
    if (open) (void)writer->WritesDone();
    return writer->Finish();
  }

  // Returns the corpus. Puts that pass validation name open@v1 (an open
  // revision the setup made) so that a refused one leaves no revision
  // behind either; puts refused at the header name hostile@v1.
  std::vector<Case> Corpus();

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
  std::unique_ptr<httplib::Client> http_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ParamStore::Stub> stub_;
  // "MODEL@REV/TENSOR" -> bytes of every tensor a valid request stored.
  std::map<std::string, std::string> stored_;
};

std::vector<Case> HostileInputTest::Corpus() {
  constexpr StatusCode kOk = StatusCode::OK;
  constexpr StatusCode kInvalid = StatusCode::INVALID_ARGUMENT;
  constexpr StatusCode kOutOfRange = StatusCode::OUT_OF_RANGE;
  constexpr StatusCode kNotFound = StatusCode::NOT_FOUND;
  constexpr StatusCode kFailedPrecondition = StatusCode::FAILED_PRECONDITION;
  constexpr StatusCode kAlreadyExists = StatusCode::ALREADY_EXISTS;
  constexpr StatusCode kDataLoss = StatusCode::DATA_LOSS;
  constexpr StatusCode kExhausted = StatusCode::RESOURCE_EXHAUSTED;

  // A put of a 16-byte U8 tensor named `name`, refused (or not) at the
  // header.
  auto put_named = [this](const std::string& name) {
    return [this, name] {
      std::string bytes = Bytes(16, 1);
      return SendPut(WholePut(name, "U8", {16}, bytes, Hash(bytes)));
    };
  };
  // A header with `dtype` and `shape` and no data, refused at the header.
  auto put_shaped = [this](const std::string& dtype,
                           const std::vector<int64_t>& shape) {
    return [this, dtype, shape] {
      return SendPut({Header("hostile@v1/t", dtype, shape)});
    };
  };
  auto raw_put_named = [this](const std::string& name) {
    return [this, name] {
      return SendRawPut({RawHeader(name, "U8", {16}), RawData(Bytes(16, 1))});
    };
  };

  const std::string four_blocks = Bytes(4 * kBlockBytes, 101);
  const std::string shared = stored_.at("open@v1/shared");
  std::vector<Case> cases = {
      // --- PutTensor: the shape of the stream ---
      {"put: no messages, then WritesDone", [this] { return SendPut({}); },
       kInvalid},
      {"put: data before any header",
       [this] {
         return SendPut({Data("abcd"), Header("open@v1/x", "U8", {4})});
       },
       kInvalid},
      {"put: empty message (neither header nor data) first",
       [this] { return SendPut({v1::PutTensorRequest()}); }, kInvalid},
      {"put: empty message after the header",
       [this] {
         return SendPut({Header("open@v1/x", "U8", {4}), v1::PutTensorRequest(),
                         Data("abcd")});
       },
       kInvalid},
      {"put: header twice",
       [this] {
         return SendPut({Header("open@v1/x", "U8", {4}),
                         Header("open@v1/x", "U8", {4}), Data("abcd")});
       },
       kInvalid},
      {"put: second header after data",
       [this] {
         return SendPut({Header("open@v1/x", "U8", {8}), Data("abcd"),
                         Header("open@v1/x", "U8", {4})});
       },
       kInvalid},
      {"put: one chunk longer than the tensor",
       [this] {
         return SendPut({Header("open@v1/x", "U8", {16}), Data(Bytes(17, 2))});
       },
       kInvalid},
      {"put: chunks that add up past the declared length",
       [this] {
         return SendPut({Header("open@v1/x", "U8", {100}), Data(Bytes(60, 3)),
                         Data(Bytes(60, 4))});
       },
       kInvalid},
      {"put: 3 blocks + 1 byte of a 4-block tensor, then WritesDone",
       [this, four_blocks] {
         return SendPut({Header("open@v1/x", "U8",
                                {static_cast<int64_t>(four_blocks.size())}),
                         Data(four_blocks.substr(0, 3 * kBlockBytes + 1))});
       },
       kInvalid},
      {"put: header of 16 bytes, no data",
       [this] { return SendPut({Header("open@v1/x", "U8", {16})}); }, kInvalid},
      {"put: one byte for an empty [0] tensor",
       [this] {
         return SendPut({Header("open@v1/x", "U8", {0}), Data("z")});
       },
       kInvalid},
      {"put: F32 [4] with 4 bytes (dtype/size mismatch)",
       [this] {
         return SendPut({Header("open@v1/x", "F32", {4}), Data(Bytes(4, 5))});
       },
       kInvalid},
      {"put: F16 [3] with 7 bytes (a partial element)",
       [this] {
         return SendPut({Header("open@v1/x", "F16", {3}), Data(Bytes(7, 6))});
       },
       kInvalid},
      {"put: wrong whole-tensor xxh3_64 (4 blocks)",
       [this, four_blocks] {
         return SendPut(WholePut("open@v1/x", "U8",
                                 {static_cast<int64_t>(four_blocks.size())},
                                 four_blocks, Hash(four_blocks) + 1));
       },
       kDataLoss},
      {"put: xxh3_64 explicitly 0",
       [this] {
         std::string bytes = Bytes(1000, 7);
         return SendPut(WholePut("open@v1/x", "U8", {1000}, bytes, 0));
       },
       kDataLoss},
      {"put: overwrite of a stored tensor with a wrong hash",
       [this] {
         std::string bytes = Bytes(3 * kBlockBytes, 8);
         return SendPut(WholePut("open@v1/shared", "U8",
                                 {static_cast<int64_t>(bytes.size())}, bytes,
                                 Hash(bytes) ^ 1));
       },
       kDataLoss},
      {"put: too few bytes, its blocks shared with a stored tensor",
       [this, shared] {
         return SendPut({Header("open@v1/x", "U8",
                                {static_cast<int64_t>(shared.size() + 1)}),
                         Data(shared)});
       },
       kInvalid},
      {"put: cancelled mid-stream (TryCancel)",
       [this, four_blocks] {
         return SendPut({Header("open@v1/cancelled", "U8",
                                {static_cast<int64_t>(four_blocks.size())}),
                         Data(four_blocks.substr(0, 2 * kBlockBytes))},
                        PutEnd::kCancel);
       },
       StatusCode::CANCELLED},
      {"put: every byte sent, then cancelled instead of WritesDone",
       [this, four_blocks] {
         return SendPut(WholePut("open@v1/cancelled_whole", "U8",
                                 {static_cast<int64_t>(four_blocks.size())},
                                 four_blocks, Hash(four_blocks)),
                        PutEnd::kCancel);
       },
       StatusCode::CANCELLED},
      {"put: stream left open past its deadline",
       [this, four_blocks] {
         return SendPut({Header("open@v1/timed_out", "U8",
                                {static_cast<int64_t>(four_blocks.size())}),
                         Data(four_blocks.substr(0, kBlockBytes))},
                        PutEnd::kNothing, absl::Milliseconds(500));
       },
       StatusCode::DEADLINE_EXCEEDED},
      {"put: one 5 MiB data message (over --max_message_bytes)",
       [this] {
         std::string bytes = Bytes(5 << 20, 9);
         return SendPut(
             {Header("open@v1/x", "U8", {5 << 20}, Hash(bytes)), Data(bytes)});
       },
       kExhausted},
      {"put: 5 MiB header (name)",
       [this] {
         return SendPut(
             {Header("open@v1/" + std::string(5 << 20, 'n'), "U8", {16})});
       },
       kExhausted},
      {"put: header of 100,000 dimensions",
       [this] {
         return SendPut(
             {Header("hostile@v1/t", "U8", std::vector<int64_t>(100000, 1))});
       },
       kInvalid},
      {"put: 9 dimensions", put_shaped("U8", std::vector<int64_t>(9, 1)),
       kInvalid},
      {"put: negative dimension", put_shaped("U8", {4, -1}), kInvalid},
      {"put: negative dimension after a zero", put_shaped("U8", {0, -1}),
       kInvalid},
      {"put: INT64_MIN dimension", put_shaped("F32", {kMinI64}), kInvalid},
      {"put: element count overflows 64 bits ([2^32, 2^32])",
       put_shaped("U8", {int64_t{1} << 32, int64_t{1} << 32}), kInvalid},
      {"put: byte count overflows 64 bits (F32 [2^62])",
       put_shaped("F32", {int64_t{1} << 62}), kInvalid},
      {"put: byte count overflows 64 bits (F64 [2^61, 1])",
       put_shaped("F64", {int64_t{1} << 61, 1}), kInvalid},
      {"put: U8 [INT64_MAX] (past --max_tensor_bytes)",
       put_shaped("U8", {kMaxI64}), kExhausted},
      {"put: 64 MiB + 1 byte (past --max_tensor_bytes)",
       put_shaped("U8", {static_cast<int64_t>(kMaxTensorBytes) + 1}),
       kExhausted},
      {"put: unknown dtype F33", put_shaped("F33", {4}), kInvalid},
      {"put: empty dtype", put_shaped("", {4}), kInvalid},
      {"put: an encoding as dtype (Q8_0)", put_shaped("Q8_0", {32}), kInvalid},
      {"put: dtype with a trailing space", put_shaped("F32 ", {4}), kInvalid},
      {"put: dtype with an embedded NUL",
       put_shaped(std::string("F32\0", 4), {4}), kInvalid},
      // --- PutTensor: names ---
      {"put name: empty", put_named(""), kInvalid},
      {"put name: NUL in the tensor",
       put_named(std::string("hostile@v1/a\0b", 14)), kInvalid},
      {"put name: NUL in the model",
       put_named(std::string("hos\0tile@v1/t", 13)), kInvalid},
      {"put name: '..' part", put_named("hostile@v1/a/../b"), kInvalid},
      {"put name: tensor '..'", put_named("hostile@v1/.."), kInvalid},
      {"put name: '.' part", put_named("hostile@v1/./b"), kInvalid},
      {"put name: '//' (empty part)", put_named("hostile@v1/a//b"), kInvalid},
      {"put name: trailing '/'", put_named("hostile@v1/a/"), kInvalid},
      {"put name: model of 129 bytes",
       put_named(std::string(129, 'm') + "@v1/t"), kInvalid},
      {"put name: revision of 129 bytes",
       put_named("hostile@" + std::string(129, 'r') + "/t"), kInvalid},
      {"put name: tensor of 1025 bytes",
       put_named("hostile@v1/" + std::string(1025, 't')), kInvalid},
      {"put name: model '..'", put_named("..@v1/t"), kInvalid},
      {"put name: model with a space", put_named("bad model@v1/t"), kInvalid},
      {"put name: control character \\x01", put_named("hostile@v1/a\x01"),
       kInvalid},
      {"put name: newline", put_named("hostile@v1/a\nb"), kInvalid},
      {"put name: DEL \\x7f", put_named("hostile@v1/a\x7f"), kInvalid},
      {"put name: C1 control U+0085", put_named("hostile@v1/a\xc2\x85"),
       kInvalid},
      {"put name: invalid UTF-8 \\xff\\xfe (raw bytes)",
       raw_put_named("hostile@v1/\xff\xfe"), kInvalid},
      {"put name: overlong UTF-8 '/' \\xc0\\xaf (raw bytes)",
       raw_put_named("hostile@v1/a\xc0\xaf"), kInvalid},
      {"put name: no revision (MODEL/TENSOR)", put_named("hostile/t"),
       kInvalid},
      {"put name: '@/t'", put_named("@/t"), kInvalid},
      {"put name: empty revision 'hostile@/t'", put_named("hostile@/t"),
       kInvalid},
      {"put name: no tensor part 'hostile@v1'", put_named("hostile@v1"),
       kInvalid},
      {"put name: two '@'", put_named("hostile@v1@v2/t"), kInvalid},
      // --- PutTensor: raw frames ---
      {"put raw: header, then a frame that is no protobuf",
       [this] {
         return SendRawPut({RawHeader("open@v1/x", "U8", {16}),
                            std::string(kGarbage), RawData(Bytes(16, 10))});
       },
       kInvalid},
      {"put raw: header and every byte, then a frame that is no protobuf",
       [this] {
         return SendRawPut({RawHeader("open@v1/garbage_tail", "U8", {16}),
                            RawData(Bytes(16, 11)), std::string(kGarbage)});
       },
       kInvalid},
      // --- PutTensor: revision state and limits ---
      {"put: new tensor into a published revision", put_named("good@v1/new"),
       kFailedPrecondition},
      {"put: overwrite of a tensor of a published revision",
       put_named("good@v1/w"), kFailedPrecondition},
      {"put: revision published while the put streams",
       [this] { return PublishDuringPut(); }, kFailedPrecondition},
      {"put: one more than --max_put_streams at once",
       [this] { return PutPastStreamLimit(); }, kExhausted},
      // --- PutTensor: valid but unusual (must succeed) ---
      {"put valid: 10,000 one-byte chunks",
       [this] {
         std::string bytes = Bytes(10000, 12);
         std::vector<v1::PutTensorRequest> messages = {
             Header("open@v1/one_byte_chunks", "U8", {10000}, Hash(bytes))};
         for (char byte : bytes) messages.push_back(Data(std::string(1, byte)));
         return PutUnusual("open@v1/one_byte_chunks", messages, bytes);
       },
       kOk},
      {"put valid: empty data messages between chunks",
       [this] {
         std::string bytes = Bytes(3000, 13);
         return PutUnusual(
             "open@v1/empty_chunks",
             {Header("open@v1/empty_chunks", "U8", {3000}, Hash(bytes)),
              Data(""), Data(bytes.substr(0, 1000)), Data(""), Data(""),
              Data(bytes.substr(1000)), Data("")},
             bytes);
       },
       kOk},
      {"put valid: lower-case dtype 'f32' (ParseDType ignores case)",
       [this] {
         std::string bytes = Bytes(4 * 64, 14);
         return PutUnusual(
             "open@v1/lower_dtype",
             WholePut("open@v1/lower_dtype", "f32", {64}, bytes, Hash(bytes)),
             bytes);
       },
       kOk},
      // --- GetTensor ---
      {"get: unknown encoding q5_k",
       [this] { return Get("good@v1/w", "q5_k"); }, kInvalid},
      {"get: encoding ' raw' (leading space)",
       [this] { return Get("good@v1/w", " raw"); }, kInvalid},
      {"get: encoding with an embedded NUL",
       [this] { return Get("good@v1/w", std::string("raw\0", 4)); }, kInvalid},
      {"get valid: encoding 'Q8_0' (ParseEncoding ignores case)",
       [this] { return Get("good@v1/w", "Q8_0"); }, kOk},
      {"get: q8_0 of an I32 tensor",
       [this] { return Get("good@v1/ints", "q8_0"); }, kInvalid},
      {"get: f16 of a U8 tensor",
       [this] { return Get("good@v1/bytes", "f16"); }, kInvalid},
      {"get: q4_0 of innermost dimension 33",
       [this] { return Get("good@v1/odd", "q4_0"); }, kInvalid},
      {"get: offset past the end",
       [this] { return Get("good@v1/w", "", 16385); }, kOutOfRange},
      {"get: offset + length past the end",
       [this] { return Get("good@v1/w", "", 16000, 385); }, kOutOfRange},
      {"get: offset and length UINT64_MAX",
       [this] { return Get("good@v1/w", "", kMaxU64, kMaxU64); }, kOutOfRange},
      {"get: offset 1, length UINT64_MAX",
       [this] { return Get("good@v1/w", "", 1, kMaxU64); }, kOutOfRange},
      {"get valid: offset at the end, length 0 (empty range)",
       [this] { return Get("good@v1/w", "", 16384); }, kOk},
      {"get: q8_0 range off a block boundary (offset 1)",
       [this] { return Get("good@v1/w", "q8_0", 1, 34); }, kInvalid},
      {"get: q8_0 range off a block boundary (length 35)",
       [this] { return Get("good@v1/w", "q8_0", 0, 35); }, kInvalid},
      {"get: q4_0 range on block boundaries but past the end",
       [this] { return Get("good@v1/w", "q4_0", 18 * 1000, 18); }, kOutOfRange},
      {"get: max_chunk_bytes 16 MiB + 1",
       [this] { return Get("good@v1/w", "", 0, 0, (16 << 20) + 1); }, kInvalid},
      {"get: max_chunk_bytes UINT32_MAX",
       [this] { return Get("good@v1/w", "", 0, 0, kMaxU32); }, kInvalid},
      {"get valid: max_chunk_bytes 1 (4096 one-byte chunks)",
       [this] {
         v1::GetTensorRequest request;
         request.set_name("good@v1/bytes");
         request.set_max_chunk_bytes(1);
         std::string bytes;
         grpc::Status status = Get(request, &bytes);
         if (status.ok() && bytes != stored_.at("good@v1/bytes")) {
           return grpc::Status(StatusCode::DATA_LOSS, "bytes differ");
         }
         return status;
       },
       kOk},
      {"get: missing tensor", [this] { return Get("good@v1/missing", ""); },
       kNotFound},
      {"get: missing model", [this] { return Get("nosuch@v1/w", ""); },
       kNotFound},
      {"get: latest of a model with no published revision",
       [this] { return Get("open/shared", ""); }, kNotFound},
      {"get: name without '/'", [this] { return Get("good", ""); }, kInvalid},
      {"get: name with '..' part", [this] { return Get("good@v1/../w", ""); },
       kInvalid},
      {"get raw: request bytes that are no protobuf",
       [this] {
         return SendRawStreaming("/pstore.v1.ParamStore/GetTensor",
                                 std::string(kGarbage));
       },
       kInvalid},
      {"get: 5 MiB request (over --max_message_bytes)",
       [this] { return Get("good@v1/" + std::string(5 << 20, 'w'), ""); },
       kExhausted},
      {"get raw: name of invalid UTF-8",
       [this] {
         return SendRawStreaming("/pstore.v1.ParamStore/GetTensor",
                                 Field(1, "good@v1/\xff"));
       },
       kInvalid},
      // --- ReadTensor: GetTensor's checks and codes, and its own limit ---
      {"read: unknown encoding q5_k",
       [this] { return Read("good@v1/w", "q5_k"); }, kInvalid},
      {"read: encoding with an embedded NUL",
       [this] { return Read("good@v1/w", std::string("raw\0", 4)); }, kInvalid},
      {"read valid: encoding 'Q8_0' (ParseEncoding ignores case)",
       [this] { return Read("good@v1/w", "Q8_0"); }, kOk},
      {"read: q8_0 of an I32 tensor",
       [this] { return Read("good@v1/ints", "q8_0"); }, kInvalid},
      {"read: q4_0 of innermost dimension 33",
       [this] { return Read("good@v1/odd", "q4_0"); }, kInvalid},
      {"read: offset past the end",
       [this] { return Read("good@v1/w", "", 16385); }, kOutOfRange},
      {"read: offset and length UINT64_MAX",
       [this] { return Read("good@v1/w", "", kMaxU64, kMaxU64); }, kOutOfRange},
      {"read: offset 1, length UINT64_MAX",
       [this] { return Read("good@v1/w", "", 1, kMaxU64); }, kOutOfRange},
      {"read valid: offset at the end, length 0 (empty range)",
       [this] { return Read("good@v1/w", "", 16384); }, kOk},
      {"read: q8_0 range off a block boundary (offset 1)",
       [this] { return Read("good@v1/w", "q8_0", 1, 34); }, kInvalid},
      {"read: q8_0 range off a block boundary (length 35)",
       [this] { return Read("good@v1/w", "q8_0", 0, 35); }, kInvalid},
      {"read: q4_0 range on block boundaries but past the end",
       [this] { return Read("good@v1/w", "q4_0", 18 * 1000, 18); },
       kOutOfRange},
      {"read: missing tensor", [this] { return Read("good@v1/missing", ""); },
       kNotFound},
      {"read: latest of a model with no published revision",
       [this] { return Read("open/shared", ""); }, kNotFound},
      {"read: name without '/'", [this] { return Read("good", ""); }, kInvalid},
      {"read: name with '..' part", [this] { return Read("good@v1/../w", ""); },
       kInvalid},
      {"read raw: request bytes that are no protobuf",
       [this] {
         return SendRawUnary("/pstore.v1.ParamStore/ReadTensor",
                             std::string(kGarbage));
       },
       kInvalid},
      {"read raw: name of invalid UTF-8",
       [this] {
         return SendRawUnary("/pstore.v1.ParamStore/ReadTensor",
                             Field(1, "good@v1/\xff"));
       },
       kInvalid},
      {"read: 5 MiB request (over --max_message_bytes)",
       [this] { return Read("good@v1/" + std::string(5 << 20, 'w'), ""); },
       kExhausted},
      {"read: 1 MiB + 1 byte, the whole tensor (over ReadTensor's 1 MiB)",
       [this] { return Read("good@v1/huge", ""); }, kExhausted},
      {"read: 1 MiB + 1 byte as a range (over ReadTensor's 1 MiB)",
       [this] { return Read("good@v1/huge", "", 0, (1 << 20) + 1); },
       kExhausted},
      {"read: f32 of a U8 tensor",
       [this] { return Read("good@v1/big", "f32"); }, kInvalid},
      {"read valid: 1 MiB, the limit, across 17 blocks",
       [this] { return ReadBack("good@v1/huge", 1, 1 << 20); }, kOk},
      {"read valid: 200,000 bytes, every byte",
       [this] { return ReadBack("good@v1/big", 0, 200000); }, kOk},
      {"read valid: max_chunk_bytes UINT32_MAX (not used)",
       [this] { return ReadBack("good@v1/bytes", 0, 4096, kMaxU32); }, kOk},
      // --- PullModel ---
      {"pull: shard_index == shard_count",
       [this] { return Pull("good@v1", 4, 4); }, kInvalid},
      {"pull: shard_index 1 of the default 1",
       [this] { return Pull("good@v1", 1, 0); }, kInvalid},
      {"pull: shard_count 1025", [this] { return Pull("good@v1", 0, 1025); },
       kInvalid},
      {"pull: shard_count UINT32_MAX",
       [this] { return Pull("good@v1", 0, kMaxU32); }, kInvalid},
      {"pull valid: shard 1023 of 1024",
       [this] { return Pull("good@v1", 1023, 1024); }, kOk},
      {"pull: unknown encoding", [this] { return Pull("good@v1", 0, 1, "q2"); },
       kInvalid},
      {"pull: max_chunk_bytes 16 MiB + 1",
       [this] { return Pull("good@v1", 0, 1, "", (16 << 20) + 1); }, kInvalid},
      {"pull: missing model", [this] { return Pull("nosuch", 0, 1); },
       kNotFound},
      {"pull: a tensor name", [this] { return Pull("good@v1/w", 0, 1); },
       kInvalid},
      {"pull raw: request bytes that are no protobuf",
       [this] {
         return SendRawStreaming("/pstore.v1.ParamStore/PullModel",
                                 std::string(kGarbage));
       },
       kInvalid},
      // --- ListTensors ---
      {"list: page_size -1", [this] { return List("good@v1", -1); }, kInvalid},
      {"list: page_size INT32_MIN",
       [this] { return List("good@v1", std::numeric_limits<int32_t>::min()); },
       kInvalid},
      {"list: page_size 10001", [this] { return List("good@v1", 10001); },
       kInvalid},
      {"list: page_size INT32_MAX",
       [this] { return List("good@v1", std::numeric_limits<int32_t>::max()); },
       kInvalid},
      {"list valid: page_size 10000", [this] { return List("good@v1", 10000); },
       kOk},
      {"list: page token of another prefix",
       [this] { return List("good@v1", 10, "w", "zzz"); }, kInvalid},
      {"list: missing revision", [this] { return List("good@v9", 10); },
       kNotFound},
      {"list: a tensor name as revision",
       [this] { return List("good@v1/w", 10); }, kInvalid},
      // --- StatTensor, DeleteTensor ---
      {"stat: empty name", [this] { return Stat(""); }, kInvalid},
      {"stat: missing tensor", [this] { return Stat("good@v1/missing"); },
       kNotFound},
      {"stat raw: request bytes that are no protobuf",
       [this] {
         return SendRawUnary("/pstore.v1.ParamStore/StatTensor",
                             std::string(kGarbage));
       },
       kInvalid},
      {"delete tensor: of a published revision",
       [this] { return DeleteTensor("good@v1/w"); }, kFailedPrecondition},
      {"delete tensor: missing tensor",
       [this] { return DeleteTensor("open@v1/missing"); }, kNotFound},
      {"delete tensor: missing model",
       [this] { return DeleteTensor("nosuch@v1/t"); }, kNotFound},
      {"delete tensor: no revision (MODEL/TENSOR)",
       [this] { return DeleteTensor("good/w"); }, kInvalid},
      // --- Revisions ---
      {"create revision: exists (open)",
       [this] { return CreateRevision("open@v1"); }, kAlreadyExists},
      {"create revision: exists (published)",
       [this] { return CreateRevision("good@v1"); }, kAlreadyExists},
      {"create revision: no revision",
       [this] { return CreateRevision("hostile"); }, kInvalid},
      {"create revision: '@' alone", [this] { return CreateRevision("@"); },
       kInvalid},
      {"create revision: 'hostile@'",
       [this] { return CreateRevision("hostile@"); }, kInvalid},
      {"create revision: '@v1'", [this] { return CreateRevision("@v1"); },
       kInvalid},
      {"create revision: 5 MiB of metadata (over --max_message_bytes)",
       [this] {
         return CreateRevision("hostile@v1",
                               {{"k", std::string(5 << 20, 'v')}});
       },
       kExhausted},
      {"create revision raw: name of invalid UTF-8",
       [this] {
         return SendRawUnary("/pstore.v1.ParamStore/CreateRevision",
                             Field(1, "hostile@\xff"));
       },
       kInvalid},
      {"publish: missing revision", [this] { return Publish("nosuch@v1"); },
       kNotFound},
      {"publish: no revision", [this] { return Publish("good"); }, kInvalid},
      {"delete revision: missing",
       [this] { return DeleteRevision("nosuch@v1"); }, kNotFound},
      {"delete revision: no revision",
       [this] { return DeleteRevision("good"); }, kInvalid},
      {"get revision: missing", [this] { return GetRevision("nosuch"); },
       kNotFound},
      {"get revision: model '..'", [this] { return GetRevision(".."); },
       kInvalid},
      // --- Pins, tiers, verify ---
      {"pin: missing revision", [this] { return Pin("nosuch@v1"); }, kNotFound},
      {"pin: pinned already", [this] { return Pin("good@v1"); },
       kAlreadyExists},
      {"pin: 'good@'", [this] { return Pin("good@"); }, kInvalid},
      {"unpin: not pinned", [this] { return Unpin("open@v1"); }, kNotFound},
      {"drop cache: TIER_COLD", [this] { return DropCache(v1::TIER_COLD); },
       kInvalid},
      {"drop cache: TIER_UNSPECIFIED",
       [this] { return DropCache(v1::TIER_UNSPECIFIED); }, kInvalid},
      {"drop cache: tier 99", [this] { return DropCache(99); }, kInvalid},
      {"drop cache: tier -1", [this] { return DropCache(-1); }, kInvalid},
      {"prefetch: TIER_COLD",
       [this] { return Prefetch("good@v1", v1::TIER_COLD); }, kInvalid},
      {"prefetch: TIER_UNSPECIFIED",
       [this] { return Prefetch("good@v1", v1::TIER_UNSPECIFIED); }, kInvalid},
      {"prefetch: tier 7", [this] { return Prefetch("good@v1", 7); }, kInvalid},
      {"prefetch: missing model",
       [this] { return Prefetch("nosuch", v1::TIER_DRAM); }, kNotFound},
      {"verify: missing revision", [this] { return Verify("nosuch@v1"); },
       kNotFound},
      {"verify: empty name", [this] { return Verify(""); }, kInvalid},
      {"unknown method",
       [this] {
         return SendRawUnary("/pstore.v1.ParamStore/NoSuchMethod", "");
       },
       StatusCode::UNIMPLEMENTED},
  };
  return cases;
}

TEST_F(HostileInputTest, CorpusGetsTheDocumentedCodesAndLeavesNothingPartial) {
  absl::Time start = absl::Now();
  // What the corpus reads, and a published revision it may not write.
  ASSERT_NO_FATAL_FAILURE(
      PutValid("good@v1/w", "F32", {64, 64}, Bytes(64 * 64 * 4, 1001)));
  ASSERT_NO_FATAL_FAILURE(
      PutValid("good@v1/ints", "I32", {64}, Bytes(64 * 4, 1002)));
  ASSERT_NO_FATAL_FAILURE(
      PutValid("good@v1/odd", "F32", {3, 33}, Bytes(3 * 33 * 4, 1003)));
  ASSERT_NO_FATAL_FAILURE(
      PutValid("good@v1/bytes", "U8", {4096}, Bytes(4096, 1004)));
  ASSERT_NO_FATAL_FAILURE(
      PutValid("good@v1/big", "U8", {200000}, Bytes(200000, 1005)));
  ASSERT_NO_FATAL_FAILURE(PutValid("good@v1/huge", "U8", {(1 << 20) + 1},
                                   Bytes((1 << 20) + 1, 1008)));
  ASSERT_TRUE(Publish("good@v1").ok());
  ASSERT_TRUE(Pin("good@v1").ok());
  // An open revision whose blocks refused puts share.
  ASSERT_NO_FATAL_FAILURE(PutValid("open@v1/shared", "U8",
                                   {static_cast<int64_t>(3 * kBlockBytes)},
                                   Bytes(3 * kBlockBytes, 1006)));

  std::vector<Case> cases = Corpus();
  std::vector<Outcome> outcomes;
  for (const Case& c : cases) {
    grpc::Status status = c.send();
    outcomes.push_back(Outcome{c.name, c.expected, status.error_code(),
                               status.error_message().substr(0, 110)});
    EXPECT_EQ(CodeName(status.error_code()), CodeName(c.expected))
        << "case \"" << c.name << "\": " << status.error_message();
  }
  absl::Duration corpus_time = absl::Now() - start;

  // The table, for the record.
  int bad = 0;
  int mismatches = 0;
  std::printf("\n%-66s %-20s %-20s\n", "case", "expected", "actual");
  for (const Outcome& o : outcomes) {
    if (o.expected != StatusCode::OK) ++bad;
    if (o.expected != o.actual) ++mismatches;
    std::printf(
        "%-66s %-20s %-20s%s\n", o.name.c_str(), CodeName(o.expected).c_str(),
        CodeName(o.actual).c_str(),
        o.expected == o.actual
            ? ""
            : absl::StrCat("  <-- MISMATCH: \"", o.message, "\"").c_str());
  }
  std::printf("%zu cases (%d bad requests), %d mismatches, %s\n\n",
              outcomes.size(), bad, mismatches,
              absl::FormatDuration(corpus_time).c_str());
  EXPECT_GE(bad, 30);

  // The daemon still serves: it runs, answers, and round-trips a tensor.
  ASSERT_TRUE(server_->Running()) << server_->Log();
  // Puts the client cancelled are aborted by now.
  WaitForNoPutStreams();
  v1::ServerStatus status;
  ASSERT_TRUE(ServerStatus(&status).ok());
  ClientOptions options;
  options.address = server_->address();
  options.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client, Client::Create(options));
  std::string after = Bytes(kBlockBytes + 17, 1007);
  ASSERT_OK(
      client
          ->PutTensor(
              "after@v1/t", "U8",
              std::vector<int64_t>{static_cast<int64_t>(after.size())},
              std::span<const uint8_t>(
                  reinterpret_cast<const uint8_t*>(after.data()), after.size()))
          .status());
  stored_["after@v1/t"] = after;
  ASSERT_OK_AND_ASSIGN(auto got, client->GetTensor("after@v1/t"));
  EXPECT_EQ(std::string(got.second.begin(), got.second.end()), after);

  // Nothing partial was stored: every revision holds exactly the tensors
  // the valid requests put, each with exactly their bytes.
  std::map<std::string, std::set<std::string>> expected_revisions = {
      {"race@v1", {}}};  // Published while a put streamed into it.
  for (const auto& [name, bytes] : stored_) {
    size_t slash = name.find('/');
    expected_revisions[name.substr(0, slash)].insert(name.substr(slash + 1));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Model> models, client->ListModels());
  std::set<std::string> listed_revisions;
  for (const v1::Model& model : models) {
    for (const v1::Revision& revision : model.revisions()) {
      listed_revisions.insert(revision.name());
    }
  }
  std::set<std::string> wanted_revisions;
  for (const auto& [revision, tensors] : expected_revisions) {
    wanted_revisions.insert(revision);
  }
  EXPECT_EQ(listed_revisions, wanted_revisions);
  for (const std::string& revision_name : listed_revisions) {
    v1::Revision revision;
    ASSERT_TRUE(GetRevision(revision_name, &revision).ok()) << revision_name;
    std::set<std::string> tensors;
    for (const v1::TensorInfo& info : revision.tensors()) {
      tensors.insert(info.tensor());
    }
    EXPECT_EQ(tensors, expected_revisions[revision_name]) << revision_name;
    ASSERT_OK_AND_ASSIGN(std::vector<v1::TensorInfo> listed,
                         client->ListTensors(revision_name));
    EXPECT_EQ(listed.size(), tensors.size()) << revision_name;
    v1::VerifyResponse report;
    ASSERT_TRUE(Verify(revision_name, &report).ok()) << revision_name;
    EXPECT_EQ(report.bad_size(), 0) << report.DebugString();
  }
  for (const auto& [name, bytes] : stored_) {
    v1::GetTensorRequest request;
    request.set_name(name);
    std::string read;
    grpc::Status got_status = Get(request, &read);
    ASSERT_TRUE(got_status.ok()) << name << ": " << got_status.error_message();
    EXPECT_TRUE(read == bytes) << name << " reads back other bytes";
    v1::TensorInfo info;
    ASSERT_TRUE(Stat(name, &info).ok()) << name;
    EXPECT_EQ(info.stored_xxh3_64(), Hash(bytes)) << name;
  }

  // No block of a refused put is left: the cold tier holds exactly the
  // distinct blocks of the stored tensors. (Its count is RocksDB's
  // estimate-num-keys, exact here: every block key is written once and
  // deleted at most once, all within the memtable.)
  std::set<std::string> blocks;
  for (const auto& [name, bytes] : stored_) {
    for (size_t offset = 0; offset < bytes.size(); offset += kBlockBytes) {
      blocks.insert(bytes.substr(offset, kBlockBytes));
    }
  }
  ASSERT_TRUE(ServerStatus(&status).ok());
  uint64_t cold_blocks = 0;
  for (const v1::TierStatus& tier : status.tiers()) {
    if (tier.tier() == v1::TIER_COLD) cold_blocks = tier.blocks();
  }
  EXPECT_EQ(cold_blocks, blocks.size())
      << "blocks of refused puts were left in the cold tier (collected "
      << status.collected_blocks() << ")";
  std::string log = server_->Log();
  EXPECT_EQ(log.find("event=put_abort_incomplete"), std::string::npos) << log;
  std::printf("cold blocks %llu (expected %zu), collected %llu, %s in all\n",
              static_cast<unsigned long long>(cold_blocks), blocks.size(),
              static_cast<unsigned long long>(status.collected_blocks()),
              absl::FormatDuration(absl::Now() - start).c_str());
  ASSERT_TRUE(server_->Running()) << server_->Log();
}

}  // namespace
}  // namespace pstore
