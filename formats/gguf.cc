#include "formats/gguf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/internal/messages.h"
#include "util/file_io.h"
#include "util/status.h"
#include "util/utf8.h"

namespace pstore {
namespace {

using formats_internal::Quoted;
using formats_internal::TensorContext;

static_assert(std::endian::native == std::endian::little,
              "GGUF files are read and written as little-endian memory");

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};

// The prefix GgufFile::Open reads first; it grows fourfold until the header
// fits. Most headers without a vocabulary fit in the first read.
constexpr uint64_t kFirstHeaderReadBytes = uint64_t{1} << 20;

template <typename T>
std::string ListString(std::span<const T> values) {
  return absl::StrCat("[", absl::StrJoin(values, ", "), "]");
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// One row of ggml's type_traits table (ggml.c), with the block sizes that
// ggml-common.h asserts.
struct TypeRow {
  GgmlType type;
  absl::string_view name;
  GgmlTypeTraits traits;
};

constexpr TypeRow kTypeRows[] = {
    {GgmlType::kF32, "F32", {1, 4}},
    {GgmlType::kF16, "F16", {1, 2}},
    {GgmlType::kQ4_0, "Q4_0", {32, 18}},
    {GgmlType::kQ4_1, "Q4_1", {32, 20}},
    {GgmlType::kQ5_0, "Q5_0", {32, 22}},
    {GgmlType::kQ5_1, "Q5_1", {32, 24}},
    {GgmlType::kQ8_0, "Q8_0", {32, 34}},
    {GgmlType::kQ8_1, "Q8_1", {32, 36}},
    {GgmlType::kQ2_K, "Q2_K", {256, 84}},
    {GgmlType::kQ3_K, "Q3_K", {256, 110}},
    {GgmlType::kQ4_K, "Q4_K", {256, 144}},
    {GgmlType::kQ5_K, "Q5_K", {256, 176}},
    {GgmlType::kQ6_K, "Q6_K", {256, 210}},
    {GgmlType::kQ8_K, "Q8_K", {256, 292}},
    {GgmlType::kIQ2_XXS, "IQ2_XXS", {256, 66}},
    {GgmlType::kIQ2_XS, "IQ2_XS", {256, 74}},
    {GgmlType::kIQ3_XXS, "IQ3_XXS", {256, 98}},
    {GgmlType::kIQ1_S, "IQ1_S", {256, 50}},
    {GgmlType::kIQ4_NL, "IQ4_NL", {32, 18}},
    {GgmlType::kIQ3_S, "IQ3_S", {256, 110}},
    {GgmlType::kIQ2_S, "IQ2_S", {256, 82}},
    {GgmlType::kIQ4_XS, "IQ4_XS", {256, 136}},
    {GgmlType::kI8, "I8", {1, 1}},
    {GgmlType::kI16, "I16", {1, 2}},
    {GgmlType::kI32, "I32", {1, 4}},
    {GgmlType::kI64, "I64", {1, 8}},
    {GgmlType::kF64, "F64", {1, 8}},
    {GgmlType::kIQ1_M, "IQ1_M", {256, 56}},
    {GgmlType::kBF16, "BF16", {1, 2}},
    {GgmlType::kTQ1_0, "TQ1_0", {256, 54}},
    {GgmlType::kTQ2_0, "TQ2_0", {256, 66}},
    {GgmlType::kMXFP4, "MXFP4", {32, 17}},
    {GgmlType::kNVFP4, "NVFP4", {64, 36}},
    {GgmlType::kQ1_0, "Q1_0", {128, 18}},
    {GgmlType::kQ2_0, "Q2_0", {64, 18}},
};

const TypeRow* FindTypeRow(uint32_t value) {
  for (const TypeRow& row : kTypeRows) {
    if (static_cast<uint32_t>(row.type) == value) return &row;
  }
  return nullptr;
}

bool IsKnownValueType(uint32_t value) {
  return value <= static_cast<uint32_t>(GgufValueType::kFloat64);
}

// Returns the fewest bytes a value of `type` takes in a file: what an array
// of N such values needs at least N times.
uint64_t MinEncodedSize(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:  // The u64 length.
      return 8;
    case GgufValueType::kArray:  // The u32 type and u64 count.
      return 12;
  }
  return 1;
}

}  // namespace

std::optional<GgmlTypeTraits> GgmlTypeTraitsOf(uint32_t value) {
  const TypeRow* row = FindTypeRow(value);
  if (row == nullptr) return std::nullopt;
  return row->traits;
}

absl::string_view GgmlTypeName(GgmlType type) {
  const TypeRow* row = FindTypeRow(static_cast<uint32_t>(type));
  return row == nullptr ? "unknown" : row->name;
}

bool IsGgufWritableType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kF64:
    case GgmlType::kI8:
    case GgmlType::kI16:
    case GgmlType::kI32:
    case GgmlType::kI64:
      return true;
    default:
      return false;
  }
}

