#include "util/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::testing::HasSubstr;

std::span<const uint8_t> Bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

TEST(WriteFullyAtTest, WritesAtTheOffsetAndLeavesTheRest) {
  TempDir dir;
  const std::string path = dir.Sub("f");
  WriteText(path, "0123456789");
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  FdCloser closer(fd);
  ASSERT_OK(WriteFullyAt(fd, path, 3, Bytes("abc")));
  ASSERT_OK(WriteFullyAt(fd, path, 12, Bytes("z")));  // Past the end.
  EXPECT_EQ(Contents(path), std::string("012abc6789\0\0z", 13));
  EXPECT_THAT(WriteFullyAt(-1, path, 0, Bytes("x")),
              StatusIs(absl::StatusCode::kInternal, HasSubstr(path)));
}

TEST(ReadFileToStringTest, ReturnsTheWholeFile) {
  TempDir dir;
  const std::string path = dir.Sub("data.bin");
  std::string bytes(200000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  WriteText(path, bytes);
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read == bytes);
  WriteText(path, "");
  EXPECT_EQ(ReadFileToString(path).value_or("x"), "");
}

TEST(ReadFileToStringTest, MapsErrnoToTheDocumentedCodes) {
  TempDir dir;
  EXPECT_THAT(ReadFileToString(dir.Sub("missing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  EXPECT_THAT(ReadFileToString(dir.path().string()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  if (geteuid() != 0) {
    const std::string path = dir.Sub("secret");
    WriteText(path, "x");
    chmod(path.c_str(), 0);
    EXPECT_THAT(ReadFileToString(path),
                StatusIs(absl::StatusCode::kPermissionDenied));
  }
}

TEST(ReplacingFileTest, CommitReplacesTheTargetWholeAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir.Sub("out.bin");
  WriteText(path, "old contents");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ReplacingFile> file,
                       ReplacingFile::Create(path, /*buffer_bytes=*/8));
  EXPECT_EQ(file->temp_path(), path + ".tmp");
  // Short writes stay in the buffer, a long one goes straight through.
  ASSERT_OK(file->Write(Bytes("abc")));
  ASSERT_OK(file->Write(Bytes("defghijklmnop")));
  ASSERT_OK(file->Write(Bytes("q")));
  EXPECT_EQ(Contents(path), "old contents");  // Untouched until Commit.
  ASSERT_OK(file->Commit());
  EXPECT_TRUE(file->committed());
  EXPECT_EQ(Contents(path), "abcdefghijklmnopq");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(ReplacingFileTest, DestroyedUncommittedItRemovesOnlyItsTemporary) {
  TempDir dir;
  const std::string path = dir.Sub("out.bin");
  WriteText(path, "old contents");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ReplacingFile> file,
                         ReplacingFile::Create(path, 0));
    ASSERT_OK(file->Write(Bytes("partial")));
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(Contents(path), "old contents");
}

TEST(ReplacingFileTest, AbandonThenCommitFailsAndChangesNothing) {
  TempDir dir;
  const std::string path = dir.Sub("out.bin");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ReplacingFile> file,
                       ReplacingFile::Create(path, 0));
  ASSERT_OK(file->Write(Bytes("bytes")));
  file->Abandon();
  EXPECT_EQ(file->fd(), -1);
  EXPECT_FALSE(file->Commit().ok());
  EXPECT_FALSE(file->committed());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(ReplacingFileTest, RefusesATargetThatIsNotARegularFile) {
  TempDir dir;
  EXPECT_THAT(ReplacingFile::Create(dir.path().string(), 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::string fifo = dir.Sub("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ReplacingFile::Create(fifo, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(std::filesystem::exists(fifo + ".tmp"));
}

TEST(ReplacingFileTest, AMissingDirectoryIsAnErrorFromCreate) {
  TempDir dir;
  EXPECT_THAT(ReplacingFile::Create(dir.Sub("no/such/dir/out.bin"), 0),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace pstore
