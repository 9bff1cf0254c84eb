// FaultInjectingFileSystem: a rocksdb::FileSystem that forwards to another
// and fails the file I/Os that match the faults injected into it, in the
// manner of leveldb's fault-injection Env. Handed to the cold tier through
// ColdTierOptions::file_system, it lets tests produce a full disk, read
// errors and torn writes of the durable tier in process, without mounts or
// LD_PRELOAD.
//
// Thread-safe: faults may be injected and cleared while RocksDB runs.

#ifndef PSTORE_TESTS_TESTING_FAULT_INJECTING_FILE_SYSTEM_H_
#define PSTORE_TESTS_TESTING_FAULT_INJECTING_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/file_system.h"

namespace pstore::testing {

// One fault and the I/Os it applies to.
struct FileFault {
  enum class Op { kRead, kWrite, kSync };
  enum class Kind {
    kNoSpace,  // Fails with ENOSPC, writing nothing.
    kIoError,  // Fails with EIO, reading or writing nothing.
    kTorn,     // Writes only: writes the first half of the bytes, then
               // fails with EIO (a write cut short by a crash or a fault).
  };
  Op op = Op::kWrite;
  Kind kind = Kind::kIoError;
  // Applies to files whose path contains this (".log" for write-ahead
  // logs, ".sst" for tables, "/blocks/" for block files); to every file if
  // empty.
  std::string path_part;
  // Number of matching I/Os the fault applies to; -1 for all of them.
  int times = -1;
};

class FaultInjectingFileSystem : public rocksdb::FileSystemWrapper {
 public:
  // Wraps `base` (RocksDB's default file system when null).
  explicit FaultInjectingFileSystem(
      std::shared_ptr<rocksdb::FileSystem> base = nullptr);

  static const char* kClassName() { return "pstore.FaultInjectingFileSystem"; }
  const char* Name() const override { return kClassName(); }

  // Adds `fault`; the first fault that matches an I/O applies to it.
  void Inject(FileFault fault);
  // Removes every fault.
  void ClearFaults();
  // Returns the number of I/Os a fault has applied to.
  uint64_t faults_applied() const;

  // Returns the fault that applies to `op` on `file` and counts it, or
  // nothing. For the file wrappers.
  std::optional<FileFault> Match(FileFault::Op op, const std::string& file);

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& name, const std::string& old_name,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
      rocksdb::IODebugContext* dbg) override;

 private:
  mutable absl::Mutex mu_;
  std::vector<FileFault> faults_ ABSL_GUARDED_BY(mu_);
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
};

// Returns the IOStatus a fault of `kind` fails with.
rocksdb::IOStatus FaultStatus(FileFault::Kind kind, const std::string& file);

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_FAULT_INJECTING_FILE_SYSTEM_H_
