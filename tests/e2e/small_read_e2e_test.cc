// End-to-end tests of small reads (ReadTensor) against a real pstored: the
// client library reads small tensors and ranges with one unary call by
// itself, gets every byte the stream would give (raw and in every
// encoding, q8_0 ranges on block boundaries, empty tensors and ranges), and
// streams a read just over the 1 MiB limit; the reply parses as an ordinary
// TensorChunk for any client. pstored's /metrics tells which call served
// each read.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/pstore_client.h"
#include "codec/hash.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "pstore/v1/pstore.grpc.pb.h"
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

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
// Blocks of 256 KiB: a read of 1 MiB spans five of them, and a few bytes
// inside one are copied into the reply rather than pointed at.
constexpr uint64_t kBlockBytes = 256 * kKiB;
constexpr uint64_t kLimit = kMiB;  // ReadTensor's, in pstore.proto.

// What one read through the raw stub's GetTensor stream gave.
struct Streamed {
  grpc::Status status;
  v1::TensorInfo info;  // The final one when the server sent it.
  std::string bytes;
};

class SmallReadE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PstoredProcess>(
        dir_.Sub("data"),
        std::vector<std::string>{absl::StrCat("--block_bytes=", kBlockBytes)});
    ASSERT_OK(server_->Start());
    ClientOptions options;
    options.address = server_->address();
    options.max_attempts = 1;
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(options));
    stub_ = v1::ParamStore::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
    http_ =
        std::make_unique<httplib::Client>("127.0.0.1", server_->metrics_port());
  }

  std::vector<uint8_t> Put(const std::string& name, const std::string& dtype,
                           const std::vector<int64_t>& shape, uint64_t bytes,
                           uint64_t seed) {
    std::vector<uint8_t> data = RandomBytes(bytes, seed);
    EXPECT_OK(client_->PutTensor(name, dtype, shape, data).status()) << name;
    return data;
  }

  // Puts an F32 tensor of finite values (quantizing them is well defined).
  std::vector<uint8_t> PutFloats(const std::string& name, int64_t rows,
                                 int64_t cols) {
    std::vector<uint8_t> data(rows * cols * 4);
    for (int64_t i = 0; i < rows * cols; ++i) {
      float value = static_cast<float>((i * 7919) % 2003) * 0.0625f - 60.0f;
      std::memcpy(data.data() + i * 4, &value, 4);
    }
    EXPECT_OK(
        client_->PutTensor(name, "F32", std::vector<int64_t>{rows, cols}, data)
            .status())
        << name;
    return data;
  }

  // Returns pstored's count of finished `method` calls with `code`.
  int Calls(const std::string& method, const std::string& code = "OK") {
    httplib::Result result = http_->Get("/metrics");
    if (!result || result->status != 200) return -1;
    for (absl::string_view line : absl::StrSplit(result->body, '\n')) {
      if (absl::StartsWith(line, "pstore_rpc_requests_total{") &&
          absl::StrContains(line, absl::StrCat("method=\"", method, "\"")) &&
          absl::StrContains(line, absl::StrCat("code=\"", code, "\""))) {
        return std::atoi(std::string(line.substr(line.rfind(' ') + 1)).c_str());
      }
    }
    return 0;
  }

  // Reads with the raw stub's GetTensor stream: what any client gets.
  Streamed Stream(const std::string& name, const GetOptions& options) {
    grpc::ClientContext context;
    v1::GetTensorRequest request;
    request.set_name(name);
    request.set_encoding(options.encoding);
    request.set_offset(options.offset);
    request.set_length(options.length);
    std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
        stub_->GetTensor(&context, request);
    Streamed streamed;
    v1::TensorChunk chunk;
    while (reader->Read(&chunk)) {
      if (chunk.has_info()) streamed.info = chunk.info();
      if (chunk.has_final_info()) streamed.info = chunk.final_info();
      streamed.bytes += chunk.data();
    }
    streamed.status = reader->Finish();
    return streamed;
  }

  // Calls ReadTensor with the generated stub.
  grpc::Status Read(const std::string& name, uint64_t offset, uint64_t length,
                    v1::TensorChunk* reply, uint32_t max_chunk_bytes = 0) {
    grpc::ClientContext context;
    v1::GetTensorRequest request;
    request.set_name(name);
    request.set_offset(offset);
    request.set_length(length);
    request.set_max_chunk_bytes(max_chunk_bytes);
    return stub_->ReadTensor(&context, request, reply);
  }

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::ParamStore::Stub> stub_;
  std::unique_ptr<httplib::Client> http_;
};

