#include "formats/tensor_file_writer.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Returns `count` bytes of `value`.
std::vector<uint8_t> Bytes(size_t count, uint8_t value) {
  return std::vector<uint8_t>(count, value);
}

// Returns `count` zero bytes.
std::string Zeros(size_t count) { return std::string(count, '\0'); }

// Returns true if `path` exists, as a symbolic link too (a dangling one, or
// one to /dev/full).
bool Exists(const std::string& path) {
  return std::filesystem::exists(std::filesystem::symlink_status(path));
}

// Points `path`.tmp at /dev/full, where every write fails with ENOSPC.
bool RedirectTmpToDevFull(const std::string& path) {
  if (access("/dev/full", W_OK) != 0) return false;
  std::error_code error;
  std::filesystem::create_symlink("/dev/full", path + ".tmp", error);
  return !error;
}

TEST(TensorFileWriterTest, WritesHeaderThenTensorsEachPaddedWithZeros) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TensorFileWriter> writer,
      TensorFileWriter::Create(path, "HEADER",
                               {{"a", 3}, {"b", 8}, {"c", 5}, {"d", 9}},
                               /*alignment=*/8));
  // "a" in one piece, "b" (already aligned: no padding) in two, "c" in
  // three, "d" in two.
  ASSERT_OK(writer->Append(Bytes(3, 0xa1)));
  ASSERT_OK(writer->Append(Bytes(6, 0xb2)));
  ASSERT_OK(writer->Append(Bytes(2, 0xb2)));
  ASSERT_OK(writer->Append(Bytes(1, 0xc3)));
  ASSERT_OK(writer->Append(Bytes(3, 0xc3)));
  ASSERT_OK(writer->Append(Bytes(1, 0xc3)));
  ASSERT_OK(writer->Append(Bytes(8, 0xd4)));
  ASSERT_OK(writer->Append(Bytes(1, 0xd4)));
  ASSERT_OK(writer->Finish());

  // Offsets from the data start (byte 6): a at 0, its padding at 3..8; b at
  // 8; c at 16, padding 21..24; d at 24, padding 33..40.
  const std::string expected = absl::StrCat(
      "HEADER", std::string(3, '\xa1'), Zeros(5), std::string(8, '\xb2'),
      std::string(5, '\xc3'), Zeros(3), std::string(9, '\xd4'), Zeros(7));
  EXPECT_EQ(ReadFile(path), expected);
  EXPECT_FALSE(Exists(path + ".tmp"));
}

TEST(TensorFileWriterTest, WritesNoPaddingWithAlignmentOne) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorFileWriter> writer,
                       TensorFileWriter::Create(path, "H", {{"a", 3}, {"b", 5}},
                                                /*alignment=*/1));
  ASSERT_OK(writer->Append(Bytes(3, 'a')));
  ASSERT_OK(writer->Append(Bytes(5, 'b')));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(ReadFile(path), "Haaabbbbb");
}

TEST(TensorFileWriterTest, PadsWithMoreZerosThanOneWriteHolds) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorFileWriter> writer,
                       TensorFileWriter::Create(path, "", {{"a", 1}, {"b", 1}},
                                                /*alignment=*/4096));
  ASSERT_OK(writer->Append(Bytes(1, 'a')));
  ASSERT_OK(writer->Append(Bytes(1, 'b')));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(ReadFile(path), absl::StrCat("a", Zeros(4095), "b", Zeros(4095)));
}

TEST(TensorFileWriterTest, EmptyTensorsCompleteThemselvesWithoutPadding) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorFileWriter> writer,
                       TensorFileWriter::Create(path, "HDR",
                                                {{"first", 0},
                                                 {"a", 2},
                                                 {"mid", 0},
                                                 {"b", 4},
                                                 {"last", 0},
                                                 {"after", 0}},
                                                /*alignment=*/4));
  ASSERT_OK(writer->Append(Bytes(2, 'a')));
  ASSERT_OK(writer->Append(Bytes(4, 'b')));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(ReadFile(path), absl::StrCat("HDRaa", Zeros(2), "bbbb"));
}

TEST(TensorFileWriterTest, FinishesAFileOfEmptyTensorsOrNoneAtOnce) {
  TempDir tmp;
  for (const std::vector<TensorFileEntry>& tensors :
       {std::vector<TensorFileEntry>{},
        std::vector<TensorFileEntry>{{"a", 0}, {"b", 0}}}) {
    const std::string path = tmp.Sub("model.bin");
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorFileWriter> writer,
                         TensorFileWriter::Create(path, "header only", tensors,
                                                  /*alignment=*/32));
    // An empty Append after every tensor is complete is allowed.
    ASSERT_OK(writer->Append({}));
    ASSERT_OK(writer->Finish());
    EXPECT_EQ(ReadFile(path), "header only");
  }
}

