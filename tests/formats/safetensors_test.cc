#include "formats/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
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

std::string LittleEndian64(uint64_t value) {
  std::string bytes;
  for (int i = 0; i < 8; ++i)
    bytes.push_back(static_cast<char>(value >> (8 * i)));
  return bytes;
}

// Returns a file: the length of `header_json`, `header_json`, then
// `data_size` data bytes.
std::string CraftFile(absl::string_view header_json, uint64_t data_size) {
  return absl::StrCat(LittleEndian64(header_json.size()), header_json,
                      std::string(data_size, '\x5a'));
}

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
absl::StatusOr<std::vector<uint8_t>> ReadTensor(const SafetensorsFile& file,
                                                const SafetensorsTensor& tensor,
                                                size_t chunk = 4096) {
  std::vector<uint8_t> bytes(tensor.byte_length);
  for (uint64_t offset = 0; offset < bytes.size(); offset += chunk) {
    size_t size = std::min<uint64_t>(chunk, bytes.size() - offset);
    absl::Status status = file.ReadAt(
        tensor, offset, std::span<uint8_t>(bytes.data() + offset, size));
    if (!status.ok()) return status;
  }
  return bytes;
}

std::vector<std::string> Names(const std::vector<SafetensorsTensor>& tensors) {
  std::vector<std::string> names;
  for (const SafetensorsTensor& tensor : tensors) names.push_back(tensor.name);
  return names;
}

// A tensor to write: its spec and its bytes.
struct TensorData {
  SafetensorsTensorSpec spec;
  std::vector<uint8_t> bytes;
};

TensorData RandomTensor(std::string name, DType dtype,
                        std::vector<int64_t> shape, uint64_t seed) {
  SafetensorsTensorSpec spec{std::move(name), dtype, std::move(shape)};
  uint64_t length = *TensorByteLength(spec.dtype, spec.shape);
  return {std::move(spec), RandomBytes(length, seed)};
}

// Writes `tensors` and `metadata` to `path`, appending each tensor's bytes
// in `chunk`-byte pieces.
absl::Status WriteTensors(const std::string& path,
                          const std::vector<TensorData>& tensors,
                          const std::map<std::string, std::string>& metadata,
                          size_t chunk = 1000) {
  std::vector<SafetensorsTensorSpec> specs;
  std::map<std::string, const TensorData*> by_name;
  for (const TensorData& tensor : tensors) {
    specs.push_back(tensor.spec);
    by_name[tensor.spec.name] = &tensor;
  }
  absl::StatusOr<std::unique_ptr<SafetensorsWriter>> writer =
      SafetensorsWriter::Create(path, specs, metadata);
  if (!writer.ok()) return writer.status();
  for (const SafetensorsTensor& tensor : (*writer)->layout().tensors) {
    const std::vector<uint8_t>& bytes = by_name.at(tensor.name)->bytes;
    for (size_t offset = 0; offset < bytes.size(); offset += chunk) {
      size_t size = std::min(chunk, bytes.size() - offset);
      absl::Status status = (*writer)->Append(
          std::span<const uint8_t>(bytes.data() + offset, size));
      if (!status.ok()) return status;
    }
  }
  return (*writer)->Finish();
}

// ---------------------------------------------------------------------------
// Fixtures written by the Rust safetensors crate.

struct FixtureTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
};

struct Fixture {
  std::string file;
  uint64_t size;
  std::vector<FixtureTensor> tensors;  // In data-offset order.
};

// The table of /work/shared/fixtures/README.md.
const std::vector<Fixture>& Fixtures() {
  static const auto* fixtures = new std::vector<Fixture>{
      {"float32.safetensors",
       236312,
       {{"embeddings", DType::kF32, {29528, 2}}}},
      {"float16.safetensors",
       118200,
       {{"embeddings", DType::kF16, {29528, 2}}}},
      {"int8.safetensors", 59136, {{"embeddings", DType::kI8, {29528, 2}}}},
      {"vocab-quantized.safetensors",
       387288,
       {{"weights", DType::kF64, {29524}},
        {"embeddings", DType::kF32, {128, 64}},
        {"mapping", DType::kI32, {29524}}}},
  };
  return *fixtures;
}

// Returns the fixture folder, or "" if it is absent.
std::string FixtureDir() {
  const char* root = std::getenv("PSTORE_FIXTURES_DIR");
  if (root == nullptr || *root == '\0') return "";
  std::string dir = absl::StrCat(root, "/safetensors");
  return std::filesystem::is_directory(dir) ? dir : "";
}

#define SKIP_WITHOUT_FIXTURES(dir)                                     \
  if ((dir).empty()) {                                                 \
    GTEST_SKIP() << "no safetensors fixtures: PSTORE_FIXTURES_DIR is " \
                    "unset or has no safetensors/ folder (see "        \
                    "/work/shared/fixtures/README.md)";                \
  }