std::optional<GgmlType> GgmlTypeFromDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return GgmlType::kF32;
    case DType::kF16:
      return GgmlType::kF16;
    case DType::kBF16:
      return GgmlType::kBF16;
    case DType::kF64:
      return GgmlType::kF64;
    case DType::kI8:
      return GgmlType::kI8;
    case DType::kI16:
      return GgmlType::kI16;
    case DType::kI32:
      return GgmlType::kI32;
    case DType::kI64:
      return GgmlType::kI64;
    default:
      return std::nullopt;
  }
}

std::optional<DType> DTypeFromGgmlType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return DType::kF32;
    case GgmlType::kF16:
      return DType::kF16;
    case GgmlType::kBF16:
      return DType::kBF16;
    case GgmlType::kF64:
      return DType::kF64;
    case GgmlType::kI8:
      return DType::kI8;
    case GgmlType::kI16:
      return DType::kI16;
    case GgmlType::kI32:
      return DType::kI32;
    case GgmlType::kI64:
      return DType::kI64;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<uint64_t> GgmlTensorByteSize(GgmlType type,
                                            std::span<const uint64_t> dims) {
  const TypeRow* row = FindTypeRow(static_cast<uint32_t>(type));
  if (row == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown ggml type ", static_cast<uint32_t>(type)));
  }
  if (dims.size() > kGgufMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrCat(dims.size(), " dims ", ListString(dims),
                     ", more than ggml's ", kGgufMaxDims));
  }
  constexpr uint64_t kInt64Max = std::numeric_limits<int64_t>::max();
  uint64_t elements = 1;
  bool overflow = false;
  for (uint64_t dim : dims) {
    if (dim > kInt64Max) {
      return absl::InvalidArgumentError(
          absl::StrCat("dims ", ListString(dims), ": a dim exceeds INT64_MAX"));
    }
    if (__builtin_mul_overflow(elements, dim, &elements)) overflow = true;
  }
  // A 0 dim makes the product 0 whatever overflowed before it.
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) {
    elements = 0;
    overflow = false;
  }
  if (overflow || elements >= kInt64Max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dims ", ListString(dims), ": the element count reaches INT64_MAX"));
  }
  const GgmlTypeTraits traits = row->traits;
  const uint64_t row_elements = dims.empty() ? 1 : dims[0];
  if (row_elements % traits.block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dims ", ListString(dims), ": ", row->name, " packs ",
        traits.block_elements, " elements per block, but dims[0] (the ",
        "innermost dim) is ", row_elements, ", not a multiple of it"));
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(elements / traits.block_elements,
                             uint64_t{traits.block_bytes}, &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dims ", ListString(dims), ": the byte size overflows 64 bits"));
  }
  return bytes;
}

absl::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "UINT8";
    case GgufValueType::kInt8:
      return "INT8";
    case GgufValueType::kUint16:
      return "UINT16";
    case GgufValueType::kInt16:
      return "INT16";
    case GgufValueType::kUint32:
      return "UINT32";
    case GgufValueType::kInt32:
      return "INT32";
    case GgufValueType::kFloat32:
      return "FLOAT32";
    case GgufValueType::kBool:
      return "BOOL";
    case GgufValueType::kString:
      return "STRING";
    case GgufValueType::kArray:
      return "ARRAY";
    case GgufValueType::kUint64:
      return "UINT64";
    case GgufValueType::kInt64:
      return "INT64";
    case GgufValueType::kFloat64:
      return "FLOAT64";
  }
  return "unknown";
}

bool operator==(const GgufArray& a, const GgufArray& b) {
  return a.element_type == b.element_type && a.elements == b.elements;
}

bool operator==(const GgufValue& a, const GgufValue& b) {
  return a.type == b.type && a.value == b.value;
}

GgufValue GgufValue::Unsigned(GgufValueType type, uint64_t value) {
  return GgufValue{type, value};
}
GgufValue GgufValue::Signed(GgufValueType type, int64_t value) {
  return GgufValue{type, value};
}
GgufValue GgufValue::Float(GgufValueType type, double value) {
  return GgufValue{type, value};
}
GgufValue GgufValue::Bool(bool value) {
  return GgufValue{GgufValueType::kBool, value};
}
GgufValue GgufValue::String(std::string value) {
  return GgufValue{GgufValueType::kString, std::move(value)};
}
GgufValue GgufValue::Array(GgufArray value) {
  return GgufValue{GgufValueType::kArray, std::move(value)};
}

std::optional<uint64_t> GgufValue::AsUint64() const {
  if (const uint64_t* u = std::get_if<uint64_t>(&value)) return *u;
  if (const int64_t* i = std::get_if<int64_t>(&value); i && *i >= 0) {
    return static_cast<uint64_t>(*i);
  }
  return std::nullopt;
}

std::optional<int64_t> GgufValue::AsInt64() const {
  if (const int64_t* i = std::get_if<int64_t>(&value)) return *i;
  if (const uint64_t* u = std::get_if<uint64_t>(&value);
      u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(*u);
  }
  return std::nullopt;
}

