// Helpers shared by the libFuzzer targets in this folder: an invariant
// check that aborts (which libFuzzer records as a crash, keeping the input),
// little-endian loads from the fuzzed bytes and scratch files on tmpfs.

#ifndef PSTORE_TESTS_FUZZ_FUZZ_UTIL_H_
#define PSTORE_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pstore::fuzz {

// Prints where an invariant broke and what it said, then aborts.
[[noreturn]] inline void Fail(const char* file, int line, const char* what,
                              const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
  if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// Returns the little-endian u64 at the start of `bytes` (zero-extended when
// fewer than 8 bytes are there).
inline uint64_t LoadU64(absl::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    value |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  return value;
}

// Returns a path for a scratch file of this process, on /dev/shm when there
// is one (a tmpfs: the writers' fsyncs cost nothing), else in $TMPDIR or
// /tmp. The caller removes the file.
inline std::string ScratchPath(absl::string_view name) {
  static const std::string* const kDir = [] {
    struct stat info;
    if (stat("/dev/shm", &info) == 0 && S_ISDIR(info.st_mode)) {
      return new std::string("/dev/shm");
    }
    const char* tmp = std::getenv("TMPDIR");
    return new std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
  }();
  return absl::StrCat(*kDir, "/pstore-fuzz-", getpid(), "-", name);
}

// Returns the bytes of the file at `path` (empty if it cannot be read).
inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

}  // namespace pstore::fuzz

// Aborts with the condition's text when `cond` is false.
#define FUZZ_CHECK(cond)                                              \
  do {                                                                \
    if (!(cond)) ::pstore::fuzz::Fail(__FILE__, __LINE__, #cond, ""); \
  } while (0)

// As FUZZ_CHECK, printing `detail` (a std::string expression) too.
#define FUZZ_CHECK_MSG(cond, detail)                                      \
  do {                                                                    \
    if (!(cond)) ::pstore::fuzz::Fail(__FILE__, __LINE__, #cond, detail); \
  } while (0)

#endif  // PSTORE_TESTS_FUZZ_FUZZ_UTIL_H_