TEST(SafetensorsFixtureTest, ReadsEveryFixtureAsTheReadmeDescribes) {
  const std::string dir = FixtureDir();
  SKIP_WITHOUT_FIXTURES(dir);
  std::map<std::string, const Fixture*> expected;
  for (const Fixture& fixture : Fixtures()) expected[fixture.file] = &fixture;

  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    SCOPED_TRACE(file);
    ASSERT_TRUE(expected.contains(file))
        << "fixture not in the README table: " << file;
    const Fixture& fixture = *expected[file];
    ++seen;

    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> st,
                         SafetensorsFile::Open(entry.path().string()));
    EXPECT_EQ(st->file_size(), fixture.size);
    EXPECT_EQ(st->data_offset() % 8, 0u);
    EXPECT_THAT(st->metadata(), IsEmpty());
    ASSERT_EQ(st->tensors().size(), fixture.tensors.size());
    uint64_t next = st->data_offset();
    for (size_t i = 0; i < fixture.tensors.size(); ++i) {
      const SafetensorsTensor& tensor = st->tensors()[i];
      EXPECT_EQ(tensor.name, fixture.tensors[i].name);
      EXPECT_EQ(tensor.dtype, fixture.tensors[i].dtype) << tensor.name;
      EXPECT_EQ(tensor.shape, fixture.tensors[i].shape) << tensor.name;
      EXPECT_EQ(tensor.byte_length,
                *TensorByteLength(tensor.dtype, tensor.shape));
      EXPECT_EQ(tensor.data_offset, next) << tensor.name;
      next = tensor.data_offset + tensor.byte_length;
      EXPECT_EQ(st->FindTensor(tensor.name), &tensor);
    }
    EXPECT_EQ(next, st->file_size()) << "byte lengths must fill the file";
  }
  EXPECT_EQ(seen, static_cast<int>(Fixtures().size()));
}

TEST(SafetensorsFixtureTest, RewritesEveryFixtureWithTheSameTensorBytes) {
  const std::string dir = FixtureDir();
  SKIP_WITHOUT_FIXTURES(dir);
  TempDir tmp;
  for (const Fixture& fixture : Fixtures()) {
    SCOPED_TRACE(fixture.file);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> original,
                         SafetensorsFile::Open(dir + "/" + fixture.file));
    std::vector<TensorData> tensors;
    for (const SafetensorsTensor& tensor : original->tensors()) {
      ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> bytes,
                           ReadTensor(*original, tensor, 10007));
      tensors.push_back({{tensor.name, tensor.dtype, tensor.shape}, bytes});
    }
    const std::string copy = tmp.Sub(fixture.file);
    ASSERT_OK(WriteTensors(copy, tensors, original->metadata(), 65536));

    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> rewritten,
                         SafetensorsFile::Open(copy));
    EXPECT_EQ(rewritten->file_size(), original->file_size());
    ASSERT_EQ(rewritten->tensors().size(), tensors.size());
    for (const TensorData& expected : tensors) {
      const SafetensorsTensor* tensor =
          rewritten->FindTensor(expected.spec.name);
      ASSERT_NE(tensor, nullptr) << expected.spec.name;
      EXPECT_EQ(tensor->dtype, expected.spec.dtype);
      EXPECT_EQ(tensor->shape, expected.spec.shape);
      ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> bytes,
                           ReadTensor(*rewritten, *tensor));
      EXPECT_TRUE(bytes == expected.bytes) << expected.spec.name;
    }
  }
}

TEST(SafetensorsFixtureTest,
     RewriteOfEveryFixtureMatchesTheRustCrateByteForByte) {
  const std::string dir = FixtureDir();
  SKIP_WITHOUT_FIXTURES(dir);
  TempDir tmp;
  // The writer lays tensors out in the Rust crate's order (alignment, then
  // name) with the same compact header, so the whole file comes out
  // identical, for one tensor or several of mixed dtypes.
  for (const char* file : {"float32.safetensors", "float16.safetensors",
                           "int8.safetensors", "vocab-quantized.safetensors"}) {
    SCOPED_TRACE(file);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> original,
                         SafetensorsFile::Open(absl::StrCat(dir, "/", file)));
    std::vector<TensorData> tensors;
    for (const SafetensorsTensor& tensor : original->tensors()) {
      ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> bytes,
                           ReadTensor(*original, tensor));
      tensors.push_back({{tensor.name, tensor.dtype, tensor.shape}, bytes});
    }
    const std::string copy = tmp.Sub(file);
    ASSERT_OK(WriteTensors(copy, tensors, original->metadata()));
    EXPECT_TRUE(ReadFile(copy) == ReadFile(absl::StrCat(dir, "/", file)));
  }
}

// ---------------------------------------------------------------------------
// Writing and reading back.

std::vector<TensorData> MixedTensors() {
  std::vector<TensorData> tensors;
  tensors.push_back(RandomTensor("z.weight", DType::kF32, {3, 5}, 1));
  tensors.push_back(RandomTensor("a.bias", DType::kBF16, {7}, 2));
  tensors.push_back(RandomTensor("scalar", DType::kI64, {}, 3));  // 0-dim.
  tensors.push_back(RandomTensor("empty", DType::kU8, {0}, 4));
  tensors.push_back(RandomTensor("empty.3d", DType::kF16, {2, 0, 3}, 5));
  tensors.push_back(RandomTensor("m.f8", DType::kF8E4M3, {11}, 6));
  tensors.push_back(RandomTensor("m.flags", DType::kBool, {2, 2}, 7));
  tensors.push_back(
      RandomTensor("q \"quoted\" \\ \xc3\xa9\t", DType::kI8, {9}, 8));
  tensors.push_back(RandomTensor("big", DType::kF64, {300, 1000}, 9));
  return tensors;
}

