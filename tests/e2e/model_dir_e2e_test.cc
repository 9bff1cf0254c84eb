// End-to-end tests of whole model directories against a real pstored:
// `pstore-cli import DIR` and `pull MODEL DIR` give back every file byte
// for byte (diff -r), the shards' index is checked before anything is
// stored, and a pull killed at random points (the server killed too at
// some) resumes to identical files fetching only what was missing.

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/model_dir.h"
#include "client/pstore_client.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "util/child_process.h"

namespace pstore {
namespace {

namespace fs = std::filesystem;

using ::pstore::testing::PstoreCliPath;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::TempDir;
using CliResult = ::pstore::testing::CommandResult;

constexpr uint64_t kBlockBytes = uint64_t{4} << 20;  // pstored's default.

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
}

std::string AsString(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

struct TestTensor {
  std::string name;
  std::string dtype;  // "BF16", "F32", "I64"...
  std::vector<int64_t> shape;
  size_t element_bytes = 2;
};

// Writes a safetensors shard by hand, in a style no writer of this project
// uses, so that only a byte-for-byte copy of its header comes back equal:
// `pretty` puts spaces after separators and lists the tensors in reverse
// data order; both pad the header with more spaces than needed.
void WriteShard(const std::string& path, const std::vector<TestTensor>& tensors,
                const std::string& metadata_json, bool pretty, uint64_t seed) {
  std::string header = "{";
  const std::string sep = pretty ? ", " : ",";
  const std::string colon = pretty ? ": " : ":";
  std::vector<std::string> entries;
  std::string data;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TestTensor& tensor = tensors[i];
    size_t bytes = tensor.element_bytes;
    std::string shape;
    for (int64_t dim : tensor.shape) {
      bytes *= dim;
      absl::StrAppend(&shape, shape.empty() ? "" : sep, dim);
    }
    const size_t begin = data.size();
    data += AsString(testing::RandomBytes(bytes, seed * 1000 + i));
    entries.push_back(absl::StrCat(
        "\"", tensor.name, "\"", colon, "{\"dtype\"", colon, "\"", tensor.dtype,
        "\"", sep, "\"shape\"", colon, "[", shape, "]", sep, "\"data_offsets\"",
        colon, "[", begin, sep, data.size(), "]}"));
  }
  if (pretty) std::reverse(entries.begin(), entries.end());
  if (!metadata_json.empty()) {
    header += absl::StrCat("\"__metadata__\"", colon, metadata_json);
    if (!entries.empty()) header += sep;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    header += (i == 0 ? "" : sep) + entries[i];
  }
  header += "}";
  header += std::string(8 + (8 - header.size() % 8) % 8, ' ');
  const uint64_t length = header.size();
  std::string file(reinterpret_cast<const char*>(&length), 8);
  WriteFile(path, file + header + data);
}

// The layout of a model directory as save_pretrained writes one: four
// shards (BF16 weights, an F32 norm, an I64 buffer), the index, config and
// tokenizer files, a nested dot file, an empty file and a 9 MiB file.
// `layers` sets the size: about 9 MiB of weights per layer.
void WriteModelDirectory(const std::string& dir, int layers) {
  std::map<std::string, std::string> weight_map;
  for (int shard = 0; shard < 4; ++shard) {
    const std::string file =
        absl::StrCat("model-0000", shard + 1, "-of-00004.safetensors");
    std::vector<TestTensor> tensors;
    for (int layer = shard; layer < layers; layer += 4) {
      const std::string prefix = absl::StrCat("model.layers.", layer, ".");
      tensors.push_back({prefix + "mlp.up_proj.weight", "BF16", {1024, 2048}});
      tensors.push_back({prefix + "self_attn.q_proj.weight",
                         "BF16",
                         {1024, 1024 + 8 * shard}});
      tensors.push_back({prefix + "input_layernorm.weight", "F32", {1024}, 4});
    }
    if (shard == 0) {
      tensors.push_back({"model.embed_tokens.weight", "BF16", {1000, 512}});
    }
    if (shard == 3) {
      tensors.push_back({"model.position_ids", "I64", {1, 512}, 8});
      tensors.push_back({"lm_head.weight", "BF16", {1000, 512}});
    }
    WriteShard(fs::path(dir) / file, tensors,
               shard == 1 ? "" : R"({"format": "pt"})", shard % 2 == 0,
               shard + 1);
    for (const TestTensor& tensor : tensors) weight_map[tensor.name] = file;
  }
  std::string index =
      "{\n  \"metadata\": {\n    \"total_size\": 1\n  },\n"
      "  \"weight_map\": {\n";
  size_t i = 0;
  for (const auto& [tensor, file] : weight_map) {
    absl::StrAppend(&index, "    \"", tensor, "\": \"", file, "\"",
                    ++i == weight_map.size() ? "\n" : ",\n");
  }
  index += "  }\n}\n";
  WriteFile(fs::path(dir) / "model.safetensors.index.json", index);
  WriteFile(fs::path(dir) / "config.json",
            R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 1024})");
  WriteFile(fs::path(dir) / "generation_config.json", R"({"do_sample": true})");
  WriteFile(fs::path(dir) / "tokenizer.json",
            AsString(testing::RandomBytes(300000, 77)));
  WriteFile(fs::path(dir) / "tokenizer_config.json", "{}\n");
  WriteFile(fs::path(dir) / "chat_template.jinja", "{{ messages }}\n");
  WriteFile(fs::path(dir) / "original" / ".gitattributes", "*.bin lfs\n");
  WriteFile(fs::path(dir) / "empty", "");
  WriteFile(fs::path(dir) / "extra" / "big.bin",
            AsString(testing::RandomBytes(9 << 20, 99)));
}

