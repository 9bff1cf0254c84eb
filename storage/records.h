// The records a catalog keeps: tensors, revisions and models, with their
// resolved names. Plain values; storage/catalog.h says how they are kept.

#ifndef PSTORE_STORAGE_RECORDS_H_
#define PSTORE_STORAGE_RECORDS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "codec/dtype.h"
#include "codec/hash.h"
#include "storage/names.h"

namespace pstore {

// A block and its size in bytes.
// A node of a store shared by many (RADOS backend), as another node sees
// it.
struct NodeInfo {
  std::string id;
  std::string address;  // Where it serves the ParamStore API.
  int64_t started_unix_micros = 0;
  int64_t heartbeat_unix_micros = 0;  // Its last, by its own clock.
  bool self = false;                  // The node that reports the list.
  // Points of each node on its ring of block owners (storage/peers/);
  // 0 for a node that predates them.
  uint32_t ring_size = 0;
};

// What an entry of a revision is (v1::EntryKind): a tensor, or a file or
// the header of a safetensors shard of a model directory, both kept as U8
// tensors of one dimension. The numbers are stored: never reuse one.
enum class EntryKind : uint32_t { kTensor = 0, kFile = 1, kShardHeader = 2 };

// Returns whether `value` is an EntryKind.
inline bool IsValidEntryKind(uint32_t value) { return value <= 2; }

struct SizedBlock {
  BlockId id;
  uint64_t size = 0;
};

// A stored tensor: what its record holds, with its full name.
struct TensorMeta {
  TensorName name;  // The revision is always resolved (never "latest").
  EntryKind kind = EntryKind::kTensor;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t byte_length = 0;
  uint64_t xxh3_64 = 0;      // Of the whole tensor.
  uint64_t block_bytes = 0;  // Every block but the last has this size.
  std::vector<BlockId> blocks;
  int64_t created_unix_micros = 0;
  // When the put that commits this record started (not stored; 0 when not
  // known): a catalog whose blocks are swept after a grace period refuses a
  // commit that started too long ago (RadosCatalog).
  int64_t started_unix_micros = 0;

  // Returns the size of block `index`. REQUIRES: index < blocks.size().
  uint64_t BlockSize(size_t index) const;
};

struct RevisionInfo {
  RevisionName name;  // Resolved.
  bool published = false;
  bool latest = false;  // The model's latest revision.
  std::map<std::string, std::string> metadata;
  int64_t created_unix_micros = 0;
  int64_t published_unix_micros = 0;
};

// A revision with every tensor of it, in name order, as read at one moment.
struct Manifest {
  RevisionInfo revision;
  std::vector<TensorMeta> tensors;
};

struct ModelInfo {
  std::string name;
  std::string latest_revision;  // Empty until the first publish.
  std::vector<RevisionInfo> revisions;
};

// One page of a tensor listing.
struct TensorPage {
  std::vector<TensorMeta> tensors;
  std::string next_page_token;  // Empty on the last page.
};

// Returns each distinct block of `tensors` once, in order of first use,
// with its size.
std::vector<SizedBlock> DistinctBlocks(const std::vector<TensorMeta>& tensors);

}  // namespace pstore

#endif  // PSTORE_STORAGE_RECORDS_H_