TEST(TensorFileWriterTest, RefusesAnAppendThatOverrunsTheCurrentTensor) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorFileWriter> writer,
                       TensorFileWriter::Create(path, "", {{"a", 4}, {"b", 4}},
                                                /*alignment=*/8));
  ASSERT_OK(writer->Append(Bytes(3, 'a')));
  // One byte would end "a"; two would run into "b". Nothing is written.
  EXPECT_THAT(
      writer->Append(Bytes(2, 'x')),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr(path + ": Append of 2 bytes overruns tensor 'a', "
                                "which has 3 of 4 bytes")));
  ASSERT_OK(writer->Append(Bytes(1, 'a')));
  ASSERT_OK(writer->Append(Bytes(4, 'b')));
  EXPECT_THAT(writer->Append(Bytes(1, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Append of 1 bytes after every tensor is "
                                 "complete")));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(ReadFile(path), absl::StrCat("aaaa", Zeros(4), "bbbb", Zeros(4)));
}

TEST(TensorFileWriterTest, RefusesAppendAndFinishAfterFinish) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TensorFileWriter> writer,
      TensorFileWriter::Create(path, "H", {{"a", 2}}, /*alignment=*/1));
  ASSERT_OK(writer->Append(Bytes(2, 'a')));
  ASSERT_OK(writer->Finish());
  EXPECT_THAT(writer->Append(Bytes(1, 'x')),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("Append after Finish")));
  EXPECT_THAT(writer->Append({}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("Append after Finish")));
  EXPECT_THAT(writer->Finish(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("Finish called twice")));
  EXPECT_EQ(ReadFile(path), "Haa");
}

TEST(TensorFileWriterTest, RefusesFinishBeforeTheLastTensorIsComplete) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorFileWriter> writer,
                       TensorFileWriter::Create(path, "H", {{"a", 2}, {"b", 3}},
                                                /*alignment=*/4));
  ASSERT_OK(writer->Append(Bytes(2, 'a')));
  ASSERT_OK(writer->Append(Bytes(2, 'b')));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(path + ": Finish before every tensor is "
                                        "complete: tensor 'b' has 2 of 3 "
                                        "bytes")));
  EXPECT_FALSE(std::filesystem::exists(path));
  // The writer stays usable.
  ASSERT_OK(writer->Append(Bytes(1, 'b')));
  ASSERT_OK(writer->Finish());
  EXPECT_EQ(ReadFile(path), absl::StrCat("Haa", Zeros(2), "bbb", Zeros(1)));
}

TEST(TensorFileWriterTest, QuotesTensorNamesInMessages) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TensorFileWriter> writer,
      TensorFileWriter::Create(path, "", {{"it's\n", 1}}, /*alignment=*/1));
  EXPECT_THAT(writer->Append(Bytes(2, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("overruns tensor 'it\\'s\\n'")));
}

TEST(TensorFileWriterTest, LeavesNoFileWhenDestroyedBeforeFinish) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<TensorFileWriter> writer,
        TensorFileWriter::Create(path, "H", {{"a", 8}}, /*alignment=*/1));
    ASSERT_OK(writer->Append(Bytes(8, 'a')));
    EXPECT_TRUE(Exists(path + ".tmp"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(Exists(path + ".tmp"));
}

TEST(TensorFileWriterTest, AFailedWriteLeavesNoFileAndNoTemporaryFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  if (!RedirectTmpToDevFull(path)) GTEST_SKIP() << "/dev/full is unusable";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorFileWriter> writer,
                       TensorFileWriter::Create(path, "H", {{"a", 3'000'000}},
                                                /*alignment=*/32));
  // Larger than the buffer: written at once, and refused at once.
  EXPECT_THAT(writer->Append(Bytes(3'000'000, 'a')),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(Exists(path + ".tmp"));
  EXPECT_THAT(writer->Append({}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("Append after an earlier error")));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("Finish after an earlier error")));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(Exists(path + ".tmp"));
}

TEST(TensorFileWriterTest, AWriteFailingAtFinishKeepsTheOldFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("model.bin");
  WriteFile(path, "old contents");
  if (!RedirectTmpToDevFull(path)) GTEST_SKIP() << "/dev/full is unusable";
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TensorFileWriter> writer,
      TensorFileWriter::Create(path, "H", {{"a", 5}}, /*alignment=*/32));
  // Small enough to stay in the buffer until Finish flushes it.
  ASSERT_OK(writer->Append(Bytes(5, 'a')));
  EXPECT_THAT(writer->Finish(), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(ReadFile(path), "old contents");
  EXPECT_FALSE(Exists(path + ".tmp"));
  EXPECT_THAT(writer->Finish(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("Finish after an earlier error")));
}

TEST(TensorFileWriterTest, ReportsAMissingDirectoryAsNotFound) {
  TempDir tmp;
  EXPECT_THAT(TensorFileWriter::Create(tmp.Sub("no/such/dir/model.bin"), "H",
                                       {}, /*alignment=*/1)
                  .status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(TensorFileWriterTest, RefusesToReplaceADirectory) {
  TempDir tmp;
  const std::string path = tmp.Sub("dir");
  std::filesystem::create_directory(path);
  EXPECT_THAT(TensorFileWriter::Create(path, "H", {}, /*alignment=*/1).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(Exists(path + ".tmp"));
}

}  // namespace
}  // namespace pstore
