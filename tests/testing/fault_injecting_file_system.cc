#include "tests/testing/fault_injecting_file_system.h"

#include <utility>

#include "absl/strings/match.h"

namespace pstore::testing {
namespace {

// A writable file whose appends and syncs go through the faults.
class FaultyWritableFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> base,
                     std::string name, FaultInjectingFileSystem* fs)
      : FSWritableFileOwnerWrapper(std::move(base)),
        name_(std::move(name)),
        fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    return Write(data, [&](const rocksdb::Slice& bytes) {
      return target()->Append(bytes, options, dbg);
    });
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    return Write(data, [&](const rocksdb::Slice& bytes) {
      return target()->Append(bytes, options, info, dbg);
    });
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    return Write(data, [&](const rocksdb::Slice& bytes) {
      return target()->PositionedAppend(bytes, offset, options, dbg);
    });
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    if (std::optional<FileFault> fault =
            fs_->Match(FileFault::Op::kSync, name_)) {
      return FaultStatus(fault->kind, name_);
    }
    return target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (std::optional<FileFault> fault =
            fs_->Match(FileFault::Op::kSync, name_)) {
      return FaultStatus(fault->kind, name_);
    }
    return target()->Fsync(options, dbg);
  }

 private:
  template <typename Fn>
  rocksdb::IOStatus Write(const rocksdb::Slice& data, Fn write) {
    std::optional<FileFault> fault = fs_->Match(FileFault::Op::kWrite, name_);
    if (!fault.has_value()) return write(data);
    if (fault->kind == FileFault::Kind::kTorn) {
      rocksdb::IOStatus half =
          write(rocksdb::Slice(data.data(), data.size() / 2));
      if (!half.ok()) return half;
    }
    return FaultStatus(fault->kind, name_);
  }

  const std::string name_;
  FaultInjectingFileSystem* const fs_;
};

// A random-access file whose reads go through the faults.
class FaultyRandomAccessFile : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  FaultyRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> base,
                         std::string name, FaultInjectingFileSystem* fs)
      : FSRandomAccessFileOwnerWrapper(std::move(base)),
        name_(std::move(name)),
        fs_(fs) {}

  rocksdb::IOStatus Read(uint64_t offset, size_t n,
                         const rocksdb::IOOptions& options,
                         rocksdb::Slice* result, char* scratch,
                         rocksdb::IODebugContext* dbg) const override {
    if (std::optional<FileFault> fault =
            fs_->Match(FileFault::Op::kRead, name_)) {
      *result = rocksdb::Slice();
      return FaultStatus(fault->kind, name_);
    }
    return target()->Read(offset, n, options, result, scratch, dbg);
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* requests, size_t count,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (std::optional<FileFault> fault =
            fs_->Match(FileFault::Op::kRead, name_)) {
      for (size_t i = 0; i < count; ++i) {
        requests[i].result = rocksdb::Slice();
        requests[i].status = FaultStatus(fault->kind, name_);
      }
      return rocksdb::IOStatus::OK();
    }
    return target()->MultiRead(requests, count, options, dbg);
  }

 private:
  const std::string name_;
  FaultInjectingFileSystem* const fs_;
};

}  // namespace

rocksdb::IOStatus FaultStatus(FileFault::Kind kind, const std::string& file) {
  if (kind == FileFault::Kind::kNoSpace) {
    rocksdb::IOStatus status =
        rocksdb::IOStatus::NoSpace("injected: no space left on device", file);
    return status;
  }
  return rocksdb::IOStatus::IOError("injected I/O error", file);
}

FaultInjectingFileSystem::FaultInjectingFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(base != nullptr ? std::move(base)
                                        : rocksdb::FileSystem::Default()) {}

void FaultInjectingFileSystem::Inject(FileFault fault) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(std::move(fault));
}

void FaultInjectingFileSystem::ClearFaults() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
}

uint64_t FaultInjectingFileSystem::faults_applied() const {
  absl::MutexLock lock(&mu_);
  return applied_;
}

std::optional<FileFault> FaultInjectingFileSystem::Match(
    FileFault::Op op, const std::string& file) {
  absl::MutexLock lock(&mu_);
  for (FileFault& fault : faults_) {
    if (fault.op != op || fault.times == 0) continue;
    if (!absl::StrContains(file, fault.path_part)) continue;
    if (fault.times > 0) --fault.times;
    ++applied_;
    return fault;
  }
  return std::nullopt;
}

rocksdb::IOStatus FaultInjectingFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result,
    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus status =
      target()->NewWritableFile(name, options, result, dbg);
  if (status.ok()) {
    *result =
        std::make_unique<FaultyWritableFile>(std::move(*result), name, this);
  }
  return status;
}

rocksdb::IOStatus FaultInjectingFileSystem::ReopenWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result,
    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus status =
      target()->ReopenWritableFile(name, options, result, dbg);
  if (status.ok()) {
    *result =
        std::make_unique<FaultyWritableFile>(std::move(*result), name, this);
  }
  return status;
}

rocksdb::IOStatus FaultInjectingFileSystem::ReuseWritableFile(
    const std::string& name, const std::string& old_name,
    const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result,
    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus status =
      target()->ReuseWritableFile(name, old_name, options, result, dbg);
  if (status.ok()) {
    *result =
        std::make_unique<FaultyWritableFile>(std::move(*result), name, this);
  }
  return status;
}

rocksdb::IOStatus FaultInjectingFileSystem::NewRandomAccessFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
    rocksdb::IODebugContext* dbg) {
  rocksdb::IOStatus status =
      target()->NewRandomAccessFile(name, options, result, dbg);
  if (status.ok()) {
    *result = std::make_unique<FaultyRandomAccessFile>(std::move(*result), name,
                                                       this);
  }
  return status;
}

}  // namespace pstore::testing
