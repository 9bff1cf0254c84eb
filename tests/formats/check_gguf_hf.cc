// Writes and reads GGUF files for check_gguf_hf.mjs, which checks them
// against Hugging Face's GGUF parser (npm @huggingface/gguf), and checks
// files against ggml's own reader when a libggml-base.so is at hand.
//
// Usage:
//   check_gguf_hf write OUT_DIR
//     Writes sample NAME.gguf files with GgufWriter and, for each,
//     NAME.expected.json: {"version", "data_offset", "file_size",
//     "key_order": [keys in file order], "metadata": {key: {"type", "value"}},
//     "tensors": [{"name", "type", "type_name", "dims" (ggml order, as
//     strings), "offset" (string)}], "fill": {tensor name: seed}}, where
//     byte k of a tensor is (seed * 13 + k * 31) % 251.
//   check_gguf_hf read FILE
//     Opens FILE with GgufFile and prints it as JSON: {"version",
//     "alignment", "data_offset", "metadata": [{"key", "type", "value"}]
//     (arrays as {"type": 9, "subType", "value": [...]}), "tensors": [{"name",
//     "type", "dims", "offset", "fnv1a64"}]}. Integers are decimal strings,
//     so that 64-bit values survive JavaScript; floats are numbers.
//   check_gguf_hf ggml LIBGGML_BASE_SO FILE...
//     Loads ggml's gguf reader from the library (dlopen; nothing is linked)
//     and checks that it accepts every FILE, loading the data section, and
//     sees the same metadata, tensor names, types, dims, offsets and bytes
//     as GgufFile; first it checks ggml's type table (names, block sizes)
//     against GgmlTypeTraitsOf. Prints one line per check.
//
// Exits 0 on success, 1 on a failed check, 2 on bad usage.

#include <dlfcn.h>
#include <strings.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "formats/gguf.h"
#include "nlohmann/json.hpp"

namespace pstore {
namespace {

using Json = nlohmann::json;

uint8_t FillByte(uint64_t seed, uint64_t k) {
  return static_cast<uint8_t>((seed * 13 + k * 31) % 251);
}

std::string Dump(const Json& json) {
  return json.dump(2, ' ', false, Json::error_handler_t::replace);
}

absl::Status WriteSample(const std::string& dir, const std::string& name,
                         const std::vector<GgufTensorSpec>& specs,
                         const std::string& general_name,
                         const std::map<std::string, std::string>& metadata) {
  const std::string path = absl::StrCat(dir, "/", name, ".gguf");
  absl::StatusOr<std::unique_ptr<GgufWriter>> writer =
      GgufWriter::Create(path, specs, general_name, metadata);
  if (!writer.ok()) return writer.status();
  const GgufLayout& layout = (*writer)->layout();

  Json expected_metadata = Json::object();
  Json key_order = Json::array();
  expected_metadata["general.name"] = {{"type", 8}, {"value", general_name}};
  key_order.push_back("general.name");
  expected_metadata["general.alignment"] = {{"type", 4}, {"value", 32}};
  key_order.push_back("general.alignment");
  for (const auto& [key, value] : metadata) {
    expected_metadata[key] = {{"type", 8}, {"value", value}};
    key_order.push_back(key);
  }
  Json tensors = Json::array();
  Json fill = Json::object();
  std::vector<uint8_t> chunk;
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    const GgufTensorInfo& tensor = layout.tensors[i];
    Json dims = Json::array();
    for (uint64_t dim : tensor.dims) dims.push_back(absl::StrCat(dim));
    tensors.push_back({{"name", tensor.name},
                       {"type", static_cast<uint32_t>(tensor.type)},
                       {"type_name", std::string(GgmlTypeName(tensor.type))},
                       {"dims", dims},
                       {"offset", absl::StrCat(tensor.offset)}});
    fill[tensor.name] = i;
    chunk.resize(tensor.byte_size);
    for (uint64_t k = 0; k < tensor.byte_size; ++k) chunk[k] = FillByte(i, k);
    absl::Status status = (*writer)->Append(chunk);
    if (!status.ok()) return status;
  }
  absl::Status status = (*writer)->Finish();
  if (!status.ok()) return status;

