#include "formats/tensor_file_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "formats/internal/messages.h"
#include "util/status.h"

namespace pstore {
namespace {

using formats_internal::TensorContext;

// The size of the write buffer: appends smaller than this are gathered into
// writes of this size.
constexpr size_t kWriteBufferBytes = size_t{1} << 20;

// The zeros padding is written from, this many at a time.
constexpr size_t kZeroBytes = 256;

// Returns the number of zeros that follow `byte_size` bytes to reach a
// multiple of `alignment`.
uint64_t PaddingBytes(uint64_t byte_size, uint64_t alignment) {
  const uint64_t tail = byte_size % alignment;
  return tail == 0 ? 0 : alignment - tail;
}

}  // namespace

TensorFileWriter::TensorFileWriter(std::unique_ptr<ReplacingFile> file,
                                   std::vector<TensorFileEntry> tensors,
                                   uint64_t alignment)
    : file_(std::move(file)),
      tensors_(std::move(tensors)),
      alignment_(alignment) {}

absl::StatusOr<std::unique_ptr<TensorFileWriter>> TensorFileWriter::Create(
    const std::string& path, absl::string_view header,
    std::vector<TensorFileEntry> tensors, uint64_t alignment) {
  absl::StatusOr<std::unique_ptr<ReplacingFile>> file =
      ReplacingFile::Create(path, kWriteBufferBytes);
  if (!file.ok()) return file.status();
  std::unique_ptr<TensorFileWriter> writer(new TensorFileWriter(
      *std::move(file), std::move(tensors), std::max<uint64_t>(alignment, 1)));
  absl::Status status = writer->file_->Write(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(header.data()), header.size()));
  if (status.ok()) status = writer->CompleteTensors();
  if (!status.ok()) return writer->Fail(std::move(status));
  return writer;
}

absl::Status TensorFileWriter::CompleteTensors() {
  static constexpr uint8_t kZeros[kZeroBytes] = {};
  while (current_tensor_ < tensors_.size() &&
         current_written_ == tensors_[current_tensor_].byte_size) {
    uint64_t padding =
        PaddingBytes(tensors_[current_tensor_].byte_size, alignment_);
    while (padding > 0) {
      const size_t piece =
          static_cast<size_t>(std::min<uint64_t>(padding, kZeroBytes));
      PSTORE_RETURN_IF_ERROR(
          file_->Write(std::span<const uint8_t>(kZeros, piece)));
      padding -= piece;
    }
    ++current_tensor_;
    current_written_ = 0;
  }
  return absl::OkStatus();
}

absl::Status TensorFileWriter::Append(std::span<const uint8_t> bytes) {
  if (finished_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path(), ": Append after Finish"));
  }
  if (!failure_.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path(), ": Append after an earlier error: ", failure_.message()));
  }
  if (current_tensor_ == tensors_.size()) {
    if (bytes.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(path(), ": Append of ", bytes.size(),
                     " bytes after every tensor is complete"));
  }
  const TensorFileEntry& tensor = tensors_[current_tensor_];
  if (bytes.size() > tensor.byte_size - current_written_) {
    return absl::InvalidArgumentError(
        absl::StrCat(path(), ": Append of ", bytes.size(), " bytes overruns ",
                     TensorContext(tensor.name), ", which has ",
                     current_written_, " of ", tensor.byte_size, " bytes"));
  }
  absl::Status status = file_->Write(bytes);
  if (!status.ok()) return Fail(std::move(status));
  current_written_ += bytes.size();
  status = CompleteTensors();
  if (!status.ok()) return Fail(std::move(status));
  return absl::OkStatus();
}

absl::Status TensorFileWriter::Finish() {
  if (finished_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path(), ": Finish called twice"));
  }
  if (!failure_.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path(), ": Finish after an earlier error: ", failure_.message()));
  }
  if (current_tensor_ < tensors_.size()) {
    const TensorFileEntry& tensor = tensors_[current_tensor_];
    return absl::FailedPreconditionError(
        absl::StrCat(path(), ": Finish before every tensor is complete: ",
                     TensorContext(tensor.name), " has ", current_written_,
                     " of ", tensor.byte_size, " bytes"));
  }
  absl::Status status = file_->Commit();
  // Past the rename only the directory's fsync can fail: the file is whole.
  if (file_->committed()) {
    finished_ = true;
  } else {
    failure_ = status;
  }
  return status;
}

absl::Status TensorFileWriter::Fail(absl::Status status) {
  failure_ = status;
  file_->Abandon();
  return status;
}

}  // namespace pstore
