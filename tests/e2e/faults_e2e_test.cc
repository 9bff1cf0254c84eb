// End-to-end fault tests of a real pstored: bytes flipped in NVMe region
// files and in RocksDB files, full disks under the NVMe and cold
// directories (size-limited tmpfs mounts made by the test), and read errors
// injected with libfiu. pstored must never return wrong bytes, must say
// DataLoss or Unavailable as fits, and must keep serving what it can.

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/pstore_client.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::CommandResult;
using ::pstore::testing::PstoreCliPath;
using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::RunCommand;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using Code = absl::StatusCode;

constexpr int64_t kMiB = 1 << 20;

std::unique_ptr<Client> Connect(const PstoredProcess& server) {
  ClientOptions options;
  options.address = server.address();
  options.max_attempts = 1;
  options.call_timeout = absl::Seconds(30);
  return *Client::Create(options);
}

CommandResult Cli(const PstoredProcess& server, const std::string& args) {
  return RunCommand(absl::StrCat(PstoreCliPath(), " --addr ", server.address(),
                                 " --timeout 30 ", args));
}

// Flips one byte at `offset` of `path`.
void FlipByte(const std::string& path, off_t offset) {
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  uint8_t byte = 0;
  ASSERT_EQ(pread(fd, &byte, 1, offset), 1);
  byte ^= 0x20;
  ASSERT_EQ(pwrite(fd, &byte, 1, offset), 1);
  close(fd);
}

// Returns, for each needle, the files under `dir` whose bytes contain it,
// with the offset of the first occurrence. Reads each file once.
std::vector<std::vector<std::pair<std::string, off_t>>> FindBytes(
    const std::string& dir, const std::vector<std::vector<uint8_t>>& needles) {
  std::vector<std::vector<std::pair<std::string, off_t>>> found(needles.size());
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string& text = bytes.str();
    for (size_t i = 0; i < needles.size(); ++i) {
      size_t at = text.find(std::string(needles[i].begin(), needles[i].end()));
      if (at != std::string::npos) {
        found[i].emplace_back(entry.path().string(), static_cast<off_t>(at));
      }
    }
  }
  return found;
}

// A size-limited tmpfs mounted for one test; unmounted when destroyed.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, uint64_t bytes) : path_(path) {
    std::filesystem::create_directories(path);
    std::string options = absl::StrCat("size=", bytes);
    mounted_ = mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST(FaultsTest, CorruptNvmeCopiesAreReportedDroppedAndServedFromCold) {
  TempDir dir;
  PstoredProcess server(dir.Sub("data"),
                        {"--block_bytes=1MiB", "--nvme_bytes=64MiB"});
  ASSERT_OK(server.Start());
  auto client = Connect(server);
  std::vector<uint8_t> bytes = RandomBytes(8 * kMiB, 1);
  ASSERT_OK(
      client->PutTensor("m@v1/w", "U8", std::vector<int64_t>{8 * kMiB}, bytes)
          .status());
  ASSERT_OK(client->PublishRevision("m@v1").status());
  ASSERT_OK(client->Prefetch("m@v1", v1::TIER_NVME).status());
  ASSERT_OK(client->DropCache(v1::TIER_DRAM));
  // Flip a byte inside every block's NVMe copy.
  std::vector<std::vector<uint8_t>> needles;
  for (int block = 0; block < 8; ++block) {
    needles.emplace_back(bytes.begin() + block * kMiB + 5000,
                         bytes.begin() + block * kMiB + 5064);
  }
  int flipped = 0;
  for (const auto& copies : FindBytes(dir.Sub("data/nvme"), needles)) {
    for (const auto& [path, offset] : copies) {
      FlipByte(path, offset + 10);
      ++flipped;
    }
  }
  ASSERT_EQ(flipped, 8);

  CommandResult verify = Cli(server, "verify m");
  EXPECT_EQ(verify.exit_code, 1) << verify.out;
  EXPECT_NE(verify.out.find("BAD m@v1/w block 0"), std::string::npos)
      << verify.out;
  EXPECT_NE(verify.out.find("in nvme"), std::string::npos) << verify.out;
  EXPECT_EQ(verify.out.find("in cold"), std::string::npos) << verify.out;

  ASSERT_OK_AND_ASSIGN(auto got, client->GetTensor("m/w"));
  EXPECT_TRUE(got.second == bytes);
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus status, client->GetServerStatus());
  EXPECT_EQ(status.tiers(1).checksum_failures(), 8u);
  // The bad copies are gone: a second scrub is clean.
  CommandResult again = Cli(server, "verify m");
  EXPECT_EQ(again.exit_code, 0) << again.out;
}