// Bytes of every regular file under `dir`, by path.
uint64_t TreeBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  return bytes;
}

class ModelDirE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PstoredProcess>(dir_.Sub("data"),
                                               std::vector<std::string>{});
    ASSERT_OK(server_->Start());
  }

  CliResult Run(const std::string& args) {
    return ::pstore::testing::RunCommand(absl::StrCat(
        PstoreCliPath(), " --addr ", server_->address(), " ", args));
  }

  // Expects `diff -r` to find the trees at `a` and `b` equal.
  void ExpectSameTree(const std::string& a, const std::string& b) {
    CliResult diff =
        ::pstore::testing::RunCommand(absl::StrCat("diff -r ", a, " ", b));
    EXPECT_EQ(diff.exit_code, 0) << diff.out;
  }

  std::unique_ptr<Client> NewClient() {
    ClientOptions options;
    options.address = server_->address();
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
    EXPECT_OK(client.status());
    return client.ok() ? *std::move(client) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
};

TEST_F(ModelDirE2eTest, ADirectoryComesBackByteForByte) {
  const std::string source = dir_.Sub("source");
  WriteModelDirectory(source, 8);
  CliResult import =
      Run(absl::StrCat("import ", source, " llama@v1 --publish --jobs 4"));
  ASSERT_EQ(import.exit_code, 0) << import.out;
  EXPECT_NE(import.out.find("4 shards"), std::string::npos) << import.out;

  CliResult ls = Run("ls llama@v1");
  ASSERT_EQ(ls.exit_code, 0) << ls.out;
  EXPECT_NE(ls.out.find("llama@v1/config.json\tfile\t-\t"), std::string::npos)
      << ls.out;
  EXPECT_NE(ls.out.find("llama@v1/model-00001-of-00004.safetensors\t"
                        "shard-header\t-\t"),
            std::string::npos)
      << ls.out;
  EXPECT_NE(ls.out.find("llama@v1/original/.gitattributes\tfile\t-\t10\n"),
            std::string::npos)
      << ls.out;
  EXPECT_NE(ls.out.find("llama@v1/empty\tfile\t-\t0\n"), std::string::npos)
      << ls.out;

  // A file is fetched by get, as a tensor is.
  const std::string config = dir_.Sub("config.json");
  ASSERT_EQ(Run(absl::StrCat("get llama/config.json -o ", config)).exit_code,
            0);
  EXPECT_EQ(ReadFile(config), ReadFile(fs::path(source) / "config.json"));

  for (int streams : {1, 4}) {
    const std::string pulled = dir_.Sub(absl::StrCat("pulled", streams));
    CliResult pull =
        Run(absl::StrCat("pull llama ", pulled, " --streams ", streams));
    ASSERT_EQ(pull.exit_code, 0) << pull.out;
    ExpectSameTree(source, pulled);
  }

  // Pulled again: everything is found in place, nothing fetched.
  auto client = NewClient();
  ASSERT_NE(client, nullptr);
  ASSERT_OK_AND_ASSIGN(PullToResult again,
                       PullToDirectory(*client, "llama", dir_.Sub("pulled4")));
  EXPECT_EQ(again.fetched_bytes, 0u);
  EXPECT_EQ(again.reused_bytes, TreeBytes(source));

  // A flipped byte costs its block, fetched again, and nothing else.
  {
    const std::string shard =
        (fs::path(dir_.Sub("pulled4")) / "model-00002-of-00004.safetensors")
            .string();
    std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(5 << 20);
    const char byte = static_cast<char>(file.get() ^ 0x20);
    file.seekp(5 << 20);
    file.put(byte);
  }
  ASSERT_OK_AND_ASSIGN(PullToResult repaired,
                       PullToDirectory(*client, "llama", dir_.Sub("pulled4")));
  EXPECT_GT(repaired.fetched_bytes, 0u);
  EXPECT_LE(repaired.fetched_bytes, kBlockBytes);
  ExpectSameTree(source, dir_.Sub("pulled4"));

  // copy carries files and shard headers as what they are.
  PstoredProcess other(dir_.Sub("other"), {});
  ASSERT_OK(other.Start());
  CliResult copy = Run(absl::StrCat("copy llama@v1 --to ", other.address()));
  ASSERT_EQ(copy.exit_code, 0) << copy.out;
  const std::string copied = dir_.Sub("copied");
  CliResult pull_copy = ::pstore::testing::RunCommand(absl::StrCat(
      PstoreCliPath(), " --addr ", other.address(), " pull llama ", copied));
  ASSERT_EQ(pull_copy.exit_code, 0) << pull_copy.out;
  ExpectSameTree(source, copied);

  // The revision's tensors alone still pull into one file.
  const std::string one = dir_.Sub("one.safetensors");
  ASSERT_EQ(Run(absl::StrCat("pull llama@v1 ", one)).exit_code, 0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> file,
                       SafetensorsFile::Open(one));
  EXPECT_EQ(file->tensors().size(), 8u * 3 + 3);
}

