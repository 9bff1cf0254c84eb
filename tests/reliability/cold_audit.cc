#include "tests/reliability/cold_audit.h"

#include <filesystem>
#include <memory>
#include <set>
#include <span>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "codec/hash.h"
#include "rocksdb/db.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "util/file_io.h"

namespace pstore::reliability {
namespace {

std::string Hex(const std::string& key) { return absl::BytesToHexString(key); }

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(what, ": ", status.ToString()));
}

uint64_t DecodeCount(const rocksdb::Slice& value) {
  uint64_t count = 0;
  for (size_t i = 0; i < value.size() && i < 8; ++i) {
    count |= uint64_t{static_cast<uint8_t>(value[i])} << (8 * i);
  }
  return count;
}

}  // namespace

absl::Status AuditColdTier(const std::string& cold_dir,
                           const std::map<std::string, uint64_t>& expected_refs,
                           ColdAudit* audit) {
  std::vector<std::string> families;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(),
                                                           cold_dir, &families);
  if (!listed.ok()) return FromRocks(listed, "list column families");
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : families) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status opened = rocksdb::DB::OpenForReadOnly(
      rocksdb::DBOptions(), cold_dir, descriptors, &handles, &raw);
  if (!opened.ok()) return FromRocks(opened, "open read-only");
  std::unique_ptr<rocksdb::DB> db(raw);
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
  for (size_t i = 0; i < families.size(); ++i)
    by_name[families[i]] = handles[i];
  absl::Status result = absl::OkStatus();
  for (const char* needed : {"blocks", "refs", "staged"}) {
    if (!by_name.contains(needed)) {
      result = absl::DataLossError(
          absl::StrCat("no column family '", needed, "' in ", cold_dir));
    }
  }
  if (result.ok()) {
    rocksdb::ReadOptions options;
    options.verify_checksums = true;
    // blocks: exactly the live blocks, each hashing to its key, whether in
    // block files or (stores written before block files) in the blocks
    // family.
    std::set<std::string> seen;
    auto check_block = [&](const std::string& key,
                           std::span<const uint8_t> bytes,
                           absl::string_view where) {
      ++audit->blocks;
      audit->block_bytes += bytes.size();
      if (!seen.insert(key).second) {
        audit->problems.push_back(
            absl::StrCat("block ", Hex(key), " is stored twice (", where, ")"));
      }
      BlockId id = BlockId::Of(bytes);
      if (id.ToByteString() != key) {
        audit->problems.push_back(
            absl::StrCat("block ", Hex(key), " in ", where,
                         " holds bytes that hash to ", id.ToHex()));
      }
      if (!expected_refs.contains(key)) {
        audit->problems.push_back(
            absl::StrCat("leaked block ", Hex(key), " in ", where, " (",
                         bytes.size(), " bytes): no live tensor uses it"));
      }
    };
    {
      std::unique_ptr<rocksdb::Iterator> it(
          db->NewIterator(options, by_name["blocks"]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        check_block(it->key().ToString(),
                    std::span<const uint8_t>(
                        reinterpret_cast<const uint8_t*>(it->value().data()),
                        it->value().size()),
                    "the blocks family");
      }
      result.Update(FromRocks(it->status(), "scan blocks"));
    }
    std::error_code error;
    const std::filesystem::path files =
        std::filesystem::path(cold_dir) / "blocks";
    if (std::filesystem::exists(files, error)) {
      for (const auto& entry :
           std::filesystem::recursive_directory_iterator(files, error)) {
        if (!entry.is_regular_file()) continue;
        const std::string name = entry.path().filename().string();
        if (name.find(".tmp.") != std::string::npos) {
          audit->problems.push_back(absl::StrCat("temporary block file ", name,
                                                 " left after a clean stop"));
          continue;
        }
        absl::StatusOr<std::string> bytes =
            ReadFileToString(entry.path().string());
        std::string key = absl::HexStringToBytes(name);
        if (!bytes.ok() || key.size() != BlockId::kSize) {
          audit->problems.push_back(
              absl::StrCat("unreadable or misnamed block file ", name));
          continue;
        }
        check_block(
            key,
            std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()),
            "a block file");
      }
      if (error) {
        result.Update(absl::UnavailableError(
            absl::StrCat("scan block files: ", error.message())));
      }
    }
    for (const auto& [key, refs] : expected_refs) {
      if (!seen.contains(key)) {
        audit->problems.push_back(absl::StrCat("missing block ", Hex(key),
                                               " used ", refs,
                                               " times by live tensors"));
      }
    }
    // refs: exactly the live blocks, with their counts.
    std::set<std::string> counted;
    {
      std::unique_ptr<rocksdb::Iterator> it(
          db->NewIterator(options, by_name["refs"]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::string key = it->key().ToString();
        ++audit->refs;
        counted.insert(key);
        uint64_t count = DecodeCount(it->value());
        auto expected = expected_refs.find(key);
        if (expected == expected_refs.end()) {
          audit->problems.push_back(absl::StrCat("reference count ", count,
                                                 " for block ", Hex(key),
                                                 " that no live tensor uses"));
        } else if (expected->second != count || it->value().size() != 8) {
          audit->problems.push_back(absl::StrCat(
              "block ", Hex(key), " has reference count ", count,
              ", live tensors use it ", expected->second, " times"));
        }
      }
      result.Update(FromRocks(it->status(), "scan refs"));
    }
    for (const auto& [key, refs] : expected_refs) {
      if (!counted.contains(key)) {
        audit->problems.push_back(absl::StrCat(
            "block ", Hex(key), " has no reference count, live tensors use it ",
            refs, " times"));
      }
    }
    // staged: empty after a clean stop.
    {
      std::unique_ptr<rocksdb::Iterator> it(
          db->NewIterator(options, by_name["staged"]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        ++audit->staged;
        audit->problems.push_back(
            absl::StrCat("block ", Hex(it->key().ToString()),
                         " is still marked staged after a clean stop"));
      }
      result.Update(FromRocks(it->status(), "scan staged"));
    }
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    rocksdb::Status destroyed = db->DestroyColumnFamilyHandle(handle);
    // A handle that cannot be destroyed leaks until exit; nothing to undo.
    (void)destroyed;
  }
  return result;
}

}  // namespace pstore::reliability