const std::map<std::string, std::string> kMetadata = {
    {"format", "pt"},
    {"note", "a \"quoted\" \xe2\x9c\x93 value\nwith a newline"},
};

TEST(SafetensorsWriterTest, RoundTripsSpecsMetadataAndBytes) {
  TempDir tmp;
  const std::vector<TensorData> tensors = MixedTensors();
  const std::string path = tmp.Sub("mixed.safetensors");
  ASSERT_OK(WriteTensors(path, tensors, kMetadata));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> st,
                       SafetensorsFile::Open(path));
  EXPECT_EQ(st->metadata(), kMetadata);
  EXPECT_EQ(st->data_offset() % 8, 0u);
  EXPECT_EQ(st->file_size(), std::filesystem::file_size(path));
  // Data-offset order is the Rust crate's: decreasing alignment (I64, F64,
  // F32, BF16, F16, F8_E4M3, I8, U8, BOOL), then name; an empty tensor
  // shares its offset with the next one. Every tensor is aligned.
  EXPECT_THAT(
      Names(st->tensors()),
      ElementsAre("scalar", "big", "z.weight", "a.bias", "empty.3d", "m.f8",
                  "q \"quoted\" \\ \xc3\xa9\t", "empty", "m.flags"));
  for (const SafetensorsTensor& tensor : st->tensors()) {
    EXPECT_EQ(tensor.data_offset % DTypeSize(tensor.dtype), 0u) << tensor.name;
  }
  for (const TensorData& expected : tensors) {
    SCOPED_TRACE(expected.spec.name);
    const SafetensorsTensor* tensor = st->FindTensor(expected.spec.name);
    ASSERT_NE(tensor, nullptr);
    EXPECT_EQ(tensor->dtype, expected.spec.dtype);
    EXPECT_EQ(tensor->shape, expected.spec.shape);
    EXPECT_EQ(tensor->byte_length, expected.bytes.size());
    ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> bytes,
                         ReadTensor(*st, *tensor, 777));
    EXPECT_TRUE(bytes == expected.bytes);
  }
  const SafetensorsTensor* scalar = st->FindTensor("scalar");
  EXPECT_THAT(scalar->shape, IsEmpty());
  EXPECT_EQ(scalar->byte_length, 8u);
  EXPECT_EQ(st->FindTensor("empty")->byte_length, 0u);
  EXPECT_EQ(st->FindTensor("missing"), nullptr);
}

TEST(SafetensorsWriterTest, WritesTheSameBytesForTheSameInputInAnyOrder) {
  TempDir tmp;
  std::vector<TensorData> tensors = MixedTensors();
  ASSERT_OK(WriteTensors(tmp.Sub("one"), tensors, kMetadata, 100));
  std::reverse(tensors.begin(), tensors.end());
  ASSERT_OK(WriteTensors(tmp.Sub("two"), tensors, kMetadata, 4096));
  const std::string one = ReadFile(tmp.Sub("one"));
  EXPECT_FALSE(one.empty());
  EXPECT_TRUE(one == ReadFile(tmp.Sub("two")));
}

TEST(SafetensorsWriterTest, WritesCompactHeaderWithMetadataFirstAndPadding) {
  ASSERT_OK_AND_ASSIGN(SafetensorsLayout layout,
                       ComputeSafetensorsLayout(
                           std::vector<SafetensorsTensorSpec>{
                               {"w", DType::kF32, {2}}, {"b", DType::kI8, {3}}},
                           {{"k", "v"}}));
  // F32 before I8: larger alignment first, as the Rust crate writes.
  const std::string json =
      "{\"__metadata__\":{\"k\":\"v\"},"
      "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[8,11]}}";
  const std::string padding((8 - json.size() % 8) % 8, ' ');
  EXPECT_EQ(layout.header_bytes,
            LittleEndian64(json.size() + padding.size()) + json + padding);
  EXPECT_EQ(layout.data_offset, layout.header_bytes.size());
  EXPECT_EQ(layout.file_size, layout.data_offset + 11);
  ASSERT_EQ(layout.tensors.size(), 2u);
  EXPECT_EQ(layout.tensors[0].name, "w");
  EXPECT_EQ(layout.tensors[0].data_offset, layout.data_offset);
  EXPECT_EQ(layout.tensors[1].name, "b");
  EXPECT_EQ(layout.tensors[1].data_offset, layout.data_offset + 8);
}

TEST(SafetensorsWriterTest, LeavesOutEmptyMetadata) {
  ASSERT_OK_AND_ASSIGN(SafetensorsLayout layout,
                       ComputeSafetensorsLayout({}, {}));
  EXPECT_EQ(layout.header_bytes, LittleEndian64(8) + "{}      ");
  EXPECT_EQ(layout.file_size, 16u);
}

