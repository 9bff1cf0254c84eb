// Compound RADOS operations over librados' C API, with their results kept
// alive until read: WriteOp and ReadOp own a rados_write_op_t /
// rados_read_op_t and what librados writes back into. Internal to
// storage/rados/.
//
// The C API, not librados.hpp: Ceph 16's C++ header does not compile as
// C++20 under clang (an ambiguous operator== in buffer.h), and the C API
// reads straight into a caller's buffer. Arguments are copied into the
// operation when added, so they need not outlive the call that adds them.
//
// Not thread-safe: one operation per thread.

#ifndef PSTORE_STORAGE_RADOS_RADOS_OPS_H_
#define PSTORE_STORAGE_RADOS_RADOS_OPS_H_

#include <cerrno>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "rados/librados.h"

namespace pstore::rados {

class WriteOp {
 public:
  WriteOp() : op_(rados_create_write_op()) {}
  ~WriteOp() { rados_release_write_op(op_); }
  WriteOp(const WriteOp&) = delete;
  WriteOp& operator=(const WriteOp&) = delete;

  void Create(bool exclusive) {
    rados_write_op_create(
        op_, exclusive ? LIBRADOS_CREATE_EXCLUSIVE : LIBRADOS_CREATE_IDEMPOTENT,
        nullptr);
  }
  void AssertExists() { rados_write_op_assert_exists(op_); }
  void AssertVersion(uint64_t version) {
    rados_write_op_assert_version(op_, version);
  }
  // Guard: xattr `name` compares to `value` by `comparison`
  // (LIBRADOS_CMPXATTR_OP_*); a missing xattr compares as absent.
  void CompareXattr(const char* name, uint8_t comparison,
                    absl::string_view value) {
    rados_write_op_cmpxattr(op_, name, comparison, value.data(), value.size());
  }
  // Guard: omap value `key` (empty when absent) compares to `value`.
  void CompareOmap(absl::string_view key, uint8_t comparison,
                   absl::string_view value) {
    rados_write_op_omap_cmp2(op_, key.data(), comparison, value.data(),
                             key.size(), value.size(), &rvals_.emplace_back());
  }
  void SetXattr(const char* name, absl::string_view value) {
    rados_write_op_setxattr(op_, name, value.data(), value.size());
  }
  void WriteFull(absl::string_view bytes) {
    rados_write_op_write_full(op_, bytes.data(), bytes.size());
  }
  void SetOmap(const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::vector<const char*> keys, values;
    std::vector<size_t> key_lengths, value_lengths;
    for (const auto& [key, value] : pairs) {
      keys.push_back(key.data());
      values.push_back(value.data());
      key_lengths.push_back(key.size());
      value_lengths.push_back(value.size());
    }
    rados_write_op_omap_set2(op_, keys.data(), values.data(),
                             key_lengths.data(), value_lengths.data(),
                             pairs.size());
  }
  void RemoveOmapKeys(const std::vector<std::string>& keys) {
    std::vector<const char*> names;
    std::vector<size_t> lengths;
    for (const std::string& key : keys) {
      names.push_back(key.data());
      lengths.push_back(key.size());
    }
    rados_write_op_omap_rm_keys2(op_, names.data(), lengths.data(),
                                 keys.size());
  }
  void ClearOmap() { rados_write_op_omap_clear(op_); }
  void Remove() { rados_write_op_remove(op_); }

  // Runs the operation on object `oid`, atomically; returns 0 or a
  // negative errno (-ECANCELED for a guard that did not hold).
  int Operate(rados_ioctx_t io, const std::string& oid) {
    return rados_write_op_operate(op_, io, oid.c_str(), nullptr, 0);
  }
  // Starts it; `completion` says when it ended. The op must outlive that.
  int OperateAsync(rados_ioctx_t io, rados_completion_t completion,
                   const std::string& oid) {
    return rados_aio_write_op_operate(op_, io, completion, oid.c_str(), nullptr,
                                      0);
  }

 private:
  rados_write_op_t op_;
  std::deque<int> rvals_;  // Stable addresses for librados to write.
};

class ReadOp {
 public:
  ReadOp() : op_(rados_create_read_op()) {}
  ~ReadOp() {
    for (rados_omap_iter_t iter : omap_iters_) rados_omap_get_end(iter);
    if (xattrs_iter_ != nullptr) rados_getxattrs_end(xattrs_iter_);
    rados_release_read_op(op_);
  }
  ReadOp(const ReadOp&) = delete;
  ReadOp& operator=(const ReadOp&) = delete;

