#include "storage/names.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "util/utf8.h"

namespace pstore {
namespace {

// Returns a printable rendering of `text` for error messages: at most 80
// bytes, control and non-ASCII bytes escaped.
std::string Quote(absl::string_view text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (text.size() > 80) out += "...";
  return out + "'";
}

absl::Status ValidateSimpleName(absl::string_view kind,
                                absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " name is empty"));
  }
  if (name.size() > kMaxModelNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " name is ", name.size(), " bytes; at most ",
                     kMaxModelNameBytes, " allowed"));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " name ", Quote(name), " is not allowed"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat(kind, " name ", Quote(name),
                       " has a character outside [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string RevisionName::ToString() const {
  if (revision.empty()) return model;
  return absl::StrCat(model, "@", revision);
}

std::string TensorName::ToString() const {
  return absl::StrCat(revision.ToString(), "/", tensor);
}

absl::Status ValidateModelName(absl::string_view name) {
  return ValidateSimpleName("model", name);
}

absl::Status ValidateRevisionName(absl::string_view name) {
  return ValidateSimpleName("revision", name);
}

absl::Status ValidateTensorName(absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("tensor name is empty");
  }
  if (name.size() > kMaxTensorNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor name is ", name.size(), " bytes; at most ",
                     kMaxTensorNameBytes, " allowed"));
  }
  for (size_t i = 0; i < name.size();) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor name ", Quote(name), " has a control character at byte ", i));
    }
    uint32_t code_point = 0;
    size_t length = Utf8SequenceLength(name.substr(i), &code_point);
    // C1 control characters (U+0080..U+009F) are not printable either.
    if (length == 0 || (code_point >= 0x80 && code_point <= 0x9f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name ", Quote(name),
                       " is not valid printable UTF-8 at byte ", i));
    }
    i += length;
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name ", Quote(name),
                       " has an empty, '.' or '..' part between slashes"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RevisionName> ParseRevisionName(absl::string_view text) {
  RevisionName name;
  size_t at = text.find('@');
  if (at == absl::string_view::npos) {
    name.model = std::string(text);
  } else {
    name.model = std::string(text.substr(0, at));
    name.revision = std::string(text.substr(at + 1));
    if (absl::Status status = ValidateRevisionName(name.revision);
        !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("in ", Quote(text), ": ", status.message()));
    }
  }
  if (absl::Status status = ValidateModelName(name.model); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("in ", Quote(text), ": ", status.message()));
  }
  return name;
}

absl::StatusOr<TensorName> ParseTensorName(absl::string_view text) {
  size_t slash = text.find('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor name ", Quote(text),
                     " has no '/': want MODEL@REV/TENSOR or MODEL/TENSOR"));
  }
  absl::StatusOr<RevisionName> revision =
      ParseRevisionName(text.substr(0, slash));
  if (!revision.ok()) return revision.status();
  TensorName name{*std::move(revision), std::string(text.substr(slash + 1))};
  if (absl::Status status = ValidateTensorName(name.tensor); !status.ok()) {
    return status;
  }
  return name;
}

}  // namespace pstore
