#include "formats/gguf.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "codec/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ggml type numbers, written out here rather than taken from GgmlType so
// that the tests check the enum against ggml.h.
constexpr uint32_t kF32 = 0;
constexpr uint32_t kF16 = 1;
constexpr uint32_t kQ4_0 = 2;
constexpr uint32_t kQ8_0 = 8;
constexpr uint32_t kBF16 = 30;

// Builds GGUF bytes by hand, independently of the code under test.
class GgufBytes {
 public:
  GgufBytes& Raw(absl::string_view bytes) {
    bytes_.append(bytes.data(), bytes.size());
    return *this;
  }
  template <typename T>
  GgufBytes& Put(T value) {
    char buffer[sizeof(T)];
    std::memcpy(buffer, &value, sizeof(T));
    bytes_.append(buffer, sizeof(T));
    return *this;
  }
  GgufBytes& U8(uint8_t value) { return Put(value); }
  GgufBytes& U32(uint32_t value) { return Put(value); }
  GgufBytes& U64(uint64_t value) { return Put(value); }
  GgufBytes& Str(absl::string_view text) {
    U64(text.size());
    return Raw(text);
  }
  // Magic, version and counts.
  GgufBytes& Header(uint64_t tensors, uint64_t pairs, uint32_t version = 3) {
    Raw("GGUF");
    U32(version);
    U64(tensors);
    return U64(pairs);
  }
  // A key and a value type; the value follows.
  GgufBytes& Key(absl::string_view key, GgufValueType type) {
    Str(key);
    return U32(static_cast<uint32_t>(type));
  }
  GgufBytes& Tensor(absl::string_view name, std::vector<uint64_t> dims,
                    uint32_t type, uint64_t offset) {
    Str(name);
    U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t dim : dims) U64(dim);
    U32(type);
    return U64(offset);
  }
  GgufBytes& PadTo(size_t alignment) {
    bytes_.append((alignment - bytes_.size() % alignment) % alignment, '\0');
    return *this;
  }
  GgufBytes& Fill(size_t size, char byte) {
    bytes_.append(size, byte);
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::string& str() const { return bytes_; }

 private:
  std::string bytes_;
};

void WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

// Reads all of `tensor` from `file`, `chunk` bytes per ReadAt.
absl::StatusOr<std::vector<uint8_t>> ReadTensor(const GgufFile& file,
                                                const GgufTensorInfo& tensor,
                                                size_t chunk = 4096) {
  std::vector<uint8_t> bytes(tensor.byte_size);
  for (uint64_t offset = 0; offset < bytes.size(); offset += chunk) {
    size_t size = std::min<uint64_t>(chunk, bytes.size() - offset);
    absl::Status status = file.ReadAt(
        tensor, offset, std::span<uint8_t>(bytes.data() + offset, size));
    if (!status.ok()) return status;
  }
  return bytes;
}

std::vector<std::string> Keys(const std::vector<GgufKeyValue>& metadata) {
  std::vector<std::string> keys;
  for (const GgufKeyValue& pair : metadata) keys.push_back(pair.key);
  return keys;
}

// Writes `specs` to `path` with random bytes (seeded by the tensor's index),
// appended in pieces of `chunk` bytes. Returns each tensor's bytes.
absl::StatusOr<std::vector<std::vector<uint8_t>>> WriteGguf(
    const std::string& path, const std::vector<GgufTensorSpec>& specs,
    absl::string_view name, const std::map<std::string, std::string>& metadata,
    size_t chunk = 1000) {
  absl::StatusOr<std::unique_ptr<GgufWriter>> writer =
      GgufWriter::Create(path, specs, name, metadata);
  if (!writer.ok()) return writer.status();
  std::vector<std::vector<uint8_t>> data;
  for (size_t i = 0; i < (*writer)->layout().tensors.size(); ++i) {
    data.push_back(
        RandomBytes((*writer)->layout().tensors[i].byte_size, 100 + i));
    const std::vector<uint8_t>& bytes = data.back();
    for (size_t offset = 0; offset < bytes.size(); offset += chunk) {
      absl::Status status = (*writer)->Append(std::span<const uint8_t>(
          bytes.data() + offset, std::min(chunk, bytes.size() - offset)));
      if (!status.ok()) return status;
    }
  }
  absl::Status status = (*writer)->Finish();
  if (!status.ok()) return status;
  return data;
}

TEST(GgmlTypeTest, NumbersTypesAsGgmlHDoes) {
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::kF32), kF32);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::kF16), kF16);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::kQ4_0), kQ4_0);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::kQ8_0), kQ8_0);
  EXPECT_EQ(static_cast<uint32_t>(GgmlType::kBF16), kBF16);
  EXPECT_EQ(GgmlTypeName(GgmlType::kQ8_0), "Q8_0");
  EXPECT_EQ(GgmlTypeName(static_cast<GgmlType>(4)), "unknown");
  // Removed from ggml: 4, 5, 31-33, 36-38; 43 is not yet there.
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u}) {
    EXPECT_FALSE(GgmlTypeTraitsOf(removed).has_value()) << removed;
  }
}

