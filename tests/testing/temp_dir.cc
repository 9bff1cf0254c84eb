#include "tests/testing/temp_dir.h"

#include <cstdlib>
#include <string>
#include <system_error>

namespace pstore::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
      "/pstore-test-XXXXXX";
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;  // Best effort: a leftover temp dir is harmless.
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace pstore::testing