TEST_F(ModelDirE2eTest, AnEncodedPullRewritesShardsAndTheirIndex) {
  const std::string source = dir_.Sub("source");
  WriteModelDirectory(source, 4);
  ASSERT_EQ(Run(absl::StrCat("import ", source, " m@v1 --publish")).exit_code,
            0);
  const std::string pulled = dir_.Sub("f32");
  CliResult pull = Run(absl::StrCat("pull m ", pulled, " --encoding f32"));
  ASSERT_EQ(pull.exit_code, 0) << pull.out;
  uint64_t data_bytes = 0;
  for (int shard = 1; shard <= 4; ++shard) {
    const std::string name =
        absl::StrCat("model-0000", shard, "-of-00004.safetensors");
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> original,
                         SafetensorsFile::Open(fs::path(source) / name));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> file,
                         SafetensorsFile::Open(fs::path(pulled) / name));
    EXPECT_EQ(file->metadata(), original->metadata()) << name;
    ASSERT_EQ(file->tensors().size(), original->tensors().size());
    for (const SafetensorsTensor& tensor : file->tensors()) {
      const SafetensorsTensor* before = original->FindTensor(tensor.name);
      ASSERT_NE(before, nullptr) << tensor.name;
      EXPECT_EQ(tensor.shape, before->shape);
      // Floats become F32; the I64 buffer stays as it was.
      EXPECT_EQ(tensor.dtype,
                before->dtype == DType::kI64 ? DType::kI64 : DType::kF32);
      data_bytes += tensor.byte_length;
    }
  }
  const std::string index =
      ReadFile(fs::path(pulled) / "model.safetensors.index.json");
  EXPECT_NE(index.find(absl::StrCat("\"total_size\": ", data_bytes)),
            std::string::npos)
      << index;
  // Everything that is not a shard or the index is as it was.
  for (const char* name : {"config.json", "tokenizer.json", "extra/big.bin",
                           "original/.gitattributes", "empty"}) {
    EXPECT_EQ(ReadFile(fs::path(pulled) / name),
              ReadFile(fs::path(source) / name))
        << name;
  }
}

