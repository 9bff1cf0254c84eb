// UTF-8 validation, shared by name checks and file formats.
//
// Pure functions; thread-safe.

#ifndef PSTORE_UTIL_UTF8_H_
#define PSTORE_UTIL_UTF8_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace pstore {

// Returns the length (1-4) of the UTF-8 sequence at the start of `text`
// and sets `*code_point`, or returns 0 if `text` does not start with a
// valid, shortest-form encoding of a scalar value (no surrogates, nothing
// above U+10FFFF). REQUIRES: `text` is not empty.
size_t Utf8SequenceLength(absl::string_view text, uint32_t* code_point);

// Returns true if all of `text` is valid UTF-8 (as above).
bool IsValidUtf8(absl::string_view text);

}  // namespace pstore

#endif  // PSTORE_UTIL_UTF8_H_
