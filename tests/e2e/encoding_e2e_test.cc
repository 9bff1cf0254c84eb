// End-to-end tests of encodings on read through a real pstored: every
// encoding of stored F32, F16 and BF16 tensors equals a local encoding of
// the same bytes, the second read is a DRAM hit, pulls encode what fits,
// and a GGUF export parses back to the same tensors.

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/pstore_client.h"
#include "codec/encoding.h"
#include "codec/hash.h"
#include "formats/gguf.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoreCliPath;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

// Returns `count` normally distributed values stored as `dtype` (F32, F16
// or BF16), via the codec's own conversion.
std::vector<uint8_t> GaussianTensor(DType dtype, size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> values(count);
  for (float& value : values) value = normal(rng);
  std::span<const uint8_t> f32(reinterpret_cast<const uint8_t*>(values.data()),
                               values.size() * 4);
  if (dtype == DType::kF32) return {f32.begin(), f32.end()};
  Encoding encoding = dtype == DType::kF16 ? Encoding::kF16 : Encoding::kBF16;
  std::vector<uint8_t> out(count * 2);
  EXPECT_OK(Encode(DType::kF32, f32, encoding, std::span<uint8_t>(out)));
  return out;
}

std::vector<uint8_t> LocalEncode(DType dtype,
                                 const std::vector<uint8_t>& stored,
                                 Encoding encoding,
                                 QuantizationStats* stats = nullptr) {
  uint64_t elements = stored.size() / DTypeSize(dtype);
  std::vector<uint8_t> out(EncodedByteLength(dtype, encoding, elements));
  EXPECT_OK(Encode(dtype, stored, encoding, std::span<uint8_t>(out), stats));
  return out;
}

class EncodingE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Small blocks, so that a tensor spans many of them.
    server_ = std::make_unique<PstoredProcess>(
        dir_.Sub("data"), std::vector<std::string>{"--block_bytes=64KiB"});
    ASSERT_OK(server_->Start());
    ClientOptions options;
    options.address = server_->address();
    options.chunk_bytes = 100 * 1024;  // Chunks that cut blocks.
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(options));
  }

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(EncodingE2eTest, EveryEncodingOfEveryFloatDtypeMatchesTheCodec) {
  const std::vector<int64_t> shape = {96, 1024};  // 96 Ki elements.
  uint64_t seed = 0;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<uint8_t> stored = GaussianTensor(dtype, 96 * 1024, ++seed);
    std::string name = absl::StrCat("m@v1/", DTypeName(dtype));
    ASSERT_OK(
        client_->PutTensor(name, DTypeName(dtype), shape, stored).status());
    for (Encoding encoding :
         {Encoding::kRaw, Encoding::kF32, Encoding::kF16, Encoding::kBF16,
          Encoding::kQ8_0, Encoding::kQ4_0}) {
      SCOPED_TRACE(
          absl::StrCat(DTypeName(dtype), " as ", EncodingName(encoding)));
      QuantizationStats stats;
      std::vector<uint8_t> expected =
          encoding == Encoding::kRaw
              ? stored
              : LocalEncode(dtype, stored, encoding, &stats);
      GetOptions options;
      options.encoding = std::string(EncodingName(encoding));
      ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor(name, options));
      EXPECT_TRUE(got.second == expected);
      const v1::TensorInfo& info = got.first;
      EXPECT_EQ(info.encoding(), EncodingName(encoding));
      EXPECT_EQ(info.byte_length(), expected.size());
      EXPECT_EQ(info.stored_byte_length(), stored.size());
      ASSERT_TRUE(info.has_xxh3_64());
      EXPECT_EQ(info.xxh3_64(), Xxh3_64(expected));
      if (IsQuantized(encoding)) {
        ASSERT_TRUE(info.has_quantization_error());
        EXPECT_DOUBLE_EQ(info.quantization_error().max_abs_error(),
                         stats.max_abs_error);
        EXPECT_NEAR(info.quantization_error().rms_error(), stats.RmsError(),
                    1e-12);
        EXPECT_GT(info.quantization_error().relative_rms_error(), 0.0);
        EXPECT_LT(info.quantization_error().relative_rms_error(),
                  encoding == Encoding::kQ8_0 ? 0.02 : 0.2);
        // The bytes dequantize close to the stored values.
        ASSERT_OK_AND_ASSIGN(std::vector<float> decoded,
                             DecodeToFloat(info, got.second));
        EXPECT_EQ(decoded.size(), 96u * 1024);
      }
    }
  }
}