std::optional<double> GgufValue::AsDouble() const {
  if (const double* d = std::get_if<double>(&value)) return *d;
  if (const uint64_t* u = std::get_if<uint64_t>(&value)) {
    return static_cast<double>(*u);
  }
  if (const int64_t* i = std::get_if<int64_t>(&value)) {
    return static_cast<double>(*i);
  }
  return std::nullopt;
}

const std::string* GgufValue::AsString() const {
  return std::get_if<std::string>(&value);
}

const GgufArray* GgufValue::AsArray() const {
  return std::get_if<GgufArray>(&value);
}

std::vector<int64_t> GgufTensorInfo::Shape() const {
  return std::vector<int64_t>(dims.rbegin(), dims.rend());
}

namespace {

// Parses a header from an in-memory prefix of a file, front to back.
class HeaderParser {
 public:
  explicit HeaderParser(absl::string_view bytes) : bytes_(bytes) {}

  absl::StatusOr<GgufHeader> Parse();

 private:
  // Returns OK if `n` more bytes are there; OutOfRange naming `what` if not.
  absl::Status Need(uint64_t n, absl::string_view what) const;
  // Reads a little-endian T.
  template <typename T>
  absl::Status Read(absl::string_view what, T& out);
  // Reads a string (u64 length, bytes) of at most `max_bytes` bytes and
  // charges its bytes; `out` points into the bytes given.
  absl::Status ReadString(absl::string_view what, uint64_t max_bytes,
                          absl::string_view& out);
  // Reads a value of `type`, nested `depth` arrays deep.
  absl::Status ReadValue(GgufValueType type, int depth, GgufValue& out);
  // Counts `bytes` of decoded memory against kMaxGgufDecodedBytes.
  absl::Status Charge(uint64_t bytes);

  absl::Status ReadMetadata(uint64_t count, GgufHeader& header);
  absl::Status ReadTensorInfos(uint64_t count, GgufHeader& header);
  // Checks offsets against each other and fills in file offsets.
  absl::Status CheckTensorLayout(GgufHeader& header) const;

  const absl::string_view bytes_;
  uint64_t pos_ = 0;
  uint64_t decoded_ = 0;
};

absl::Status HeaderParser::Need(uint64_t n, absl::string_view what) const {
  const uint64_t remaining = bytes_.size() - pos_;
  if (n <= remaining) return absl::OkStatus();
  return absl::OutOfRangeError(
      absl::StrCat("need more bytes: ", what, " at offset ", pos_, " takes ", n,
                   " bytes, but the ", bytes_.size(), " bytes given end ",
                   remaining, " bytes after it"));
}

template <typename T>
absl::Status HeaderParser::Read(absl::string_view what, T& out) {
  PSTORE_RETURN_IF_ERROR(Need(sizeof(T), what));
  std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
  pos_ += sizeof(T);
  return absl::OkStatus();
}

absl::Status HeaderParser::ReadString(absl::string_view what,
                                      uint64_t max_bytes,
                                      absl::string_view& out) {
  uint64_t length = 0;
  PSTORE_RETURN_IF_ERROR(Read(absl::StrCat(what, " length"), length));
  if (length > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " at offset ", pos_ - 8, " is ", length,
                     " bytes long, more than the limit of ", max_bytes));
  }
  PSTORE_RETURN_IF_ERROR(Need(length, what));
  PSTORE_RETURN_IF_ERROR(Charge(length));
  out = bytes_.substr(pos_, length);
  pos_ += length;
  return absl::OkStatus();
}

absl::Status HeaderParser::Charge(uint64_t bytes) {
  decoded_ += bytes;
  if (decoded_ > kMaxGgufDecodedBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the metadata and tensor infos decode to more than the limit of ",
        kMaxGgufDecodedBytes, " bytes (at offset ", pos_, ")"));
  }
  return absl::OkStatus();
}

