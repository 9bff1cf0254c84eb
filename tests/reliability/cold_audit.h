// AuditColdTier: an independent check of the cold tier's block accounting.
// Opens pstored's RocksDB read-only (pstored must be stopped) with plain
// RocksDB, not through storage/, and compares it with what the live
// tensors need:
//   - the block files and the blocks family (stores written before block
//     files) together hold exactly the blocks of the live tensors, each
//     once (no leaked block, no missing one), each hashing to its id, and
//     no temporary block file is left;
//   - the refs family holds, for each of those blocks, the number of block
//     slots of live tensors that name it, and nothing else;
//   - the staged family is empty (no put was in flight at the stop).

#ifndef PSTORE_TESTS_RELIABILITY_COLD_AUDIT_H_
#define PSTORE_TESTS_RELIABILITY_COLD_AUDIT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pstore::reliability {

struct ColdAudit {
  uint64_t blocks = 0;  // Block files and keys in the blocks family.
  uint64_t block_bytes = 0;
  uint64_t refs = 0;    // Keys in the refs family.
  uint64_t staged = 0;  // Keys in the staged family.
  // Each mismatch, described (block ids in hex).
  std::vector<std::string> problems;
};

// Audits the RocksDB under `cold_dir` against `expected_refs`: block key
// (the 16-byte canonical block id) -> number of references. Returns an
// error only if the database cannot be opened or read.
absl::Status AuditColdTier(const std::string& cold_dir,
                           const std::map<std::string, uint64_t>& expected_refs,
                           ColdAudit* audit);

}  // namespace pstore::reliability

#endif  // PSTORE_TESTS_RELIABILITY_COLD_AUDIT_H_
