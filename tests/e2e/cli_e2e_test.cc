// End-to-end tests of pstore-cli against a real pstored: import the
// safetensors files other tools wrote, pull and export them back, and check
// every tensor's bytes; errors give one line and a non-zero exit.

#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "formats/safetensors.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoreCliPath;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::TempDir;

using CliResult = ::pstore::testing::CommandResult;

std::string FixturesDir() {
  const char* dir = std::getenv("PSTORE_FIXTURES_DIR");
  return dir == nullptr ? "" : std::string(dir) + "/safetensors";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::vector<uint8_t> ReadTensor(const SafetensorsFile& file,
                                const SafetensorsTensor& tensor) {
  std::vector<uint8_t> bytes(tensor.byte_length);
  EXPECT_OK(file.ReadAt(tensor, 0, std::span<uint8_t>(bytes)));
  return bytes;
}

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PstoredProcess>(dir_.Sub("data"),
                                               std::vector<std::string>{});
    ASSERT_OK(server_->Start());
  }

  CliResult Run(const std::string& args) {
    return RunAt(server_->address(), args);
  }

  // Runs pstore-cli against the pstored at `address`.
  CliResult RunAt(const std::string& address, const std::string& args) {
    return ::pstore::testing::RunCommand(
        absl::StrCat(PstoreCliPath(), " --addr ", address, " ", args));
  }

  // Checks that `a` and `b` hold the same tensors with the same bytes.
  void ExpectSameTensors(const std::string& a, const std::string& b) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> left,
                         SafetensorsFile::Open(a));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> right,
                         SafetensorsFile::Open(b));
    ASSERT_EQ(left->tensors().size(), right->tensors().size());
    EXPECT_EQ(left->metadata(), right->metadata());
    for (const SafetensorsTensor& tensor : left->tensors()) {
      const SafetensorsTensor* other = right->FindTensor(tensor.name);
      ASSERT_NE(other, nullptr) << tensor.name;
      EXPECT_EQ(other->dtype, tensor.dtype);
      EXPECT_EQ(other->shape, tensor.shape);
      EXPECT_EQ(ReadTensor(*left, tensor), ReadTensor(*right, *other))
          << tensor.name;
    }
  }

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
};

TEST_F(CliE2eTest, ImportsEveryFixturePullsAndExportsSameBytes) {
  std::string fixtures = FixturesDir();
  if (fixtures.empty() || !std::filesystem::is_directory(fixtures)) {
    GTEST_SKIP() << "fixtures not found at '" << fixtures
                 << "' (set PSTORE_FIXTURES_DIR)";
  }
  int imported = 0;
  for (const auto& entry : std::filesystem::directory_iterator(fixtures)) {
    if (entry.path().extension() != ".safetensors") continue;
    std::string model = entry.path().stem().string();
    std::string source = entry.path().string();
    CliResult import =
        Run(absl::StrCat("import ", source, " ", model, "@v1 --publish"));
    ASSERT_EQ(import.exit_code, 0) << import.out;
    ++imported;

    std::string pulled = dir_.Sub(model + ".pulled.safetensors");
    CliResult pull =
        Run(absl::StrCat("pull ", model, " ", pulled, " --streams 3"));
    ASSERT_EQ(pull.exit_code, 0) << pull.out;
    ExpectSameTensors(source, pulled);
    // The fixtures come from the Rust crate, whose layout export follows:
    // the whole file comes back byte for byte.
    EXPECT_TRUE(ReadFile(pulled) == ReadFile(source)) << model;

    std::string exported = dir_.Sub(model + ".exported.safetensors");
    CliResult exported_run =
        Run(absl::StrCat("export ", model, "@v1 ", exported));
    ASSERT_EQ(exported_run.exit_code, 0) << exported_run.out;
    ExpectSameTensors(source, exported);

    // Export, import again, export again: the same file.
    CliResult reimport =
        Run(absl::StrCat("import ", exported, " ", model, "@v2"));
    ASSERT_EQ(reimport.exit_code, 0) << reimport.out;
    std::string again = dir_.Sub(model + ".again.safetensors");
    ASSERT_EQ(Run(absl::StrCat("export ", model, "@v2 ", again)).exit_code, 0);
    EXPECT_TRUE(ReadFile(exported) == ReadFile(again)) << model;
  }
  EXPECT_EQ(imported, 4);
}