absl::Status HeaderParser::ReadValue(GgufValueType type, int depth,
                                     GgufValue& out) {
  out.type = type;
  switch (type) {
    case GgufValueType::kUint8: {
      uint8_t v;
      PSTORE_RETURN_IF_ERROR(Read("UINT8 value", v));
      out.value = uint64_t{v};
      return absl::OkStatus();
    }
    case GgufValueType::kInt8: {
      int8_t v;
      PSTORE_RETURN_IF_ERROR(Read("INT8 value", v));
      out.value = int64_t{v};
      return absl::OkStatus();
    }
    case GgufValueType::kUint16: {
      uint16_t v;
      PSTORE_RETURN_IF_ERROR(Read("UINT16 value", v));
      out.value = uint64_t{v};
      return absl::OkStatus();
    }
    case GgufValueType::kInt16: {
      int16_t v;
      PSTORE_RETURN_IF_ERROR(Read("INT16 value", v));
      out.value = int64_t{v};
      return absl::OkStatus();
    }
    case GgufValueType::kUint32: {
      uint32_t v;
      PSTORE_RETURN_IF_ERROR(Read("UINT32 value", v));
      out.value = uint64_t{v};
      return absl::OkStatus();
    }
    case GgufValueType::kInt32: {
      int32_t v;
      PSTORE_RETURN_IF_ERROR(Read("INT32 value", v));
      out.value = int64_t{v};
      return absl::OkStatus();
    }
    case GgufValueType::kUint64: {
      uint64_t v;
      PSTORE_RETURN_IF_ERROR(Read("UINT64 value", v));
      out.value = v;
      return absl::OkStatus();
    }
    case GgufValueType::kInt64: {
      int64_t v;
      PSTORE_RETURN_IF_ERROR(Read("INT64 value", v));
      out.value = v;
      return absl::OkStatus();
    }
    case GgufValueType::kFloat32: {
      float v;
      PSTORE_RETURN_IF_ERROR(Read("FLOAT32 value", v));
      out.value = double{v};
      return absl::OkStatus();
    }
    case GgufValueType::kFloat64: {
      double v;
      PSTORE_RETURN_IF_ERROR(Read("FLOAT64 value", v));
      out.value = v;
      return absl::OkStatus();
    }
    case GgufValueType::kBool: {
      uint8_t v;
      PSTORE_RETURN_IF_ERROR(Read("BOOL value", v));
      if (v > 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "BOOL value at offset ", pos_ - 1, " is ", v, ", neither 0 nor 1"));
      }
      out.value = v == 1;
      return absl::OkStatus();
    }
    case GgufValueType::kString: {
      absl::string_view text;
      PSTORE_RETURN_IF_ERROR(
          ReadString("STRING value", kMaxGgufStringBytes, text));
      out.value = std::string(text.data(), text.size());
      return absl::OkStatus();
    }
    case GgufValueType::kArray:
      break;
  }

  if (depth >= kMaxGgufArrayDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ARRAY at offset ", pos_, " nests deeper than the limit of ",
        kMaxGgufArrayDepth, " arrays"));
  }
  uint32_t element_type = 0;
  PSTORE_RETURN_IF_ERROR(Read("ARRAY element type", element_type));
  if (!IsKnownValueType(element_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ARRAY at offset ", pos_ - 4,
                     " has unknown element value type ", element_type));
  }
  uint64_t count = 0;
  PSTORE_RETURN_IF_ERROR(Read("ARRAY length", count));
  if (count > kMaxGgufArrayElements) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ARRAY at offset ", pos_ - 12, " has ", count,
        " elements, more than the limit of ", kMaxGgufArrayElements));
  }
  GgufArray array;
  array.element_type = static_cast<GgufValueType>(element_type);
  // Reserves only what the bytes at hand can hold: a hostile count costs
  // nothing before the bytes are there.
  PSTORE_RETURN_IF_ERROR(
      Need(count * MinEncodedSize(array.element_type),
           absl::StrCat("ARRAY of ", count, " ",
                        GgufValueTypeName(array.element_type), " elements")));
  PSTORE_RETURN_IF_ERROR(Charge(count * sizeof(GgufValue)));
  array.elements.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    absl::Status status =
        ReadValue(array.element_type, depth + 1, array.elements[i]);
    if (!status.ok()) {
      return Annotate(status, absl::StrCat("ARRAY element ", i));
    }
  }
  out.value = std::move(array);
  return absl::OkStatus();
}

absl::Status HeaderParser::ReadMetadata(uint64_t count, GgufHeader& header) {
  // Each pair takes at least 8 (key length) + 4 (type) + 1 bytes.
  header.metadata.reserve(std::min(count, (bytes_.size() - pos_) / 13));
  absl::flat_hash_set<absl::string_view> keys;  // Point into bytes_.
  for (uint64_t i = 0; i < count; ++i) {
    absl::string_view key;
    PSTORE_RETURN_IF_ERROR(ReadString(absl::StrCat("key of metadata pair ", i),
                                      kGgufMaxKeyBytes, key));
    if (key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata pair ", i, " has an empty key"));
    }
    const std::string context = absl::StrCat("metadata key ", Quoted(key));
    PSTORE_RETURN_IF_ERROR(Charge(sizeof(GgufKeyValue)));
    if (!keys.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, " appears twice"));
    }
    uint32_t type = 0;
    absl::Status status = Read("value type", type);
    if (!status.ok()) return Annotate(status, context);
    if (!IsKnownValueType(type)) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": unknown value type ", type, " at offset ", pos_ - 4));
    }
    GgufValue value;
    status = ReadValue(static_cast<GgufValueType>(type), 0, value);
    if (!status.ok()) return Annotate(status, context);
    header.metadata.push_back(
        GgufKeyValue{std::string(key.data(), key.size()), std::move(value)});
  }

  for (const GgufKeyValue& pair : header.metadata) {
    if (pair.key != kGgufAlignmentKey) continue;
    if (pair.value.type != GgufValueType::kUint32) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key ", Quoted(pair.key), " is of type ",
                       GgufValueTypeName(pair.value.type), ", not UINT32"));
    }
    const uint64_t alignment = *pair.value.AsUint64();
    if (!std::has_single_bit(alignment)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key ", Quoted(pair.key), " is ", alignment,
                       ", not a power of 2"));
    }
    header.alignment = static_cast<uint32_t>(alignment);
  }
  return absl::OkStatus();
}