TEST_F(ModelDirE2eTest, AnIndexThatDoesNotMatchTheShardsStoresNothing) {
  struct Case {
    std::string what;
    std::string entry;  // Added to the weight map.
    std::string error;
  };
  const std::vector<Case> cases = {
      {"a missing tensor",
       R"("model.ghost.weight": "model-00001-of-00004.safetensors")",
       "model.ghost.weight"},
      {"a tensor twice",
       R"("lm_head.weight": "model-00001-of-00004.safetensors")", "twice"},
      {"a missing shard",
       R"("lm_head.bias": "model-00009-of-00004.safetensors")",
       "model-00009-of-00004.safetensors"},
  };
  int n = 0;
  for (const Case& test : cases) {
    const std::string source = dir_.Sub(absl::StrCat("source", n));
    WriteModelDirectory(source, 2);
    const std::string index_path =
        (fs::path(source) / "model.safetensors.index.json").string();
    std::string index = ReadFile(index_path);
    const size_t map = index.find("\"weight_map\": {");
    ASSERT_NE(map, std::string::npos);
    index.insert(map + std::strlen("\"weight_map\": {"),
                 "\n    " + test.entry + ",");
    WriteFile(index_path, index);
    const std::string model = absl::StrCat("bad", n++);
    CliResult import = Run(absl::StrCat("import ", source, " ", model, "@v1"));
    EXPECT_EQ(import.exit_code, 1) << test.what << ": " << import.out;
    EXPECT_NE(import.out.find("INVALID_ARGUMENT"), std::string::npos)
        << import.out;
    EXPECT_NE(import.out.find(test.error), std::string::npos) << import.out;
    CliResult ls = Run(absl::StrCat("ls ", model, "@v1"));
    EXPECT_NE(ls.out.find("NOT_FOUND"), std::string::npos)
        << test.what << ": " << ls.out;
  }
}

TEST_F(ModelDirE2eTest, FixturesAsOneShardDirectoriesComeBackIdentical) {
  const char* fixtures_env = std::getenv("PSTORE_FIXTURES_DIR");
  const std::string fixtures =
      fixtures_env == nullptr ? "" : std::string(fixtures_env) + "/safetensors";
  if (fixtures.empty() || !fs::is_directory(fixtures)) {
    GTEST_SKIP() << "fixtures not found at '" << fixtures
                 << "' (set PSTORE_FIXTURES_DIR)";
  }
  int imported = 0;
  for (const auto& entry : fs::directory_iterator(fixtures)) {
    if (entry.path().extension() != ".safetensors") continue;
    const std::string model = entry.path().stem().string();
    const std::string source = dir_.Sub(model);
    fs::create_directories(source);
    fs::copy_file(entry.path(), fs::path(source) / "model.safetensors");
    WriteFile(fs::path(source) / "config.json", R"({"model_type": "test"})");
    CliResult import =
        Run(absl::StrCat("import ", source, " ", model, "@v1 --publish"));
    ASSERT_EQ(import.exit_code, 0) << import.out;
    const std::string pulled = dir_.Sub(model + ".pulled");
    CliResult pull = Run(absl::StrCat("pull ", model, " ", pulled));
    ASSERT_EQ(pull.exit_code, 0) << pull.out;
    ExpectSameTree(source, pulled);
    ++imported;
  }
  EXPECT_GE(imported, 4);
}

// ---------------------------------------------------------------------------
// GGUF files.