std::string AsString(std::span<const uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TEST_F(SmallReadE2eTest, SmallTensorsAndRangesAreReadInOneCall) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> small = {
      {"m@v1/k64", Put("m@v1/k64", "U8", {64 * 1024}, 64 * kKiB, 1)},
      {"m@v1/scalar", Put("m@v1/scalar", "F32", {}, 4, 2)},
      {"m@v1/one", Put("m@v1/one", "U8", {1}, 1, 3)},
      {"m@v1/limit",
       Put("m@v1/limit", "U8", {static_cast<int64_t>(kLimit)}, kLimit, 4)},
  };
  std::vector<uint8_t> big = Put("m@v1/big", "U8", {2 << 20}, 2 * kMiB, 5);
  ASSERT_OK(client_->PublishRevision("m@v1").status());
  const int reads_before = Calls("ReadTensor");
  const int streams_before = Calls("GetTensor");
  int reads = 0;

  for (const auto& [name, bytes] : small) {
    ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor(name));
    EXPECT_TRUE(got.second == bytes) << name;
    EXPECT_EQ(got.first.xxh3_64(), Xxh3_64(bytes)) << name;
    EXPECT_EQ(got.first.stored_xxh3_64(), Xxh3_64(bytes)) << name;
    std::vector<uint8_t> out(bytes.size());
    ASSERT_OK(client_->GetTensor(name, std::span<uint8_t>(out)).status());
    EXPECT_TRUE(out == bytes) << name;
    // The latest revision by model name reads the same.
    ASSERT_OK_AND_ASSIGN(auto latest,
                         client_->GetTensor("m/" + name.substr(5)));
    EXPECT_TRUE(latest.second == bytes) << name;
    reads += 3;
  }
  // Ranges of a tensor larger than the limit: across block boundaries, in
  // a block (copied into the reply), exactly one block, exactly the limit,
  // to the end.
  for (auto [offset, length] :
       std::vector<std::pair<uint64_t, uint64_t>>{{0, 10},
                                                  {kBlockBytes - 3, 6},
                                                  {1000, 4096},
                                                  {kBlockBytes, kBlockBytes},
                                                  {100, kLimit},
                                                  {2 * kMiB - 5, 0},
                                                  {2 * kMiB, 0}}) {
    GetOptions options;
    options.offset = offset;
    options.length = length;
    const uint64_t size = length == 0 ? big.size() - offset : length;
    ASSERT_OK_AND_ASSIGN(auto part, client_->GetTensor("m@v1/big", options));
    ASSERT_EQ(part.second.size(), size) << offset;
    EXPECT_TRUE(std::equal(part.second.begin(), part.second.end(),
                           big.begin() + offset))
        << offset;
    EXPECT_EQ(part.first.offset(), offset);
    EXPECT_EQ(part.first.byte_length(), size);
    EXPECT_EQ(part.first.xxh3_64(), Xxh3_64(part.second)) << offset;
    ++reads;
  }
  EXPECT_EQ(Calls("ReadTensor") - reads_before, reads);
  EXPECT_EQ(Calls("GetTensor") - streams_before, 0);
  // Past the end: the stream's code, from the one call.
  GetOptions past;
  past.offset = 2 * kMiB - 1;
  past.length = 2;
  EXPECT_THAT(client_->GetTensor("m@v1/big", past),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(client_->GetTensor("m@v1/missing"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Calls("ReadTensor", "OUT_OF_RANGE"), 1);
  EXPECT_EQ(Calls("ReadTensor", "NOT_FOUND"), 1);
  EXPECT_EQ(Calls("GetTensor") - streams_before, 0);
}

TEST_F(SmallReadE2eTest, EncodingsAndQuantizedRangesMatchTheStream) {
  PutFloats("m@v1/w", 64, 1024);  // 256 KiB; q8_0: 69,632 bytes.
  PutFloats("m@v1/v", 2, 4096);   // A second tensor, read in q4_0 first.
  ASSERT_OK(client_->PublishRevision("m@v1").status());
  const int streams_before = Calls("GetTensor");
  for (const std::string encoding : {"q8_0", "q4_0", "f16", "bf16", "f32"}) {
    for (const std::string name : {"m@v1/w", "m@v1/v"}) {
      GetOptions options;
      options.encoding = encoding;
      // The first read derives the encoding while sending; the second
      // knows its hash and error beforehand. Both give the same.
      ASSERT_OK_AND_ASSIGN(auto first, client_->GetTensor(name, options));
      ASSERT_OK_AND_ASSIGN(auto second, client_->GetTensor(name, options));
      Streamed streamed = Stream(name, options);
      ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
      const std::string what = absl::StrCat(name, " in ", encoding);
      EXPECT_EQ(AsString(first.second), streamed.bytes) << what;
      EXPECT_TRUE(second.second == first.second) << what;
      EXPECT_EQ(first.first.encoding(), encoding) << what;
      EXPECT_EQ(first.first.xxh3_64(), Xxh3_64(first.second)) << what;
      EXPECT_EQ(second.first.xxh3_64(), first.first.xxh3_64()) << what;
      EXPECT_EQ(streamed.info.xxh3_64(), first.first.xxh3_64()) << what;
      const bool quantized = encoding == "q8_0" || encoding == "q4_0";
      EXPECT_EQ(first.first.has_quantization_error(), quantized) << what;
      EXPECT_EQ(second.first.has_quantization_error(), quantized) << what;
      if (quantized) {
        EXPECT_EQ(first.first.quantization_error().rms_error(),
                  streamed.info.quantization_error().rms_error())
            << what;
        EXPECT_EQ(second.first.quantization_error().max_abs_error(),
                  first.first.quantization_error().max_abs_error())
            << what;
      }
    }
  }
  EXPECT_EQ(Calls("GetTensor") - streams_before, 5 * 2);  // Stream() only.

  // q8_0 ranges fall on its 34-byte blocks.
  for (auto [offset, length] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 34}, {34 * 10, 34 * 100}, {34 * 2047, 34}, {34 * 2000, 0}}) {
    GetOptions options;
    options.encoding = "q8_0";
    options.offset = offset;
    options.length = length;
    ASSERT_OK_AND_ASSIGN(auto part, client_->GetTensor("m@v1/w", options));
    Streamed streamed = Stream("m@v1/w", options);
    ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
    EXPECT_EQ(AsString(part.second), streamed.bytes) << offset;
    EXPECT_EQ(part.first.offset(), offset);
    EXPECT_EQ(part.first.xxh3_64(), Xxh3_64(part.second));
    EXPECT_TRUE(part.first.has_quantization_error());
  }
  GetOptions unaligned;
  unaligned.encoding = "q8_0";
  unaligned.offset = 1;
  unaligned.length = 34;
  EXPECT_THAT(client_->GetTensor("m@v1/w", unaligned),
              StatusIs(absl::StatusCode::kInvalidArgument));
  GetOptions past;
  past.encoding = "q8_0";
  past.offset = 34 * 2048;
  past.length = 34;
  EXPECT_THAT(client_->GetTensor("m@v1/w", past),
              StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(Calls("GetTensor") - streams_before, 5 * 2 + 4);
}

