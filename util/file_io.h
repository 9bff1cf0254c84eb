// Whole-buffer file reads and writes over POSIX descriptors, retrying short
// transfers and EINTR, with errors as Status (through ErrnoToStatus).
//
// Thread-safe as the descriptors they are given.

#ifndef PSTORE_UTIL_FILE_IO_H_
#define PSTORE_UTIL_FILE_IO_H_

#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "absl/status/status.h"

namespace pstore {

// Reads all of `dest` from `offset` of `fd` (the file at `path`, for
// messages). DataLoss if the file ends first; ErrnoToStatus codes else.
absl::Status ReadFully(int fd, const std::string& path, uint64_t offset,
                       std::span<uint8_t> dest);

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

}  // namespace pstore

#endif  // PSTORE_UTIL_FILE_IO_H_