  const Json expected = {{"version", 3},
                         {"data_offset", layout.data_offset},
                         {"file_size", layout.file_size},
                         {"key_order", key_order},
                         {"metadata", expected_metadata},
                         {"tensors", tensors},
                         {"fill", fill}};
  std::ofstream out(absl::StrCat(dir, "/", name, ".expected.json"));
  out << Dump(expected) << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", name));
  return absl::OkStatus();
}

int WriteSamples(const std::string& dir) {
  const std::map<std::string, std::string> metadata = {
      {"general.architecture", "llama"},
      {"pstore.revision", "main@7"},
      {"pstore.note", "ünïcode ✓ \"quoted\" \\ back\tslash\nnew line, 日本語"},
      {"pstore.empty", ""},
  };
  struct Sample {
    const char* name;
    std::vector<GgufTensorSpec> specs;
    std::string general_name;
    std::map<std::string, std::string> metadata;
  };
  const std::vector<Sample> samples = {
      {"mixed",
       {
           {"token_embd.weight", GgmlType::kF16, {10, 64}},
           {"blk.0.attn_q.weight", GgmlType::kQ8_0, {8, 96}},
           {"blk.0.ffn_up.weight", GgmlType::kQ4_0, {4, 128}},
           {"blk.0.attn_norm.weight", GgmlType::kF32, {7}},
           {"blk.0.bf16.weight", GgmlType::kBF16, {3, 5}},
           {"conv.3d", GgmlType::kF32, {2, 3, 5}},
           {"conv.4d", GgmlType::kF16, {2, 1, 3, 32}},
           {"scalar", GgmlType::kF32, {}},
           {"output.weight", GgmlType::kQ8_0, {1, 32}},
       },
       "Mixed Model ✓",
       metadata},
      {"one-tensor", {{"w", GgmlType::kF32, {3, 4}}}, "one", {}},
      {"no-tensors", {}, "metadata only", metadata},
  };
  for (const Sample& sample : samples) {
    absl::Status status = WriteSample(dir, sample.name, sample.specs,
                                      sample.general_name, sample.metadata);
    if (!status.ok()) {
      std::fprintf(stderr, "%s: %s\n", sample.name,
                   std::string(status.message()).c_str());
      return 1;
    }
  }
  return 0;
}

bool IsIntegerType(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

// Returns `value` as JSON: integers as decimal strings, arrays as arrays of
// their elements' values.
Json ValueJson(const GgufValue& value) {
  if (IsIntegerType(value.type)) {
    if (const uint64_t* u = std::get_if<uint64_t>(&value.value)) {
      return absl::StrCat(*u);
    }
    return absl::StrCat(std::get<int64_t>(value.value));
  }
  if (const double* d = std::get_if<double>(&value.value)) return *d;
  if (const bool* b = std::get_if<bool>(&value.value)) return *b;
  if (const std::string* s = value.AsString()) return *s;
  Json elements = Json::array();
  for (const GgufValue& element : value.AsArray()->elements) {
    elements.push_back(ValueJson(element));
  }
  return elements;
}

uint64_t Fnv1a64(std::span<const uint8_t> bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

int Read(const std::string& path) {
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.status().ToString().c_str());
    return 1;
  }
  Json metadata = Json::array();
  for (const GgufKeyValue& pair : (*file)->metadata()) {
    Json entry = {{"key", pair.key},
                  {"type", static_cast<uint32_t>(pair.value.type)},
                  {"value", ValueJson(pair.value)}};
    if (const GgufArray* array = pair.value.AsArray()) {
      entry["subType"] = static_cast<uint32_t>(array->element_type);
    }
    metadata.push_back(entry);
  }
  Json tensors = Json::array();
  for (const GgufTensorInfo& tensor : (*file)->tensors()) {
    std::vector<uint8_t> bytes(tensor.byte_size);
    absl::Status status = (*file)->ReadAt(tensor, 0, bytes);
    if (!status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
    Json dims = Json::array();
    for (uint64_t dim : tensor.dims) dims.push_back(absl::StrCat(dim));
    tensors.push_back({{"name", tensor.name},
                       {"type", static_cast<uint32_t>(tensor.type)},
                       {"dims", dims},
                       {"offset", absl::StrCat(tensor.offset)},
                       {"fnv1a64", absl::StrCat(absl::Hex(Fnv1a64(bytes),
                                                          absl::kZeroPad16))}});
  }
  const Json out = {{"version", (*file)->version()},
                    {"alignment", (*file)->alignment()},
                    {"data_offset", (*file)->data_offset()},
                    {"metadata", metadata},
                    {"tensors", tensors}};
  std::printf("%s\n", Dump(out).c_str());
  return 0;
}

// The parts of ggml's gguf.h and ggml.h used here, declared by hand so that
// nothing links against ggml.
struct GgufInitParams {
  bool no_alloc;
  void** ctx;  // struct ggml_context **
};

class Ggml {
 public:
  // Loads the functions from `library`; returns false (and says why) if it
  // lacks one.
  bool Load(const std::string& library) {
    handle_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      std::fprintf(stderr, "dlopen %s: %s\n", library.c_str(), dlerror());
      return false;
    }
    return Find("gguf_init_from_file", init) && Find("gguf_free", free) &&
           Find("gguf_get_version", version) &&
           Find("gguf_get_alignment", alignment) &&
           Find("gguf_get_data_offset", data_offset) &&
           Find("gguf_get_n_kv", n_kv) && Find("gguf_get_key", key) &&
           Find("gguf_get_kv_type", kv_type) &&
           Find("gguf_get_arr_type", arr_type) &&
           Find("gguf_get_arr_n", arr_n) && Find("gguf_get_arr_str", arr_str) &&
           Find("gguf_get_arr_data", arr_data) &&
           Find("gguf_get_val_str", val_str) &&
           Find("gguf_get_val_data", val_data) &&
           Find("gguf_get_n_tensors", n_tensors) &&
           Find("gguf_get_tensor_name", tensor_name) &&
           Find("gguf_get_tensor_offset", tensor_offset) &&
           Find("gguf_get_tensor_type", tensor_type) &&
           Find("gguf_get_tensor_size", tensor_size) &&
           Find("gguf_get_tensor_ne", tensor_ne) &&
           Find("ggml_get_tensor", get_tensor) &&
           Find("ggml_get_data", get_data) && Find("ggml_free", ggml_free) &&
           Find("ggml_type_name", type_name) &&
           Find("ggml_blck_size", blck_size) &&
           Find("ggml_type_size", type_size);
  }

  void* (*init)(const char*, GgufInitParams) = nullptr;
  void (*free)(void*) = nullptr;
  uint32_t (*version)(const void*) = nullptr;
  size_t (*alignment)(const void*) = nullptr;
  size_t (*data_offset)(const void*) = nullptr;
  int64_t (*n_kv)(const void*) = nullptr;
  const char* (*key)(const void*, int64_t) = nullptr;
  int (*kv_type)(const void*, int64_t) = nullptr;
  int (*arr_type)(const void*, int64_t) = nullptr;
  size_t (*arr_n)(const void*, int64_t) = nullptr;
  const char* (*arr_str)(const void*, int64_t, size_t) = nullptr;
  const void* (*arr_data)(const void*, int64_t) = nullptr;
  const char* (*val_str)(const void*, int64_t) = nullptr;
  const void* (*val_data)(const void*, int64_t) = nullptr;
  int64_t (*n_tensors)(const void*) = nullptr;
  const char* (*tensor_name)(const void*, int64_t) = nullptr;
  size_t (*tensor_offset)(const void*, int64_t) = nullptr;
  int (*tensor_type)(const void*, int64_t) = nullptr;
  size_t (*tensor_size)(const void*, int64_t) = nullptr;
  const int64_t* (*tensor_ne)(const void*, int64_t) = nullptr;
  void* (*get_tensor)(void*, const char*) = nullptr;
  void* (*get_data)(const void*) = nullptr;
  void (*ggml_free)(void*) = nullptr;
  const char* (*type_name)(int) = nullptr;
  int64_t (*blck_size)(int) = nullptr;
  size_t (*type_size)(int) = nullptr;

 private:
  template <typename F>
  bool Find(const char* name, F& function) {
    function = reinterpret_cast<F>(dlsym(handle_, name));
    if (function == nullptr) {
      std::fprintf(stderr, "%s is not in the library\n", name);
    }
    return function != nullptr;
  }

  void* handle_ = nullptr;
};

// Returns the little-endian bytes of a scalar (`value`, not an array or
// string) as ggml stores it.
std::string ScalarBytes(const GgufValue& value) {
  const auto raw = [](const auto& v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
  };
  switch (value.type) {
    case GgufValueType::kUint8:
      return raw(static_cast<uint8_t>(*value.AsUint64()));
    case GgufValueType::kInt8:
      return raw(static_cast<int8_t>(*value.AsInt64()));
    case GgufValueType::kUint16:
      return raw(static_cast<uint16_t>(*value.AsUint64()));
    case GgufValueType::kInt16:
      return raw(static_cast<int16_t>(*value.AsInt64()));
    case GgufValueType::kUint32:
      return raw(static_cast<uint32_t>(*value.AsUint64()));
    case GgufValueType::kInt32:
      return raw(static_cast<int32_t>(*value.AsInt64()));
    case GgufValueType::kUint64:
      return raw(*value.AsUint64());
    case GgufValueType::kInt64:
      return raw(*value.AsInt64());
    case GgufValueType::kFloat32:
      return raw(static_cast<float>(*value.AsDouble()));
    case GgufValueType::kFloat64:
      return raw(*value.AsDouble());
    case GgufValueType::kBool:
      return raw(static_cast<uint8_t>(std::get<bool>(value.value)));
    default:
      return "";
  }
}

// Returns "" if ggml's view of key `id` matches `pair`, else the mismatch.
std::string CompareKeyValue(const Ggml& ggml, const void* ctx, int64_t id,
                            const GgufKeyValue& pair) {
  if (pair.key != ggml.key(ctx, id)) {
    return absl::StrCat("key ", id, " is '", ggml.key(ctx, id), "', not '",
                        pair.key, "'");
  }
  const std::string context = absl::StrCat("key '", pair.key, "': ");
  if (ggml.kv_type(ctx, id) != static_cast<int>(pair.value.type)) {
    return absl::StrCat(context, "type ", ggml.kv_type(ctx, id));
  }
  if (const std::string* text = pair.value.AsString()) {
    return *text == ggml.val_str(ctx, id) ? "" : context + "string differs";
  }
  if (const GgufArray* array = pair.value.AsArray()) {
    if (ggml.arr_type(ctx, id) != static_cast<int>(array->element_type) ||
        ggml.arr_n(ctx, id) != array->elements.size()) {
      return context + "array type or length differs";
    }
    for (size_t i = 0; i < array->elements.size(); ++i) {
      const GgufValue& element = array->elements[i];
      if (const std::string* text = element.AsString()) {
        if (*text != ggml.arr_str(ctx, id, i)) {
          return absl::StrCat(context, "element ", i, " differs");
        }
        continue;
      }
      const std::string bytes = ScalarBytes(element);
      if (bytes.empty() ||
          std::memcmp(static_cast<const char*>(ggml.arr_data(ctx, id)) +
                          i * bytes.size(),
                      bytes.data(), bytes.size()) != 0) {
        return absl::StrCat(context, "element ", i, " differs");
      }
    }
    return "";
  }
  const std::string bytes = ScalarBytes(pair.value);
  return std::memcmp(ggml.val_data(ctx, id), bytes.data(), bytes.size()) == 0
             ? ""
             : context + "value differs";
}

// Returns "" if ggml reads `path` as GgufFile does, else the mismatch.
std::string CheckWithGgml(const Ggml& ggml, const std::string& path) {
  absl::StatusOr<std::unique_ptr<GgufFile>> ours = GgufFile::Open(path);
  if (!ours.ok()) return absl::StrCat("GgufFile: ", ours.status().ToString());
  const GgufFile& file = **ours;
  void* data_ctx = nullptr;
  // no_alloc = false: ggml reads the whole data section, padding included.
  void* ctx = ggml.init(path.c_str(), GgufInitParams{false, &data_ctx});
  if (ctx == nullptr) return "ggml refused the file (see its log above)";
  std::string error;
  // Without tensors, newer ggml puts the data section right after the
  // header, unpadded: there is nothing in it to align.
  const bool data_offset_matches =
      ggml.data_offset(ctx) == file.data_offset() ||
      (file.tensors().empty() &&
       ggml.data_offset(ctx) == file.header().header_size);
  if (ggml.version(ctx) != file.version() ||
      ggml.alignment(ctx) != file.alignment() || !data_offset_matches) {
    error = "version, alignment or data offset differs";
  } else if (ggml.n_kv(ctx) != static_cast<int64_t>(file.metadata().size())) {
    error = absl::StrCat("ggml sees ", ggml.n_kv(ctx), " keys");
  } else if (ggml.n_tensors(ctx) !=
             static_cast<int64_t>(file.tensors().size())) {
    error = absl::StrCat("ggml sees ", ggml.n_tensors(ctx), " tensors");
  }
  for (int64_t i = 0; error.empty() && i < ggml.n_kv(ctx); ++i) {
    error = CompareKeyValue(ggml, ctx, i, file.metadata()[i]);
  }
  for (int64_t i = 0; error.empty() && i < ggml.n_tensors(ctx); ++i) {
    const GgufTensorInfo& tensor = file.tensors()[i];
    const std::string context = absl::StrCat("tensor '", tensor.name, "': ");
    const int64_t* ne = ggml.tensor_ne(ctx, i);
    bool dims_match = true;
    for (size_t j = 0; j < kGgufMaxDims; ++j) {
      const uint64_t want = j < tensor.dims.size() ? tensor.dims[j] : 1;
      dims_match = dims_match && static_cast<uint64_t>(ne[j]) == want;
    }
    if (tensor.name != ggml.tensor_name(ctx, i)) {
      error =
          absl::StrCat("tensor ", i, " is '", ggml.tensor_name(ctx, i), "'");
    } else if (ggml.tensor_type(ctx, i) !=
               static_cast<int>(static_cast<uint32_t>(tensor.type))) {
      error = context + "type differs";
    } else if (!dims_match) {
      error = context + "dims differ";
    } else if (ggml.tensor_offset(ctx, i) != tensor.offset ||
               ggml.tensor_size(ctx, i) != tensor.byte_size) {
      error = context + "offset or size differs";
    } else {
      std::vector<uint8_t> bytes(tensor.byte_size);
      absl::Status status = file.ReadAt(tensor, 0, bytes);
      void* ggml_tensor = ggml.get_tensor(data_ctx, tensor.name.c_str());
      if (!status.ok()) {
        error = context + status.ToString();
      } else if (ggml_tensor == nullptr ||
                 std::memcmp(ggml.get_data(ggml_tensor), bytes.data(),
                             bytes.size()) != 0) {
        error = context + "bytes differ";
      }
    }
  }
  if (data_ctx != nullptr) ggml.ggml_free(data_ctx);
  ggml.free(ctx);
  return error;
}

// Returns "" if every ggml type value up to the largest GgmlTypeTraitsOf
// knows has, in the library, the name and block layout GgmlTypeTraitsOf
// gives, or is unknown to both (removed); else the mismatch. Sets `summary`.
// Values past that are not asked about: some ggml builds index their type
// table with them unchecked.
std::string CheckTypeTable(const Ggml& ggml, std::string& summary) {
  uint32_t largest = 0;
  for (uint32_t value = 0; value < 256; ++value) {
    if (GgmlTypeTraitsOf(value).has_value()) largest = value;
  }
  int matched = 0;
  std::vector<std::string> too_new;  // Known here, not in the library.
  for (uint32_t value = 0; value <= largest; ++value) {
    const std::optional<GgmlTypeTraits> ours = GgmlTypeTraitsOf(value);
    // ggml_type_name checks its argument; the others index a table.
    const char* name = ggml.type_name(static_cast<int>(value));
    if (name != nullptr && std::strcmp(name, "NONE") == 0) {
      if (ours.has_value()) too_new.push_back(absl::StrCat(value));
      continue;
    }
    const bool in_ggml =
        name != nullptr && ggml.blck_size(static_cast<int>(value)) > 0;
    if (in_ggml != ours.has_value()) {
      return absl::StrCat("ggml type ", value, (in_ggml ? " is" : " is not"),
                          " in the library but ", (ours ? "is" : "is not"),
                          " known here");
    }
    if (!in_ggml) continue;
    const std::string our_name(GgmlTypeName(static_cast<GgmlType>(value)));
    if (ggml.blck_size(static_cast<int>(value)) != ours->block_elements ||
        ggml.type_size(static_cast<int>(value)) != ours->block_bytes ||
        strcasecmp(name, our_name.c_str()) != 0) {
      return absl::StrCat(
          "ggml type ", value, " is ", name, " with ",
          ggml.blck_size(static_cast<int>(value)), " elements in ",
          ggml.type_size(static_cast<int>(value)), " bytes; here ", our_name,
          " with ", ours->block_elements, " in ", ours->block_bytes);
    }
    ++matched;
  }
  summary = absl::StrCat(matched, " types up to ", largest, " match");
  if (!too_new.empty()) {
    absl::StrAppend(&summary, "; types ", absl::StrJoin(too_new, ", "),
                    " are newer than the library");
  }
  return "";
}

int CheckFilesWithGgml(const std::string& library,
                       std::span<char* const> paths) {
  Ggml ggml;
  if (!ggml.Load(library)) return 1;
  int failed = 0;
  std::string summary;
  if (std::string error = CheckTypeTable(ggml, summary); !error.empty()) {
    ++failed;
    std::printf("FAIL ggml type table: %s\n", error.c_str());
  } else {
    std::printf("ok ggml type table: %s\n", summary.c_str());
  }
  for (const char* path : paths) {
    const std::string error = CheckWithGgml(ggml, path);
    if (error.empty()) {
      std::printf("ok ggml %s\n", path);
    } else {
      ++failed;
      std::printf("FAIL ggml %s: %s\n", path, error.c_str());
    }
  }
  return failed == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "write" && argc == 3) return WriteSamples(argv[2]);
  if (mode == "read" && argc == 3) return Read(argv[2]);
  if (mode == "ggml" && argc >= 4) {
    return CheckFilesWithGgml(argv[2],
                              std::span<char* const>(argv + 3, argc - 3));
  }
  std::fprintf(stderr,
               "usage: %s write OUT_DIR | read FILE | "
               "ggml LIBGGML_BASE_SO FILE...\n",
               argv[0]);
  return 2;
}

}  // namespace
}  // namespace pstore

int main(int argc, char** argv) { return pstore::Main(argc, argv); }