TEST_F(SmallReadE2eTest, EmptyTensorsAndEmptyRangesAreRead) {
  ASSERT_OK(client_
                ->PutTensor("m@v1/empty", "F16", std::vector<int64_t>{0, 7},
                            std::vector<uint8_t>())
                .status());
  std::vector<uint8_t> bytes = Put("m@v1/t", "U8", {100}, 100, 6);
  const int reads_before = Calls("ReadTensor");
  ASSERT_OK_AND_ASSIGN(auto empty, client_->GetTensor("m@v1/empty"));
  EXPECT_TRUE(empty.second.empty());
  EXPECT_EQ(empty.first.shape_size(), 2);
  EXPECT_EQ(empty.first.xxh3_64(), Xxh3_64(std::span<const uint8_t>()));
  ASSERT_OK(client_->GetTensor("m@v1/empty", std::span<uint8_t>()).status());
  GetOptions f32;
  f32.encoding = "f32";
  ASSERT_OK_AND_ASSIGN(auto converted, client_->GetTensor("m@v1/empty", f32));
  EXPECT_TRUE(converted.second.empty());
  // The sink sees an empty read once, for its info.
  int calls = 0;
  ASSERT_OK(client_
                ->GetTensorTo("m@v1/empty", GetOptions(),
                              [&](const v1::TensorInfo& info,
                                  std::span<const uint8_t> piece) {
                                ++calls;
                                EXPECT_EQ(info.dtype(), "F16");
                                EXPECT_TRUE(piece.empty());
                                return absl::OkStatus();
                              })
                .status());
  EXPECT_EQ(calls, 1);
  GetOptions at_end;
  at_end.offset = 100;
  ASSERT_OK_AND_ASSIGN(auto none, client_->GetTensor("m@v1/t", at_end));
  EXPECT_TRUE(none.second.empty());
  EXPECT_EQ(none.first.offset(), 100u);
  EXPECT_EQ(Calls("ReadTensor") - reads_before, 5);
}