TEST(SafetensorsWriterTest, PadsEveryHeaderToAMultipleOf8) {
  for (size_t name_length = 1; name_length <= 16; ++name_length) {
    ASSERT_OK_AND_ASSIGN(
        SafetensorsLayout layout,
        ComputeSafetensorsLayout(
            std::vector<SafetensorsTensorSpec>{
                {std::string(name_length, 'n'), DType::kU8, {1}}},
            {}));
    EXPECT_EQ(layout.data_offset % 8, 0u) << name_length;
    EXPECT_EQ(layout.header_bytes.size(), layout.data_offset);
    EXPECT_EQ(layout.header_bytes.back() == ' ',
              layout.header_bytes.size() > layout.header_bytes.rfind('}') + 1);
  }
}

TEST(SafetensorsWriterTest, LayoutDescribesTheFileItWrites) {
  TempDir tmp;
  const std::vector<TensorData> tensors = MixedTensors();
  std::vector<SafetensorsTensorSpec> specs;
  for (const TensorData& tensor : tensors) specs.push_back(tensor.spec);
  ASSERT_OK_AND_ASSIGN(SafetensorsLayout layout,
                       ComputeSafetensorsLayout(specs, kMetadata));
  const std::string path = tmp.Sub("mixed.safetensors");
  ASSERT_OK(WriteTensors(path, tensors, kMetadata));

  const std::string file = ReadFile(path);
  EXPECT_EQ(file.size(), layout.file_size);
  EXPECT_EQ(file.substr(0, layout.data_offset), layout.header_bytes);
  for (const SafetensorsTensor& tensor : layout.tensors) {
    for (const TensorData& data : tensors) {
      if (data.spec.name != tensor.name) continue;
      EXPECT_EQ(file.substr(tensor.data_offset, tensor.byte_length),
                std::string(data.bytes.begin(), data.bytes.end()))
          << tensor.name;
    }
  }
}

TEST(SafetensorsWriterTest, WritesFileOfOnlyEmptyTensors) {
  TempDir tmp;
  const std::string path = tmp.Sub("empty.safetensors");
  ASSERT_OK(WriteTensors(path,
                         {RandomTensor("a", DType::kF32, {0}, 1),
                          RandomTensor("b", DType::kF32, {4, 0}, 2)},
                         {}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> st,
                       SafetensorsFile::Open(path));
  EXPECT_THAT(Names(st->tensors()), ElementsAre("a", "b"));
  EXPECT_EQ(st->data_offset(), st->file_size());
}

TEST(SafetensorsWriterTest, ReplacesAnExistingFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  WriteFile(path, "old contents");
  ASSERT_OK(WriteTensors(path, MixedTensors(), {}));
  EXPECT_OK(SafetensorsFile::Open(path).status());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafetensorsWriterTest, RefusesAppendPastTheEndOfTheCurrentTensor) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsWriter> writer,
                       SafetensorsWriter::Create(
                           path,
                           std::vector<SafetensorsTensorSpec>{
                               {"a", DType::kF32, {2}}, {"b", DType::kU8, {3}}},
                           {}));
  const std::vector<uint8_t> twelve(12, 1);
  // 12 bytes would fill a and spill into b: a call never spans tensors.
  EXPECT_THAT(writer->Append(twelve),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("overruns tensor 'a', which has 0 of 8")));
  // The refused call wrote nothing; the writer goes on.
  ASSERT_OK(writer->Append(std::span(twelve).first(8)));
  EXPECT_THAT(writer->Append(std::span(twelve).first(4)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("overruns tensor 'b'")));
  ASSERT_OK(writer->Append(std::span(twelve).first(3)));
  EXPECT_THAT(writer->Append(std::span(twelve).first(1)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("after every tensor is complete")));
  EXPECT_OK(writer->Append({}));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(std::filesystem::file_size(path), writer->layout().file_size);
}

TEST(SafetensorsWriterTest, RefusesFinishBeforeEveryTensorIsComplete) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsWriter> writer,
                       SafetensorsWriter::Create(
                           path,
                           std::vector<SafetensorsTensorSpec>{
                               {"a", DType::kU8, {2}}, {"b", DType::kU8, {3}}},
                           {}));
  const std::vector<uint8_t> bytes(5, 7);
  ASSERT_OK(writer->Append(std::span(bytes).first(2)));
  ASSERT_OK(writer->Append(std::span(bytes).first(1)));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("tensor 'b' has 1 of 3 bytes")));
  EXPECT_FALSE(std::filesystem::exists(path));
  ASSERT_OK(writer->Append(std::span(bytes).first(2)));
  ASSERT_OK(writer->Finish());
  EXPECT_THAT(writer->Finish(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("Finish called twice")));
  EXPECT_THAT(writer->Append(std::span(bytes).first(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("Append after Finish")));
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(SafetensorsWriterTest, LeavesNoFileWhenDestroyedWithoutFinish) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<SafetensorsWriter> writer,
        SafetensorsWriter::Create(
            path,
            std::vector<SafetensorsTensorSpec>{{"a", DType::kF64, {300000}}},
            {}));
    const std::vector<uint8_t> bytes = RandomBytes(2'000'000, 1);
    ASSERT_OK(writer->Append(bytes));  // Past the buffer: on disk already.
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafetensorsWriterTest, KeepsTheOldFileWhenDestroyedWithoutFinish) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  WriteFile(path, "old contents");
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<SafetensorsWriter> writer,
        SafetensorsWriter::Create(
            path, std::vector<SafetensorsTensorSpec>{{"a", DType::kU8, {4}}},
            {}));
    ASSERT_OK(writer->Append(std::vector<uint8_t>(2, 0)));
  }
  EXPECT_EQ(ReadFile(path), "old contents");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

