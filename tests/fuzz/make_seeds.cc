// Writes the seed corpora of the fuzz targets: small, meaningful inputs, most
// of them made by pstore's own writers. The seeds in corpus/ were made by
// this program; run it again after a format change:
//
//   build-fuzz/tests/fuzz/make_fuzz_seeds tests/fuzz/corpus \
//       ../shared/fixtures/safetensors
//
// Each target's folder gets a handful of files named after what they hold.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/hash.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "pstore/v1/pstore.pb.h"
#include "storage/nvme/nvme_format.h"

namespace pstore {
namespace {

namespace fs = std::filesystem;

std::string U64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}

std::string U32(uint32_t value) { return U64(value).substr(0, 4); }

// Returns the bytes of a string literal, NULs included.
template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

void Write(const fs::path& dir, const std::string& name,
           absl::string_view bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

// --- fuzz_safetensors_header: [u64 N][N header bytes][u64 data size] ---

// Returns a seed for a header of `json`, with `data_size` bytes of data.
std::string SafetensorsSeed(absl::string_view json, uint64_t data_size) {
  return absl::StrCat(U64(json.size()), json, U64(data_size));
}

void MakeSafetensorsSeeds(const fs::path& dir, const fs::path& fixtures) {
  // The first 8 + N bytes of real files (written by the Rust crate), and
  // the size of their data sections.
  if (fs::is_directory(fixtures)) {
    for (const auto& entry : fs::directory_iterator(fixtures)) {
      if (entry.path().extension() != ".safetensors") continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::string prefix(8, '\0');
      in.read(prefix.data(), 8);
      uint64_t n = 0;
      for (int i = 7; i >= 0; --i) {
        n = (n << 8) | static_cast<unsigned char>(prefix[i]);
      }
      std::string json(n, '\0');
      in.read(json.data(), static_cast<std::streamsize>(n));
      const uint64_t size = fs::file_size(entry.path());
      Write(dir, absl::StrCat("fixture-", entry.path().stem().string()),
            absl::StrCat(prefix, json, U64(size - 8 - n)));
    }
  } else {
    std::fprintf(stderr, "no fixtures at %s: skipping them\n",
                 fixtures.c_str());
  }
  // Headers our writer lays out.
  struct Case {
    const char* name;
    std::vector<SafetensorsTensorSpec> tensors;
    std::map<std::string, std::string> metadata;
  };
  const std::vector<Case> cases = {
      {"writer-one-f32", {{"weight", DType::kF32, {4, 2}}}, {}},
      {"writer-every-dtype",
       {{"a.f64", DType::kF64, {2}},
        {"b.f32", DType::kF32, {3}},
        {"c.f16", DType::kF16, {1, 3}},
        {"d.bf16", DType::kBF16, {2, 1}},
        {"e.f8e4m3", DType::kF8E4M3, {5}},
        {"f.f8e5m2", DType::kF8E5M2, {1}},
        {"g.i64", DType::kI64, {1}},
        {"h.i32", DType::kI32, {2}},
        {"i.i16", DType::kI16, {3}},
        {"j.i8", DType::kI8, {4}},
        {"k.u8", DType::kU8, {2, 2}},
        {"l.bool", DType::kBool, {3}}},
       {}},
      {"writer-metadata",
       {{"model.layers.0.attn.q_proj.weight", DType::kBF16, {8, 4}},
        {"model.norm.weight", DType::kF32, {4}}},
       {{"format", "pt"}, {"note", "caf\xc3\xa9 \"quoted\" \\ \t"}}},
      {"writer-scalar-and-empty",
       {{"scalar", DType::kF32, {}},
        {"empty", DType::kF16, {0, 7}},
        {"unicode-\xe2\x98\x83", DType::kU8, {1}}},
       {}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SafetensorsLayout> layout =
        ComputeSafetensorsLayout(c.tensors, c.metadata);
    if (!layout.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name,
                   layout.status().ToString().c_str());
      std::exit(1);
    }
    Write(dir, c.name,
          absl::StrCat(layout->header_bytes,
                       U64(layout->file_size - layout->data_offset)));
  }
  // Near misses the reader must refuse.
  Write(dir, "bad-hole",
        SafetensorsSeed(
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8));
  Write(dir, "bad-duplicate-key",
        SafetensorsSeed(R"({"a":{"dtype":"F32","dtype":"F32","shape":[],)"
                        R"("data_offsets":[0,4]}})",
                        4));
  Write(dir, "bad-lowercase-dtype",
        SafetensorsSeed(
            R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4));
  Write(dir, "bad-overflowing-shape",
        SafetensorsSeed(R"({"a":{"dtype":"F64","shape":[4294967296,)"
                        R"(4294967296],"data_offsets":[0,0]}})",
                        0));
  Write(dir, "bad-metadata-number",
        SafetensorsSeed(R"({"__metadata__":{"n":1}})", 0));
}

// --- fuzz_gguf: 'G'... a file's start; anything else: writer specs ---

void MakeGgufSeeds(const fs::path& dir) {
  struct Case {
    const char* name;
    std::vector<GgufTensorSpec> tensors;
    std::string general_name;
    std::map<std::string, std::string> metadata;
  };
  const std::vector<Case> cases = {
      {"writer-empty", {}, "empty", {}},
      {"writer-types",
       {{"f32", GgmlType::kF32, {2, 3}},
        {"f16", GgmlType::kF16, {5}},
        {"bf16", GgmlType::kBF16, {1, 1, 2}},
        {"q8_0", GgmlType::kQ8_0, {2, 32}},
        {"q4_0", GgmlType::kQ4_0, {64}},
        {"f64", GgmlType::kF64, {1}},
        {"i8", GgmlType::kI8, {3}},
        {"i16", GgmlType::kI16, {1, 2, 3, 4}},
        {"i32", GgmlType::kI32, {}},
        {"i64", GgmlType::kI64, {2}}},
       "types",
       {}},
      {"writer-metadata",
       {{"token_embd.weight", GgmlType::kF16, {16, 8}},
        {"blk.0.attn_q.weight", GgmlType::kQ8_0, {8, 64}}},
       "llama-tiny",
       {{"general.architecture", "llama"},
        {"tokenizer.ggml.model", "gpt2"},
        {"note", "\xe2\x98\x83"}}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<GgufLayout> layout =
        ComputeGgufLayout(c.tensors, c.general_name, c.metadata);
    if (!layout.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name,
                   layout.status().ToString().c_str());
      std::exit(1);
    }
    Write(dir, c.name, layout->header_bytes);
  }
  // Version 2, every metadata value type, nested arrays, a custom
  // alignment and unpacked tensors: what other writers write.
  std::string other = absl::StrCat("GGUF", U32(2), U64(2), U64(15));
  auto key = [&](absl::string_view name, GgufValueType type) {
    absl::StrAppend(&other, U64(name.size()), name,
                    U32(static_cast<uint32_t>(type)));
  };
  key("u8", GgufValueType::kUint8);
  other += '\x7f';
  key("i8", GgufValueType::kInt8);
  other += '\x80';
  key("u16", GgufValueType::kUint16);
  other += U32(0xfffe).substr(0, 2);
  key("i16", GgufValueType::kInt16);
  other += U32(0x8000).substr(0, 2);
  key("u32", GgufValueType::kUint32);
  other += U32(0xffffffff);
  key("i32", GgufValueType::kInt32);
  other += U32(0x80000000);
  key("f32", GgufValueType::kFloat32);
  other += U32(0x7fc00000);  // NaN.
  key("bool", GgufValueType::kBool);
  other += '\x01';
  key("string", GgufValueType::kString);
  absl::StrAppend(&other, U64(5), "hello");
  key("u64", GgufValueType::kUint64);
  other += U64(UINT64_MAX);
  key("i64", GgufValueType::kInt64);
  other += U64(uint64_t{1} << 63);
  key("f64", GgufValueType::kFloat64);
  double inf = std::numeric_limits<double>::infinity();
  uint64_t inf_bits;
  std::memcpy(&inf_bits, &inf, 8);
  other += U64(inf_bits);
  key("array.i32", GgufValueType::kArray);
  absl::StrAppend(&other, U32(5), U64(3), U32(1), U32(2), U32(3));
  key("array.nested", GgufValueType::kArray);
  absl::StrAppend(&other, U32(9), U64(2),              // 2 arrays of
                  U32(8), U64(1), U64(1), "a",         // ["a"]
                  U32(7), U64(2), Bytes("\x00\x01"));  // [F, T]
  key("general.alignment", GgufValueType::kUint32);
  other += U32(64);
  // Tensors out of offset order, with a gap.
  absl::StrAppend(&other, U64(6), "second", U32(2), U64(32), U64(2), U32(8),
                  U64(128));
  absl::StrAppend(&other, U64(5), "first", U32(1), U64(4), U32(0), U64(0));
  Write(dir, "handmade-v2-every-type", other);
  // For the writer mode (the first byte is not 'G'): bytes that
  // FuzzedDataProvider turns into specs (integers come from the end, strings
  // from the front).
  Write(dir, "specs-a",
        Bytes("\x00tok_a\\\x05name\\key\\value"
              "\x20\x03\x02\x01\x07\x01\x02"));
  Write(dir, "specs-b",
        Bytes("\x01q8_0\\x\x40\x20\x05\x08\x02"
              "\x01\x03\x04\x01"));
}

// --- fuzz_request_validation: [u16 N][PutTensorRequest][GetTensorRequest]

void MakeRequestSeeds(const fs::path& dir) {
  struct Case {
    const char* name;
    const char* put_name;
    const char* dtype;
    std::vector<int64_t> shape;
    const char* get_name;
    const char* encoding;
    uint64_t offset;
    uint64_t length;
    uint32_t max_chunk_bytes;
  };
  const std::vector<Case> cases = {
      {"put-get-raw",
       "llama@v1/layers.0/wq",
       "F32",
       {4, 64},
       "llama@v1/layers.0/wq",
       "",
       0,
       0,
       0},
      {"put-get-q8_0",
       "m@r/emb",
       "bf16",
       {2, 64},
       "m/emb",
       "Q8_0",
       34,
       34,
       1 << 20},
      {"put-get-q4_0-misaligned",
       "m@r/t",
       "F16",
       {1, 32},
       "m@r/t",
       "q4_0",
       1,
       0,
       0},
      {"put-get-f32-range",
       "model_1.x@2024-01-01/a/b/c",
       "F64",
       {3, 5, 7},
       "model_1.x@2024-01-01/a/b/c",
       "f32",
       8,
       16,
       4096},
      {"put-unicode-tensor",
       "m@r/caf\xc3\xa9/\xe2\x98\x83",
       "I8",
       {0},
       "m@r/caf\xc3\xa9",
       "raw",
       0,
       0,
       16 << 20},
      {"put-no-revision", "m/t", "F32", {1}, "m", "f16", 0, 0, 0},
      {"put-dot-parts", "m@r/a/../b", "U8", {}, "m@r/./b", "bf16", 0, 0, 0},
      {"put-huge-shape",
       "m@r/t",
       "F16",
       {int64_t{1} << 40, int64_t{1} << 21},
       "m@r/t",
       "f32",
       0,
       0,
       0},
      {"put-negative-dim", "m@r/t", "Q8_0", {-1, 32}, "m@r/t", "q8_0", 0, 0, 0},
      {"get-too-large-chunk",
       "m@r/t",
       "BOOL",
       {9},
       "m@r/t",
       "raw",
       0,
       9,
       (16 << 20) + 1},
  };
  for (const Case& c : cases) {
    v1::PutTensorRequest put;
    put.mutable_header()->set_name(c.put_name);
    put.mutable_header()->set_dtype(c.dtype);
    for (int64_t dim : c.shape) put.mutable_header()->add_shape(dim);
    v1::GetTensorRequest get;
    get.set_name(c.get_name);
    get.set_encoding(c.encoding);
    get.set_offset(c.offset);
    get.set_length(c.length);
    get.set_max_chunk_bytes(c.max_chunk_bytes);
    const std::string put_bytes = put.SerializeAsString();
    std::string seed;
    seed.push_back(static_cast<char>(put_bytes.size() & 0xff));
    seed.push_back(static_cast<char>(put_bytes.size() >> 8));
    absl::StrAppend(&seed, put_bytes, get.SerializeAsString());
    Write(dir, c.name, seed);
  }
  // A pull: the rest parsed as PullModelRequest (shard 3 of 4).
  v1::PullModelRequest pull;
  pull.set_name("llama@v1");
  pull.set_encoding("q4_0");
  pull.set_shard_index(3);
  pull.set_shard_count(4);
  Write(dir, "pull-shard",
        absl::StrCat(std::string(2, '\0'), pull.SerializeAsString()));
  // A data message where the header belongs.
  v1::PutTensorRequest data;
  data.set_data("bytes before the header");
  const std::string data_bytes = data.SerializeAsString();
  Write(dir, "put-data-first",
        absl::StrCat(std::string(1, static_cast<char>(data_bytes.size())),
                     std::string(1, '\0'), data_bytes));
}

// --- fuzz_nvme_header: a page ---

void MakeNvmeSeeds(const fs::path& dir) {
  std::vector<uint8_t> page(nvme_format::kPageBytes);
  nvme_format::EncodeRegionHeader(
      {.region = 3, .region_bytes = uint64_t{256} << 20, .generation = 42},
      page);
  Write(dir, "region-page",
        absl::string_view(reinterpret_cast<const char*>(page.data()),
                          page.size()));
  Write(dir, "region-covered-bytes",
        absl::string_view(reinterpret_cast<const char*>(page.data()),
                          nvme_format::kRegionChecksumOffset + 8));
  const std::vector<uint8_t> block = {1, 2, 3, 4, 5};
  nvme_format::EncodeEntryHeader(
      {.generation = 42, .id = BlockId::Of(block), .length = 5}, page);
  Write(dir, "entry-page",
        absl::string_view(reinterpret_cast<const char*>(page.data()),
                          page.size()));
  Write(dir, "entry-covered-bytes",
        absl::string_view(reinterpret_cast<const char*>(page.data()),
                          nvme_format::kEntryChecksumOffset + 8));
  nvme_format::EncodeEntryHeader(
      {.version = 2, .generation = UINT64_MAX, .length = UINT64_MAX}, page);
  Write(dir, "entry-extreme-fields",
        absl::string_view(reinterpret_cast<const char*>(page.data()),
                          nvme_format::kEntryChecksumOffset + 8));
  Write(dir, "torn-page", std::string(100, '\xff'));
}

// --- fuzz_codec: [dtype][encoding][flags][source bytes] ---

std::string F32Bytes(const std::vector<float>& values) {
  std::string bytes(4 * values.size(), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

void MakeCodecSeeds(const fs::path& dir) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> block;  // 64 values: two blocks, edge cases first.
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65520.0f, 1e-8f, 5.96e-8f,
                  3.4e38f, -3.4e38f, 1.17549435e-38f, 0.1f}) {
    block.push_back(v);
  }
  while (block.size() < 64) {
    block.push_back(std::sin(static_cast<float>(block.size())) * 7.5f);
  }
  std::vector<float> special = block;
  special[5] = nan;
  special[40] = inf;
  special[63] = -inf;
  auto seed = [&](const char* name, DType dtype, Encoding encoding,
                  uint8_t flags, absl::string_view source) {
    Write(dir, name,
          absl::StrCat(std::string(1, static_cast<char>(dtype)),
                       std::string(1, static_cast<char>(encoding)),
                       std::string(1, static_cast<char>(flags)), source));
  };
  seed("f32-to-q8_0", DType::kF32, Encoding::kQ8_0, 3, F32Bytes(block));
  seed("f32-to-q4_0-nan-inf", DType::kF32, Encoding::kQ4_0, 3,
       F32Bytes(special));
  seed("f32-to-f16", DType::kF32, Encoding::kF16, 1, F32Bytes(special));
  seed("f32-to-bf16", DType::kF32, Encoding::kBF16, 1, F32Bytes(block));
  // F16 and BF16 bit patterns: every exponent, subnormals, NaNs.
  std::string halves;
  for (uint32_t bits = 0; bits < 0x10000; bits += 0x0401) {
    halves.push_back(static_cast<char>(bits & 0xff));
    halves.push_back(static_cast<char>(bits >> 8));
  }
  seed("f16-to-f32", DType::kF16, Encoding::kF32, 1, halves);
  seed("bf16-to-q8_0", DType::kBF16, Encoding::kQ8_0, 3, halves.substr(0, 128));
  std::string doubles;
  for (double v : {1e-300, 1e300, 0.1, -2.5, 65519.99, 3.4028235677973366e38}) {
    char bytes[8];
    std::memcpy(bytes, &v, 8);
    doubles.append(bytes, 8);
  }
  seed("f64-to-f16", DType::kF64, Encoding::kF16, 1, doubles);
  seed("i8-raw-odd-size", DType::kI8, Encoding::kRaw, 0, "\x01\x02\x03");
  seed("i32-to-f32-refused", DType::kI32, Encoding::kF32, 1, F32Bytes({1, 2}));
}

}  // namespace
}  // namespace pstore

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR SAFETENSORS_FIXTURES_DIR\n",
                 argv[0]);
    return 2;
  }
  const std::filesystem::path corpus = argv[1];
  pstore::MakeSafetensorsSeeds(corpus / "fuzz_safetensors_header", argv[2]);
  pstore::MakeGgufSeeds(corpus / "fuzz_gguf");
  pstore::MakeRequestSeeds(corpus / "fuzz_request_validation");
  pstore::MakeNvmeSeeds(corpus / "fuzz_nvme_header");
  pstore::MakeCodecSeeds(corpus / "fuzz_codec");
  return 0;
}
