"""The exceptions of pstore: one class per gRPC status code.

Every error a call of pstore raises is a ``pstore.Error`` carrying the
server's (or the client's) message, the status code as ``code`` (an int, as
gRPC numbers them) and its name as ``code_name``. Codes that match a Python
built-in exception also subclass it, so ``except KeyError`` or ``except
ValueError`` code keeps working.
"""


class Error(Exception):
    """A call to pstored failed; ``code``/``code_name`` say how."""

    code = 2
    code_name = "UNKNOWN"

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return f"{self.code_name}: {self.message}"


class Cancelled(Error):
    code, code_name = 1, "CANCELLED"


class Unknown(Error):
    code, code_name = 2, "UNKNOWN"


class InvalidArgument(Error, ValueError):
    code, code_name = 3, "INVALID_ARGUMENT"


class DeadlineExceeded(Error, TimeoutError):
    code, code_name = 4, "DEADLINE_EXCEEDED"


class NotFound(Error, LookupError):
    code, code_name = 5, "NOT_FOUND"


class AlreadyExists(Error):
    code, code_name = 6, "ALREADY_EXISTS"


class PermissionDenied(Error, PermissionError):
    code, code_name = 7, "PERMISSION_DENIED"


class ResourceExhausted(Error):
    code, code_name = 8, "RESOURCE_EXHAUSTED"


class FailedPrecondition(Error):
    code, code_name = 9, "FAILED_PRECONDITION"


class Aborted(Error):
    code, code_name = 10, "ABORTED"


class OutOfRange(Error, IndexError):
    code, code_name = 11, "OUT_OF_RANGE"


class Unimplemented(Error, NotImplementedError):
    code, code_name = 12, "UNIMPLEMENTED"


class Internal(Error):
    code, code_name = 13, "INTERNAL"


class Unavailable(Error, ConnectionError):
    code, code_name = 14, "UNAVAILABLE"


class DataLoss(Error):
    code, code_name = 15, "DATA_LOSS"


class Unauthenticated(Error):
    code, code_name = 16, "UNAUTHENTICATED"


_BY_CODE = {
    cls.code: cls
    for cls in (Cancelled, Unknown, InvalidArgument, DeadlineExceeded,
                NotFound, AlreadyExists, PermissionDenied, ResourceExhausted,
                FailedPrecondition, Aborted, OutOfRange, Unimplemented,
                Internal, Unavailable, DataLoss, Unauthenticated)
}


def from_status(code, message):
    """Returns the exception for status ``code`` (an int) and ``message``."""
    return _BY_CODE.get(code, Unknown)(message)
