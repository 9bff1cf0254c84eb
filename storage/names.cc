#include "storage/names.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

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

// Returns the length of the UTF-8 sequence at the start of `text`, or 0 if
// it is not a valid, shortest-form encoding of a scalar value.
size_t Utf8SequenceLength(absl::string_view text) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length;
  uint32_t code_point;
  if ((lead & 0xe0) == 0xc0) {
    length = 2;
    code_point = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3;
    code_point = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4;
    code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3f);
  }
  constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code_point < kMinForLength[length] || code_point > 0x10ffff ||
      (code_point >= 0xd800 && code_point <= 0xdfff)) {
    return 0;
  }
  // C1 control characters (U+0080..U+009F) are not printable.
  if (code_point >= 0x80 && code_point <= 0x9f) return 0;
  return length;
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
    size_t length = Utf8SequenceLength(name.substr(i));
    if (length == 0) {
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
