#include "server/uds_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/server.h"
#include "grpcpp/server_posix.h"
#include "spdlog/spdlog.h"
#include "util/status.h"

namespace pstore {
namespace {

// Fills `address` with `path`; InvalidArgument if it does not fit.
absl::Status MakeAddress(const std::string& path, sockaddr_un* address) {
  std::memset(address, 0, sizeof(*address));
  address->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address->sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--uds_path '", path, "' must be 1 to ",
                     sizeof(address->sun_path) - 1, " bytes"));
  }
  std::memcpy(address->sun_path, path.data(), path.size());
  return absl::OkStatus();
}

// Makes way for a socket at `path`: nothing there, or a socket nothing
// accepts on (a pstored that died left it), which is removed.
absl::Status ClearPath(const std::string& path, const sockaddr_un& address) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--uds_path ", path, " exists and is not a socket: remove it or ",
        "choose another path"));
  }
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return ErrnoToStatus(errno, "socket");
  const bool live = connect(probe, reinterpret_cast<const sockaddr*>(&address),
                            sizeof(address)) == 0;
  close(probe);
  if (live) {
    return absl::UnavailableError(
        absl::StrCat("--uds_path ", path,
                     ": another process accepts on it (a pstored "
                     "running already?)"));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, absl::StrCat("remove stale socket ", path));
  }
  spdlog::info("event=uds_stale_socket_removed path={}", path);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<uint32_t>> ParseIdList(const std::string& text,
                                                  const std::string& flag) {
  std::vector<uint32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    uint32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": '", part, "' is not a numeric id (give ",
                       "ids separated by commas, e.g. 0,1000)"));
    }
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<std::unique_ptr<UdsListener>> UdsListener::Start(
    const UdsOptions& options, grpc::Server* server) {
  if (options.mode > 0777) {
    return absl::InvalidArgumentError(
        absl::StrCat("--uds_mode ", options.mode, " is not a file mode"));
  }
  sockaddr_un address;
  PSTORE_RETURN_IF_ERROR(MakeAddress(options.path, &address));
  const std::filesystem::path parent =
      std::filesystem::path(options.path).parent_path();
  std::error_code error;
  if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--uds_path ", options.path, ": directory ",
                     parent.string(), " does not exist; create it first"));
  }
  PSTORE_RETURN_IF_ERROR(ClearPath(options.path, address));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket");
  auto fail = [&](const std::string& what) {
    absl::Status status = ErrnoToStatus(errno, what);
    close(fd);
    return status;
  };
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) !=
      0) {
    return fail(absl::StrCat("bind ", options.path));
  }
  if (chmod(options.path.c_str(), options.mode) != 0) {
    absl::Status status = fail(absl::StrCat("chmod ", options.path));
    unlink(options.path.c_str());
    return status;
  }
  if (listen(fd, SOMAXCONN) != 0) {
    absl::Status status = fail(absl::StrCat("listen ", options.path));
    unlink(options.path.c_str());
    return status;
  }
  int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    absl::Status status = fail("eventfd");
    unlink(options.path.c_str());
    return status;
  }
  std::unique_ptr<UdsListener> listener(
      new UdsListener(options, server, fd, stop_fd));
  listener->thread_ =
      std::thread([raw = listener.get()] { raw->AcceptLoop(); });
  spdlog::info(
      "event=uds_listening path={} mode={:o} allowed_uids={} "
      "allowed_gids={}",
      options.path, options.mode, options.allowed_uids.size(),
      options.allowed_gids.size());
  return listener;
}

UdsListener::UdsListener(const UdsOptions& options, grpc::Server* server,
                         int listen_fd, int stop_fd)
    : options_(options),
      server_(server),
      listen_fd_(listen_fd),
      stop_fd_(stop_fd) {}

UdsListener::~UdsListener() {
  Stop();
  close(listen_fd_);
  close(stop_fd_);
}

void UdsListener::Stop() {
  if (stopped_) return;
  stopped_ = true;
  const uint64_t one = 1;
  // Ignored: an eventfd write of 1 fails only on overflow, impossible here.
  (void)!write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  if (unlink(options_.path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("event=uds_unlink_failed path={} error=\"{}\"", options_.path,
                 std::strerror(errno));
  }
}

bool UdsListener::Allowed(uid_t uid, gid_t gid) const {
  if (options_.allowed_uids.empty() && options_.allowed_gids.empty()) {
    return true;
  }
  return std::find(options_.allowed_uids.begin(), options_.allowed_uids.end(),
                   uid) != options_.allowed_uids.end() ||
         std::find(options_.allowed_gids.begin(), options_.allowed_gids.end(),
                   gid) != options_.allowed_gids.end();
}

void UdsListener::AcceptLoop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("event=uds_poll_failed error=\"{}\"", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    // Non-blocking, as gRPC's endpoints are.
    int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("event=uds_accept_failed error=\"{}\"",
                     std::strerror(errno));
      }
      continue;
    }
    ucred peer = {};
    socklen_t length = sizeof(peer);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 ||
        !Allowed(peer.uid, peer.gid)) {
      refused_.fetch_add(1);
      spdlog::warn("event=uds_peer_refused pid={} uid={} gid={}", peer.pid,
                   peer.uid, peer.gid);
      close(fd);
      continue;
    }
    // gRPC takes the connection (and the descriptor) from here.
    grpc::AddInsecureChannelFromFd(server_, fd);
  }
}

}  // namespace pstore
