#include "util/file_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace pstore {

absl::Status ReadFully(int fd, const std::string& path, uint64_t offset,
                       std::span<uint8_t> dest) {
  size_t done = 0;
  while (done < dest.size()) {
    ssize_t n = pread(fd, dest.data() + done, dest.size() - done,
                      static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno,
                           absl::StrCat("pread ", path, " at ", offset + done));
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("pread ", path, ": file ends at ", offset + done,
                       ", before the ", dest.size() - done, " bytes wanted"));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteFully(int fd, const std::string& path,
                        std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("write ", path));
    }
    if (n == 0) {
      return ErrnoToStatus(EIO, absl::StrCat("write ", path, " wrote nothing"));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

FdCloser::~FdCloser() {
  if (fd_ >= 0) close(fd_);
}

absl::Status CheckReplaceable(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, " exists and is not a regular file; the output is written as ",
      path, ".tmp and renamed over it: give a file path"));
}

bool IsSpecialFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) &&
         !S_ISDIR(st.st_mode);
}

}  // namespace pstore