TEST(GgmlTypeTest, SizesTensorsAsGgmlDoes) {
  const std::vector<uint64_t> dims = {64, 3};  // 192 elements.
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kF32, dims), 192u * 4);
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kF16, dims), 192u * 2);
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kBF16, dims), 192u * 2);
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kQ8_0, dims), 6u * 34);
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kQ4_0, dims), 6u * 18);
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kQ4_K, {{256, 2}}), 2u * 144);
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kQ6_K, {{512}}), 2u * 210);
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kF32, {}), 4u);  // A scalar.
  EXPECT_EQ(*GgmlTensorByteSize(GgmlType::kF32, {{7, 0, 3}}), 0u);
  EXPECT_THAT(GgmlTensorByteSize(GgmlType::kQ8_0, {{48, 2}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a multiple")));
  EXPECT_THAT(GgmlTensorByteSize(GgmlType::kF32, {{1, 1, 1, 1, 1}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      GgmlTensorByteSize(GgmlType::kF32, {{1ull << 32, 1ull << 31}}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("INT64_MAX")));
}

TEST(GgmlTypeTest, MapsDTypesThatNeedNoConversion) {
  EXPECT_EQ(GgmlTypeFromDType(DType::kBF16), GgmlType::kBF16);
  EXPECT_EQ(GgmlTypeFromDType(DType::kI32), GgmlType::kI32);
  EXPECT_EQ(GgmlTypeFromDType(DType::kU8), std::nullopt);
  EXPECT_EQ(DTypeFromGgmlType(GgmlType::kF16), DType::kF16);
  EXPECT_EQ(DTypeFromGgmlType(GgmlType::kQ8_0), std::nullopt);
  for (DType dtype : AllDTypes()) {
    std::optional<GgmlType> type = GgmlTypeFromDType(dtype);
    if (type.has_value()) {
      EXPECT_EQ(DTypeFromGgmlType(*type), dtype) << DTypeName(dtype);
    }
  }
}

class GgufRoundTripTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GgufRoundTripTest, ReadsBackTypeDimsAndBytes) {
  const GgmlType type = GetParam();
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  const std::vector<GgufTensorSpec> specs = {
      {"blk.0.w", type, {3, 64}},
      {"blk.1.w", type, {2, 5, 32}},
  };
  ASSERT_OK_AND_ASSIGN(std::vector<std::vector<uint8_t>> data,
                       WriteGguf(path, specs, "round trip", {}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 32u);
  ASSERT_EQ(file->tensors().size(), 2u);
  const GgufTensorInfo& first = file->tensors()[0];
  const GgufTensorInfo& second = file->tensors()[1];
  EXPECT_EQ(first.name, "blk.0.w");
  EXPECT_EQ(first.type, type);
  EXPECT_THAT(first.dims, ElementsAre(64, 3));
  EXPECT_THAT(first.Shape(), ElementsAre(3, 64));
  EXPECT_THAT(second.dims, ElementsAre(32, 5, 2));
  EXPECT_THAT(second.Shape(), ElementsAre(2, 5, 32));
  const uint64_t elements[] = {192, 320};
  for (size_t i = 0; i < 2; ++i) {
    const GgufTensorInfo& tensor = file->tensors()[i];
    uint64_t want = 0;
    switch (type) {
      case GgmlType::kF32:
      case GgmlType::kI32:
        want = elements[i] * 4;
        break;
      case GgmlType::kF16:
      case GgmlType::kBF16:
      case GgmlType::kI16:
        want = elements[i] * 2;
        break;
      case GgmlType::kF64:
      case GgmlType::kI64:
        want = elements[i] * 8;
        break;
      case GgmlType::kI8:
        want = elements[i];
        break;
      case GgmlType::kQ8_0:
        want = elements[i] / 32 * 34;
        break;
      case GgmlType::kQ4_0:
        want = elements[i] / 32 * 18;
        break;
      default:
        FAIL();
    }
    EXPECT_EQ(tensor.byte_size, want) << tensor.name;
    EXPECT_EQ(tensor.offset % 32, 0u) << tensor.name;
    EXPECT_EQ(tensor.file_offset, file->data_offset() + tensor.offset);
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> bytes,
                         ReadTensor(*file, tensor, 100));
    EXPECT_EQ(bytes, data[i]) << tensor.name;
  }
  EXPECT_EQ(file->data_offset() % 32, 0u);
  EXPECT_EQ(second.offset, (first.byte_size + 31) / 32 * 32);
  EXPECT_EQ(file->file_size(),
            second.file_offset + (second.byte_size + 31) / 32 * 32);
}

INSTANTIATE_TEST_SUITE_P(WritableTypes, GgufRoundTripTest,
                         ::testing::Values(GgmlType::kF32, GgmlType::kF16,
                                           GgmlType::kBF16, GgmlType::kQ8_0,
                                           GgmlType::kQ4_0, GgmlType::kF64,
                                           GgmlType::kI8, GgmlType::kI16,
                                           GgmlType::kI32, GgmlType::kI64),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(GgmlTypeName(info.param));
                         });

TEST(GgufWriterTest, WritesNameAlignmentAndUtf8MetadataInKeyOrder) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  const std::map<std::string, std::string> metadata = {
      {"pstore.revision", "r-7"},
      {"general.architecture", "llama"},
      {"note", "ünïcode ✓ \"quoted\"\nnew line, 日本語"},
      {"empty", ""},
  };
  ASSERT_OK(WriteGguf(path, {{"w", GgmlType::kF32, {4}}}, "Llama ✓ 3", metadata)
                .status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_THAT(Keys(file->metadata()),
              ElementsAre("general.name", "general.alignment", "empty",
                          "general.architecture", "note", "pstore.revision"));
  EXPECT_EQ(*file->FindMetadata("general.name"),
            GgufValue::String("Llama ✓ 3"));
  EXPECT_EQ(*file->FindMetadata("general.alignment"),
            GgufValue::Unsigned(GgufValueType::kUint32, 32));
  for (const auto& [key, value] : metadata) {
    const std::string* read = file->FindString(key);
    ASSERT_NE(read, nullptr) << key;
    EXPECT_EQ(*read, value) << key;
  }
  EXPECT_EQ(file->FindMetadata("absent"), nullptr);
  EXPECT_EQ(file->FindString("general.alignment"), nullptr);
}

TEST(GgufWriterTest, StoresDimsInnermostFirstOnDisk) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  ASSERT_OK(
      WriteGguf(path, {{"t", GgmlType::kF16, {2, 3, 4, 32}}}, "", {}).status());
  // The tensor info follows the name: u32 n_dims, then the dims as u64s.
  const std::string bytes = ReadFile(path);
  const std::string name = GgufBytes().Str("t").str();
  const size_t at = bytes.rfind(name);
  ASSERT_NE(at, std::string::npos);
  const std::string expected =
      GgufBytes().U32(4).U64(32).U64(4).U64(3).U64(2).U32(kF16).U64(0).str();
  EXPECT_EQ(bytes.substr(at + name.size(), expected.size()), expected);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_THAT(file->tensors()[0].Shape(), ElementsAre(2, 3, 4, 32));
}

TEST(GgufWriterTest, WritesTheSpecHeaderByteForByte) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  ASSERT_OK_AND_ASSIGN(
      std::vector<std::vector<uint8_t>> data,
      WriteGguf(path, {{"a", GgmlType::kF16, {3}}, {"b", GgmlType::kF32, {2}}},
                "n", {{"k", "v"}}));
  GgufBytes expected;
  expected.Header(2, 3)
      .Key("general.name", GgufValueType::kString)
      .Str("n")
      .Key("general.alignment", GgufValueType::kUint32)
      .U32(32)
      .Key("k", GgufValueType::kString)
      .Str("v")
      .Tensor("a", {3}, kF16, 0)
      .Tensor("b", {2}, kF32, 32)
      .PadTo(32);
  expected
      .Raw(absl::string_view(reinterpret_cast<const char*>(data[0].data()),
                             data[0].size()))
      .PadTo(32)
      .Raw(absl::string_view(reinterpret_cast<const char*>(data[1].data()),
                             data[1].size()))
      .PadTo(32);
  EXPECT_EQ(ReadFile(path), expected.str());
}

