// Names of models, revisions and tensors: parsing and validation.
//
//   MODEL@REV/TENSOR   one tensor of one revision
//   MODEL/TENSOR       the tensor in the model's latest published revision
//   MODEL@REV          a revision;  MODEL  a model (its latest revision)
//
// Model and revision names: 1-128 bytes of [A-Za-z0-9._-], not "." or "..".
// Tensor names: 1-1024 bytes of valid UTF-8 with no control characters;
// split at '/', no part may be empty, "." or "..". The tensor name starts
// after the first '/', so it may itself contain '/'.
//
// Pure functions; thread-safe.

#ifndef PSTORE_STORAGE_NAMES_H_
#define PSTORE_STORAGE_NAMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pstore {

inline constexpr size_t kMaxModelNameBytes = 128;
inline constexpr size_t kMaxTensorNameBytes = 1024;

struct RevisionName {
  std::string model;
  std::string revision;  // Empty: the model's latest published revision.

  // Returns "MODEL@REV", or "MODEL" when revision is empty.
  std::string ToString() const;
  friend bool operator==(const RevisionName&, const RevisionName&) = default;
};

struct TensorName {
  RevisionName revision;
  std::string tensor;

  // Returns "MODEL@REV/TENSOR" or "MODEL/TENSOR".
  std::string ToString() const;
  friend bool operator==(const TensorName&, const TensorName&) = default;
};

// Each returns OK or InvalidArgument saying what is wrong with the name.
absl::Status ValidateModelName(absl::string_view name);
absl::Status ValidateRevisionName(absl::string_view name);
absl::Status ValidateTensorName(absl::string_view name);

// Parses "MODEL" or "MODEL@REV". InvalidArgument if malformed.
absl::StatusOr<RevisionName> ParseRevisionName(absl::string_view text);

// Parses "MODEL@REV/TENSOR" or "MODEL/TENSOR". InvalidArgument if
// malformed.
absl::StatusOr<TensorName> ParseTensorName(absl::string_view text);

}  // namespace pstore

#endif  // PSTORE_STORAGE_NAMES_H_
