#include "bench/wire_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "util/status.h"

namespace pstore::bench {
namespace {

absl::Status SocketError(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Returns a socket connected to 127.0.0.1:`port`.
absl::StatusOr<int> ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SocketError("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    absl::Status error = SocketError(absl::StrCat("connect 127.0.0.1:", port));
    close(fd);
    return error;
  }
  return fd;
}

absl::Status SendAllOn(int fd, const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t sent = send(fd, bytes, size, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return SocketError("send");
    }
    bytes += sent;
    size -= static_cast<size_t>(sent);
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    ssize_t written = write(fd, data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write");
    }
    data += written;
    size -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { close(fd_); }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<uint64_t> HttpGet(int port, absl::string_view path,
                                 std::span<uint8_t> buffer, int out_fd) {
  absl::StatusOr<int> fd = ConnectLoopback(port);
  if (!fd.ok()) return fd.status();
  FdCloser closer(*fd);
  std::string request = absl::StrCat("GET ", path,
                                     " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     "Connection: close\r\n\r\n");
  if (absl::Status sent = SendAllOn(*fd, request.data(), request.size());
      !sent.ok()) {
    return sent;
  }
  // Headers: receive into the buffer until the blank line.
  size_t have = 0;
  size_t header_end = std::string::npos;
  while (header_end == std::string::npos) {
    if (have == buffer.size()) {
      return absl::InternalError("HTTP headers larger than the buffer");
    }
    ssize_t got = recv(*fd, buffer.data() + have, buffer.size() - have, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SocketError("recv");
    if (got == 0) return absl::InternalError("connection closed in headers");
    have += static_cast<size_t>(got);
    absl::string_view text(reinterpret_cast<const char*>(buffer.data()), have);
    header_end = text.find("\r\n\r\n");
  }
  absl::string_view headers(reinterpret_cast<const char*>(buffer.data()),
                            header_end);
  std::vector<absl::string_view> lines = absl::StrSplit(headers, "\r\n");
  std::vector<absl::string_view> status_line =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      status_line[1] != "200") {
    return absl::InternalError(absl::StrCat("HTTP GET ", path, ": ", lines[0]));
  }
  uint64_t content_length = 0;
  bool have_length = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::EqualsIgnoreCase(lines[i].substr(0, colon), "content-length")) {
      have_length = absl::SimpleAtoi(
          absl::StripAsciiWhitespace(lines[i].substr(colon + 1)),
          &content_length);
    }
  }
  if (!have_length) {
    return absl::InternalError(
        absl::StrCat("HTTP GET ", path, ": no Content-Length"));
  }
  uint64_t received = have - (header_end + 4);
  if (out_fd >= 0) {
    if (absl::Status s = WriteAll(out_fd, buffer.data() + header_end + 4,
                                  static_cast<size_t>(received));
        !s.ok()) {
      return s;
    }
  }
  while (received < content_length) {
    size_t want = static_cast<size_t>(
        std::min<uint64_t>(buffer.size(), content_length - received));
    ssize_t got = recv(*fd, buffer.data(), want, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SocketError("recv");
    if (got == 0) break;
    received += static_cast<uint64_t>(got);
    if (out_fd >= 0) {
      if (absl::Status s =
              WriteAll(out_fd, buffer.data(), static_cast<size_t>(got));
          !s.ok()) {
        return s;
      }
    }
  }
  if (received != content_length) {
    return absl::InternalError(absl::StrCat("HTTP GET ", path, ": received ",
                                            received, " of ", content_length,
                                            " bytes"));
  }
  return received;
}

RespClient::~RespClient() {
  if (fd_ >= 0) close(fd_);
}

absl::Status RespClient::Connect(int port) {
  absl::StatusOr<int> fd = ConnectLoopback(port);
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  return absl::OkStatus();
}

absl::Status RespClient::SendAll(const void* data, size_t size) {
  return SendAllOn(fd_, data, size);
}

absl::StatusOr<std::string> RespClient::ReadLine() {
  std::string line;
  while (true) {
    for (size_t i = begin_; i < end_; ++i) {
      if (buffer_[i] == '\n') {
        line.append(reinterpret_cast<const char*>(buffer_.data() + begin_),
                    i + 1 - begin_);
        begin_ = i + 1;
        if (line.size() < 2 || line[line.size() - 2] != '\r') {
          return absl::InternalError("RESP line without CRLF");
        }
        line.resize(line.size() - 2);
        return line;
      }
    }
    line.append(reinterpret_cast<const char*>(buffer_.data() + begin_),
                end_ - begin_);
    begin_ = end_ = 0;
    ssize_t got = recv(fd_, buffer_.data(), buffer_.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SocketError("recv");
    if (got == 0) return absl::UnavailableError("redis closed the connection");
    end_ = static_cast<size_t>(got);
  }
}

absl::Status RespClient::ReadExact(uint8_t* out, size_t size) {
  size_t buffered = std::min(size, end_ - begin_);
  std::memcpy(out, buffer_.data() + begin_, buffered);
  begin_ += buffered;
  size_t done = buffered;
  while (done < size) {
    ssize_t got = recv(fd_, out + done, size - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SocketError("recv");
    if (got == 0) return absl::UnavailableError("redis closed the connection");
    done += static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

absl::Status RespClient::Set(absl::string_view key,
                             std::span<const uint8_t> value) {
  std::string head = absl::StrCat("*3\r\n$3\r\nSET\r\n$", key.size(), "\r\n",
                                  key, "\r\n$", value.size(), "\r\n");
  if (absl::Status s = SendAll(head.data(), head.size()); !s.ok()) return s;
  if (absl::Status s = SendAll(value.data(), value.size()); !s.ok()) return s;
  if (absl::Status s = SendAll("\r\n", 2); !s.ok()) return s;
  absl::StatusOr<std::string> reply = ReadLine();
  if (!reply.ok()) return reply.status();
  if (*reply != "+OK") {
    return absl::InternalError(absl::StrCat("redis SET: ", *reply));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RespClient::Get(absl::string_view key,
                                         std::span<uint8_t> out) {
  std::string request =
      absl::StrCat("*2\r\n$3\r\nGET\r\n$", key.size(), "\r\n", key, "\r\n");
  if (absl::Status s = SendAll(request.data(), request.size()); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> header = ReadLine();
  if (!header.ok()) return header.status();
  if (header->empty() || (*header)[0] != '$') {
    return absl::InternalError(absl::StrCat("redis GET: ", *header));
  }
  int64_t length = 0;
  if (!absl::SimpleAtoi(absl::string_view(*header).substr(1), &length)) {
    return absl::InternalError(absl::StrCat("redis GET: ", *header));
  }
  if (length < 0) return absl::NotFoundError(absl::StrCat("redis: no ", key));
  if (static_cast<uint64_t>(length) > out.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis value of ", length, " bytes exceeds the buffer"));
  }
  if (absl::Status s = ReadExact(out.data(), static_cast<size_t>(length));
      !s.ok()) {
    return s;
  }
  uint8_t crlf[2];
  if (absl::Status s = ReadExact(crlf, 2); !s.ok()) return s;
  return static_cast<uint64_t>(length);
}

absl::StatusOr<std::string> RespClient::Command(
    const std::vector<std::string>& args) {
  std::string request = absl::StrCat("*", args.size(), "\r\n");
  for (const std::string& arg : args) {
    absl::StrAppend(&request, "$", arg.size(), "\r\n", arg, "\r\n");
  }
  if (absl::Status s = SendAll(request.data(), request.size()); !s.ok()) {
    return s;
  }
  return ReadLine();
}

}  // namespace pstore::bench