TEST(GgufWriterTest, LayoutDescribesTheFileItWrites) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  const std::vector<GgufTensorSpec> specs = {
      {"odd", GgmlType::kF16, {7}},
      {"q8", GgmlType::kQ8_0, {2, 96}},
      {"q4", GgmlType::kQ4_0, {32}},
  };
  ASSERT_OK_AND_ASSIGN(GgufLayout layout,
                       ComputeGgufLayout(specs, "m", {{"a", "b"}}));
  ASSERT_OK(WriteGguf(path, specs, "m", {{"a", "b"}}).status());
  const std::string bytes = ReadFile(path);
  EXPECT_EQ(bytes.size(), layout.file_size);
  EXPECT_EQ(bytes.substr(0, layout.data_offset), layout.header_bytes);
  EXPECT_EQ(layout.data_offset % 32, 0u);
  ASSERT_EQ(layout.tensors.size(), 3u);
  EXPECT_EQ(layout.tensors[0].offset, 0u);
  EXPECT_EQ(layout.tensors[0].byte_size, 14u);
  EXPECT_EQ(layout.tensors[1].offset, 32u);
  EXPECT_EQ(layout.tensors[1].byte_size, 6u * 34);
  EXPECT_EQ(layout.tensors[2].offset, 32u + 224);
  EXPECT_EQ(layout.tensors[2].byte_size, 18u);
  EXPECT_EQ(layout.file_size, layout.data_offset + 256 + 32);
  // The padding after each tensor is zeros.
  for (const GgufTensorInfo& tensor : layout.tensors) {
    const uint64_t end = tensor.file_offset + tensor.byte_size;
    const uint64_t padded = (end + 31) / 32 * 32;
    EXPECT_EQ(bytes.substr(end, padded - end), std::string(padded - end, '\0'))
        << tensor.name;
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(file->tensors()[i].file_offset, layout.tensors[i].file_offset);
  }
}

TEST(GgufWriterTest, WritesTheSameBytesForTheSameInput) {
  TempDir tmp;
  const std::vector<GgufTensorSpec> specs = {
      {"b", GgmlType::kBF16, {5, 3}},
      {"a", GgmlType::kQ4_0, {64}},
  };
  const std::map<std::string, std::string> metadata = {{"x", "1"}, {"y", "2"}};
  ASSERT_OK(WriteGguf(tmp.Sub("one.gguf"), specs, "m", metadata, 7).status());
  ASSERT_OK(
      WriteGguf(tmp.Sub("two.gguf"), specs, "m", metadata, 1 << 20).status());
  EXPECT_EQ(ReadFile(tmp.Sub("one.gguf")), ReadFile(tmp.Sub("two.gguf")));
}