TEST_F(EncodingE2eTest, TheSecondReadOfAnEncodingIsADramHit) {
  std::vector<uint8_t> stored = GaussianTensor(DType::kF16, 256 * 1024, 7);
  ASSERT_OK(
      client_
          ->PutTensor("m@v1/w", "F16", std::vector<int64_t>{256, 1024}, stored)
          .status());
  GetOptions q8;
  q8.encoding = "q8_0";
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus before, client_->GetServerStatus());
  ASSERT_OK_AND_ASSIGN(auto first, client_->GetTensor("m@v1/w", q8));
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus middle, client_->GetServerStatus());
  ASSERT_OK_AND_ASSIGN(auto second, client_->GetTensor("m@v1/w", q8));
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus after, client_->GetServerStatus());
  EXPECT_TRUE(first.second == second.second);
  // 512 KiB of F16 in 64 KiB blocks: 8 blocks encoded once, then hits.
  EXPECT_EQ(middle.blocks_encoded() - before.blocks_encoded(), 8u);
  EXPECT_EQ(after.blocks_encoded(), middle.blocks_encoded());
  EXPECT_EQ(after.encoded_hits() - middle.encoded_hits(), 8u);
  EXPECT_EQ(second.first.xxh3_64(), first.first.xxh3_64());
  EXPECT_EQ(second.first.quantization_error().max_abs_error(),
            first.first.quantization_error().max_abs_error());
}

