// Whole-buffer file reads and writes over POSIX descriptors, retrying short
// transfers and EINTR, with errors as Status (through ErrnoToStatus); and
// ReplacingFile, the one way pstore writes an output file.
//
// Thread-safe as the descriptors they are given; ReplacingFile is
// thread-compatible.

#ifndef PSTORE_UTIL_FILE_IO_H_
#define PSTORE_UTIL_FILE_IO_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pstore {

// Reads all of `dest` from `offset` of `fd` (the file at `path`, for
// messages). DataLoss if the file ends first; ErrnoToStatus codes else.
absl::Status ReadFully(int fd, const std::string& path, uint64_t offset,
                       std::span<uint8_t> dest);

// Writes all of `bytes` at `offset` of `fd` (the file at `path`, for
// messages). ResourceExhausted on ENOSPC; ErrnoToStatus codes else.
absl::Status WriteFullyAt(int fd, const std::string& path, uint64_t offset,
                          std::span<const uint8_t> bytes);

// Returns the whole contents of the file at `path`. ErrnoToStatus codes:
// NotFound if it does not exist, PermissionDenied if it may not be read,
// InvalidArgument for a directory (EISDIR), and so on.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes all of `bytes` to `fd` (the file at `path`) at its file position.
// ResourceExhausted on ENOSPC; ErrnoToStatus codes else.
absl::Status WriteFully(int fd, const std::string& path,
                        std::span<const uint8_t> bytes);

// Returns OK if `path` may be written as `path`.tmp and renamed over: it
// does not exist or is a regular file. InvalidArgument for anything else (a
// directory, /dev/null, a FIFO), which a rename would replace.
absl::Status CheckReplaceable(const std::string& path);

// Returns true if `path` exists and is not a regular file or a directory
// (/dev/null, a FIFO, a terminal): a stream may be written to it in place.
bool IsSpecialFile(const std::string& path);

// Closes a file descriptor when it goes out of scope, unless released.
// For descriptors whose close cannot lose data (read-only, or already
// synced): a close error is ignored.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser();
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// A file written as `path`.tmp and renamed over `path` once complete, so
// that a reader finds the old file or the whole new one, never a part.
// Writes go through a buffer; the descriptor is there for callers that map
// the file instead. Destroyed before Commit, or after an error, it removes
// the temporary file.
class ReplacingFile {
 public:
  // Creates `path`.tmp (read-write, truncated). InvalidArgument if `path`
  // exists and is not a regular file (CheckReplaceable); ErrnoToStatus codes
  // if the temporary file cannot be created. `buffer_bytes` 0: unbuffered.
  static absl::StatusOr<std::unique_ptr<ReplacingFile>> Create(
      const std::string& path, size_t buffer_bytes);

  ~ReplacingFile();
  ReplacingFile(const ReplacingFile&) = delete;
  ReplacingFile& operator=(const ReplacingFile&) = delete;

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  // The temporary file Create(path) writes: `path`.tmp.
  static std::string TempPathOf(const std::string& path) {
    return path + ".tmp";
  }
  // The temporary file's descriptor; -1 once committed or abandoned.
  int fd() const { return fd_; }
  // True once the temporary file has been renamed over `path`.
  bool committed() const { return committed_; }

  // Appends `bytes` at the file position, through the buffer.
  // ResourceExhausted on ENOSPC; ErrnoToStatus codes else.
  absl::Status Write(std::span<const uint8_t> bytes);

  // Flushes, fsyncs and closes the temporary file, renames it over `path`
  // and fsyncs the directory. On an error before the rename the temporary
  // file is removed; if only the directory fsync fails, committed() is
  // already true: the complete file is in place.
  absl::Status Commit();

  // Closes and removes the temporary file, ignoring errors (what it held is
  // garbage). Does nothing once committed.
  void Abandon();

 private:
  ReplacingFile(std::string path, int fd, size_t buffer_bytes);
  absl::Status Flush();

  const std::string path_;
  const std::string temp_path_;
  int fd_;
  const size_t buffer_bytes_;
  std::vector<uint8_t> buffer_;
  bool committed_ = false;
  bool abandoned_ = false;
};

}  // namespace pstore

#endif  // PSTORE_UTIL_FILE_IO_H_