absl::Status HeaderParser::ReadTensorInfos(uint64_t count, GgufHeader& header) {
  // Each info takes at least 8 (name length) + 4 + 4 + 8 bytes.
  header.tensors.reserve(std::min(count, (bytes_.size() - pos_) / 24));
  absl::flat_hash_set<absl::string_view> names;  // Point into bytes_.
  for (uint64_t i = 0; i < count; ++i) {
    GgufTensorInfo tensor;
    absl::string_view name;
    PSTORE_RETURN_IF_ERROR(ReadString(absl::StrCat("name of tensor info ", i),
                                      kGgufMaxKeyBytes, name));
    tensor.name.assign(name.data(), name.size());
    const std::string context = TensorContext(name);
    PSTORE_RETURN_IF_ERROR(Charge(sizeof(GgufTensorInfo)));
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, " appears twice"));
    }
    uint32_t dim_count = 0;
    absl::Status status = Read("dim count", dim_count);
    if (!status.ok()) return Annotate(status, context);
    if (dim_count > kGgufMaxDims) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, " has ", dim_count, " dims, more than ggml's ",
                       kGgufMaxDims));
    }
    PSTORE_RETURN_IF_ERROR(Charge(dim_count * sizeof(uint64_t)));
    tensor.dims.resize(dim_count);
    for (uint64_t& dim : tensor.dims) {
      status = Read("dim", dim);
      if (!status.ok()) return Annotate(status, context);
    }
    uint32_t type = 0;
    status = Read("ggml type", type);
    if (!status.ok()) return Annotate(status, context);
    if (FindTypeRow(type) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": unknown ggml type ", type, " at offset ", pos_ - 4));
    }
    tensor.type = static_cast<GgmlType>(type);
    absl::StatusOr<uint64_t> byte_size =
        GgmlTensorByteSize(tensor.type, tensor.dims);
    if (!byte_size.ok()) return Annotate(byte_size.status(), context);
    tensor.byte_size = *byte_size;
    status = Read("offset", tensor.offset);
    if (!status.ok()) return Annotate(status, context);
    if (tensor.offset % header.alignment != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": offset ", tensor.offset,
          " is not a multiple of the alignment ", header.alignment));
    }
    header.tensors.push_back(std::move(tensor));
  }
  return absl::OkStatus();
}

absl::Status HeaderParser::CheckTensorLayout(GgufHeader& header) const {
  std::vector<size_t> order(header.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  for (GgufTensorInfo& tensor : header.tensors) {
    if (tensor.byte_size > UINT64_MAX - header.data_offset ||
        tensor.offset > UINT64_MAX - header.data_offset - tensor.byte_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(TensorContext(tensor.name), ": offset ", tensor.offset,
                       " + ", tensor.byte_size, " bytes overflows 64 bits"));
    }
    tensor.file_offset = header.data_offset + tensor.offset;
    header.data_size =
        std::max(header.data_size, tensor.offset + tensor.byte_size);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const GgufTensorInfo& x = header.tensors[a];
    const GgufTensorInfo& y = header.tensors[b];
    return std::tie(x.offset, x.byte_size) < std::tie(y.offset, y.byte_size);
  });
  const GgufTensorInfo* previous = nullptr;  // The last with bytes.
  for (size_t index : order) {
    const GgufTensorInfo& tensor = header.tensors[index];
    if (tensor.byte_size == 0) continue;  // Overlaps nothing.
    if (previous != nullptr &&
        tensor.offset < previous->offset + previous->byte_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          TensorContext(tensor.name), " at [", tensor.offset, ", ",
          tensor.offset + tensor.byte_size, ") of the data section overlaps ",
          TensorContext(previous->name), " at [", previous->offset, ", ",
          previous->offset + previous->byte_size, ")"));
    }
    previous = &tensor;
  }
  return absl::OkStatus();
}

absl::StatusOr<GgufHeader> HeaderParser::Parse() {
  GgufHeader header;
  PSTORE_RETURN_IF_ERROR(Need(4, "magic"));
  if (std::memcmp(bytes_.data(), kMagic, 4) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad magic ", Quoted(bytes_.substr(0, 4)),
                     ": a GGUF file starts with 'GGUF'"));
  }
  pos_ = 4;
  PSTORE_RETURN_IF_ERROR(Read("version", header.version));
  if (header.version != 2 && header.version != 3) {
    if (header.version != 0 && (header.version & 0xFFFF) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("version ", header.version,
                       " reads as a big-endian file, which is not supported"));
    }
    if (header.version == 1) {
      return absl::InvalidArgumentError(
          "version 1 (32-bit counts) is not supported; only 2 and 3 are");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported version ", header.version, "; only 2 and 3 are"));
  }
  uint64_t tensor_count = 0;
  uint64_t metadata_count = 0;
  PSTORE_RETURN_IF_ERROR(Read("tensor count", tensor_count));
  PSTORE_RETURN_IF_ERROR(Read("metadata count", metadata_count));
  if (tensor_count > kMaxGgufTensors) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor count ", tensor_count, " exceeds the limit of ",
                     kMaxGgufTensors));
  }
  if (metadata_count > kMaxGgufMetadataKeys) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata count ", metadata_count,
                     " exceeds the limit of ", kMaxGgufMetadataKeys));
  }
  PSTORE_RETURN_IF_ERROR(ReadMetadata(metadata_count, header));
  PSTORE_RETURN_IF_ERROR(ReadTensorInfos(tensor_count, header));
  header.header_size = pos_;
  header.data_offset = AlignUp(pos_, header.alignment);
  PSTORE_RETURN_IF_ERROR(CheckTensorLayout(header));
  return header;
}

}  // namespace