TEST_F(EncodingE2eTest, QuantizedRangesFallOnBlockBoundaries) {
  std::vector<uint8_t> stored = GaussianTensor(DType::kF32, 64 * 1024, 3);
  ASSERT_OK(
      client_
          ->PutTensor("m@v1/w", "F32", std::vector<int64_t>{64, 1024}, stored)
          .status());
  std::vector<uint8_t> whole =
      LocalEncode(DType::kF32, stored, Encoding::kQ4_0);
  GetOptions range;
  range.encoding = "q4_0";
  // 2048 blocks of 18 bytes; a stored block of 64 KiB of F32 encodes to
  // 512 of them, so this range crosses stored-block boundaries.
  range.offset = 18 * 300;
  range.length = 18 * 1500;
  ASSERT_OK_AND_ASSIGN(auto part, client_->GetTensor("m@v1/w", range));
  EXPECT_TRUE(std::equal(part.second.begin(), part.second.end(),
                         whole.begin() + range.offset));
  EXPECT_EQ(part.second.size(), range.length);
  range.offset = 17;
  EXPECT_THAT(client_->GetTensor("m@v1/w", range),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(EncodingE2eTest, RefusesEncodingsATensorCannotTake) {
  ASSERT_OK(client_
                ->PutTensor("m@v1/ints", "I32", std::vector<int64_t>{64},
                            std::vector<uint8_t>(256, 1))
                .status());
  ASSERT_OK(client_
                ->PutTensor("m@v1/odd", "F32", std::vector<int64_t>{4, 33},
                            std::vector<uint8_t>(4 * 33 * 4, 0))
                .status());
  for (const char* encoding : {"f16", "q8_0"}) {
    GetOptions options;
    options.encoding = encoding;
    EXPECT_THAT(client_->GetTensor("m@v1/ints", options),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  GetOptions q8;
  q8.encoding = "q8_0";
  EXPECT_THAT(client_->GetTensor("m@v1/odd", q8),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("dimension")));
  GetOptions f16;
  f16.encoding = "f16";
  EXPECT_OK(client_->GetTensor("m@v1/odd", f16).status());
}

TEST_F(EncodingE2eTest, PullsEncodeWhatFitsAndKeepTheRestRaw) {
  std::vector<uint8_t> matrix = GaussianTensor(DType::kBF16, 128 * 512, 11);
  std::vector<uint8_t> norm = GaussianTensor(DType::kF32, 512, 12);
  std::vector<uint8_t> ids(4 * 100, 7);
  ASSERT_OK(client_
                ->PutTensor("llm@r/attn", "BF16",
                            std::vector<int64_t>{128, 512}, matrix)
                .status());
  ASSERT_OK(
      client_->PutTensor("llm@r/norm", "F32", std::vector<int64_t>{512}, norm)
          .status());
  ASSERT_OK(
      client_->PutTensor("llm@r/ids", "I32", std::vector<int64_t>{100}, ids)
          .status());
  for (int streams : {1, 3}) {
    std::map<std::string, std::vector<uint8_t>> got;
    std::map<std::string, v1::TensorInfo> done;
    PullCallbacks callbacks;
    callbacks.allocate =
        [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
      got[info.tensor()].resize(info.byte_length());
      return std::span<uint8_t>(got[info.tensor()]);
    };
    callbacks.done = [&](const v1::TensorInfo& info) {
      done[info.tensor()] = info;
    };
    PullOptions options;
    options.encoding = "q8_0";
    options.streams = streams;
    ASSERT_OK(client_->PullModel("llm@r", options, callbacks).status());
    EXPECT_TRUE(got["attn"] ==
                LocalEncode(DType::kBF16, matrix, Encoding::kQ8_0));
    EXPECT_EQ(done["attn"].encoding(), "q8_0");
    EXPECT_TRUE(got["norm"] == norm);  // 1-D: kept as stored.
    EXPECT_EQ(done["norm"].encoding(), "raw");
    EXPECT_TRUE(got["ids"] == ids);
    EXPECT_EQ(done.size(), 3u);
  }
}

TEST_F(EncodingE2eTest, GgufExportParsesBackToTheSameTensors) {
  std::vector<uint8_t> matrix = GaussianTensor(DType::kF16, 64 * 256, 21);
  std::vector<uint8_t> norm = GaussianTensor(DType::kF32, 256, 22);
  ASSERT_OK(client_->CreateRevision("tiny@v1", {{"license", "mit"}}).status());
  ASSERT_OK(client_
                ->PutTensor("tiny@v1/blk.0.attn_q.weight", "F16",
                            std::vector<int64_t>{64, 256}, matrix)
                .status());
  ASSERT_OK(client_
                ->PutTensor("tiny@v1/blk.0.attn_norm.weight", "F32",
                            std::vector<int64_t>{256}, norm)
                .status());
  ASSERT_OK(client_->PublishRevision("tiny@v1").status());
  for (const char* encoding : {"raw", "q8_0", "q4_0", "bf16"}) {
    SCOPED_TRACE(encoding);
    std::string path = dir_.Sub(absl::StrCat("tiny-", encoding, ".gguf"));
    std::string command = absl::StrCat(
        PstoreCliPath(), " --addr ", server_->address(), " export tiny ", path,
        " --encoding ", encoding, " > /dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
    ASSERT_NE(file->FindString("general.name"), nullptr);
    EXPECT_EQ(*file->FindString("general.name"), "tiny");
    ASSERT_NE(file->FindString("license"), nullptr);
    EXPECT_EQ(*file->FindString("license"), "mit");
    const GgufTensorInfo* q = file->FindTensor("blk.0.attn_q.weight");
    const GgufTensorInfo* n = file->FindTensor("blk.0.attn_norm.weight");
    ASSERT_NE(q, nullptr);
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(q->Shape(), (std::vector<int64_t>{64, 256}));
    EXPECT_EQ(q->dims, (std::vector<uint64_t>{256, 64}));  // ggml order.
    Encoding want = *ParseEncoding(encoding);
    std::vector<uint8_t> expected =
        want == Encoding::kRaw ? matrix
                               : LocalEncode(DType::kF16, matrix, want);
    std::vector<uint8_t> bytes(q->byte_size);
    ASSERT_OK(file->ReadAt(*q, 0, std::span<uint8_t>(bytes)));
    EXPECT_TRUE(bytes == expected);
    std::vector<uint8_t> norm_bytes(n->byte_size);
    ASSERT_OK(file->ReadAt(*n, 0, std::span<uint8_t>(norm_bytes)));
    // The norm is 1-D: quantizations keep it; bf16 converts it.
    EXPECT_TRUE(norm_bytes == (want == Encoding::kBF16
                                   ? LocalEncode(DType::kF32, norm, want)
                                   : norm));
  }
}

}  // namespace
}  // namespace pstore