  // Reads up to `max` omap entries after `start_after`, whose keys start
  // with `prefix`. At most one of GetOmap and GetOmapKeys per operation.
  void GetOmap(const std::string& start_after, const std::string& prefix,
               uint64_t max) {
    rados_read_op_omap_get_vals2(op_, start_after.c_str(), prefix.c_str(), max,
                                 &omap_iters_.emplace_back(), &more_,
                                 &rvals_.emplace_back());
  }
  // Reads the omap values of `keys` (absent ones are left out).
  void GetOmapKeys(const std::vector<std::string>& keys) {
    std::vector<const char*> names;
    std::vector<size_t> lengths;
    for (const std::string& key : keys) {
      names.push_back(key.data());
      lengths.push_back(key.size());
    }
    rados_read_op_omap_get_vals_by_keys2(
        op_, names.data(), keys.size(), lengths.data(),
        &omap_iters_.emplace_back(), &rvals_.emplace_back());
  }
  void GetXattrs() {
    rados_read_op_getxattrs(op_, &xattrs_iter_, &rvals_.emplace_back());
  }
  void Stat() {
    rados_read_op_stat(op_, &size_, nullptr, &rvals_.emplace_back());
  }
  // Reads up to `length` bytes at `offset` into `out`.
  void Read(uint64_t offset, size_t length, char* out) {
    rados_read_op_read(op_, offset, length, out, &bytes_read_,
                       &rvals_.emplace_back());
  }

  rados_read_op_t get() const { return op_; }

  // Runs the operation on object `oid` and waits; returns 0 or a negative
  // errno, and sets `version` (if not null) to the object's version.
  int Operate(rados_ioctx_t io, const std::string& oid,
              uint64_t* version = nullptr) {
    rados_completion_t completion = nullptr;
    int result = rados_aio_create_completion2(nullptr, nullptr, &completion);
    if (result < 0) return result;
    result = rados_aio_read_op_operate(op_, io, completion, oid.c_str(), 0);
    if (result == 0) {
      rados_aio_wait_for_complete(completion);
      result = rados_aio_get_return_value(completion);
      if (version != nullptr) *version = rados_aio_get_version(completion);
    }
    rados_aio_release(completion);
    return result;
  }

  // After Operate: the omap entries read, in key order.
  std::vector<std::pair<std::string, std::string>> Omap() {
    std::vector<std::pair<std::string, std::string>> entries;
    if (omap_iters_.empty()) return entries;
    for (;;) {
      char* key = nullptr;
      char* value = nullptr;
      size_t key_length = 0, value_length = 0;
      if (rados_omap_get_next2(omap_iters_.back(), &key, &value, &key_length,
                               &value_length) < 0 ||
          key == nullptr) {
        break;
      }
      entries.emplace_back(std::string(key, key_length),
                           std::string(value, value_length));
    }
    return entries;
  }
  // After Operate: true if GetOmap left entries unread.
  bool more() const { return more_ != 0; }
  // After Operate: the xattrs read.
  std::map<std::string, std::string> Xattrs() {
    std::map<std::string, std::string> xattrs;
    if (xattrs_iter_ == nullptr) return xattrs;
    for (;;) {
      const char* name = nullptr;
      const char* value = nullptr;
      size_t length = 0;
      if (rados_getxattrs_next(xattrs_iter_, &name, &value, &length) < 0 ||
          name == nullptr) {
        break;
      }
      xattrs.emplace(name, std::string(value, length));
    }
    return xattrs;
  }
  uint64_t size() const { return size_; }
  size_t bytes_read() const { return bytes_read_; }

 private:
  rados_read_op_t op_;
  std::deque<int> rvals_;
  std::vector<rados_omap_iter_t> omap_iters_;
  rados_xattrs_iter_t xattrs_iter_ = nullptr;
  unsigned char more_ = 0;
  uint64_t size_ = 0;
  size_t bytes_read_ = 0;
};

// Reads every omap entry of object `oid`, `page` entries per operation,
// into `entries` in key order (none if the object is absent). Returns 0
// or a negative errno.
inline int ReadWholeOmap(
    rados_ioctx_t io, const std::string& oid, uint64_t page,
    std::vector<std::pair<std::string, std::string>>* entries) {
  std::string after;
  for (bool more = true; more;) {
    ReadOp op;
    op.GetOmap(after, "", page);
    int result = op.Operate(io, oid);
    if (result == -ENOENT) return 0;
    if (result < 0) return result;
    more = op.more();
    for (auto& entry : op.Omap()) {
      after = entry.first;
      entries->push_back(std::move(entry));
    }
  }
  return 0;
}

}  // namespace pstore::rados

#endif  // PSTORE_STORAGE_RADOS_RADOS_OPS_H_
