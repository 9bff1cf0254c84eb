// Small helpers around absl::Status that Abseil 20220623 does not ship:
// early-return macros and the one place where errno becomes a Status.
//
// All functions here are thread-safe.

#ifndef PSTORE_UTIL_STATUS_H_
#define PSTORE_UTIL_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore {

// Returns a Status for the errno value `error_number` with `context` (the
// operation and its object, e.g. "pwrite region-3.dat") in the message.
// ENOENT maps to NotFound, ENOSPC/EDQUOT/ENOMEM to ResourceExhausted,
// EINTR/EAGAIN/EIO to Unavailable (the caller may retry or fall back to
// another tier), EINVAL/EISDIR/ENOTDIR to InvalidArgument, EACCES/EROFS to
// PermissionDenied.
absl::Status ErrnoToStatus(int error_number, absl::string_view context);

// Returns `status` with `context` prepended to its message ("context: msg"),
// keeping the code. Returns OK unchanged.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

// Returns the error of a call asked not to block ("memory only") when it
// would have to wait for I/O: Unavailable, marked so that IsWouldBlock
// tells it from a real Unavailable. The caller retries where it may block.
absl::Status WouldBlockError(absl::string_view what);
bool IsWouldBlock(const absl::Status& status);

}  // namespace pstore

#define PSTORE_STATUS_CONCAT_INNER_(a, b) a##b
#define PSTORE_STATUS_CONCAT_(a, b) PSTORE_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define PSTORE_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status pstore_status_ = (expr);          \
    if (!pstore_status_.ok()) return pstore_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, on
// success move-assigns the value to `lhs` (which may be a declaration).
#define PSTORE_ASSIGN_OR_RETURN(lhs, rexpr) \
  PSTORE_ASSIGN_OR_RETURN_IMPL_(            \
      PSTORE_STATUS_CONCAT_(pstore_statusor_, __LINE__), lhs, rexpr)

#define PSTORE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return statusor.status();             \
  lhs = std::move(statusor).value()

#endif  // PSTORE_UTIL_STATUS_H_
