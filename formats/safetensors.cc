#include "formats/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/internal/messages.h"
#include "nlohmann/json.hpp"
#include "util/file_io.h"
#include "util/status.h"
#include "util/utf8.h"

namespace pstore {
namespace {

using formats_internal::Quoted;
using formats_internal::TensorContext;

using Json = nlohmann::json;

// The deepest JSON nesting a header may have. A valid header nests three
// levels ({tensor: {shape: [...]}}); the limit only keeps hostile input from
// building very deep values.
constexpr size_t kMaxJsonDepth = 16;

std::string ShapeString(std::span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Builds a nlohmann::json value from SAX events, as nlohmann's own DOM
// parser does, but without exceptions, with a depth limit, and rejecting
// a key repeated within an object (which nlohmann would silently overwrite).
class HeaderJsonBuilder final : public nlohmann::json_sax<Json> {
 public:
  // Returns the parsed value. REQUIRES: sax_parse returned true.
  const Json& root() const { return root_; }
  // Returns why the parse stopped. REQUIRES: sax_parse returned false.
  const std::string& error() const { return error_; }

  bool null() override { return Add(Json(nullptr)) != nullptr; }
  bool boolean(bool value) override { return Add(Json(value)) != nullptr; }
  bool number_integer(number_integer_t value) override {
    return Add(Json(value)) != nullptr;
  }
  bool number_unsigned(number_unsigned_t value) override {
    return Add(Json(value)) != nullptr;
  }
  bool number_float(number_float_t value, const string_t& /*text*/) override {
    return Add(Json(value)) != nullptr;
  }
  bool string(string_t& value) override {
    return Add(Json(std::move(value))) != nullptr;
  }
  bool binary(binary_t& /*value*/) override {
    // The JSON lexer never produces binary values.
    error_ = "header holds a binary value";
    return false;
  }
  bool start_object(std::size_t /*elements*/) override {
    return Open(Json::object());
  }
  bool key(string_t& key) override {
    const Json& object = *open_.back();
    if (object.contains(key)) {
      if (open_.size() == 1) {
        error_ = key == kSafetensorsMetadataKey
                     ? absl::StrCat("header holds \"", kSafetensorsMetadataKey,
                                    "\" twice")
                     : absl::StrCat("duplicate tensor name ", Quoted(key));
      } else {
        error_ =
            absl::StrCat(top_level_key_ == kSafetensorsMetadataKey
                             ? absl::StrCat("\"", kSafetensorsMetadataKey, "\"")
                             : TensorContext(top_level_key_),
                         ": duplicate key ", Quoted(key));
      }
      return false;
    }
    if (open_.size() == 1) top_level_key_ = key;
    pending_key_ = std::move(key);
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t /*elements*/) override {
    return Open(Json::array());
  }
  bool end_array() override {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) override {
    error_ = absl::StrCat("header is not valid JSON: ", ex.what());
    return false;
  }

 private:
  // Adds `value` to the innermost open array or object (under the pending
  // key), or makes it the root. Returns where it now lives.
  Json* Add(Json value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    Json& slot = parent[pending_key_];
    slot = std::move(value);
    return &slot;
  }

  // Adds the empty container `value` and opens it. Pointers to open values
  // stay valid: an open value is the last element of its parent array (no
  // sibling follows it while it is open) or a node of its parent's std::map.
  bool Open(Json value) {
    if (open_.size() >= kMaxJsonDepth) {
      error_ = absl::StrCat("header nests JSON deeper than ", kMaxJsonDepth,
                            " levels");
      return false;
    }
    open_.push_back(Add(std::move(value)));
    return true;
  }

  Json root_;
  std::vector<Json*> open_;  // The open arrays and objects, outermost first.
  std::string pending_key_;
  std::string top_level_key_;  // The latest key of the root object.
  std::string error_;
};

// Returns `value` if it is a non-negative integer, else nullopt. Like
// Hugging Face's Rust reader (serde_json), refuses "-0", which nlohmann
// keeps as a signed integer.
std::optional<uint64_t> AsNonNegativeInteger(const Json& value) {
  const uint64_t* number = value.get_ptr<const Json::number_unsigned_t*>();
  if (number == nullptr) return std::nullopt;
  return *number;
}

// Returns `value` as JSON text for an error message, cut to 64 bytes.
std::string Dump(const Json& value) {
  // The parser only produces valid UTF-8, so nothing is replaced.
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 64) text = absl::StrCat(text.substr(0, 61), "...");
  return text;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(
    const Json& value) {
  const std::string context = absl::StrCat("\"", kSafetensorsMetadataKey, "\"");
  const Json::object_t* object = value.get_ptr<const Json::object_t*>();
  if (object == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, " is not an object of strings (it is ",
                     value.type_name(), ")"));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : *object) {
    const std::string* text = item.get_ptr<const Json::string_t*>();
    if (text == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": the value of ", Quoted(key),
                       " is not a string (it is ", item.type_name(), ")"));
    }
    metadata.emplace(key, *text);
  }
  return metadata;
}