// Builds a GGUF file byte by byte from the spec (ggml's docs/gguf.md),
// independently of this project's writer: any alignment, tensors in the
// data section in any order.
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t alignment) : alignment_(alignment) {
    if (alignment != 32) Uint32("general.alignment", alignment);
  }

  void String(const std::string& key, const std::string& value) {
    Key(key, 8);
    Str(&kv_, value);
  }
  void Uint32(const std::string& key, uint32_t value) {
    Key(key, 4);
    Raw(&kv_, &value, 4);
  }
  void Float32(const std::string& key, float value) {
    Key(key, 6);
    Raw(&kv_, &value, 4);
  }
  void Bool(const std::string& key, bool value) {
    Key(key, 7);
    kv_.push_back(value ? 1 : 0);
  }
  void Int16(const std::string& key, int16_t value) {
    Key(key, 3);
    Raw(&kv_, &value, 2);
  }
  void Uint64(const std::string& key, uint64_t value) {
    Key(key, 10);
    Raw(&kv_, &value, 8);
  }
  void Float64(const std::string& key, double value) {
    Key(key, 12);
    Raw(&kv_, &value, 8);
  }
  void Strings(const std::string& key, const std::vector<std::string>& values) {
    Key(key, 9);
    const uint32_t type = 8;
    const uint64_t count = values.size();
    Raw(&kv_, &type, 4);
    Raw(&kv_, &count, 8);
    for (const std::string& value : values) Str(&kv_, value);
  }
  void Int32s(const std::string& key, const std::vector<int32_t>& values) {
    Key(key, 9);
    const uint32_t type = 5;
    const uint64_t count = values.size();
    Raw(&kv_, &type, 4);
    Raw(&kv_, &count, 8);
    Raw(&kv_, values.data(), 4 * values.size());
  }
  // A tensor of ggml type `type` with `dims` (ggml order) and `bytes`.
  void Tensor(const std::string& name, uint32_t type,
              std::vector<uint64_t> dims, std::string bytes) {
    tensors_.push_back({name, type, std::move(dims), std::move(bytes)});
  }

  // Returns the file; the tensors' data go in `data_order` (indexes into
  // the tensors in the order added), each at a multiple of the alignment.
  std::string Build(const std::vector<int>& data_order) {
    std::vector<uint64_t> offsets(tensors_.size());
    std::string data;
    for (int index : data_order) {
      data.resize((data.size() + alignment_ - 1) / alignment_ * alignment_);
      offsets[index] = data.size();
      data += tensors_[index].bytes;
    }
    std::string file = "GGUF";
    const uint32_t version = 3;
    const uint64_t tensor_count = tensors_.size();
    Raw(&file, &version, 4);
    Raw(&file, &tensor_count, 8);
    Raw(&file, &kv_count_, 8);
    file += kv_;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      Str(&file, tensors_[i].name);
      const uint32_t dims = tensors_[i].dims.size();
      Raw(&file, &dims, 4);
      Raw(&file, tensors_[i].dims.data(), 8 * dims);
      Raw(&file, &tensors_[i].type, 4);
      Raw(&file, &offsets[i], 8);
    }
    file.resize((file.size() + alignment_ - 1) / alignment_ * alignment_);
    return file + data;
  }

 private:
  struct Entry {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> dims;
    std::string bytes;
  };
  static void Raw(std::string* out, const void* data, size_t size) {
    out->append(static_cast<const char*>(data), size);
  }
  static void Str(std::string* out, const std::string& text) {
    const uint64_t size = text.size();
    Raw(out, &size, 8);
    *out += text;
  }
  void Key(const std::string& key, uint32_t type) {
    Str(&kv_, key);
    Raw(&kv_, &type, 4);
    ++kv_count_;
  }

  const uint32_t alignment_;
  std::string kv_;
  uint64_t kv_count_ = 0;
  std::vector<Entry> tensors_;
};

// A GGUF file as llama.cpp's converters write one, built by hand: metadata
// of many types (an array of strings as a vocabulary is), F32, F16, BF16,
// Q8_0 and Q4_0 tensors; alignment 64, and tensors not in data order.
std::string HandBuiltGguf() {
  GgufBuilder gguf(64);
  gguf.String("general.architecture", "llama");
  gguf.String("general.name", "tiny llama");
  gguf.Uint32("llama.block_count", 2);
  gguf.Float32("llama.rope.freq_base", 10000.5f);
  gguf.Bool("tokenizer.ggml.add_bos_token", true);
  gguf.Int16("test.int16", -7);
  gguf.Uint64("test.uint64", uint64_t{1} << 40);
  gguf.Float64("test.float64", 0.1);
  gguf.Strings("tokenizer.ggml.tokens", {"<s>", "</s>", "hello", "wörld"});
  gguf.Int32s("tokenizer.ggml.token_type", {3, 3, 1, 1});
  auto bytes = [](size_t size, uint64_t seed) {
    return AsString(testing::RandomBytes(size, seed));
  };
  gguf.Tensor("token_embd.weight", 1, {64, 4}, bytes(64 * 4 * 2, 1));  // F16
  gguf.Tensor("blk.0.attn_q.weight", 8, {64, 8}, bytes(8 * 2 * 34, 2));
  gguf.Tensor("blk.0.ffn_up.weight", 2, {128, 4}, bytes(4 * 4 * 18, 3));
  gguf.Tensor("blk.0.attn_norm.weight", 0, {64}, bytes(64 * 4, 4));  // F32
  gguf.Tensor("output.weight", 30, {64, 4}, bytes(64 * 4 * 2, 5));   // BF16
  return gguf.Build({3, 0, 2, 1, 4});
}