TEST(GgufWriterTest, WritesAFileWithoutTensors) {
  TempDir tmp;
  const std::string path = tmp.Sub("empty.gguf");
  ASSERT_OK(WriteGguf(path, {}, "nothing", {{"k", "v"}}).status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_THAT(file->tensors(), IsEmpty());
  EXPECT_EQ(file->file_size(), file->data_offset());
  EXPECT_EQ(file->data_offset() % 32, 0u);
  EXPECT_EQ(*file->FindString("k"), "v");
}

TEST(GgufWriterTest, WritesOneDimAndScalarTensors) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  ASSERT_OK(
      WriteGguf(path,
                {{"bias", GgmlType::kF32, {5}}, {"scale", GgmlType::kF32, {}}},
                "", {})
          .status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_THAT(file->FindTensor("bias")->dims, ElementsAre(5));
  // ggml has no 0-dim tensors: a scalar is written as one element.
  EXPECT_THAT(file->FindTensor("scale")->dims, ElementsAre(1));
  EXPECT_EQ(file->FindTensor("scale")->byte_size, 4u);
  EXPECT_EQ(file->FindTensor("nope"), nullptr);
}

TEST(GgufWriterTest, ReplacesAnExistingFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  WriteFile(path, "old contents");
  ASSERT_OK(WriteGguf(path, {{"w", GgmlType::kF32, {2}}}, "", {}).status());
  EXPECT_OK(GgufFile::Open(path).status());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(GgufWriterTest, RefusesAppendPastTheEndOfTheCurrentTensor) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufWriter> writer,
                       GgufWriter::Create(path,
                                          std::vector<GgufTensorSpec>{
                                              {"a", GgmlType::kF32, {2}},
                                              {"b", GgmlType::kF16, {2}}},
                                          "", {}));
  ASSERT_OK(writer->Append(std::vector<uint8_t>(6, 1)));
  // 6 of 8 bytes of "a": 4 more would span into "b".
  EXPECT_THAT(writer->Append(std::vector<uint8_t>(4, 2)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("overruns tensor 'a'")));
  ASSERT_OK(writer->Append(std::vector<uint8_t>(2, 3)));
  ASSERT_OK(writer->Append(std::vector<uint8_t>(4, 4)));
  EXPECT_THAT(writer->Append(std::vector<uint8_t>(1, 5)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("every tensor is complete")));
  EXPECT_OK(writer->Append({}));
  ASSERT_OK(writer->Finish());
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(writer->Append(std::vector<uint8_t>(1, 5)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> a,
                       ReadTensor(*file, *file->FindTensor("a")));
  EXPECT_THAT(a, ElementsAre(1, 1, 1, 1, 1, 1, 3, 3));
}

TEST(GgufWriterTest, RefusesFinishBeforeEveryTensorIsComplete) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<GgufWriter> writer,
      GgufWriter::Create(
          path, std::vector<GgufTensorSpec>{{"a", GgmlType::kF32, {2}}}, "",
          {}));
  ASSERT_OK(writer->Append(std::vector<uint8_t>(3, 1)));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("tensor 'a' has 3 of 8 bytes")));
  EXPECT_FALSE(std::filesystem::exists(path));
  // The writer stays usable.
  ASSERT_OK(writer->Append(std::vector<uint8_t>(5, 1)));
  ASSERT_OK(writer->Finish());
  EXPECT_OK(GgufFile::Open(path).status());
}

TEST(GgufWriterTest, LeavesNoFileWhenDestroyedWithoutFinish) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<GgufWriter> writer,
        GgufWriter::Create(
            path, std::vector<GgufTensorSpec>{{"a", GgmlType::kF32, {2}}}, "",
            {}));
    ASSERT_OK(writer->Append(std::vector<uint8_t>(8, 1)));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(GgufWriterTest, ReportsENOSPCAsResourceExhaustedAndLeavesNoFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.gguf");
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  std::error_code error;
  std::filesystem::create_symlink("/dev/full", path + ".tmp", error);
  if (error) GTEST_SKIP() << "cannot link /dev/full";
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<GgufWriter> writer,
      GgufWriter::Create(
          path, std::vector<GgufTensorSpec>{{"a", GgmlType::kF32, {1'000'000}}},
          "", {}));
  EXPECT_THAT(writer->Append(std::vector<uint8_t>(4'000'000, 1)),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(writer->Finish(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("earlier error")));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(GgufWriterTest, ReportsAMissingDirectoryAsNotFound) {
  TempDir tmp;
  EXPECT_THAT(GgufWriter::Create(tmp.Sub("no/such/dir/model.gguf"), {}, "", {})
                  .status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(GgufWriterTest, RefusesBadSpecsAndMetadata) {
  struct Case {
    std::vector<GgufTensorSpec> specs;
    std::map<std::string, std::string> metadata;
    std::string name;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"", GgmlType::kF32, {1}}}, {}, "", "empty name"},
      {{{"a", GgmlType::kF32, {1}}, {"a", GgmlType::kF16, {1}}},
       {},
       "",
       "duplicate tensor name 'a'"},
      {{{std::string(64, 'n'), GgmlType::kF32, {1}}},
       {},
       "",
       "more than the 63 ggml accepts"},
      {{{"bad\xff", GgmlType::kF32, {1}}}, {}, "", "not valid UTF-8"},
      {{{"k", GgmlType::kQ4_K, {256}}},
       {},
       "",
       "does not write ggml type Q4_K"},
      {{{"i", GgmlType::kQ4_1, {32}}}, {}, "", "does not write ggml type Q4_1"},
      {{{"q", GgmlType::kQ8_0, {32, 48}}}, {}, "", "not a multiple"},
      {{{"q", GgmlType::kQ4_0, {16}}}, {}, "", "not a multiple"},
      {{{"five", GgmlType::kF32, {1, 1, 1, 1, 1}}},
       {},
       "",
       "more than ggml's 4"},
      {{{"neg", GgmlType::kF32, {2, -1}}}, {}, "", "negative dim"},
      {{{"zero", GgmlType::kF32, {0, 4}}}, {}, "", "zero dim"},
      {{{"big", GgmlType::kF32, {1ll << 40, 1ll << 40}}}, {}, "", "INT64_MAX"},
      {{}, {{"general.name", "x"}}, "", "written by the writer itself"},
      {{}, {{"general.alignment", "64"}}, "", "written by the writer itself"},
      {{}, {{"", "x"}}, "", "metadata key is empty"},
      {{}, {{"k", "bad\xc0\x80"}}, "", "not valid UTF-8"},
      {{}, {}, "bad\xed\xa0\x80", "not valid UTF-8"},
  };
  TempDir tmp;
  for (const Case& c : cases) {
    EXPECT_THAT(
        ComputeGgufLayout(c.specs, c.name, c.metadata),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.message;
    EXPECT_THAT(
        GgufWriter::Create(tmp.Sub("x.gguf"), c.specs, c.name, c.metadata),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.message;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("x.gguf.tmp")));
}

// A valid file: two F32 tensors, "a" [8] at 0 and "b" [4, 2] at 32, and the
// bytes 0x11 and 0x22.
GgufBytes TwoTensorFile() {
  GgufBytes bytes;
  bytes.Header(2, 1)
      .Key("general.name", GgufValueType::kString)
      .Str("two")
      .Tensor("a", {8}, kF32, 0)
      .Tensor("b", {4, 2}, kF32, 32)
      .PadTo(32)
      .Fill(32, '\x11')
      .Fill(32, '\x22');
  return bytes;
}

TEST(GgufFileTest, ReadsAHandMadeFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("hand.gguf");
  WriteFile(path, TwoTensorFile().str());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_EQ(file->alignment(), 32u);  // The default: no general.alignment.
  EXPECT_EQ(*file->FindString("general.name"), "two");
  ASSERT_EQ(file->tensors().size(), 2u);
  EXPECT_THAT(file->tensors()[1].dims, ElementsAre(4, 2));
  EXPECT_EQ(file->tensors()[1].byte_size, 32u);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> b,
                       ReadTensor(*file, file->tensors()[1], 5));
  EXPECT_EQ(b, std::vector<uint8_t>(32, 0x22));
  EXPECT_EQ(file->header().data_size, 64u);
}