// Parses one tensor entry. Returns the tensor with data_offset set to
// `begin` relative to the data section.
absl::StatusOr<SafetensorsTensor> ParseTensorEntry(const std::string& name,
                                                   const Json& entry,
                                                   uint64_t data_section_size) {
  if (name.empty()) {
    return absl::InvalidArgumentError("header holds an empty tensor name");
  }
  const std::string context = TensorContext(name);
  const auto invalid = [&context](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": ", parts...));
  };
  const Json::object_t* fields = entry.get_ptr<const Json::object_t*>();
  if (fields == nullptr) {
    return invalid("entry is not an object (it is ", entry.type_name(), ")");
  }
  for (const auto& [key, unused] : *fields) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return invalid("unknown key ", Quoted(key),
                     " (want dtype, shape and data_offsets)");
    }
  }
  const auto field = [fields](const char* key) -> const Json* {
    auto it = fields->find(key);
    return it == fields->end() ? nullptr : &it->second;
  };

  SafetensorsTensor tensor;
  tensor.name = name;

  const Json* dtype_value = field("dtype");
  if (dtype_value == nullptr) return invalid("missing \"dtype\"");
  const std::string* dtype_name = dtype_value->get_ptr<const Json::string_t*>();
  if (dtype_name == nullptr) {
    return invalid("\"dtype\" is not a string (it is ",
                   dtype_value->type_name(), ")");
  }
  absl::StatusOr<DType> dtype = ParseDType(*dtype_name);
  // ParseDType ignores case; the format does not.
  if (!dtype.ok() || DTypeName(*dtype) != *dtype_name) {
    return invalid("unknown dtype ", Quoted(*dtype_name),
                   " (want one of F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 "
                   "I16 I8 U8 BOOL)");
  }
  tensor.dtype = *dtype;

  const Json* shape_value = field("shape");
  if (shape_value == nullptr) return invalid("missing \"shape\"");
  const Json::array_t* shape = shape_value->get_ptr<const Json::array_t*>();
  if (shape == nullptr) {
    return invalid("\"shape\" is not an array (it is ",
                   shape_value->type_name(), ")");
  }
  for (size_t i = 0; i < shape->size(); ++i) {
    const Json& dim = (*shape)[i];
    if (std::optional<uint64_t> value = AsNonNegativeInteger(dim)) {
      if (*value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return invalid("shape[", i, "] is ", *value, ", above 2^63 - 1");
      }
      tensor.shape.push_back(static_cast<int64_t>(*value));
    } else if (const int64_t* negative =
                   dim.get_ptr<const Json::number_integer_t*>()) {
      return invalid("shape[", i, "] is negative (", *negative, ")");
    } else {
      return invalid("shape[", i, "] is not an integer (it is ",
                     dim.type_name(), " ", Dump(dim), ")");
    }
  }
  absl::StatusOr<uint64_t> byte_length =
      TensorByteLength(tensor.dtype, tensor.shape);
  if (!byte_length.ok()) {
    return invalid("shape ", ShapeString(tensor.shape), ": ",
                   byte_length.status().message());
  }
  tensor.byte_length = *byte_length;

  const Json* offsets_value = field("data_offsets");
  if (offsets_value == nullptr) return invalid("missing \"data_offsets\"");
  const Json::array_t* offsets = offsets_value->get_ptr<const Json::array_t*>();
  if (offsets == nullptr || offsets->size() != 2) {
    return invalid("\"data_offsets\" is ", Dump(*offsets_value),
                   ", want [begin, end]");
  }
  const std::optional<uint64_t> begin = AsNonNegativeInteger((*offsets)[0]);
  const std::optional<uint64_t> end = AsNonNegativeInteger((*offsets)[1]);
  if (!begin.has_value() || !end.has_value()) {
    return invalid("\"data_offsets\" is ", Dump(*offsets_value),
                   ", want two non-negative integers");
  }
  if (*begin > *end) {
    return invalid("data_offsets [", *begin, ", ", *end,
                   "] begin after they end");
  }
  if (*end > data_section_size) {
    return invalid("data_offsets [", *begin, ", ", *end,
                   "] run past the end of the data section (",
                   data_section_size, " bytes)");
  }
  if (*end - *begin != tensor.byte_length) {
    return invalid("data_offsets [", *begin, ", ", *end, "] hold ",
                   *end - *begin, " bytes, but ", DTypeName(tensor.dtype), " ",
                   ShapeString(tensor.shape), " takes ", tensor.byte_length);
  }
  tensor.data_offset = *begin;
  return tensor;
}

}  // namespace

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(
    absl::string_view header_json, std::optional<uint64_t> data_section) {
  if (header_json.size() > kMaxSafetensorsHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("header length ", header_json.size(), " exceeds the ",
                     kMaxSafetensorsHeaderBytes, "-byte limit"));
  }
  SafetensorsHeader header;
  header.data_offset = 8 + header_json.size();
  // Without a size, tensors may end anywhere a file could.
  const uint64_t data_section_size =
      data_section.value_or(UINT64_MAX - header.data_offset);
  if (data_section_size > UINT64_MAX - header.data_offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data section of ", data_section_size, " bytes overflows 64 bits"));
  }

  // nlohmann's lexer takes a NUL byte for the end of the input, which would
  // ignore whatever follows; JSON allows no raw NUL anywhere.
  if (size_t nul = header_json.find('\0'); nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "header is not valid JSON: it holds a NUL byte at offset ", nul));
  }
  HeaderJsonBuilder builder;
  if (!Json::sax_parse(header_json.data(),
                       header_json.data() + header_json.size(), &builder)) {
    return absl::InvalidArgumentError(builder.error());
  }
  const Json::object_t* root = builder.root().get_ptr<const Json::object_t*>();
  if (root == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("header is not a JSON object (it is ",
                     builder.root().type_name(), ")"));
  }
  if (header_json.front() != '{') {
    // Hugging Face's Rust reader refuses this too.
    return absl::InvalidArgumentError(
        "header has whitespace before its opening '{'");
  }

  for (const auto& [name, value] : *root) {
    if (name == kSafetensorsMetadataKey) {
      PSTORE_ASSIGN_OR_RETURN(header.metadata, ParseMetadata(value));
      continue;
    }
    PSTORE_ASSIGN_OR_RETURN(SafetensorsTensor tensor,
                            ParseTensorEntry(name, value, data_section_size));
    header.tensors.push_back(std::move(tensor));
  }

  // data_offset holds `begin` relative to the data section until the end.
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return std::tie(a.data_offset, a.byte_length, a.name) <
                     std::tie(b.data_offset, b.byte_length, b.name);
            });
  uint64_t covered = 0;  // The data section is covered up to here.
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& tensor : header.tensors) {
    const uint64_t begin = tensor.data_offset;
    const uint64_t end = begin + tensor.byte_length;
    if (begin > covered) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hole in the data section: bytes [", covered, ", ", begin,
          ") belong to no tensor (the next is ", TensorContext(tensor.name),
          " at data_offsets [", begin, ", ", end, "])"));
    }
    if (begin < covered) {
      return absl::InvalidArgumentError(
          absl::StrCat(TensorContext(tensor.name), ": data_offsets [", begin,
                       ", ", end, "] overlap ", TensorContext(previous->name),
                       " at [", previous->data_offset, ", ",
                       previous->data_offset + previous->byte_length, "]"));
    }
    covered = end;
    previous = &tensor;
  }
  if (data_section.has_value() && covered != data_section_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("hole in the data section: its last ",
                     data_section_size - covered, " bytes (from ", covered,
                     " to ", data_section_size, ") belong to no tensor"));
  }
  for (SafetensorsTensor& tensor : header.tensors) {
    tensor.data_offset += header.data_offset;
  }
  return header;
}