absl::StatusOr<GgufHeader> ParseGgufHeader(absl::string_view bytes) {
  const bool capped = bytes.size() > kMaxGgufHeaderBytes;
  absl::StatusOr<GgufHeader> header =
      HeaderParser(bytes.substr(0, kMaxGgufHeaderBytes)).Parse();
  if (capped && absl::IsOutOfRange(header.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("header is longer than the limit of ", kMaxGgufHeaderBytes,
                     " bytes: ", header.status().message()));
  }
  return header;
}

GgufFile::GgufFile(std::string path, int fd, uint64_t file_size,
                   GgufHeader header)
    : path_(std::move(path)),
      fd_(fd),
      file_size_(file_size),
      header_(std::move(header)) {
  tensor_index_.reserve(header_.tensors.size());
  for (size_t i = 0; i < header_.tensors.size(); ++i) {
    tensor_index_.emplace(header_.tensors[i].name, i);
  }
  metadata_index_.reserve(header_.metadata.size());
  for (size_t i = 0; i < header_.metadata.size(); ++i) {
    metadata_index_.emplace(header_.metadata[i].key, i);
  }
}

GgufFile::~GgufFile() {
  // Read-only: a close error loses nothing.
  close(fd_);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(
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

  // Reads a growing prefix until the header parses. Each try parses from
  // the start again; with fourfold growth that costs at most 4/3 of one
  // parse of the final prefix.
  std::string prefix;
  uint64_t want =
      std::min({file_size, kFirstHeaderReadBytes, kMaxGgufHeaderBytes});
  absl::StatusOr<GgufHeader> header;
  while (true) {
    const uint64_t have = prefix.size();
    prefix.resize(want);
    PSTORE_RETURN_IF_ERROR(ReadFully(
        fd, path, have,
        std::span<uint8_t>(reinterpret_cast<uint8_t*>(prefix.data()) + have,
                           want - have)));
    header = ParseGgufHeader(prefix);
    if (!absl::IsOutOfRange(header.status())) break;
    if (want == file_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the header runs past the end of the file (",
                       file_size, " bytes): ", header.status().message()));
    }
    if (want == kMaxGgufHeaderBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": the header is longer than the limit of ",
          kMaxGgufHeaderBytes, " bytes: ", header.status().message()));
    }
    want = std::min({file_size, want * 4, kMaxGgufHeaderBytes});
  }
  if (!header.ok()) return Annotate(header.status(), path);

  if (!header->tensors.empty() &&
      (header->data_offset > file_size ||
       header->data_size > file_size - header->data_offset)) {
    // Names the first tensor, in file order, that runs past the end.
    for (const GgufTensorInfo& tensor : header->tensors) {
      if (tensor.byte_size > 0 &&
          tensor.file_offset + tensor.byte_size > file_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": ", TensorContext(tensor.name), " at [", tensor.file_offset,
            ", ", tensor.file_offset + tensor.byte_size,
            ") of the file runs past its end (", file_size, " bytes)"));
      }
    }
  }
  return std::unique_ptr<GgufFile>(
      new GgufFile(path, closer.Release(), file_size, *std::move(header)));
}

const GgufValue* GgufFile::FindMetadata(absl::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr
                                     : &header_.metadata[it->second].value;
}

const std::string* GgufFile::FindString(absl::string_view key) const {
  const GgufValue* value = FindMetadata(key);
  return value == nullptr ? nullptr : value->AsString();
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &header_.tensors[it->second];
}

absl::Status GgufFile::ReadAt(const GgufTensorInfo& tensor, uint64_t offset,
                              std::span<uint8_t> dest) const {
  if (offset > tensor.byte_size || dest.size() > tensor.byte_size - offset) {
    return absl::OutOfRangeError(
        absl::StrCat(path_, ": read of ", dest.size(), " bytes at offset ",
                     offset, " of ", TensorContext(tensor.name),
                     " runs past its end (", tensor.byte_size, " bytes)"));
  }
  if (tensor.file_offset < data_offset() || tensor.file_offset > file_size_ ||
      tensor.byte_size > file_size_ - tensor.file_offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": ", TensorContext(tensor.name), " at [", tensor.file_offset,
        ", +", tensor.byte_size, ") is not in the data section of this file"));
  }
  return ReadFully(fd_, path_, tensor.file_offset + offset, dest);
}

