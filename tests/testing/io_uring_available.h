// IoUringAvailable: whether this process may use io_uring at all. Kernels
// built without it, and containers whose seccomp profile refuses
// io_uring_setup, make the NVMe device fall back to pread/pwrite; tests of
// the io_uring engine skip there instead of failing or silently testing the
// fallback.
//
// Thread-safe.

#ifndef PSTORE_TESTS_TESTING_IO_URING_AVAILABLE_H_
#define PSTORE_TESTS_TESTING_IO_URING_AVAILABLE_H_

#include <string>

namespace pstore::testing {

// Returns true if io_uring_queue_init succeeds here (the ring is torn down
// at once). Otherwise returns false and, if `why` is not null, sets it to
// the error ("io_uring_queue_init: Operation not permitted"). The answer
// is found once per process.
bool IoUringAvailable(std::string* why = nullptr);

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_IO_URING_AVAILABLE_H_