// Expects GGUF files `a` and `b` (read by this project's reader) to hold the
// same tensors (types, dims, bytes) and metadata, but general.alignment.
void ExpectSameGguf(const std::string& a, const std::string& b) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> left, GgufFile::Open(a));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<GgufFile> right, GgufFile::Open(b));
  ASSERT_EQ(left->tensors().size(), right->tensors().size());
  for (const GgufTensorInfo& tensor : left->tensors()) {
    const GgufTensorInfo* other = right->FindTensor(tensor.name);
    ASSERT_NE(other, nullptr) << tensor.name;
    EXPECT_EQ(other->type, tensor.type) << tensor.name;
    EXPECT_EQ(other->dims, tensor.dims) << tensor.name;
    std::vector<uint8_t> want(tensor.byte_size), got(other->byte_size);
    ASSERT_OK(left->ReadAt(tensor, 0, std::span<uint8_t>(want)));
    ASSERT_OK(right->ReadAt(*other, 0, std::span<uint8_t>(got)));
    EXPECT_TRUE(want == got) << tensor.name;
  }
  int keys = 0;
  for (const GgufKeyValue& pair : left->metadata()) {
    if (pair.key == "general.alignment") continue;
    const GgufValue* other = right->FindMetadata(pair.key);
    ASSERT_NE(other, nullptr) << pair.key;
    EXPECT_TRUE(*other == pair.value) << pair.key;
    ++keys;
  }
  EXPECT_EQ(right->metadata().size(),
            keys + 1 /* general.alignment */ +
                (left->FindMetadata("general.name") == nullptr));
}

TEST_F(ModelDirE2eTest, GgufFilesGoInAndComeBackWithTheirTypesAndMetadata) {
  // One built by hand, one by this project's writer.
  const std::string hand = dir_.Sub("hand.gguf");
  WriteFile(hand, HandBuiltGguf());
  const std::string ours = dir_.Sub("ours.gguf");
  {
    std::vector<GgufTensorSpec> specs = {{"a.weight", GgmlType::kQ8_0, {3, 64}},
                                         {"b.weight", GgmlType::kF32, {5}},
                                         {"c.weight", GgmlType::kQ4_0, {2, 32}},
                                         {"d.weight", GgmlType::kF16, {2, 8}}};
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<GgufWriter> writer,
        GgufWriter::Create(ours, specs, "ours", {{"general.license", "mit"}}));
    uint64_t seed = 10;
    for (const GgufTensorInfo& tensor : writer->layout().tensors) {
      ASSERT_OK(writer->Append(testing::RandomBytes(tensor.byte_size, ++seed)));
    }
    ASSERT_OK(writer->Finish());
  }
  for (const std::string& source : {hand, ours}) {
    const std::string model = fs::path(source).stem().string();
    CliResult import =
        Run(absl::StrCat("import ", source, " ", model, "@v1 --publish"));
    ASSERT_EQ(import.exit_code, 0) << import.out;
    // It lists (its metadata is checked below, through the client).
    CliResult stat = Run(absl::StrCat("ls ", model, "@v1"));
    ASSERT_EQ(stat.exit_code, 0) << stat.out;

    const std::string exported = dir_.Sub(model + ".exported.gguf");
    CliResult exported_run = Run(absl::StrCat("export ", model, " ", exported));
    ASSERT_EQ(exported_run.exit_code, 0) << exported_run.out;
    ExpectSameGguf(source, exported);

    // Into a directory, the file comes back as it was.
    const std::string pulled = dir_.Sub(model + ".dir");
    CliResult pull = Run(absl::StrCat("pull ", model, " ", pulled, "/"));
    ASSERT_EQ(pull.exit_code, 0) << pull.out;
    EXPECT_TRUE(ReadFile(fs::path(pulled) / fs::path(source).filename()) ==
                ReadFile(source))
        << model;
  }
  auto client = NewClient();
  ASSERT_NE(client, nullptr);
  ASSERT_OK_AND_ASSIGN(v1::Revision revision, client->GetRevision("hand"));
  EXPECT_EQ(revision.metadata().at("general.architecture"), "llama");
  EXPECT_EQ(revision.metadata().at("llama.block_count"), "2");
  EXPECT_EQ(revision.metadata().at("llama.rope.freq_base"), "10000.5");
  EXPECT_EQ(revision.metadata().at("tokenizer.ggml.add_bos_token"), "true");
  EXPECT_EQ(revision.metadata().at("general.alignment"), "64");
  EXPECT_FALSE(revision.metadata().contains("tokenizer.ggml.tokens"));
  for (const v1::TensorInfo& info : revision.tensors()) {
    if (info.tensor() == "blk.0.attn_q.weight") {
      EXPECT_EQ(info.dtype(), "U8");  // Q8_0 blocks as they are.
      EXPECT_EQ(info.stored_byte_length(), 8u * 2 * 34);
    }
    if (info.tensor() == "output.weight") {
      EXPECT_EQ(info.dtype(), "BF16");
    }
  }
}