namespace {

// Appends little-endian encodings to a header being built.
class HeaderBuilder {
 public:
  void U32(uint32_t value) { Raw(&value, sizeof(value)); }
  void U64(uint64_t value) { Raw(&value, sizeof(value)); }
  void Bytes(absl::string_view bytes) {
    bytes_.append(bytes.data(), bytes.size());
  }
  void String(absl::string_view text) {
    U64(text.size());
    Bytes(text);
  }
  void StringPair(absl::string_view key, absl::string_view value) {
    String(key);
    U32(static_cast<uint32_t>(GgufValueType::kString));
    String(value);
  }
  // Writes `value` as the file stores it: its type, then its bytes.
  void TypedValue(const GgufValue& value) {
    U32(static_cast<uint32_t>(value.type));
    ValueBytes(value);
  }
  void PadTo(uint64_t alignment) {
    bytes_.append(AlignUp(bytes_.size(), alignment) - bytes_.size(), '\0');
  }
  std::string Take() { return std::move(bytes_); }

 private:
  void Raw(const void* data, size_t size) {
    bytes_.append(static_cast<const char*>(data), size);
  }
  // The bytes of `value` without its type, at its type's width.
  void ValueBytes(const GgufValue& value) {
    auto as_unsigned = [&] {
      if (auto v = value.AsUint64()) return *v;
      return static_cast<uint64_t>(value.AsInt64().value_or(0));
    };
    switch (value.type) {
      case GgufValueType::kUint8:
      case GgufValueType::kInt8:
      case GgufValueType::kBool: {
        const uint8_t byte =
            value.type == GgufValueType::kBool
                ? static_cast<uint8_t>(std::get_if<bool>(&value.value) !=
                                           nullptr &&
                                       std::get<bool>(value.value))
                : static_cast<uint8_t>(as_unsigned());
        Raw(&byte, 1);
        return;
      }
      case GgufValueType::kUint16:
      case GgufValueType::kInt16: {
        const uint16_t half = static_cast<uint16_t>(as_unsigned());
        Raw(&half, 2);
        return;
      }
      case GgufValueType::kUint32:
      case GgufValueType::kInt32:
        U32(static_cast<uint32_t>(as_unsigned()));
        return;
      case GgufValueType::kUint64:
      case GgufValueType::kInt64:
        U64(as_unsigned());
        return;
      case GgufValueType::kFloat32: {
        const float single = static_cast<float>(value.AsDouble().value_or(0));
        Raw(&single, 4);
        return;
      }
      case GgufValueType::kFloat64: {
        const double wide = value.AsDouble().value_or(0);
        Raw(&wide, 8);
        return;
      }
      case GgufValueType::kString: {
        const std::string* text = value.AsString();
        String(text == nullptr ? absl::string_view() : *text);
        return;
      }
      case GgufValueType::kArray: {
        const GgufArray* array = value.AsArray();
        U32(static_cast<uint32_t>(array == nullptr ? GgufValueType::kUint8
                                                   : array->element_type));
        U64(array == nullptr ? 0 : array->elements.size());
        if (array == nullptr) return;
        for (const GgufValue& element : array->elements) {
          ValueBytes(element);
        }
        return;
      }
    }
  }
  std::string bytes_;
};

}  // namespace