SafetensorsFile::SafetensorsFile(std::string path, int fd, uint64_t file_size,
                                 SafetensorsHeader header)
    : path_(std::move(path)),
      fd_(fd),
      file_size_(file_size),
      header_(std::move(header)) {
  index_by_name_.reserve(header_.tensors.size());
  for (size_t i = 0; i < header_.tensors.size(); ++i) {
    index_by_name_.emplace(header_.tensors[i].name, i);
  }
}

SafetensorsFile::~SafetensorsFile() {
  // Read-only: a close error loses nothing.
  close(fd_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  FdCloser closer(fd);
  struct stat info;
  if (fstat(fd, &info) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("fstat ", path));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": file is ", file_size,
                     " bytes, shorter than the 8-byte header length"));
  }
  uint8_t prefix[8];
  PSTORE_RETURN_IF_ERROR(ReadFully(fd, path, 0, prefix));
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | prefix[i];
  if (header_length > kMaxSafetensorsHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header length ", header_length, " exceeds the ",
                     kMaxSafetensorsHeaderBytes, "-byte limit"));
  }
  if (header_length > file_size - 8) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header length ", header_length,
                     " runs past the end of the file (", file_size, " bytes)"));
  }
  std::string header_json(header_length, '\0');
  PSTORE_RETURN_IF_ERROR(ReadFully(
      fd, path, 8,
      std::span<uint8_t>(reinterpret_cast<uint8_t*>(header_json.data()),
                         header_json.size())));
  absl::StatusOr<SafetensorsHeader> header =
      ParseSafetensorsHeader(header_json, file_size - 8 - header_length);
  if (!header.ok()) return Annotate(header.status(), path);
  return std::unique_ptr<SafetensorsFile>(new SafetensorsFile(
      path, closer.Release(), file_size, *std::move(header)));
}

