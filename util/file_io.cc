#include "util/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace pstore {

absl::Status WriteFullyAt(int fd, const std::string& path, uint64_t offset,
                          std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    ssize_t wrote =
        pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) {
      return ErrnoToStatus(errno,
                           absl::StrCat("pwrite ", path, " at ", offset));
    }
    if (wrote == 0) {
      return ErrnoToStatus(EIO,
                           absl::StrCat("pwrite ", path, " wrote nothing"));
    }
    bytes = bytes.subspan(wrote);
    offset += wrote;
  }
  return absl::OkStatus();
}

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

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  FdCloser closer(fd);
  std::string contents;
  char buffer[64 << 10];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) return contents;
    contents.append(buffer, static_cast<size_t>(n));
  }
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

absl::StatusOr<std::unique_ptr<ReplacingFile>> ReplacingFile::Create(
    const std::string& path, size_t buffer_bytes) {
  if (absl::Status replaceable = CheckReplaceable(path); !replaceable.ok()) {
    return replaceable;
  }
  const std::string temp_path = TempPathOf(path);
  int fd =
      open(temp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", temp_path));
  return std::unique_ptr<ReplacingFile>(
      new ReplacingFile(path, fd, buffer_bytes));
}

ReplacingFile::ReplacingFile(std::string path, int fd, size_t buffer_bytes)
    : path_(std::move(path)),
      temp_path_(TempPathOf(path_)),
      fd_(fd),
      buffer_bytes_(buffer_bytes) {
  buffer_.reserve(buffer_bytes_);
}

ReplacingFile::~ReplacingFile() { Abandon(); }

absl::Status ReplacingFile::Write(std::span<const uint8_t> bytes) {
  if (buffer_.size() + bytes.size() > buffer_bytes_) {
    PSTORE_RETURN_IF_ERROR(Flush());
    if (bytes.size() >= buffer_bytes_) {
      return WriteFully(fd_, temp_path_, bytes);
    }
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  return absl::OkStatus();
}

absl::Status ReplacingFile::Flush() {
  absl::Status status = WriteFully(fd_, temp_path_, buffer_);
  buffer_.clear();
  return status;
}

absl::Status ReplacingFile::Commit() {
  absl::Status status = Flush();
  if (status.ok() && fsync(fd_) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("fsync ", temp_path_));
  }
  if (status.ok() && close(std::exchange(fd_, -1)) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("close ", temp_path_));
  }
  if (status.ok() && rename(temp_path_.c_str(), path_.c_str()) != 0) {
    status = ErrnoToStatus(errno,
                           absl::StrCat("rename ", temp_path_, " to ", path_));
  }
  if (!status.ok()) {
    Abandon();
    return status;
  }
  committed_ = true;

  // Makes the rename durable.
  const std::filesystem::path parent =
      std::filesystem::path(path_).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", dir));
  FdCloser dir_closer(dir_fd);
  if (fsync(dir_fd) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("fsync ", dir));
  }
  return absl::OkStatus();
}

void ReplacingFile::Abandon() {
  if (committed_ || abandoned_) return;
  abandoned_ = true;
  if (fd_ >= 0) close(std::exchange(fd_, -1));
  unlink(temp_path_.c_str());
}

}  // namespace pstore
