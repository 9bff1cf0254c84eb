// TempDir: a fresh directory under $TEST_TMPDIR (or /tmp, or a base the
// test names), removed with everything in it when the object goes away.

#ifndef PSTORE_TESTS_TESTING_TEMP_DIR_H_
#define PSTORE_TESTS_TESTING_TEMP_DIR_H_

#include <filesystem>
#include <string>

namespace pstore::testing {

class TempDir {
 public:
  TempDir();
  // Makes the directory under `base` instead (e.g. /dev/shm for tmpfs).
  explicit TempDir(const std::string& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Returns path() / `name` as a string.
  std::string Sub(const std::string& name) const {
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_TEMP_DIR_H_