TEST(GgufFileTest, ReadsEveryValueTypeAndNestedArrays) {
  GgufBytes bytes;
  bytes.Header(0, 15)
      .Key("u8", GgufValueType::kUint8)
      .U8(200)
      .Key("i8", GgufValueType::kInt8)
      .Put<int8_t>(-100)
      .Key("u16", GgufValueType::kUint16)
      .Put<uint16_t>(60000)
      .Key("i16", GgufValueType::kInt16)
      .Put<int16_t>(-30000)
      .Key("u32", GgufValueType::kUint32)
      .U32(4'000'000'000u)
      .Key("i32", GgufValueType::kInt32)
      .Put<int32_t>(-2'000'000'000)
      .Key("f32", GgufValueType::kFloat32)
      .Put<float>(0.5f)
      .Key("bool", GgufValueType::kBool)
      .U8(1)
      .Key("string", GgufValueType::kString)
      .Str("✓")
      .Key("u64", GgufValueType::kUint64)
      .U64(~uint64_t{0})
      .Key("i64", GgufValueType::kInt64)
      .Put<int64_t>(-(int64_t{1} << 62))
      .Key("f64", GgufValueType::kFloat64)
      .Put<double>(-1.25)
      .Key("tokens", GgufValueType::kArray)
      .U32(static_cast<uint32_t>(GgufValueType::kString))
      .U64(3)
      .Str("<s>")
      .Str("")
      .Str("▁the")
      .Key("nested", GgufValueType::kArray)
      .U32(static_cast<uint32_t>(GgufValueType::kArray))
      .U64(2)
      .U32(static_cast<uint32_t>(GgufValueType::kInt16))
      .U64(2)
      .Put<int16_t>(-1)
      .Put<int16_t>(2)
      .U32(static_cast<uint32_t>(GgufValueType::kBool))
      .U64(0)
      .Key("empty", GgufValueType::kArray)
      .U32(static_cast<uint32_t>(GgufValueType::kFloat32))
      .U64(0);
  ASSERT_OK_AND_ASSIGN(GgufHeader header, ParseGgufHeader(bytes.str()));
  ASSERT_EQ(header.metadata.size(), 15u);
  const auto value = [&](absl::string_view key) -> const GgufValue& {
    for (const GgufKeyValue& pair : header.metadata) {
      if (pair.key == key) return pair.value;
    }
    static const GgufValue kNone;
    ADD_FAILURE() << key;
    return kNone;
  };
  EXPECT_EQ(value("u8"), GgufValue::Unsigned(GgufValueType::kUint8, 200));
  EXPECT_EQ(value("i8"), GgufValue::Signed(GgufValueType::kInt8, -100));
  EXPECT_EQ(value("u16"), GgufValue::Unsigned(GgufValueType::kUint16, 60000));
  EXPECT_EQ(value("i16"), GgufValue::Signed(GgufValueType::kInt16, -30000));
  EXPECT_EQ(value("u32"),
            GgufValue::Unsigned(GgufValueType::kUint32, 4'000'000'000u));
  EXPECT_EQ(value("i32"),
            GgufValue::Signed(GgufValueType::kInt32, -2'000'000'000));
  EXPECT_EQ(value("f32"), GgufValue::Float(GgufValueType::kFloat32, 0.5));
  EXPECT_EQ(value("bool"), GgufValue::Bool(true));
  EXPECT_EQ(value("string"), GgufValue::String("✓"));
  EXPECT_EQ(value("u64"),
            GgufValue::Unsigned(GgufValueType::kUint64, ~uint64_t{0}));
  EXPECT_EQ(value("i64"),
            GgufValue::Signed(GgufValueType::kInt64, -(int64_t{1} << 62)));
  EXPECT_EQ(value("f64"), GgufValue::Float(GgufValueType::kFloat64, -1.25));
  EXPECT_EQ(value("tokens"),
            GgufValue::Array({GgufValueType::kString,
                              {GgufValue::String("<s>"), GgufValue::String(""),
                               GgufValue::String("▁the")}}));
  EXPECT_EQ(
      value("nested"),
      GgufValue::Array(
          {GgufValueType::kArray,
           {GgufValue::Array({GgufValueType::kInt16,
                              {GgufValue::Signed(GgufValueType::kInt16, -1),
                               GgufValue::Signed(GgufValueType::kInt16, 2)}}),
            GgufValue::Array({GgufValueType::kBool, {}})}}));
  EXPECT_EQ(value("empty"), GgufValue::Array({GgufValueType::kFloat32, {}}));
  // The accessors.
  EXPECT_EQ(value("u64").AsUint64(), ~uint64_t{0});
  EXPECT_EQ(value("u64").AsInt64(), std::nullopt);
  EXPECT_EQ(value("i8").AsInt64(), -100);
  EXPECT_EQ(value("i8").AsUint64(), std::nullopt);
  EXPECT_EQ(value("u16").AsDouble(), 60000.0);
  EXPECT_EQ(value("f32").AsUint64(), std::nullopt);
  EXPECT_EQ(value("string").AsArray(), nullptr);
  ASSERT_NE(value("tokens").AsArray(), nullptr);
  EXPECT_EQ(value("tokens").AsArray()->elements.size(), 3u);
}

TEST(GgufFileTest, AcceptsVersion2) {
  GgufBytes bytes;
  bytes.Header(1, 0, 2).Tensor("t", {8}, kF32, 0).PadTo(32).Fill(32, 'x');
  ASSERT_OK_AND_ASSIGN(GgufHeader header, ParseGgufHeader(bytes.str()));
  EXPECT_EQ(header.version, 2u);
  EXPECT_EQ(header.tensors.size(), 1u);
}

TEST(GgufFileTest, AlignsToGeneralAlignment) {
  GgufBytes bytes;
  bytes.Header(2, 1)
      .Key("general.alignment", GgufValueType::kUint32)
      .U32(256)
      .Tensor("a", {8}, kF32, 0)
      .Tensor("b", {8}, kF32, 256)
      .PadTo(256)
      .Fill(256 + 32, '\x01');
  TempDir tmp;
  const std::string path = tmp.Sub("aligned.gguf");
  WriteFile(path, bytes.str());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_EQ(file->alignment(), 256u);
  EXPECT_EQ(file->data_offset(), 256u);
  EXPECT_EQ(file->tensors()[1].file_offset, 512u);
}

TEST(GgufFileTest, AcceptsTensorsOutOfOrderWithGapsAndEmptyTensors) {
  GgufBytes bytes;
  bytes.Header(3, 0)
      .Tensor("late", {8}, kF32, 96)
      .Tensor("early", {8}, kF32, 0)
      .Tensor("empty", {0, 4}, kF32, 0)
      .PadTo(32)
      .Fill(128, '\0');
  ASSERT_OK_AND_ASSIGN(GgufHeader header, ParseGgufHeader(bytes.str()));
  EXPECT_EQ(header.data_size, 128u);
  EXPECT_EQ(header.tensors[2].byte_size, 0u);
}

TEST(GgufFileTest, ReadsAHeaderLongerThanTheFirstRead) {
  // A 3 MiB string makes Open read past its first 1 MiB prefix.
  const std::string long_value(3 << 20, 'v');
  GgufBytes bytes;
  bytes.Header(1, 1)
      .Key("long", GgufValueType::kString)
      .Str(long_value)
      .Tensor("t", {8}, kF32, 0)
      .PadTo(32)
      .Fill(32, 't');
  TempDir tmp;
  const std::string path = tmp.Sub("long.gguf");
  WriteFile(path, bytes.str());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  EXPECT_EQ(*file->FindString("long"), long_value);
  ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> t,
                       ReadTensor(*file, file->tensors()[0]));
  EXPECT_EQ(t, std::vector<uint8_t>(32, 't'));
}

TEST(GgufFileTest, ReadsTensorBytesInPiecesAndRefusesReadsPastTheEnd) {
  TempDir tmp;
  const std::string path = tmp.Sub("hand.gguf");
  WriteFile(path, TwoTensorFile().str());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  const GgufTensorInfo& a = *file->FindTensor("a");
  std::vector<uint8_t> dest(8);
  ASSERT_OK(file->ReadAt(a, 24, dest));
  EXPECT_EQ(dest, std::vector<uint8_t>(8, 0x11));
  EXPECT_THAT(file->ReadAt(a, 25, dest), StatusIs(absl::StatusCode::kOutOfRange,
                                                  HasSubstr("past its end")));
  GgufTensorInfo foreign = a;
  foreign.file_offset = 1 << 20;
  EXPECT_THAT(file->ReadAt(foreign, 0, dest),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(GgufFileTest, ReportsDataLossWhenTheFileShrinksAfterOpen) {
  TempDir tmp;
  const std::string path = tmp.Sub("hand.gguf");
  WriteFile(path, TwoTensorFile().str());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  std::filesystem::resize_file(path, file->data_offset() + 40);
  std::vector<uint8_t> dest(32);
  EXPECT_THAT(file->ReadAt(*file->FindTensor("b"), 0, dest),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(GgufFileTest, ReportsAMissingFileAsNotFound) {
  TempDir tmp;
  EXPECT_THAT(GgufFile::Open(tmp.Sub("absent.gguf")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(GgufFileTest, RejectsADirectory) {
  TempDir tmp;
  EXPECT_THAT(GgufFile::Open(tmp.path().string()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a regular file")));
}

TEST(GgufFileTest, RejectsATensorPastTheEndOfTheFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("short.gguf");
  std::string bytes = TwoTensorFile().str();
  bytes.pop_back();
  WriteFile(path, bytes);
  EXPECT_THAT(GgufFile::Open(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("tensor 'b' at [")));
  // With the data section cut off entirely.
  WriteFile(path, bytes.substr(0, bytes.size() - 63));
  EXPECT_THAT(GgufFile::Open(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("tensor 'a' at [")));
}

TEST(ParseGgufHeaderTest, AsksForMoreBytesForEveryTruncatedHeader) {
  const GgufBytes bytes = TwoTensorFile();
  ASSERT_OK_AND_ASSIGN(GgufHeader header, ParseGgufHeader(bytes.str()));
  EXPECT_EQ(header.data_offset, bytes.size() - 64);
  for (size_t size = 0; size < header.header_size; ++size) {
    EXPECT_THAT(
        ParseGgufHeader(absl::string_view(bytes.str()).substr(0, size)),
        StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("need more bytes")))
        << size;
  }
  // The padding and the data are not needed.
  EXPECT_OK(ParseGgufHeader(
      absl::string_view(bytes.str()).substr(0, header.header_size)));
  // A file cut inside the header is invalid.
  TempDir tmp;
  const std::string path = tmp.Sub("cut.gguf");
  WriteFile(path, bytes.str().substr(0, header.header_size - 1));
  EXPECT_THAT(GgufFile::Open(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("runs past the end of the file")));
}

TEST(ParseGgufHeaderTest, AsksForMoreBytesWhenAStringRunsPastTheEnd) {
  GgufBytes bytes;
  bytes.Header(0, 1).Key("k", GgufValueType::kString).U64(100).Raw("short");
  EXPECT_THAT(
      ParseGgufHeader(bytes.str()),
      StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("need more bytes")));
  TempDir tmp;
  const std::string path = tmp.Sub("string.gguf");
  WriteFile(path, bytes.str());
  EXPECT_THAT(GgufFile::Open(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("metadata key 'k'")));
}

TEST(ParseGgufHeaderTest, DoesNotAllocateForALongArrayBeforeItsBytes) {
  // 2^24 elements claimed, 3 bytes given: a prefix, not an allocation.
  GgufBytes bytes;
  bytes.Header(0, 1)
      .Key("big", GgufValueType::kArray)
      .U32(static_cast<uint32_t>(GgufValueType::kUint64))
      .U64(uint64_t{1} << 24)
      .Raw("abc");
  EXPECT_THAT(
      ParseGgufHeader(bytes.str()),
      StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("need more bytes")));
}

TEST(ParseGgufHeaderTest, RefusesMetadataThatDecodesPastTheMemoryLimit) {
  // 2^24 one-byte values are all there, but decode to 2^24 GgufValues.
  ASSERT_GT((uint64_t{1} << 24) * sizeof(GgufValue), kMaxGgufDecodedBytes);
  GgufBytes bytes;
  bytes.Header(0, 1)
      .Key("big", GgufValueType::kArray)
      .U32(static_cast<uint32_t>(GgufValueType::kUint8))
      .U64(uint64_t{1} << 24)
      .Fill(size_t{1} << 24, '\x07');
  EXPECT_THAT(ParseGgufHeader(bytes.str()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("decode to more than")));
}

struct RejectCase {
  std::string test_name;
  std::string bytes;  // A whole file.
  std::string message;
};

void PrintTo(const RejectCase& c, std::ostream* os) { *os << c.test_name; }

class RejectsHeaderTest : public ::testing::TestWithParam<RejectCase> {};

TEST_P(RejectsHeaderTest, WithInvalidArgumentNamingTheProblem) {
  const RejectCase& c = GetParam();
  EXPECT_THAT(
      ParseGgufHeader(c.bytes),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  // And the same through a file, whose errors name the path.
  TempDir tmp;
  const std::string path = tmp.Sub("crafted.gguf");
  WriteFile(path, c.bytes);
  EXPECT_THAT(
      GgufFile::Open(path),
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::AllOf(HasSubstr(c.message), HasSubstr(path))));
}

// A file of `pairs` metadata (counted `count` times) and no tensors.
std::string MetadataFile(uint64_t count, const GgufBytes& pairs) {
  return GgufBytes().Header(0, count).Raw(pairs.str()).PadTo(32).str();
}

// A file of the tensor infos `infos` (`count` of them) and `data` bytes.
std::string TensorFile(uint64_t count, const GgufBytes& infos,
                       size_t data = 256, uint32_t alignment = 0) {
  GgufBytes bytes;
  bytes.Header(count, alignment == 0 ? 0 : 1);
  if (alignment != 0) {
    bytes.Key("general.alignment", GgufValueType::kUint32).U32(alignment);
  }
  return bytes.Raw(infos.str())
      .PadTo(alignment == 0 ? 32 : alignment)
      .Fill(data, '\0')
      .str();
}

// An array nested `depth` deep around an empty UINT8 array.
GgufBytes NestedArrays(int depth) {
  GgufBytes bytes;
  bytes.Key("deep", GgufValueType::kArray);
  for (int i = 1; i < depth; ++i) {
    bytes.U32(static_cast<uint32_t>(GgufValueType::kArray)).U64(1);
  }
  return bytes.U32(static_cast<uint32_t>(GgufValueType::kUint8)).U64(0);
}

TEST(ParseGgufHeaderTest, AcceptsArraysNestedFourDeep) {
  ASSERT_OK_AND_ASSIGN(GgufHeader header,
                       ParseGgufHeader(MetadataFile(1, NestedArrays(4))));
  const GgufValue* value = &header.metadata[0].value;
  for (int depth = 1; depth < 4; ++depth) {
    ASSERT_NE(value->AsArray(), nullptr);
    ASSERT_EQ(value->AsArray()->elements.size(), 1u);
    value = &value->AsArray()->elements[0];
  }
  EXPECT_EQ(*value, GgufValue::Array({GgufValueType::kUint8, {}}));
}

INSTANTIATE_TEST_SUITE_P(
    GgufHeader, RejectsHeaderTest,
    ::testing::ValuesIn(std::vector<RejectCase>{
        {"BadMagic", GgufBytes().Raw("GGML").U32(3).U64(0).U64(0).str(),
         "bad magic 'GGML'"},
        {"Version1", GgufBytes().Header(0, 0, 1).str(), "version 1"},
        {"Version4", GgufBytes().Header(0, 0, 4).str(),
         "unsupported version 4"},
        {"Version0", GgufBytes().Header(0, 0, 0).str(),
         "unsupported version 0"},
        {"BigEndian", GgufBytes().Header(0, 0, 0x03000000).str(), "big-endian"},
        {"AbsurdTensorCount", GgufBytes().Header(uint64_t{1} << 40, 0).str(),
         "tensor count 1099511627776 exceeds"},
        {"AbsurdMetadataCount", GgufBytes().Header(0, ~uint64_t{0}).str(),
         "metadata count"},
        {"AbsurdKeyLength",
         GgufBytes().Header(0, 1).U64(uint64_t{1} << 62).str(),
         "more than the limit of 65535"},
        {"AbsurdStringLength",
         MetadataFile(1, GgufBytes()
                             .Key("k", GgufValueType::kString)
                             .U64(uint64_t{1} << 40)),
         "more than the limit of 67108864"},
        {"AbsurdArrayLength",
         MetadataFile(1, GgufBytes()
                             .Key("k", GgufValueType::kArray)
                             .U32(static_cast<uint32_t>(GgufValueType::kUint8))
                             .U64(uint64_t{1} << 40)),
         "has 1099511627776 elements, more than the limit"},
        {"UnknownValueType",
         MetadataFile(1, GgufBytes().Str("k").U32(13).U8(0)),
         "metadata key 'k': unknown value type 13"},
        {"UnknownArrayElementType",
         MetadataFile(
             1, GgufBytes().Key("k", GgufValueType::kArray).U32(99).U64(0)),
         "unknown element value type 99"},
        {"BoolNeitherZeroNorOne",
         MetadataFile(1, GgufBytes().Key("b", GgufValueType::kBool).U8(2)),
         "neither 0 nor 1"},
        {"BoolInArrayNeitherZeroNorOne",
         MetadataFile(1, GgufBytes()
                             .Key("b", GgufValueType::kArray)
                             .U32(static_cast<uint32_t>(GgufValueType::kBool))
                             .U64(2)
                             .U8(1)
                             .U8(7)),
         "ARRAY element 1: BOOL value"},
        {"DuplicateKey",
         MetadataFile(2, GgufBytes()
                             .Key("k", GgufValueType::kUint8)
                             .U8(1)
                             .Key("k", GgufValueType::kUint8)
                             .U8(2)),
         "metadata key 'k' appears twice"},
        {"EmptyKey",
         MetadataFile(1, GgufBytes().Key("", GgufValueType::kUint8).U8(1)),
         "empty key"},
        {"AlignmentNotUint32",
         MetadataFile(1, GgufBytes()
                             .Key("general.alignment", GgufValueType::kUint64)
                             .U64(32)),
         "is of type UINT64, not UINT32"},
        {"AlignmentNotAPowerOf2",
         MetadataFile(1, GgufBytes()
                             .Key("general.alignment", GgufValueType::kUint32)
                             .U32(48)),
         "48, not a power of 2"},
        {"AlignmentZero",
         MetadataFile(1, GgufBytes()
                             .Key("general.alignment", GgufValueType::kUint32)
                             .U32(0)),
         "0, not a power of 2"},
        {"ArraysNestedTooDeep", MetadataFile(1, NestedArrays(5)),
         "nests deeper than the limit of 4"},
        {"UnknownGgmlType", TensorFile(1, GgufBytes().Tensor("t", {8}, 4, 0)),
         "tensor 't': unknown ggml type 4"},
        {"AbsurdGgmlType", TensorFile(1, GgufBytes().Tensor("t", {8}, 1000, 0)),
         "unknown ggml type 1000"},
        {"TooManyDims",
         TensorFile(1, GgufBytes().Tensor("t", {1, 1, 1, 1, 1}, kF32, 0)),
         "has 5 dims, more than ggml's 4"},
        {"DimPastInt64Max",
         TensorFile(1, GgufBytes().Tensor("t", {~uint64_t{0}}, kF32, 0)),
         "exceeds INT64_MAX"},
        {"ElementCountOverflow",
         TensorFile(
             1, GgufBytes().Tensor("t", {uint64_t{1} << 32, uint64_t{1} << 32},
                                   kF32, 0)),
         "element count reaches INT64_MAX"},
        {"QuantizedRowNotAMultipleOfTheBlock",
         TensorFile(1, GgufBytes().Tensor("q", {33, 2}, kQ8_0, 0)),
         "tensor 'q': dims [33, 2]: Q8_0 packs 32 elements per block"},
        {"DuplicateTensorName",
         TensorFile(2, GgufBytes()
                           .Tensor("t", {8}, kF32, 0)
                           .Tensor("t", {8}, kF32, 32)),
         "tensor 't' appears twice"},
        {"MisalignedOffset",
         TensorFile(1, GgufBytes().Tensor("t", {8}, kF32, 16)),
         "offset 16 is not a multiple of the alignment 32"},
        {"MisalignedForGeneralAlignment",
         TensorFile(1, GgufBytes().Tensor("t", {8}, kF32, 32), 256, 64),
         "offset 32 is not a multiple of the alignment 64"},
        {"OverlappingTensors",
         TensorFile(2, GgufBytes()
                           .Tensor("a", {16}, kF32, 0)
                           .Tensor("b", {8}, kF32, 32)),
         "tensor 'b' at [32, 64) of the data section overlaps tensor 'a' "
         "at [0, 64)"},
        {"SizeLargerThanItsSlot",
         TensorFile(4, GgufBytes()
                           .Tensor("a", {8}, kF32, 0)
                           .Tensor("b", {8}, kF16, 32)
                           .Tensor("c", {64}, kQ8_0, 64)
                           .Tensor("d", {8}, kF32, 96)),
         "tensor 'd' at [96, 128) of the data section overlaps tensor 'c'"},
        {"OffsetOverflows",
         TensorFile(1, GgufBytes().Tensor("t", {8}, kF32, ~uint64_t{0} - 31)),
         "overflows 64 bits"},
    }),
    [](const ::testing::TestParamInfo<RejectCase>& info) {
      return info.param.test_name;
    });

}  // namespace
}  // namespace pstore