const SafetensorsTensor* SafetensorsFile::FindTensor(
    absl::string_view name) const {
  auto it = index_by_name_.find(name);
  return it == index_by_name_.end() ? nullptr : &header_.tensors[it->second];
}

absl::Status SafetensorsFile::ReadAt(const SafetensorsTensor& tensor,
                                     uint64_t offset,
                                     std::span<uint8_t> dest) const {
  if (offset > tensor.byte_length ||
      dest.size() > tensor.byte_length - offset) {
    return absl::OutOfRangeError(
        absl::StrCat(path_, ": read of ", dest.size(), " bytes at offset ",
                     offset, " of ", TensorContext(tensor.name),
                     " runs past its end (", tensor.byte_length, " bytes)"));
  }
  if (tensor.data_offset < data_offset() || tensor.data_offset > file_size_ ||
      tensor.byte_length > file_size_ - tensor.data_offset) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", TensorContext(tensor.name), " at [",
                     tensor.data_offset, ", +", tensor.byte_length,
                     ") is not in the data section of this file"));
  }
  return ReadFully(fd_, path_, tensor.data_offset + offset, dest);
}

namespace {

// Returns the position of `dtype` in the Rust crate's Dtype enum, which
// lists dtypes in increasing alignment: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16
// F16 BF16 I32 U32 F32 F64 I64 U64.
int RustDtypeRank(DType dtype) {
  switch (dtype) {
    case DType::kBool:
      return 0;
    case DType::kU8:
      return 1;
    case DType::kI8:
      return 2;
    case DType::kF8E5M2:
      return 3;
    case DType::kF8E4M3:
      return 4;
    case DType::kI16:
      return 5;
    case DType::kF16:
      return 7;
    case DType::kBF16:
      return 8;
    case DType::kI32:
      return 9;
    case DType::kF32:
      return 11;
    case DType::kF64:
      return 12;
    case DType::kI64:
      return 13;
  }
  return 0;
}

}  // namespace