// Points `path`.tmp at /dev/full, where every write fails with ENOSPC.
bool RedirectTmpToDevFull(const std::string& path) {
  if (access("/dev/full", W_OK) != 0) return false;
  std::error_code error;
  std::filesystem::create_symlink("/dev/full", path + ".tmp", error);
  return !error;
}

TEST(SafetensorsWriterTest, ReportsENOSPCAsResourceExhaustedAndLeavesNoFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  if (!RedirectTmpToDevFull(path)) GTEST_SKIP() << "/dev/full is unusable";
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<SafetensorsWriter> writer,
      SafetensorsWriter::Create(
          path,
          std::vector<SafetensorsTensorSpec>{{"a", DType::kU8, {3'000'000}}},
          {}));
  // Larger than the buffer: written at once, and refused at once.
  const std::vector<uint8_t> bytes(3'000'000, 1);
  EXPECT_THAT(
      writer->Append(bytes),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr(path + ".tmp")));
  EXPECT_THAT(writer->Append(bytes),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("earlier error")));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::is_symlink(path + ".tmp"));
}

TEST(SafetensorsWriterTest, ReportsENOSPCOfBufferedBytesFromFinish) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  if (!RedirectTmpToDevFull(path)) GTEST_SKIP() << "/dev/full is unusable";
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<SafetensorsWriter> writer,
      SafetensorsWriter::Create(
          path, std::vector<SafetensorsTensorSpec>{{"a", DType::kU8, {10}}},
          {}));
  ASSERT_OK(writer->Append(std::vector<uint8_t>(10, 1)));  // Buffered.
  EXPECT_THAT(writer->Finish(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::is_symlink(path + ".tmp"));
}

TEST(SafetensorsWriterTest, RefusesBadSpecs) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.safetensors");
  struct Case {
    std::vector<SafetensorsTensorSpec> specs;
    std::map<std::string, std::string> metadata;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"", DType::kF32, {1}}}, {}, "empty name"},
      {{{"a", DType::kF32, {1}}, {"a", DType::kI8, {2}}},
       {},
       "duplicate tensor name 'a'"},
      {{{"__metadata__", DType::kF32, {1}}}, {}, "reserves for metadata"},
      {{{"a", DType::kF32, {2, -1}}}, {}, "dimension 1 is negative"},
      {{{"a", DType::kF32, {int64_t{1} << 40, int64_t{1} << 40}}},
       {},
       "overflows"},
      {{{"bad \xff name", DType::kF32, {1}}}, {}, "not valid UTF-8"},
      {{{"a", DType::kF32, {1}}}, {{"k", "\xc0\x80"}}, "not valid UTF-8"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_THAT(
        ComputeSafetensorsLayout(c.specs, c.metadata),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
    EXPECT_THAT(
        SafetensorsWriter::Create(path, c.specs, c.metadata),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafetensorsWriterTest, ReportsAMissingDirectoryAsNotFound) {
  TempDir tmp;
  EXPECT_THAT(
      SafetensorsWriter::Create(
          tmp.Sub("no/such/dir/model.safetensors"),
          std::vector<SafetensorsTensorSpec>{{"a", DType::kU8, {1}}}, {}),
      StatusIs(absl::StatusCode::kNotFound));
}

// ---------------------------------------------------------------------------
// Reading.

TEST(SafetensorsFileTest, ListsTensorsInDataOffsetOrderWhateverTheJsonOrder) {
  TempDir tmp;
  const std::string path = tmp.Sub("x.safetensors");
  WriteFile(
      path,
      CraftFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                R"("b":{"dtype":"I16","shape":[2,2],"data_offsets":[0,8]},)"
                R"("e":{"dtype":"F64","shape":[0],"data_offsets":[12,12]},)"
                R"("__metadata__":{"k":"v"}}   )",
                12));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> st,
                       SafetensorsFile::Open(path));
  EXPECT_THAT(Names(st->tensors()), ElementsAre("b", "a", "e"));
  EXPECT_EQ(st->data_offset(), st->file_size() - 12);
  EXPECT_EQ(st->tensors()[0].data_offset, st->data_offset());
  EXPECT_EQ(st->tensors()[1].data_offset, st->data_offset() + 8);
  EXPECT_EQ(st->tensors()[2].data_offset, st->file_size());
  EXPECT_EQ(st->metadata(), (std::map<std::string, std::string>{{"k", "v"}}));
}

