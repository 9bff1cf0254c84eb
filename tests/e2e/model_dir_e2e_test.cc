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
#include "formats/safetensors.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
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

// A pull killed with SIGKILL at ten random points, pstored killed and
// restarted at three of them, then run again: the directory ends identical,
// and the second run fetches at most what was missing plus one block per
// file (a block that was half written is fetched whole).
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
  int mid_pull = 0;
  for (int round = 0; round < 10; ++round) {
    const std::string target = dir_.Sub(absl::StrCat("kill", round));
    ChildProcess pull("pstore-cli",
                      {PstoreCliPath(), "--addr", server_->address(), "pull",
                       "m", target, "--streams", "4"},
                      dir_.Sub("pull.log"));
    ASSERT_OK(pull.Start());
    const bool restart = round % 3 == 1;
    // A restart of pstored comes mid-pull, not after it.
    const absl::Duration delay =
        whole * std::uniform_real_distribution<double>(
                    restart ? 0.2 : 0.05, restart ? 0.6 : 1.0)(random);
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
    mid_pull += present > 0 && present < total;

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
  // The kills came mid-pull, not all before or after it.
  EXPECT_GE(mid_pull, 3);

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