TEST(FaultsTest, CorruptColdBlocksAreDataLossNamingTheTensor) {
  TempDir dir;
  PstoredProcess server(dir.Sub("data"),
                        {"--block_bytes=1MiB", "--nvme_bytes=0"});
  ASSERT_OK(server.Start());
  std::vector<uint8_t> bad = RandomBytes(2 * kMiB, 2);
  std::vector<uint8_t> good = RandomBytes(2 * kMiB, 3);
  {
    auto client = Connect(server);
    ASSERT_OK(
        client->PutTensor("m@v1/bad", "U8", std::vector<int64_t>{2 * kMiB}, bad)
            .status());
    ASSERT_OK(
        client
            ->PutTensor("m@v1/good", "U8", std::vector<int64_t>{2 * kMiB}, good)
            .status());
  }
  // Each block is a file of its own under cold/blocks
  // (storage/cold/block_files_format.md).
  ASSERT_OK(server.Stop().status());
  std::vector<uint8_t> needle(bad.begin() + kMiB + 777,
                              bad.begin() + kMiB + 841);
  auto found = FindBytes(dir.Sub("data/cold"), {needle})[0];
  ASSERT_EQ(found.size(), 1u);
  ASSERT_TRUE(absl::StrContains(found[0].first, "/cold/blocks/"))
      << found[0].first;
  FlipByte(found[0].first, found[0].second + 20);

  ASSERT_OK(server.Start());
  auto client = Connect(server);
  absl::StatusOr<std::pair<v1::TensorInfo, std::vector<uint8_t>>> read =
      client->GetTensor("m@v1/bad");
  EXPECT_THAT(read,
              StatusIs(Code::kDataLoss, ::testing::HasSubstr("m@v1/bad")));
  ASSERT_OK_AND_ASSIGN(auto fine, client->GetTensor("m@v1/good"));
  EXPECT_TRUE(fine.second == good);
  CommandResult verify = Cli(server, "verify m@v1");
  EXPECT_EQ(verify.exit_code, 1) << verify.out;
  EXPECT_NE(verify.out.find("BAD m@v1/bad block 1"), std::string::npos)
      << verify.out;
  EXPECT_NE(verify.out.find("in cold"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("DATA_LOSS"), std::string::npos) << verify.out;
}

TEST(FaultsTest, AFullColdDiskRefusesPutsWholeAndRecoversWhenFreed) {
  TempDir dir;
  TmpfsMount cold(dir.Sub("cold"), 640 * kMiB);
  if (!cold.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here";
  PstoredProcess server(dir.Sub("data"),
                        {"--cold_dir=" + dir.Sub("cold"), "--nvme_bytes=0",
                         "--block_bytes=1MiB", "--cold_min_free_bytes=256MiB"});
  ASSERT_OK(server.Start());
  auto client = Connect(server);
  std::vector<uint8_t> first = RandomBytes(4 * kMiB, 4);
  ASSERT_OK(
      client
          ->PutTensor("m@v1/first", "U8", std::vector<int64_t>{4 * kMiB}, first)
          .status());
  // Fill the filesystem down to 40 MiB above the reserve.
  std::string filler = dir.Sub("cold/filler");
  {
    struct statvfs fs;
    ASSERT_EQ(statvfs(dir.Sub("cold").c_str(), &fs), 0);
    int64_t fill =
        static_cast<int64_t>(fs.f_bavail * fs.f_frsize) - (256 + 40) * kMiB;
    ASSERT_GT(fill, 0);
    std::ofstream out(filler, std::ios::binary);
    std::vector<char> chunk(kMiB, 'x');
    for (int64_t i = 0; i < fill / kMiB; ++i) out.write(chunk.data(), kMiB);
  }
  // Put until the reserve refuses (bounded).
  absl::Status refused;
  std::string refused_name;
  for (int i = 0; i < 24 && refused.ok(); ++i) {
    refused_name = absl::StrCat("m@v1/fill", i);
    refused =
        client
            ->PutTensor(refused_name, "U8", std::vector<int64_t>{8 * kMiB},
                        RandomBytes(8 * kMiB, 100 + i))
            .status();
  }
  EXPECT_THAT(refused, StatusIs(Code::kResourceExhausted));
  // Nothing of the refused put remains.
  EXPECT_THAT(client->StatTensor(refused_name), StatusIs(Code::kNotFound));
  std::vector<uint8_t> second = RandomBytes(8 * kMiB, 5);
  ASSERT_OK_AND_ASSIGN(auto kept, client->GetTensor("m@v1/first"));
  EXPECT_TRUE(kept.second == first);

  std::filesystem::remove(filler);
  absl::Status put = absl::UnknownError("not tried");
  // The first write after freeing space resumes RocksDB.
  for (int i = 0; i < 3 && !put.ok(); ++i) {
    put = client
              ->PutTensor("m@v1/second", "U8", std::vector<int64_t>{8 * kMiB},
                          second)
              .status();
  }
  ASSERT_OK(put);
  ASSERT_OK_AND_ASSIGN(auto stored, client->GetTensor("m@v1/second"));
  EXPECT_TRUE(stored.second == second);
}

TEST(FaultsTest, AnNvmeDirectoryTooSmallDisablesTheTierNotTheServer) {
  TempDir dir;
  TmpfsMount nvme(dir.Sub("nvme"), 8 * kMiB);
  if (!nvme.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here";
  PstoredProcess server(
      dir.Sub("data"), {"--nvme_dir=" + dir.Sub("nvme"), "--nvme_bytes=64MiB"});
  ASSERT_OK(server.Start());
  auto client = Connect(server);
  std::vector<uint8_t> bytes = RandomBytes(kMiB, 6);
  ASSERT_OK(client->PutTensor("m@v1/w", "U8", std::vector<int64_t>{kMiB}, bytes)
                .status());
  ASSERT_OK_AND_ASSIGN(auto got, client->GetTensor("m@v1/w"));
  EXPECT_TRUE(got.second == bytes);
  ASSERT_OK_AND_ASSIGN(v1::ServerStatus status, client->GetServerStatus());
  EXPECT_FALSE(status.tiers(1).enabled());
  EXPECT_NE(server.Log().find("event=nvme_disabled"), std::string::npos);
}

TEST(FaultsTest, InjectedReadErrorsAreUnavailableAndTheServerKeepsServing) {
  if (::pstore::testing::kAddressSanitizer) {
    GTEST_SKIP() << "fiu-run preloads libfiu, and the ASan runtime must come "
                    "first in the library list";
  }
  if (RunCommand("command -v fiu-run && command -v fiu-ctrl").exit_code != 0) {
    GTEST_SKIP() << "libfiu's fiu-run/fiu-ctrl are not installed "
                    "(Debian package fiu-utils)";
  }
  TempDir dir;
  PstoredProcess server(dir.Sub("data"), {"--nvme_bytes=0"});
  std::vector<uint8_t> cold = RandomBytes(3 * kMiB, 7);
  std::vector<uint8_t> hot = RandomBytes(kMiB, 8);
  ASSERT_OK(server.Start());
  {
    auto client = Connect(server);
    ASSERT_OK(
        client
            ->PutTensor("m@v1/cold", "U8", std::vector<int64_t>{3 * kMiB}, cold)
            .status());
  }
  ASSERT_OK(server.Stop().status());  // Block files, read with pread.
  server.SetCommandPrefix({"fiu-run", "-x"});
  ASSERT_OK(server.Start());
  auto client = Connect(server);
  ASSERT_OK(client->PutTensor("m@v1/hot", "U8", std::vector<int64_t>{kMiB}, hot)
                .status());
  std::string pid = std::to_string(server.pid());
  ASSERT_EQ(RunCommand("fiu-ctrl -c 'enable name=posix/io/rw/pread' " + pid)
                .exit_code,
            0);
  EXPECT_THAT(client->GetTensor("m@v1/cold"),
              StatusIs(Code::kUnavailable, ::testing::HasSubstr("m@v1/cold")));
  // What DRAM holds is still served.
  ASSERT_OK_AND_ASSIGN(auto got, client->GetTensor("m@v1/hot"));
  EXPECT_TRUE(got.second == hot);
  ASSERT_EQ(RunCommand("fiu-ctrl -c 'disable name=posix/io/rw/pread' " + pid)
                .exit_code,
            0);
  ASSERT_OK_AND_ASSIGN(auto healed, client->GetTensor("m@v1/cold"));
  EXPECT_TRUE(healed.second == cold);
  EXPECT_TRUE(server.Running());
}

}  // namespace
}  // namespace pstore