TEST(SafetensorsFileTest, ReadsTensorBytesInPiecesAndRefusesReadsPastTheEnd) {
  TempDir tmp;
  const std::string path = tmp.Sub("x.safetensors");
  const std::vector<TensorData> tensors = {
      RandomTensor("a", DType::kF32, {10}, 1),
      RandomTensor("b", DType::kU8, {5}, 2)};
  ASSERT_OK(WriteTensors(path, tensors, {}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> st,
                       SafetensorsFile::Open(path));
  const SafetensorsTensor& a = *st->FindTensor("a");
  std::vector<uint8_t> piece(7);
  ASSERT_OK(st->ReadAt(a, 33, piece));
  EXPECT_TRUE(piece == std::vector<uint8_t>(tensors[0].bytes.begin() + 33,
                                            tensors[0].bytes.end()));
  EXPECT_OK(st->ReadAt(a, 40, {}));
  EXPECT_THAT(st->ReadAt(a, 34, piece),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("runs past its end (40 bytes)")));
  EXPECT_THAT(st->ReadAt(a, UINT64_MAX, piece),
              StatusIs(absl::StatusCode::kOutOfRange));
  SafetensorsTensor stranger = a;
  stranger.data_offset = st->file_size() - 4;
  EXPECT_THAT(st->ReadAt(stranger, 0, piece),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not in the data section")));
}

TEST(SafetensorsFileTest, ReportsDataLossWhenTheFileShrinksAfterOpen) {
  TempDir tmp;
  const std::string path = tmp.Sub("x.safetensors");
  ASSERT_OK(WriteTensors(path, {RandomTensor("a", DType::kF32, {100}, 1)}, {}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> st,
                       SafetensorsFile::Open(path));
  std::filesystem::resize_file(path, st->file_size() - 10);
  std::vector<uint8_t> bytes(400);
  EXPECT_THAT(st->ReadAt(st->tensors()[0], 0, bytes),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("file ends")));
}

TEST(SafetensorsFileTest, ReportsAMissingFileAsNotFound) {
  TempDir tmp;
  EXPECT_THAT(SafetensorsFile::Open(tmp.Sub("missing.safetensors")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(SafetensorsFileTest, RejectsADirectory) {
  TempDir tmp;
  EXPECT_THAT(SafetensorsFile::Open(tmp.path().string()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("not a regular file")));
}

TEST(SafetensorsFileTest, RejectsFilesShorterThan8Bytes) {
  TempDir tmp;
  for (size_t size : {0, 1, 7}) {
    const std::string path = tmp.Sub(absl::StrCat("short", size));
    WriteFile(path, std::string(size, '\0'));
    EXPECT_THAT(SafetensorsFile::Open(path),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("shorter than the 8-byte header length")))
        << size;
  }
}

TEST(SafetensorsFileTest, RejectsAbsurdHeaderLengths) {
  TempDir tmp;
  for (uint64_t length :
       {uint64_t{100 << 20} + 1, uint64_t{1} << 40, UINT64_MAX}) {
    const std::string path = tmp.Sub("absurd");
    WriteFile(path, LittleEndian64(length) + "{}");
    EXPECT_THAT(SafetensorsFile::Open(path),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("exceeds the 104857600-byte limit")))
        << length;
  }
}

TEST(SafetensorsFileTest, RejectsHeaderLengthsPastTheEndOfTheFile) {
  TempDir tmp;
  for (uint64_t length : {uint64_t{3}, uint64_t{100 << 20}}) {
    const std::string path = tmp.Sub("past");
    WriteFile(path, LittleEndian64(length) + "{}");
    EXPECT_THAT(SafetensorsFile::Open(path),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("runs past the end of the file (10 bytes)")))
        << length;
  }
}

TEST(SafetensorsFileTest, NamesThePathInHeaderErrors) {
  TempDir tmp;
  const std::string path = tmp.Sub("bad.safetensors");
  WriteFile(path, CraftFile("{\"w\":3}", 0));
  EXPECT_THAT(SafetensorsFile::Open(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(path + ": tensor 'w'")));
}

// ---------------------------------------------------------------------------
// ParseSafetensorsHeader: accepted and rejected headers.

TEST(ParseSafetensorsHeaderTest, GivesAbsoluteOffsets) {
  const std::string json =
      R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    )";
  ASSERT_OK_AND_ASSIGN(SafetensorsHeader header,
                       ParseSafetensorsHeader(json, 8));
  EXPECT_EQ(header.data_offset, 8 + json.size());
  ASSERT_EQ(header.tensors.size(), 1u);
  EXPECT_EQ(header.tensors[0].data_offset, 8 + json.size());
  EXPECT_EQ(header.tensors[0].byte_length, 8u);
}

TEST(ParseSafetensorsHeaderTest, AcceptsEmptyTensorsAndEmptyFiles) {
  EXPECT_OK(ParseSafetensorsHeader("{}", 0).status());
  EXPECT_OK(ParseSafetensorsHeader("{} \n\t ", 0).status());
  EXPECT_OK(ParseSafetensorsHeader(R"({"__metadata__":{}})", 0).status());
  ASSERT_OK_AND_ASSIGN(
      SafetensorsHeader header,
      ParseSafetensorsHeader(
          R"({"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
          R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
          R"("m":{"dtype":"BOOL","shape":[3,0],"data_offsets":[4,4]}})",
          4));
  EXPECT_THAT(Names(header.tensors), ElementsAre("z", "a", "m"));
}

struct RejectCase {
  std::string test_name;
  std::string json;
  uint64_t data_size;
  std::string message;
};

void PrintTo(const RejectCase& c, std::ostream* os) { *os << c.test_name; }

class RejectsHeaderTest : public ::testing::TestWithParam<RejectCase> {};

