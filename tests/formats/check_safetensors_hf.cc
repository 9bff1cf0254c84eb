// Writes sample safetensors files with SafetensorsWriter for
// check_safetensors_hf.mjs to parse with Hugging Face's own parser.
//
// Usage: check_safetensors_hf OUT_DIR
//
// For each NAME.safetensors it also writes NAME.expected.json:
//   {"header": the header object the file must parse to,
//    "key_order": its keys in file order,
//    "fill": {tensor name: seed}}
// where byte k of a tensor is (seed * 13 + k * 31) % 251.

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "codec/dtype.h"
#include "formats/safetensors.h"
#include "nlohmann/json.hpp"

namespace pstore {
namespace {

uint8_t FillByte(uint64_t seed, uint64_t k) {
  return static_cast<uint8_t>((seed * 13 + k * 31) % 251);
}

absl::Status WriteSample(const std::string& dir, const std::string& name,
                         const std::vector<SafetensorsTensorSpec>& specs,
                         const std::map<std::string, std::string>& metadata) {
  const std::string path = absl::StrCat(dir, "/", name, ".safetensors");
  absl::StatusOr<std::unique_ptr<SafetensorsWriter>> writer =
      SafetensorsWriter::Create(path, specs, metadata);
  if (!writer.ok()) return writer.status();
  const SafetensorsLayout& layout = (*writer)->layout();

  nlohmann::json header = nlohmann::json::object();
  nlohmann::json key_order = nlohmann::json::array();
  nlohmann::json fill = nlohmann::json::object();
  if (!metadata.empty()) {
    header["__metadata__"] = metadata;
    key_order.push_back("__metadata__");
  }
  std::vector<uint8_t> chunk;
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    const SafetensorsTensor& tensor = layout.tensors[i];
    const uint64_t begin = tensor.data_offset - layout.data_offset;
    header[tensor.name] = {
        {"dtype", std::string(DTypeName(tensor.dtype))},
        {"shape", tensor.shape},
        {"data_offsets", {begin, begin + tensor.byte_length}},
    };
    key_order.push_back(tensor.name);
    fill[tensor.name] = i;
    chunk.resize(tensor.byte_length);
    for (uint64_t k = 0; k < tensor.byte_length; ++k) chunk[k] = FillByte(i, k);
    absl::Status status = (*writer)->Append(chunk);
    if (!status.ok()) return status;
  }
  absl::Status status = (*writer)->Finish();
  if (!status.ok()) return status;

  nlohmann::json expected = {
      {"header", header}, {"key_order", key_order}, {"fill", fill}};
  std::ofstream out(absl::StrCat(dir, "/", name, ".expected.json"));
  out << expected.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
      << "\n";
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", name));
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<SafetensorsTensorSpec> mixed = {
      {"model.layers.0.mlp.down_proj.weight", DType::kBF16, {16, 24}},
      {"model.embed_tokens.weight", DType::kF32, {10, 8}},
      {"lm_head.bias", DType::kF16, {10}},
      {"step", DType::kI64, {}},  // 0-dim.
      {"empty", DType::kU8, {0}},
      {"empty.3d", DType::kF64, {2, 0, 3}},
      {"flags", DType::kBool, {5}},
      {"scales.f8", DType::kF8E5M2, {7}},
      {"codes", DType::kI8, {3, 3}},
      {"ids", DType::kI32, {6}},
      {"q", DType::kI16, {3}},
      {"f8b", DType::kF8E4M3, {2}},
      {"ünïcode ✓ \"quoted\" \\ back\tslash", DType::kF32, {1}},
  };
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"note", "a \"quoted\" ✓ value\nwith a newline"},
  };
  struct Sample {
    const char* name;
    std::vector<SafetensorsTensorSpec> specs;
    std::map<std::string, std::string> metadata;
  };
  const std::vector<Sample> samples = {
      {"mixed", mixed, metadata},
      {"no-metadata", {{"w", DType::kF32, {3, 4}}}, {}},
      {"only-metadata", {}, metadata},
      {"nothing", {}, {}},
  };
  for (const Sample& sample : samples) {
    absl::Status status =
        WriteSample(dir, sample.name, sample.specs, sample.metadata);
    if (!status.ok()) {
      std::fprintf(stderr, "%s: %s\n", sample.name,
                   std::string(status.message()).c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace pstore

int main(int argc, char** argv) { return pstore::Main(argc, argv); }