absl::StatusOr<SafetensorsLayout> ComputeSafetensorsLayout(
    std::span<const SafetensorsTensorSpec> tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<const SafetensorsTensorSpec*> sorted;
  sorted.reserve(tensors.size());
  for (const SafetensorsTensorSpec& spec : tensors) sorted.push_back(&spec);
  // The Rust crate's order: alignment first, so that every tensor starts at
  // a multiple of its element size, then name. Writing the same order makes
  // our files byte-identical to the crate's for the same tensors.
  std::sort(sorted.begin(), sorted.end(),
            [](const SafetensorsTensorSpec* a, const SafetensorsTensorSpec* b) {
              int rank_a = RustDtypeRank(a->dtype);
              int rank_b = RustDtypeRank(b->dtype);
              if (rank_a != rank_b) return rank_a > rank_b;
              return a->name < b->name;
            });
  absl::flat_hash_set<absl::string_view> names;

  // Built by hand rather than as a nlohmann::ordered_json, whose insertion
  // is linear in the number of keys. nlohmann escapes the strings.
  const auto json_string = [](const std::string& text) {
    // Never replaces anything: every string is checked to be UTF-8 first.
    return Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
  };
  std::string json = "{";
  if (!metadata.empty()) {
    for (const auto& [key, value] : metadata) {
      if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metadata ", Quoted(key), ": key or value is not valid UTF-8"));
      }
    }
    absl::StrAppend(
        &json, "\"", kSafetensorsMetadataKey, "\":",
        Json(metadata).dump(-1, ' ', false, Json::error_handler_t::replace));
  }

  SafetensorsLayout layout;
  layout.tensors.reserve(sorted.size());
  uint64_t offset = 0;  // In the data section.
  for (size_t i = 0; i < sorted.size(); ++i) {
    const SafetensorsTensorSpec& spec = *sorted[i];
    if (spec.name.empty()) {
      return absl::InvalidArgumentError("a tensor has an empty name");
    }
    if (spec.name == kSafetensorsMetadataKey) {
      return absl::InvalidArgumentError(
          absl::StrCat("a tensor is named \"", kSafetensorsMetadataKey,
                       "\", which the format reserves for metadata"));
    }
    if (!names.insert(spec.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate tensor name ", Quoted(spec.name)));
    }
    if (!IsValidUtf8(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(TensorContext(spec.name), ": name is not valid UTF-8"));
    }
    absl::StatusOr<uint64_t> byte_length =
        TensorByteLength(spec.dtype, spec.shape);
    if (!byte_length.ok()) {
      return Annotate(byte_length.status(),
                      absl::StrCat(TensorContext(spec.name), ": shape ",
                                   ShapeString(spec.shape)));
    }
    if (*byte_length > UINT64_MAX - offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          TensorContext(spec.name), ": the data section overflows 64 bits"));
    }
    if (json.size() > 1) json.push_back(',');
    absl::StrAppend(&json, json_string(spec.name), ":{\"dtype\":\"",
                    DTypeName(spec.dtype), "\",\"shape\":[",
                    absl::StrJoin(spec.shape, ","), "],\"data_offsets\":[",
                    offset, ",", offset + *byte_length, "]}");
    layout.tensors.push_back(SafetensorsTensor{
        spec.name, spec.dtype, spec.shape, offset, *byte_length});
    offset += *byte_length;
  }
  json.push_back('}');
  // Pads so that the data section starts at a multiple of 8.
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kMaxSafetensorsHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("header of ", json.size(), " bytes exceeds the ",
                     kMaxSafetensorsHeaderBytes, "-byte limit"));
  }

  layout.data_offset = 8 + json.size();
  if (offset > UINT64_MAX - layout.data_offset) {
    return absl::InvalidArgumentError("the file size overflows 64 bits");
  }
  layout.file_size = layout.data_offset + offset;
  layout.header_bytes.reserve(layout.data_offset);
  for (int i = 0; i < 8; ++i) {
    layout.header_bytes.push_back(static_cast<char>(json.size() >> (8 * i)));
  }
  layout.header_bytes += json;
  for (SafetensorsTensor& tensor : layout.tensors) {
    tensor.data_offset += layout.data_offset;
  }
  return layout;
}

SafetensorsWriter::SafetensorsWriter(SafetensorsLayout layout,
                                     std::unique_ptr<TensorFileWriter> file)
    : layout_(std::move(layout)), file_(std::move(file)) {}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Create(
    const std::string& path, std::span<const SafetensorsTensorSpec> tensors,
    const std::map<std::string, std::string>& metadata) {
  absl::StatusOr<SafetensorsLayout> layout =
      ComputeSafetensorsLayout(tensors, metadata);
  if (!layout.ok()) return Annotate(layout.status(), path);
  std::vector<TensorFileEntry> entries;
  entries.reserve(layout->tensors.size());
  for (const SafetensorsTensor& tensor : layout->tensors) {
    entries.push_back({tensor.name, tensor.byte_length});
  }
  // Safetensors packs the tensors back to back: no padding.
  PSTORE_ASSIGN_OR_RETURN(
      std::unique_ptr<TensorFileWriter> file,
      TensorFileWriter::Create(path, layout->header_bytes, std::move(entries),
                               /*alignment=*/1));
  return std::unique_ptr<SafetensorsWriter>(
      new SafetensorsWriter(*std::move(layout), std::move(file)));
}

absl::Status SafetensorsWriter::Append(std::span<const uint8_t> bytes) {
  return file_->Append(bytes);
}

absl::Status SafetensorsWriter::Finish() { return file_->Finish(); }

}  // namespace pstore
