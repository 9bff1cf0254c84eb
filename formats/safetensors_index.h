// The index of a sharded safetensors model (model.safetensors.index.json,
// as Hugging Face's save_pretrained writes it): which shard holds each
// tensor.
//
//   {"metadata": {"total_size": 16060522496},
//    "weight_map": {"lm_head.weight": "model-00004-of-00004.safetensors",
//                   ...}}
//
// Parsing is strict where a loader would go wrong: weight_map must be an
// object of strings, and a tensor named twice in it (which a JSON parser
// would silently resolve to the last) is refused. Every other key is kept
// as it is by the rewrite below and otherwise ignored.
//
// Thread safety: pure functions.

#ifndef PSTORE_FORMATS_SAFETENSORS_INDEX_H_
#define PSTORE_FORMATS_SAFETENSORS_INDEX_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore {

// Returns whether `name` (a path) names an index file: it ends in
// ".safetensors.index.json".
bool IsSafetensorsIndexName(absl::string_view name);

struct SafetensorsIndex {
  // Tensor name -> the shard's path, relative to the index's directory.
  std::map<std::string, std::string> weight_map;
  // metadata.total_size, when present and a non-negative integer.
  std::optional<uint64_t> total_size;
};

// Parses an index file's bytes. InvalidArgument naming the problem: not
// JSON, no "weight_map" object, a value that is not a string, a tensor
// named twice.
absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(absl::string_view json);

// Returns `json` (a valid index) with metadata.total_size set to
// `total_size`, everything else kept, indented as save_pretrained writes it
// (2 spaces, keys sorted). InvalidArgument if `json` does not parse.
absl::StatusOr<std::string> SetSafetensorsIndexTotalSize(absl::string_view json,
                                                         uint64_t total_size);

}  // namespace pstore

#endif  // PSTORE_FORMATS_SAFETENSORS_INDEX_H_