TEST_P(RejectsHeaderTest, WithInvalidArgumentNamingTheProblem) {
  const RejectCase& c = GetParam();
  EXPECT_THAT(
      ParseSafetensorsHeader(c.json, c.data_size),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  // And the same through a file.
  TempDir tmp;
  const std::string path = tmp.Sub("crafted.safetensors");
  WriteFile(path, CraftFile(c.json, c.data_size));
  EXPECT_THAT(
      SafetensorsFile::Open(path),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
}

// A tensor entry with the given fields.
std::string Entry(absl::string_view name, absl::string_view fields) {
  return absl::StrCat("\"", name, "\":{", fields, "}");
}
std::string F32(absl::string_view name, int elements, int begin) {
  return Entry(name, absl::StrCat(R"("dtype":"F32","shape":[)", elements,
                                  R"(],"data_offsets":[)", begin, ",",
                                  begin + 4 * elements, "]"));
}

std::string DeeplyNested() {
  return absl::StrCat(R"({"__metadata__":{"k":)", std::string(20, '['),
                      std::string(20, ']'), "}}");
}

INSTANTIATE_TEST_SUITE_P(
    SafetensorsHeader, RejectsHeaderTest,
    ::testing::ValuesIn(std::vector<RejectCase>{
        {"EmptyHeader", "", 0, "not valid JSON"},
        {"TruncatedJson", R"({"a":)", 0, "not valid JSON"},
        {"TrailingGarbage", "{} x", 0, "not valid JSON"},
        {"NulPadding", std::string("{}\0\0", 4), 0, "NUL byte at offset 2"},
        {"NulBeforeGarbage", std::string("{}\0{\"a\":1}", 10), 0,
         "NUL byte at offset 2"},
        {"InvalidUtf8Name", "{\"\xff\":1}", 0, "not valid JSON"},
        {"HeaderIsAnArray", "[1, 2]", 0, "not a JSON object (it is array)"},
        {"HeaderIsAString", "\"x\"", 0, "not a JSON object (it is string)"},
        {"LeadingWhitespace", " {}", 0, "whitespace before its opening '{'"},
        {"EntryNotAnObject", R"({"w":3})", 0,
         "tensor 'w': entry is not an object (it is number)"},
        {"EmptyTensorName", absl::StrCat("{", F32("", 1, 0), "}"), 4,
         "empty tensor name"},
        {"MissingDtype",
         absl::StrCat("{", Entry("w", R"("shape":[1],"data_offsets":[0,4])"),
                      "}"),
         4, "tensor 'w': missing \"dtype\""},
        {"MissingShape",
         absl::StrCat("{", Entry("w", R"("dtype":"F32","data_offsets":[0,4])"),
                      "}"),
         4, "tensor 'w': missing \"shape\""},
        {"MissingDataOffsets",
         absl::StrCat("{", Entry("w", R"("dtype":"F32","shape":[1])"), "}"), 4,
         "tensor 'w': missing \"data_offsets\""},
        {"UnknownKey",
         absl::StrCat(
             "{",
             Entry("w",
                   R"("dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1)"),
             "}"),
         4, "tensor 'w': unknown key 'x'"},
        {"DtypeNotAString",
         absl::StrCat(
             "{", Entry("w", R"("dtype":4,"shape":[1],"data_offsets":[0,4])"),
             "}"),
         4, "tensor 'w': \"dtype\" is not a string"},
        {"UnknownDtype",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F128","shape":[1],"data_offsets":[0,4])"),
             "}"),
         4, "tensor 'w': unknown dtype 'F128'"},
        {"LowercaseDtype",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"f32","shape":[1],"data_offsets":[0,4])"),
             "}"),
         4, "tensor 'w': unknown dtype 'f32'"},
        {"ShapeNotAnArray",
         absl::StrCat(
             "{", Entry("w", R"("dtype":"F32","shape":1,"data_offsets":[0,4])"),
             "}"),
         4, "tensor 'w': \"shape\" is not an array"},
        {"NegativeDimension",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[2,-1],"data_offsets":[0,0])"),
             "}"),
         0, "tensor 'w': shape[1] is negative (-1)"},
        {"FractionalDimension",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[1.5],"data_offsets":[0,4])"),
             "}"),
         4, "tensor 'w': shape[0] is not an integer"},
        {"LongBadValueIsCut",
         absl::StrCat("{",
                      Entry("w", absl::StrCat(R"("dtype":"F32","shape":[1],)",
                                              R"("data_offsets":[")",
                                              std::string(1000, 'x'), "\"]")),
                      "}"),
         4, "\"data_offsets\" is [\"xxxxxxxxx"},
        {"MinusZeroOffset",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[-0,4])"),
             "}"),
         4, "want two non-negative integers"},
        {"StringDimension",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":["1"],"data_offsets":[0,4])"),
             "}"),
         4, "tensor 'w': shape[0] is not an integer"},
        {"DimensionAboveInt64",
         absl::StrCat("{",
                      Entry("w",
                            R"("dtype":"U8","shape":[9223372036854775808],)"
                            R"("data_offsets":[0,0])"),
                      "}"),
         0, "tensor 'w': shape[0] is 9223372036854775808, above 2^63 - 1"},
        {"DimensionAboveUint64",
         absl::StrCat("{",
                      Entry("w",
                            R"("dtype":"U8","shape":[18446744073709551616],)"
                            R"("data_offsets":[0,0])"),
                      "}"),
         0, "tensor 'w': shape[0] is not an integer"},
        {"ShapeOverflows",
         absl::StrCat("{",
                      Entry("w", R"("dtype":"F32","shape":[4294967296,)"
                                 R"(4294967296],"data_offsets":[0,0])"),
                      "}"),
         0, "tensor 'w': shape [4294967296, 4294967296]: shape overflows"},
        {"ByteLengthOverflows",
         absl::StrCat("{",
                      Entry("w", R"("dtype":"F64","shape":[4294967296,)"
                                 R"(1073741824],"data_offsets":[0,0])"),
                      "}"),
         0, "tensor 'w': shape [4294967296, 1073741824]: tensor byte length"},
        {"OffsetsNotAnArray",
         absl::StrCat(
             "{", Entry("w", R"("dtype":"F32","shape":[1],"data_offsets":4)"),
             "}"),
         4, "tensor 'w': \"data_offsets\" is 4, want [begin, end]"},
        {"OneOffset",
         absl::StrCat(
             "{", Entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[4])"),
             "}"),
         4, "tensor 'w': \"data_offsets\" is [4], want [begin, end]"},
        {"ThreeOffsets",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[0,4,8])"),
             "}"),
         4, "want [begin, end]"},
        {"NegativeOffset",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[-4,0])"),
             "}"),
         4, "tensor 'w': \"data_offsets\" is [-4,0], want two non-negative"},
        {"FractionalOffset",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[0,4.0])"),
             "}"),
         4, "want two non-negative integers"},
        {"OffsetsBeginAfterEnd",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[1],"data_offsets":[8,4])"),
             "}"),
         8, "tensor 'w': data_offsets [8, 4] begin after they end"},
        {"OffsetsPastTheDataSection", absl::StrCat("{", F32("w", 2, 0), "}"), 4,
         "tensor 'w': data_offsets [0, 8] run past the end of the data "
         "section (4 bytes)"},
        {"OffsetsDisagreeWithShape",
         absl::StrCat(
             "{",
             Entry("w", R"("dtype":"F32","shape":[2],"data_offsets":[0,4])"),
             "}"),
         4,
         "tensor 'w': data_offsets [0, 4] hold 4 bytes, but F32 [2] takes 8"},
        {"OverlappingTensors",
         absl::StrCat("{", F32("a", 2, 0), ",", F32("b", 2, 4), "}"), 12,
         "tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]"},
        {"SameOffsets",
         absl::StrCat("{", F32("a", 1, 0), ",", F32("b", 1, 0), "}"), 4,
         "tensor 'b': data_offsets [0, 4] overlap tensor 'a'"},
        {"EmptyTensorInsideAnother",
         absl::StrCat("{", F32("a", 2, 0), ",", F32("e", 0, 4), "}"), 8,
         "tensor 'e': data_offsets [4, 4] overlap tensor 'a'"},
        {"HoleBetweenTensors",
         absl::StrCat("{", F32("a", 1, 0), ",", F32("b", 1, 8), "}"), 12,
         "hole in the data section: bytes [4, 8) belong to no tensor (the "
         "next is tensor 'b'"},
        {"HoleAtTheStart", absl::StrCat("{", F32("a", 1, 4), "}"), 8,
         "hole in the data section: bytes [0, 4)"},
        {"BytesAfterTheLastTensor", absl::StrCat("{", F32("a", 1, 0), "}"), 8,
         "hole in the data section: its last 4 bytes"},
        {"DataWithoutTensors", "{}", 1,
         "hole in the data section: its last 1 bytes"},
        {"MetadataNotAnObject", R"({"__metadata__":"x"})", 0,
         "\"__metadata__\" is not an object of strings (it is string)"},
        {"MetadataNull", R"({"__metadata__":null})", 0,
         "\"__metadata__\" is not an object of strings (it is null)"},
        {"MetadataValueNotAString", R"({"__metadata__":{"k":1}})", 0,
         "\"__metadata__\": the value of 'k' is not a string (it is number)"},
        {"DuplicateTensorName",
         absl::StrCat("{", F32("w", 1, 0), ",", F32("w", 1, 4), "}"), 8,
         "duplicate tensor name 'w'"},
        {"DuplicateKeyInEntry",
         absl::StrCat("{",
                      Entry("w", R"("dtype":"F32","dtype":"I32","shape":[1],)"
                                 R"("data_offsets":[0,4])"),
                      "}"),
         4, "tensor 'w': duplicate key 'dtype'"},
        {"DuplicateMetadata", R"({"__metadata__":{},"__metadata__":{}})", 0,
         "header holds \"__metadata__\" twice"},
        {"DuplicateMetadataKey", R"({"__metadata__":{"k":"a","k":"b"}})", 0,
         "\"__metadata__\": duplicate key 'k'"},
        {"TooDeeplyNested", DeeplyNested(), 0, "deeper than 16 levels"},
    }),
    [](const ::testing::TestParamInfo<RejectCase>& info) {
      return info.param.test_name;
    });

}  // namespace
}  // namespace pstore
