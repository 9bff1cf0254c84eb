#include "tests/testing/io_uring_available.h"

#include <liburing.h>

#include <cstring>
#include <string>

namespace pstore::testing {

bool IoUringAvailable(std::string* why) {
  // The error of setting up a ring, or the empty string if it worked.
  static const std::string* const error = [] {
    io_uring ring;
    int ret = io_uring_queue_init(/*entries=*/1, &ring, /*flags=*/0);
    if (ret < 0) {
      return new std::string(std::string("io_uring_queue_init: ") +
                             std::strerror(-ret));
    }
    io_uring_queue_exit(&ring);
    return new std::string();
  }();
  if (error->empty()) return true;
  if (why != nullptr) *why = *error;
  return false;
}

}  // namespace pstore::testing
