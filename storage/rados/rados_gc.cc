#include "storage/rados/rados_gc.h"

#include <sys/time.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "storage/rados/rados_ops.h"
#include "storage/rados/rados_tier.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr char kLockObject[] = "catalog.gc";
constexpr char kLockName[] = "gc";
constexpr char kBlockPrefix[] = "block.";
// A node that dies holding the lock holds it this long at most.
constexpr int kLockSeconds = 600;

// Returns the names of every block object in the pool's namespace.
absl::StatusOr<std::vector<std::string>> ListBlockObjects(RadosPool& pool) {
  rados_list_ctx_t list = nullptr;
  PSTORE_RETURN_IF_ERROR(pool.Note(RadosStatus(
      rados_nobjects_list_open(pool.io(), &list), "gc: list objects")));
  std::vector<std::string> names;
  int result = 0;
  for (;;) {
    const char* entry = nullptr;
    const char* key = nullptr;
    const char* name_space = nullptr;
    size_t entry_size = 0, key_size = 0, name_space_size = 0;
    result =
        rados_nobjects_list_next2(list, &entry, &key, &name_space, &entry_size,
                                  &key_size, &name_space_size);
    if (result < 0) break;
    std::string name(entry, entry_size);
    if (absl::StartsWith(name, kBlockPrefix)) names.push_back(std::move(name));
  }
  rados_nobjects_list_close(list);
  if (result != -ENOENT) {
    return pool.Note(RadosStatus(result, "gc: list objects"));
  }
  return names;
}

}  // namespace

absl::StatusOr<GcReport> CollectRadosGarbage(RadosPool& pool,
                                             const RadosCatalog& catalog,
                                             bool dry_run) {
  PSTORE_RETURN_IF_ERROR(pool.CheckReachable("gc"));
  const absl::Time start = absl::Now();
  const std::string cookie = absl::StrCat("gc-", absl::ToUnixMicros(start), "-",
                                          reinterpret_cast<uintptr_t>(&pool));
  timeval duration{kLockSeconds, 0};
  int locked = rados_lock_exclusive(pool.io(), kLockObject, kLockName,
                                    cookie.c_str(), "pstore gc", &duration, 0);
  if (locked == -EBUSY || locked == -EEXIST) {
    return absl::FailedPreconditionError(
        "another node is collecting garbage now (RADOS lock catalog.gc)");
  }
  PSTORE_RETURN_IF_ERROR(pool.Note(RadosStatus(locked, "gc: lock")));

  GcReport report;
  report.dry_run = dry_run;
  absl::Status status = [&]() -> absl::Status {
    // Blocks touched after this are kept, whatever the mark finds.
    const int64_t cutoff = absl::ToUnixMicros(start - pool.options().gc_grace);
    absl::flat_hash_set<BlockId> referenced;
    PSTORE_RETURN_IF_ERROR(catalog.MarkBlocks(&referenced));
    report.referenced_blocks = referenced.size();
    PSTORE_ASSIGN_OR_RETURN(std::vector<std::string> objects,
                            ListBlockObjects(pool));
    report.block_objects = objects.size();
    for (const std::string& name : objects) {
      absl::StatusOr<BlockId> id = BlockId::FromHex(
          absl::string_view(name).substr(sizeof(kBlockPrefix) - 1));
      if (!id.ok()) continue;  // Not a block of ours.
      if (referenced.contains(*id)) continue;
      rados::ReadOp read;
      read.GetXattrs();
      read.Stat();
      int result = read.Operate(pool.io(), name);
      if (result == -ENOENT) continue;  // Gone meanwhile.
      PSTORE_RETURN_IF_ERROR(
          pool.Note(RadosStatus(result, absl::StrCat("gc: read ", name))));
      std::map<std::string, std::string> xattrs = read.Xattrs();
      auto touched_text = xattrs.find(kTouchedXattr);
      int64_t touched = 0;
      if (touched_text != xattrs.end() &&
          !absl::SimpleAtoi(touched_text->second, &touched)) {
        touched = 0;
      }
      if (touched_text != xattrs.end() && touched >= cutoff) {
        ++report.kept_recent;
        continue;
      }
      if (dry_run) {
        ++report.removed;
        report.removed_bytes += read.size();
        continue;
      }
      rados::WriteOp remove;
      if (touched_text != xattrs.end()) {
        remove.CompareXattr(kTouchedXattr, LIBRADOS_CMPXATTR_OP_EQ,
                            touched_text->second);
      }
      remove.Remove();
      result = remove.Operate(pool.io(), name);
      if (result == -ECANCELED) {
        ++report.kept_raced;  // A put reused it just now.
      } else if (result == 0) {
        ++report.removed;
        report.removed_bytes += read.size();
      } else if (result != -ENOENT) {
        return pool.Note(
            RadosStatus(result, absl::StrCat("gc: remove ", name)));
      }
    }
    return absl::OkStatus();
  }();
  rados_unlock(pool.io(), kLockObject, kLockName, cookie.c_str());
  PSTORE_RETURN_IF_ERROR(status);
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  spdlog::info(
      "event=gc dry_run={} referenced={} block_objects={} removed={} "
      "removed_bytes={} kept_recent={} kept_raced={} seconds={:.3f}",
      dry_run, report.referenced_blocks, report.block_objects, report.removed,
      report.removed_bytes, report.kept_recent, report.kept_raced,
      report.seconds);
  return report;
}

}  // namespace pstore