TEST_F(ModelDirE2eTest, AGgufTensorOfAnotherTypeIsRefusedByName) {
  GgufBuilder gguf(32);
  gguf.Tensor("ok.weight", 0, {32}, std::string(128, '\0'));
  gguf.Tensor("k.weight", 12, {256}, std::string(144, '\0'));  // Q4_K
  const std::string path = dir_.Sub("q4k.gguf");
  WriteFile(path, gguf.Build({0, 1}));
  CliResult import = Run(absl::StrCat("import ", path, " q4k@v1"));
  EXPECT_EQ(import.exit_code, 1) << import.out;
  EXPECT_NE(import.out.find("INVALID_ARGUMENT"), std::string::npos)
      << import.out;
  EXPECT_NE(import.out.find("k.weight has ggml type Q4_K"), std::string::npos)
      << import.out;
  EXPECT_NE(Run("ls q4k@v1").out.find("NOT_FOUND"), std::string::npos);
}

// Hugging Face's reader (npm @huggingface/gguf) finds in the exported file
// the tensors, types and metadata of the file imported.
TEST_F(ModelDirE2eTest, AnExportedGgufReadsAlikeInHuggingFaceGguf) {
  const std::string source_dir = PSTORE_SOURCE_DIR;
  CliResult npm = ::pstore::testing::RunCommand(
      absl::StrCat("sh ", source_dir,
                   "/tests/testing/npm_package.sh @huggingface/gguf 0 20"));
  if (npm.exit_code == 77) GTEST_SKIP() << npm.out;
  ASSERT_EQ(npm.exit_code, 0) << npm.out;
  const std::string hand = dir_.Sub("hand.gguf");
  WriteFile(hand, HandBuiltGguf());
  ASSERT_EQ(Run(absl::StrCat("import ", hand, " hand@v1")).exit_code, 0);
  const std::string exported = dir_.Sub("exported.gguf");
  CliResult exported_run = Run(absl::StrCat("export hand@v1 ", exported));
  ASSERT_EQ(exported_run.exit_code, 0) << exported_run.out;
  const char* prefix = std::getenv("PSTORE_NPM_PREFIX");
  CliResult same = ::pstore::testing::RunCommand(absl::StrCat(
      "PSTORE_NPM_PREFIX=", prefix == nullptr ? "/var/tmp/pstore-npm" : prefix,
      " node ", source_dir, "/tests/e2e/gguf_same.mjs ", hand, " ", exported));
  EXPECT_EQ(same.exit_code, 0) << same.out;
  EXPECT_NE(same.out.find("same: 5 tensors, 10 metadata keys"),
            std::string::npos)
      << same.out;
}

// Bytes of the files of `source` that are already in place under `target`
// (in FILE or FILE.tmp, compared page by page at the same offsets).
uint64_t PresentBytes(const std::string& source, const std::string& target) {
  constexpr size_t kPage = 4096;
  uint64_t present = 0;
  for (const auto& entry : fs::recursive_directory_iterator(source)) {
    if (!entry.is_regular_file()) continue;
    const fs::path relative = fs::relative(entry.path(), source);
    const std::string want = ReadFile(entry.path());
    std::string have = ReadFile(fs::path(target) / relative);
    if (have != want) {
      have = ReadFile((fs::path(target) / relative).string() + ".tmp");
    }
    for (size_t at = 0; at < want.size(); at += kPage) {
      const size_t length = std::min(kPage, want.size() - at);
      if (at + length <= have.size() &&
          std::memcmp(have.data() + at, want.data() + at, length) == 0) {
        present += length;
      }
    }
  }
  return present;
}

