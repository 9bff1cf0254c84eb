#include "tests/testing/temp_dir.h"

#include <cstdlib>
#include <string>
#include <system_error>

namespace pstore::testing {

namespace {

std::string DefaultBase() {
  const char* base = std::getenv("TEST_TMPDIR");
  return base != nullptr && *base != '\0' ? base : "/tmp";
}

}  // namespace

TempDir::TempDir() : TempDir(DefaultBase()) {}

TempDir::TempDir(const std::string& base) {
  std::string pattern = base + "/pstore-test-XXXXXX";
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;  // Best effort: a leftover temp dir is harmless.
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace pstore::testing