absl::StatusOr<GgufLayout> ComputeGgufLayout(
    std::span<const GgufTensorSpec> tensors, absl::string_view general_name,
    const std::map<std::string, std::string>& metadata,
    std::span<const GgufKeyValue> typed_metadata) {
  if (!IsValidUtf8(general_name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kGgufNameKey, " ", Quoted(general_name), " is not valid UTF-8"));
  }
  absl::flat_hash_set<absl::string_view> typed_keys;
  for (const GgufKeyValue& pair : typed_metadata) {
    const std::string context = absl::StrCat("metadata key ", Quoted(pair.key));
    if (pair.key.empty() || pair.key == kGgufNameKey ||
        pair.key == kGgufAlignmentKey || pair.key.size() > kGgufMaxKeyBytes ||
        !IsValidUtf8(pair.key) || metadata.contains(pair.key) ||
        !typed_keys.insert(pair.key).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": empty, too long, not UTF-8, written by the writer ",
          "itself, or given twice"));
    }
  }
  for (const auto& [key, value] : metadata) {
    const std::string context = absl::StrCat("metadata key ", Quoted(key));
    if (key.empty()) {
      return absl::InvalidArgumentError("a metadata key is empty");
    }
    if (key == kGgufNameKey || key == kGgufAlignmentKey) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, " is written by the writer itself; pass the name as ",
          "general_name"));
    }
    if (key.size() > kGgufMaxKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, " is ", key.size(), " bytes, more than ", kGgufMaxKeyBytes));
    }
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": key or value is not valid UTF-8"));
    }
  }

  GgufLayout layout;
  layout.tensors.reserve(tensors.size());
  absl::flat_hash_set<absl::string_view> names;
  uint64_t offset = 0;  // In the data section.
  for (const GgufTensorSpec& spec : tensors) {
    const std::string context = TensorContext(spec.name);
    if (spec.name.empty()) {
      return absl::InvalidArgumentError("a tensor has an empty name");
    }
    if (!names.insert(spec.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate tensor name ", Quoted(spec.name)));
    }
    if (spec.name.size() > kGgufMaxWrittenTensorNameBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": name is ", spec.name.size(), " bytes, more than the ",
          kGgufMaxWrittenTensorNameBytes, " ggml accepts"));
    }
    if (!IsValidUtf8(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": name is not valid UTF-8"));
    }
    if (!IsGgufWritableType(spec.type)) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": the writer does not write ggml type ",
          GgmlTypeName(spec.type), " (", static_cast<uint32_t>(spec.type),
          "); it writes F32, F16, BF16, Q8_0, Q4_0, F64, I8, I16, I32 and "
          "I64"));
    }
    const std::span<const int64_t> shape = spec.shape;
    if (shape.size() > kGgufMaxDims) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": shape ", ListString(shape), " has more ",
                       "than ggml's ", kGgufMaxDims, " dims"));
    }
    GgufTensorInfo tensor;
    tensor.name = spec.name;
    tensor.type = spec.type;
    for (auto it = shape.rbegin(); it != shape.rend(); ++it) {
      if (*it <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            context, ": shape ", ListString(shape), " has a ",
            *it < 0 ? "negative" : "zero", " dim; GGUF tensors written ",
            "here must have elements"));
      }
      tensor.dims.push_back(static_cast<uint64_t>(*it));
    }
    if (tensor.dims.empty()) tensor.dims.push_back(1);  // ggml has no 0-dim.
    absl::StatusOr<uint64_t> byte_size =
        GgmlTensorByteSize(tensor.type, tensor.dims);
    if (!byte_size.ok()) {
      return Annotate(byte_size.status(),
                      absl::StrCat(context, ": shape ", ListString(shape)));
    }
    tensor.byte_size = *byte_size;
    tensor.offset = offset;
    const uint64_t padded = AlignUp(tensor.byte_size, kGgufDefaultAlignment);
    if (padded < tensor.byte_size || padded > UINT64_MAX - offset) {
      return absl::InvalidArgumentError(
          absl::StrCat(context, ": the data section overflows 64 bits"));
    }
    offset += padded;
    layout.tensors.push_back(std::move(tensor));
  }

  HeaderBuilder body;
  body.Bytes(absl::string_view(kMagic, 4));
  body.U32(kGgufVersion);
  body.U64(layout.tensors.size());
  body.U64(2 + metadata.size() + typed_metadata.size());
  body.StringPair(kGgufNameKey, general_name);
  body.String(kGgufAlignmentKey);
  body.U32(static_cast<uint32_t>(GgufValueType::kUint32));
  body.U32(kGgufDefaultAlignment);
  for (const auto& [key, value] : metadata) body.StringPair(key, value);
  for (const GgufKeyValue& pair : typed_metadata) {
    body.String(pair.key);
    body.TypedValue(pair.value);
  }
  for (const GgufTensorInfo& tensor : layout.tensors) {
    body.String(tensor.name);
    body.U32(static_cast<uint32_t>(tensor.dims.size()));
    for (uint64_t dim : tensor.dims) body.U64(dim);
    body.U32(static_cast<uint32_t>(tensor.type));
    body.U64(tensor.offset);
  }
  body.PadTo(kGgufDefaultAlignment);
  std::string bytes = body.Take();

  layout.data_offset = bytes.size();
  if (offset > UINT64_MAX - layout.data_offset) {
    return absl::InvalidArgumentError("the file size overflows 64 bits");
  }
  layout.file_size = layout.data_offset + offset;
  layout.header_bytes = std::move(bytes);
  for (GgufTensorInfo& tensor : layout.tensors) {
    tensor.file_offset = layout.data_offset + tensor.offset;
  }
  return layout;
}

GgufWriter::GgufWriter(GgufLayout layout,
                       std::unique_ptr<TensorFileWriter> file)
    : layout_(std::move(layout)), file_(std::move(file)) {}

absl::StatusOr<std::unique_ptr<GgufWriter>> GgufWriter::Create(
    const std::string& path, std::span<const GgufTensorSpec> tensors,
    absl::string_view general_name,
    const std::map<std::string, std::string>& metadata) {
  absl::StatusOr<GgufLayout> layout =
      ComputeGgufLayout(tensors, general_name, metadata);
  if (!layout.ok()) return Annotate(layout.status(), path);
  std::vector<TensorFileEntry> entries;
  entries.reserve(layout->tensors.size());
  for (const GgufTensorInfo& tensor : layout->tensors) {
    entries.push_back({tensor.name, tensor.byte_size});
  }
  PSTORE_ASSIGN_OR_RETURN(
      std::unique_ptr<TensorFileWriter> file,
      TensorFileWriter::Create(path, layout->header_bytes, std::move(entries),
                               kGgufDefaultAlignment));
  return std::unique_ptr<GgufWriter>(
      new GgufWriter(*std::move(layout), std::move(file)));
}

absl::Status GgufWriter::Append(std::span<const uint8_t> bytes) {
  return file_->Append(bytes);
}

absl::Status GgufWriter::Finish() { return file_->Finish(); }

}  // namespace pstore