TEST_F(SmallReadE2eTest, AReadJustOverTheLimitIsStreamed) {
  std::vector<uint8_t> over =
      Put("m@v1/over", "U8", {static_cast<int64_t>(kLimit + 1)}, kLimit + 1, 7);
  const int streams_before = Calls("GetTensor");
  const int reads_before = Calls("ReadTensor");
  // Its size unknown, the first read tries ReadTensor, is refused, and
  // streams; the client then knows and streams at once.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor("m@v1/over"));
    EXPECT_TRUE(got.second == over);
  }
  EXPECT_EQ(Calls("ReadTensor", "RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(Calls("GetTensor") - streams_before, 3);
  // The caller's buffer, or the range, says how large a read is.
  std::vector<uint8_t> out(over.size());
  ASSERT_OK(client_->GetTensor("m@v1/over", std::span<uint8_t>(out)).status());
  EXPECT_TRUE(out == over);
  GetOptions range;
  range.length = kLimit + 1;
  ASSERT_OK_AND_ASSIGN(auto ranged, client_->GetTensor("m@v1/over", range));
  EXPECT_TRUE(ranged.second == over);
  EXPECT_EQ(Calls("GetTensor") - streams_before, 5);
  EXPECT_EQ(Calls("ReadTensor") - reads_before, 0);
  EXPECT_EQ(Calls("ReadTensor", "RESOURCE_EXHAUSTED"), 1);
  // Just under: one call.
  range.offset = 1;
  range.length = kLimit;
  ASSERT_OK_AND_ASSIGN(auto under, client_->GetTensor("m@v1/over", range));
  EXPECT_TRUE(
      std::equal(under.second.begin(), under.second.end(), over.begin() + 1));
  EXPECT_EQ(Calls("ReadTensor") - reads_before, 1);

  // What any client sees: RESOURCE_EXHAUSTED over the limit.
  v1::TensorChunk reply;
  EXPECT_EQ(Read("m@v1/over", 0, 0, &reply).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Read("m@v1/over", 0, kLimit + 1, &reply).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Read("m@v1/over", 1, 0, &reply).ok());
  EXPECT_EQ(reply.data().size(), kLimit);
}

TEST_F(SmallReadE2eTest, TheReplyIsAnOrdinaryTensorChunk) {
  std::vector<uint8_t> bytes =
      Put("m@v1/t", "BF16", {3, 1000}, 3 * 1000 * 2, 8);
  v1::TensorChunk reply;
  // max_chunk_bytes is not used: one reply whatever it says.
  grpc::Status status = Read("m@v1/t", 0, 0, &reply, /*max_chunk_bytes=*/1);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.data(), AsString(bytes));
  EXPECT_EQ(reply.offset(), 0u);
  EXPECT_TRUE(reply.last());
  EXPECT_EQ(reply.xxh3_64(), Xxh3_64(bytes));
  EXPECT_EQ(reply.xxh3_64_of_all(), Xxh3_64(bytes));
  EXPECT_FALSE(reply.has_final_info());
  const v1::TensorInfo& info = reply.info();
  EXPECT_EQ(info.name(), "m@v1/t");
  EXPECT_EQ(info.dtype(), "BF16");
  EXPECT_EQ(info.encoding(), "raw");
  EXPECT_EQ(info.byte_length(), bytes.size());
  EXPECT_EQ(info.xxh3_64(), Xxh3_64(bytes));
  EXPECT_EQ(info.stored_xxh3_64(), Xxh3_64(bytes));

  ASSERT_TRUE(Read("m@v1/t", 10, 20, &reply).ok());
  EXPECT_EQ(reply.data(), AsString(std::span(bytes).subspan(10, 20)));
  EXPECT_EQ(reply.offset(), 10u);
  EXPECT_EQ(reply.info().offset(), 10u);
  EXPECT_EQ(reply.info().byte_length(), 20u);
  EXPECT_EQ(reply.info().xxh3_64(),
            Xxh3_64(reply.data().data(), reply.data().size()));
  EXPECT_EQ(reply.xxh3_64(), reply.info().xxh3_64());
}

}  // namespace
}  // namespace pstore