// A pull killed with SIGKILL at ten random points mid-pull, pstored killed
// and restarted at a third of them, then run again: the directory ends
// identical, and the second run fetches at most what was missing plus one block
// per file (a block that was half written is fetched whole).
TEST_F(ModelDirE2eTest, APullKilledAnywhereResumesToTheSameFiles) {
  const std::string source = dir_.Sub("source");
  WriteModelDirectory(source, 12);
  ASSERT_EQ(Run(absl::StrCat("import ", source, " m@v1 --publish")).exit_code,
            0);
  const uint64_t total = TreeBytes(source);
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(source)) {
    files += entry.is_regular_file();
  }

  // How long a whole pull takes here, to spread the kills over it.
  const absl::Time start = absl::Now();
  ASSERT_EQ(Run(absl::StrCat("pull m ", dir_.Sub("timed"))).exit_code, 0);
  const absl::Duration whole = absl::Now() - start;

  std::mt19937_64 random(20261207);
  // Kills land at random points of a pull whose speed the machine's load
  // sets: the spread adapts (shorter after a kill that came too late,
  // longer after one that came too early) until ten came mid-pull (five
  // under a sanitizer, where each round is several times slower).
  const int wanted_mid_pull = ::pstore::testing::kSanitizer ? 5 : 10;
  double scale = 1.0;
  int mid_pull = 0;
  int restarts_mid_pull = 0;
  for (int round = 0; round < 4 * wanted_mid_pull && mid_pull < wanted_mid_pull;
       ++round) {
    const std::string target = dir_.Sub(absl::StrCat("kill", round));
    ChildProcess pull("pstore-cli",
                      {PstoreCliPath(), "--addr", server_->address(), "pull",
                       "m", target, "--streams", "4"},
                      dir_.Sub("pull.log"));
    ASSERT_OK(pull.Start());
    const bool restart = round % 3 == 1;
    const absl::Duration delay =
        whole * scale *
        std::uniform_real_distribution<double>(0.1, 0.9)(random);
    absl::SleepFor(delay);
    // Not running any more if it finished first.
    if (pull.Running()) {
      ASSERT_OK(pull.Stop(absl::Seconds(10), SIGKILL).status());
    }
    if (restart) {
      server_->Kill();
      ASSERT_OK(server_->Start());
    }
    const uint64_t present = PresentBytes(source, target);
    const bool mid = present > 0 && present < total;
    mid_pull += mid;
    restarts_mid_pull += mid && restart;
    if (present == total) scale *= 0.7;
    if (present == 0) scale = std::min(scale * 1.4, 4.0);

    auto client = NewClient();
    ASSERT_NE(client, nullptr);
    ASSERT_OK_AND_ASSIGN(PullToResult resumed,
                         PullToDirectory(*client, "m", target));
    ExpectSameTree(source, target);
    EXPECT_LE(resumed.fetched_bytes, total - present + files * kBlockBytes)
        << "round " << round << ": " << present << " of " << total
        << " bytes were in place; " << resumed.reused_bytes << " reused";
    EXPECT_EQ(resumed.reused_bytes + resumed.fetched_bytes, total)
        << "round " << round;
    for (const auto& entry : fs::recursive_directory_iterator(target)) {
      EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
    }
    std::printf(
        "round %d: killed after %.0f ms%s; %lu of %lu bytes in place; "
        "resumed: %lu reused, %lu fetched\n",
        round, absl::ToDoubleMilliseconds(delay),
        restart ? " (and pstored)" : "", static_cast<unsigned long>(present),
        static_cast<unsigned long>(total),
        static_cast<unsigned long>(resumed.reused_bytes),
        static_cast<unsigned long>(resumed.fetched_bytes));
  }
  // The kills came mid-pull, pstored's restart with some of them.
  EXPECT_EQ(mid_pull, wanted_mid_pull);
  EXPECT_GE(restarts_mid_pull, wanted_mid_pull / 5);

  // The CLI says how much it reused.
  const std::string target = dir_.Sub("kill0");
  fs::remove(fs::path(target) / "extra" / "big.bin");
  CliResult again = Run(absl::StrCat("pull m ", target));
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("reused, 9 MiB fetched"), std::string::npos)
      << again.out;
  ExpectSameTree(source, target);
}

}  // namespace
}  // namespace pstore
