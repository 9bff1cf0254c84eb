// TensorFileWriter writes one model file of the shape safetensors and GGUF
// share: a header, then the bytes of every tensor in order, each followed by
// zero padding up to a multiple of an alignment (1 for safetensors, which
// packs tensors back to back; 32 for GGUF). The format's own code computes
// the header and the tensors' sizes (ComputeSafetensorsLayout,
// ComputeGgufLayout); this class checks that the tensors' bytes come in that
// order and size, writes the padding, and writes everything through
// ReplacingFile: `path + ".tmp"`, renamed into place by Finish, so a reader
// finds the old file or the whole new one, never a part.
//
// SafetensorsWriter and GgufWriter are thin wrappers that compute the layout
// and hand it to this class.
//
// Thread safety: a TensorFileWriter is not thread-safe: one caller at a time.

#ifndef PSTORE_FORMATS_TENSOR_FILE_WRITER_H_
#define PSTORE_FORMATS_TENSOR_FILE_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "util/file_io.h"

namespace pstore {

// One tensor as the writer sees it: how many bytes, and a name for messages.
struct TensorFileEntry {
  std::string name;
  uint64_t byte_size = 0;
};

// Writes one file front to back through a buffer: Create (which writes the
// header), then Append the bytes of every tensor in order, then Finish.
//
// Owns the file descriptor of `path + ".tmp"`. Destroying the writer without
// a successful Finish closes and removes the temporary file, so `path` is
// never left half written. Two writers must not write the same path at once.
class TensorFileWriter {
 public:
  // Creates (or truncates) `path + ".tmp"` and writes `header` to it. Each
  // of `tensors`, in order, then takes its byte_size bytes followed by zeros
  // up to the next multiple of `alignment` (counted from the start of the
  // data, the byte after `header`; 0 and 1 mean no padding). Returns the
  // writer; InvalidArgument if `path` exists and is not a regular file;
  // NotFound if the directory does not exist; other codes from
  // ErrnoToStatus.
  static absl::StatusOr<std::unique_ptr<TensorFileWriter>> Create(
      const std::string& path, absl::string_view header,
      std::vector<TensorFileEntry> tensors, uint64_t alignment);

  TensorFileWriter(const TensorFileWriter&) = delete;
  TensorFileWriter& operator=(const TensorFileWriter&) = delete;

  // The file written: the target path, not the temporary one.
  const std::string& path() const { return file_->path(); }

  // Appends `bytes` to the current tensor: the first one that is not yet
  // complete (0-byte tensors complete themselves). A call never spans two
  // tensors; the zero padding after a tensor is written when it completes.
  // Returns OK; InvalidArgument, writing nothing, if `bytes` runs past the
  // end of the current tensor or every tensor is complete (an empty Append
  // then is OK); FailedPrecondition after Finish or an earlier I/O error;
  // ResourceExhausted on ENOSPC and other codes from ErrnoToStatus, after
  // which the temporary file is gone.
  absl::Status Append(std::span<const uint8_t> bytes);

  // Flushes, fsyncs and closes the temporary file, renames it to the target
  // path and fsyncs the directory. Returns OK; FailedPrecondition, changing
  // nothing, if some tensor is not complete (the writer stays usable), or if
  // Finish already ran or an earlier I/O error occurred; ResourceExhausted on
  // ENOSPC and other codes from ErrnoToStatus. On an I/O error the temporary
  // file is removed; if only the final directory fsync fails, the complete
  // file is already in place.
  absl::Status Finish();

 private:
  TensorFileWriter(std::unique_ptr<ReplacingFile> file,
                   std::vector<TensorFileEntry> tensors, uint64_t alignment);

  // Writes the padding of every complete tensor from current_tensor_ on and
  // moves current_tensor_ past them. Returns OK or the write's error.
  absl::Status CompleteTensors();
  // Records `status` as the writer's failure, removes the temporary file
  // and returns `status`.
  absl::Status Fail(absl::Status status);

  const std::unique_ptr<ReplacingFile> file_;
  const std::vector<TensorFileEntry> tensors_;
  const uint64_t alignment_;
  size_t current_tensor_ = 0;     // Index in tensors_.
  uint64_t current_written_ = 0;  // Bytes of the current tensor appended.
  bool finished_ = false;
  absl::Status failure_;  // The first I/O error, if any.
};

}  // namespace pstore

#endif  // PSTORE_FORMATS_TENSOR_FILE_WRITER_H_
