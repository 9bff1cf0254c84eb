#include "util/status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace pstore {
namespace {

// The payload that marks WouldBlockError.
constexpr absl::string_view kWouldBlockPayload = "type.pstore/would_block";

}  // namespace

absl::Status ErrnoToStatus(int error_number, absl::string_view context) {
  std::string message =
      absl::StrCat(context, ": ", std::strerror(error_number));
  switch (error_number) {
    case 0:
      return absl::OkStatus();
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(message);
    case EINTR:
    case EAGAIN:
    case EIO:
    case EBUSY:
      return absl::UnavailableError(message);
    case EINVAL:
    case ENAMETOOLONG:
    case EISDIR:
    case ENOTDIR:
      return absl::InvalidArgumentError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSYS:
    case EOPNOTSUPP:
      return absl::UnimplementedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status annotated(status.code(),
                         absl::StrCat(context, ": ", status.message()));
  status.ForEachPayload(
      [&](absl::string_view type_url, const absl::Cord& payload) {
        annotated.SetPayload(type_url, payload);
      });
  return annotated;
}

absl::Status WouldBlockError(absl::string_view what) {
  absl::Status status =
      absl::UnavailableError(absl::StrCat(what, " would wait for I/O"));
  status.SetPayload(kWouldBlockPayload, absl::Cord());
  return status;
}

bool IsWouldBlock(const absl::Status& status) {
  return status.GetPayload(kWouldBlockPayload).has_value();
}

}  // namespace pstore