TEST_F(CliE2eTest, PutGetStatListAndRemove) {
  std::vector<uint8_t> bytes = testing::RandomBytes(4096 * 3, 7);
  std::string raw = dir_.Sub("w.bin");
  std::ofstream(raw, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  CliResult put =
      Run(absl::StrCat("put m@v1/w ", raw, " --dtype bf16 --shape 3,2048"));
  ASSERT_EQ(put.exit_code, 0) << put.out;
  std::string got = dir_.Sub("got.bin");
  ASSERT_EQ(Run(absl::StrCat("get m@v1/w -o ", got)).exit_code, 0);
  std::ifstream in(got, std::ios::binary);
  std::vector<uint8_t> read((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
  EXPECT_EQ(read, bytes);

  CliResult stat = Run("stat m@v1/w");
  EXPECT_EQ(stat.exit_code, 0);
  EXPECT_NE(stat.out.find("dtype: BF16"), std::string::npos) << stat.out;
  CliResult ls = Run("ls m@v1");
  EXPECT_NE(ls.out.find("m@v1/w\tBF16\t[3, 2048]\t12288"), std::string::npos)
      << ls.out;
  ASSERT_EQ(Run("rm m@v1/w").exit_code, 0);
  CliResult gone = Run("stat m@v1/w");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.out.find("NOT_FOUND"), std::string::npos) << gone.out;
}

// pull writes each piece with pwrite at its place in PATH.tmp: the file is
// the same, byte for byte, whether one stream brings every tensor or four
// streams split the large one between them, and equals export's.
TEST_F(CliE2eTest, PullIntoAFileIsTheSameForOneAndFourStreams) {
  struct Put {
    std::string name;
    size_t bytes;
  };
  // 20 MiB and a bit: four streams each get a piece of it.
  const std::vector<Put> puts = {
      {"big", (20 << 20) + 123}, {"small", 4096}, {"odd", 1001}};
  std::map<std::string, std::vector<uint8_t>> tensors;
  for (size_t i = 0; i < puts.size(); ++i) {
    std::vector<uint8_t> bytes = testing::RandomBytes(puts[i].bytes, 20 + i);
    std::string raw = dir_.Sub(puts[i].name + ".bin");
    std::ofstream(raw, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    CliResult put = Run(absl::StrCat("put m@v1/", puts[i].name, " ", raw,
                                     " --dtype U8 --shape ", bytes.size()));
    ASSERT_EQ(put.exit_code, 0) << put.out;
    tensors[puts[i].name] = std::move(bytes);
  }
  ASSERT_EQ(Run("publish m@v1").exit_code, 0);
  std::string exported = dir_.Sub("exported.safetensors");
  CliResult exported_run = Run(absl::StrCat("export m@v1 ", exported));
  ASSERT_EQ(exported_run.exit_code, 0) << exported_run.out;
  for (int streams : {1, 4}) {
    std::string pulled =
        dir_.Sub(absl::StrCat("pulled", streams, ".safetensors"));
    CliResult pull =
        Run(absl::StrCat("pull m@v1 ", pulled, " --streams ", streams));
    ASSERT_EQ(pull.exit_code, 0) << pull.out;
    EXPECT_FALSE(std::filesystem::exists(pulled + ".tmp"));
    EXPECT_TRUE(ReadFile(pulled) == ReadFile(exported)) << streams;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SafetensorsFile> file,
                         SafetensorsFile::Open(pulled));
    for (const auto& [name, bytes] : tensors) {
      const SafetensorsTensor* tensor = file->FindTensor(name);
      ASSERT_NE(tensor, nullptr) << name;
      EXPECT_TRUE(ReadTensor(*file, *tensor) == bytes)
          << name << " " << streams;
    }
  }
}

// `get -o /dev/null` or a FIFO writes in place: a special file is never
// renamed over (that once replaced /dev/null with a regular file); pull and
// export, which rename a finished file into place, refuse one.
TEST_F(CliE2eTest, SpecialFilesAreWrittenInPlaceNeverReplaced) {
  std::vector<uint8_t> bytes = testing::RandomBytes(3 << 20, 9);
  std::string raw = dir_.Sub("w.bin");
  std::ofstream(raw, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  ASSERT_EQ(Run(absl::StrCat("put m@v1/w ", raw, " --dtype U8 --shape ",
                             bytes.size()))
                .exit_code,
            0);
  ASSERT_EQ(Run("publish m@v1").exit_code, 0);

  std::string fifo = dir_.Sub("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string copy = dir_.Sub("copy.bin");
  // The reader: cat stops at the writer's end of file (or is killed after
  // 60 s, if the writer never opens the FIFO).
  FILE* reader =
      popen(absl::StrCat("timeout 60 cat ", fifo, " > ", copy).c_str(), "r");
  ASSERT_NE(reader, nullptr);
  CliResult get = Run(absl::StrCat("get m@v1/w -o ", fifo));
  EXPECT_EQ(pclose(reader), 0);
  EXPECT_EQ(get.exit_code, 0) << get.out;
  struct stat st;
  ASSERT_EQ(stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  std::string got = ReadFile(copy);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.end()), bytes);

  for (const char* verb : {"pull", "export"}) {
    CliResult refused = Run(absl::StrCat(verb, " m@v1 ", fifo));
    EXPECT_EQ(refused.exit_code, 1) << verb;
    EXPECT_NE(refused.out.find("INVALID_ARGUMENT"), std::string::npos)
        << refused.out;
    ASSERT_EQ(stat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode)) << verb;
  }
}

TEST_F(CliE2eTest, ErrorsAreOneLineWithTheCodeAndExitNonZero) {
  CliResult missing = Run("get nomodel/x");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(std::count(missing.out.begin(), missing.out.end(), '\n'), 1)
      << missing.out;
  EXPECT_EQ(missing.out.rfind("pstore-cli: NOT_FOUND: ", 0), 0u) << missing.out;

  std::string bad = dir_.Sub("bad.safetensors");
  std::ofstream(bad) << "this is not a safetensors file";
  CliResult import = Run(absl::StrCat("import ", bad, " m@v1"));
  EXPECT_EQ(import.exit_code, 1);
  EXPECT_NE(import.out.find("INVALID_ARGUMENT"), std::string::npos)
      << import.out;

  EXPECT_EQ(Run("frobnicate").exit_code, 2);
  EXPECT_EQ(Run("put m@v1/x").exit_code, 2);

  std::string raw = dir_.Sub("short.bin");
  std::ofstream(raw) << "abc";
  CliResult wrong =
      Run(absl::StrCat("put m@v1/x ", raw, " --dtype F32 --shape 1"));
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.out.find("INVALID_ARGUMENT"), std::string::npos) << wrong.out;
}

TEST_F(CliE2eTest, PinPrefetchDropCacheAndStatus) {
  std::string raw = dir_.Sub("w.bin");
  std::vector<uint8_t> bytes = testing::RandomBytes(1 << 20, 3);
  std::ofstream(raw, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  ASSERT_EQ(Run(absl::StrCat("put m@v1/w ", raw, " --dtype U8 --shape 1048576"))
                .exit_code,
            0);
  ASSERT_EQ(Run("publish m@v1").exit_code, 0);
  EXPECT_EQ(Run("prefetch m --tier nvme").exit_code, 0);
  EXPECT_EQ(Run("drop-cache --tier dram").exit_code, 0);
  EXPECT_EQ(Run("pin m").exit_code, 0);
  CliResult status = Run("status");
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find("m@v1"), std::string::npos) << status.out;
  EXPECT_EQ(Run("unpin m").exit_code, 0);
  EXPECT_EQ(Run("drop-cache --tier cold").exit_code, 1);
  EXPECT_EQ(Run("drop-cache --tier disk").exit_code, 2);
}

// FAILED_PRECONDITION has more than one cause; the advice after the
// message is that of the cause at hand. It once told a prefetch into a
// disabled NVMe tier that published revisions are immutable.
TEST_F(CliE2eTest, FailedPreconditionAdviceFitsTheCause) {
  const std::string kPublishAdvice = "write to a new revision";
  std::string raw = dir_.Sub("w.bin");
  std::vector<uint8_t> bytes = testing::RandomBytes(4096, 5);
  std::ofstream(raw, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const std::string put = absl::StrCat(" ", raw, " --dtype U8 --shape 4096");

  PstoredProcess no_nvme(dir_.Sub("no_nvme"), {"--nvme_bytes=0"});
  ASSERT_OK(no_nvme.Start());
  ASSERT_EQ(RunAt(no_nvme.address(), "put m@v1/w" + put).exit_code, 0);
  ASSERT_EQ(RunAt(no_nvme.address(), "publish m@v1").exit_code, 0);
  CliResult prefetch = RunAt(no_nvme.address(), "prefetch m --tier nvme");
  EXPECT_EQ(prefetch.exit_code, 1);
  EXPECT_EQ(prefetch.out.rfind("pstore-cli: FAILED_PRECONDITION: ", 0), 0u)
      << prefetch.out;
  EXPECT_NE(prefetch.out.find("NVMe tier is disabled"), std::string::npos)
      << prefetch.out;
  EXPECT_EQ(prefetch.out.find(kPublishAdvice), std::string::npos)
      << prefetch.out;

  // A put into a published revision still gets the advice.
  ASSERT_EQ(Run("put m@v1/w" + put).exit_code, 0);
  ASSERT_EQ(Run("publish m@v1").exit_code, 0);
  CliResult refused = Run("put m@v1/x" + put);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.out.rfind("pstore-cli: FAILED_PRECONDITION: ", 0), 0u)
      << refused.out;
  EXPECT_NE(refused.out.find(kPublishAdvice), std::string::npos) << refused.out;
}

}  // namespace
}  // namespace pstore
