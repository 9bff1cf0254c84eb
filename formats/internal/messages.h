// How the formats/ readers and writers name things in error messages, so
// that every message quotes a name the same way.

#ifndef PSTORE_FORMATS_INTERNAL_MESSAGES_H_
#define PSTORE_FORMATS_INTERNAL_MESSAGES_H_

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace pstore::formats_internal {

// Returns `text` in single quotes, with control characters and quotes
// escaped, for error messages.
inline std::string Quoted(absl::string_view text) {
  return absl::StrCat("'", absl::Utf8SafeCHexEscape(text), "'");
}

// Returns "tensor 'NAME'", the context of a message about one tensor.
inline std::string TensorContext(absl::string_view name) {
  return absl::StrCat("tensor ", Quoted(name));
}

}  // namespace pstore::formats_internal

#endif  // PSTORE_FORMATS_INTERNAL_MESSAGES_H_
