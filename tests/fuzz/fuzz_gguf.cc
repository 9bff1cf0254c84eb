// Fuzzes the GGUF reader (ParseGgufHeader, GgufFile) and writer
// (ComputeGgufLayout, GgufWriter).
//
// Input, by its first byte:
//   'G'   the input is the start of a GGUF file ("GGUF..."), parsed as is.
//         Checks: the parser returns a header, OutOfRange ("need more
//         bytes") or InvalidArgument; a header it returns is consistent
//         (alignment a power of 2, data offset aligned, tensors aligned,
//         sized by their type and dims, not overlapping, names and keys
//         unique); exactly header_size bytes parse to the same header and
//         one byte fewer asks for more; bytes appended never change the
//         outcome; GgufFile opens the same bytes as a file and reads every
//         tensor that lies inside it.
//   other the rest of the input describes tensors (names, types, shapes)
//         and metadata for the writer. Checks: the layout it computes, or
//         InvalidArgument; the layout's header parses back to exactly the
//         tensors, offsets and metadata of the layout; and for files up to
//         256 KiB, GgufWriter writes the file (on tmpfs, in fuzzed append
//         sizes) and GgufFile reads back the header and every tensor's
//         bytes.

#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "formats/gguf.h"
#include "tests/fuzz/fuzz_util.h"

namespace pstore {
namespace {

// The largest file the writer round trip writes.
constexpr uint64_t kMaxWrittenFileBytes = uint64_t{256} << 10;

uint8_t PatternByte(uint64_t offset) {
  return static_cast<uint8_t>((offset * 151) ^ (offset >> 9) ^ 0x5a);
}

bool SameTensor(const GgufTensorInfo& a, const GgufTensorInfo& b) {
  return a.name == b.name && a.type == b.type && a.dims == b.dims &&
         a.offset == b.offset && a.file_offset == b.file_offset &&
         a.byte_size == b.byte_size;
}

// Returns true if `a` and `b` hold the same value; floats compare by their
// bits, so that a NaN equals itself.
bool SameValue(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type || a.value.index() != b.value.index()) return false;
  if (const double* x = std::get_if<double>(&a.value)) {
    return std::bit_cast<uint64_t>(*x) ==
           std::bit_cast<uint64_t>(std::get<double>(b.value));
  }
  if (const GgufArray* x = a.AsArray()) {
    const GgufArray& y = *b.AsArray();
    if (x->element_type != y.element_type ||
        x->elements.size() != y.elements.size()) {
      return false;
    }
    for (size_t i = 0; i < x->elements.size(); ++i) {
      if (!SameValue(x->elements[i], y.elements[i])) return false;
    }
    return true;
  }
  return a == b;
}

bool SameHeader(const GgufHeader& a, const GgufHeader& b) {
  if (a.version != b.version || a.alignment != b.alignment ||
      a.header_size != b.header_size || a.data_offset != b.data_offset ||
      a.data_size != b.data_size || a.tensors.size() != b.tensors.size() ||
      a.metadata.size() != b.metadata.size()) {
    return false;
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (!SameTensor(a.tensors[i], b.tensors[i])) return false;
  }
  for (size_t i = 0; i < a.metadata.size(); ++i) {
    if (a.metadata[i].key != b.metadata[i].key ||
        !SameValue(a.metadata[i].value, b.metadata[i].value)) {
      return false;
    }
  }
  return true;
}

// Checks what ParseGgufHeader promises about a header it returned from
// `bytes`.
void CheckHeader(const GgufHeader& header, absl::string_view bytes) {
  FUZZ_CHECK(header.version == 2 || header.version == 3);
  FUZZ_CHECK(std::has_single_bit(header.alignment));
  FUZZ_CHECK(header.header_size <= bytes.size());
  FUZZ_CHECK(header.data_offset >= header.header_size &&
             header.data_offset % header.alignment == 0 &&
             header.data_offset - header.header_size < header.alignment);
  std::set<std::string> keys;
  for (const GgufKeyValue& pair : header.metadata) {
    FUZZ_CHECK(!pair.key.empty() && keys.insert(pair.key).second);
    if (pair.key == kGgufAlignmentKey) {
      FUZZ_CHECK(pair.value.type == GgufValueType::kUint32 &&
                 pair.value.AsUint64() == header.alignment);
    }
  }
  if (!keys.contains(std::string(kGgufAlignmentKey))) {
    FUZZ_CHECK(header.alignment == kGgufDefaultAlignment);
  }
  std::set<std::string> names;
  std::vector<const GgufTensorInfo*> by_offset;
  uint64_t data_size = 0;
  for (const GgufTensorInfo& tensor : header.tensors) {
    FUZZ_CHECK(names.insert(tensor.name).second);
    FUZZ_CHECK(tensor.dims.size() <= kGgufMaxDims);
    FUZZ_CHECK(tensor.offset % header.alignment == 0);
    absl::StatusOr<uint64_t> size =
        GgmlTensorByteSize(tensor.type, tensor.dims);
    FUZZ_CHECK(size.ok() && *size == tensor.byte_size);
    FUZZ_CHECK(tensor.file_offset == header.data_offset + tensor.offset);
    FUZZ_CHECK(tensor.file_offset >= tensor.offset);  // No wrap.
    FUZZ_CHECK(tensor.file_offset + tensor.byte_size >= tensor.file_offset);
    data_size = std::max(data_size, tensor.offset + tensor.byte_size);
    if (tensor.byte_size > 0) by_offset.push_back(&tensor);
  }
  FUZZ_CHECK(header.data_size == data_size);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) {
              return a->offset < b->offset;
            });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    FUZZ_CHECK_MSG(
        by_offset[i - 1]->offset + by_offset[i - 1]->byte_size <=
            by_offset[i]->offset,
        absl::StrCat(by_offset[i - 1]->name, " overlaps ", by_offset[i]->name));
  }
}

// Parses an exact-size copy of `bytes`, so that ASan sees any read past
// their end.
absl::StatusOr<GgufHeader> ParseCopy(absl::string_view bytes) {
  std::unique_ptr<char[]> copy(new char[bytes.size()]);
  std::copy(bytes.begin(), bytes.end(), copy.get());
  return ParseGgufHeader(absl::string_view(copy.get(), bytes.size()));
}

// Opens `bytes` as a file with GgufFile and reads its tensors.
void CheckFile(absl::string_view bytes, const GgufHeader& header) {
  const std::string path = fuzz::ScratchPath("raw.gguf");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    FUZZ_CHECK(out.good());
  }
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  unlink(path.c_str());
  bool fits = true;
  for (const GgufTensorInfo& tensor : header.tensors) {
    if (tensor.byte_size > 0 &&
        tensor.file_offset + tensor.byte_size > bytes.size()) {
      fits = false;
    }
  }
  if (!fits) {
    FUZZ_CHECK_MSG(absl::IsInvalidArgument(file.status()),
                   file.status().ToString());
    return;
  }
  FUZZ_CHECK_MSG(file.ok(), file.status().ToString());
  FUZZ_CHECK(SameHeader((*file)->header(), header));
  for (const GgufTensorInfo& tensor : (*file)->tensors()) {
    FUZZ_CHECK((*file)->FindTensor(tensor.name) == &tensor);
    if (tensor.byte_size == 0) continue;
    std::vector<uint8_t> read(std::min<uint64_t>(tensor.byte_size, 4096));
    absl::Status status = (*file)->ReadAt(tensor, 0, read);
    FUZZ_CHECK_MSG(status.ok(), status.ToString());
    FUZZ_CHECK(absl::string_view(reinterpret_cast<const char*>(read.data()),
                                 read.size()) ==
               bytes.substr(tensor.file_offset, read.size()));
  }
  for (const GgufKeyValue& pair : (*file)->metadata()) {
    FUZZ_CHECK((*file)->FindMetadata(pair.key) == &pair.value);
  }
}

void FuzzParser(absl::string_view input) {
  absl::StatusOr<GgufHeader> header = ParseCopy(input);
  std::string longer(input);
  longer.append(16, '\0');
  absl::StatusOr<GgufHeader> extended = ParseGgufHeader(longer);
  if (!header.ok()) {
    const absl::Status& status = header.status();
    FUZZ_CHECK_MSG(absl::IsInvalidArgument(status) ||
                       (absl::IsOutOfRange(status) &&
                        absl::StrContains(status.message(), "need more bytes")),
                   status.ToString());
    // Bytes after a malformed part cannot make it well-formed.
    if (absl::IsInvalidArgument(status)) {
      FUZZ_CHECK_MSG(absl::IsInvalidArgument(extended.status()),
                     extended.status().ToString());
    }
    return;
  }
  CheckHeader(*header, input);
  // Bytes past the tensor infos are ignored.
  FUZZ_CHECK_MSG(extended.ok(), extended.status().ToString());
  FUZZ_CHECK(SameHeader(*header, *extended));
  absl::StatusOr<GgufHeader> exact =
      ParseCopy(input.substr(0, header->header_size));
  FUZZ_CHECK_MSG(exact.ok(), exact.status().ToString());
  FUZZ_CHECK(SameHeader(*header, *exact));
  absl::StatusOr<GgufHeader> short_by_one =
      ParseCopy(input.substr(0, header->header_size - 1));
  FUZZ_CHECK_MSG(absl::IsOutOfRange(short_by_one.status()),
                 short_by_one.status().ToString());
  CheckFile(input, *header);
}

constexpr GgmlType kWritableTypes[] = {
    GgmlType::kF32,  GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
    GgmlType::kQ4_0, GgmlType::kF64, GgmlType::kI8,   GgmlType::kI16,
    GgmlType::kI32,  GgmlType::kI64,
};

int64_t ConsumeDim(FuzzedDataProvider& fdp) {
  switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
      return fdp.ConsumeIntegral<int64_t>();  // Anything, mostly refused.
    case 1:
      return int64_t{32} * fdp.ConsumeIntegralInRange<int64_t>(0, 8);
    case 2:
      return fdp.ConsumeIntegralInRange<int64_t>(-1, 1);
    default:
      return fdp.ConsumeIntegralInRange<int64_t>(1, 70);
  }
}

// Writes the layout's file with GgufWriter, appending each tensor's bytes
// in fuzzed pieces, and reads it back with GgufFile.
void CheckWrittenFile(FuzzedDataProvider& fdp,
                      const std::vector<GgufTensorSpec>& specs,
                      const std::string& general_name,
                      const std::map<std::string, std::string>& metadata,
                      const GgufLayout& layout, const GgufHeader& parsed) {
  const std::string path = fuzz::ScratchPath("rt.gguf");
  absl::StatusOr<std::unique_ptr<GgufWriter>> writer =
      GgufWriter::Create(path, specs, general_name, metadata);
  FUZZ_CHECK_MSG(writer.ok(), writer.status().ToString());
  FUZZ_CHECK((*writer)->layout().header_bytes == layout.header_bytes);
  for (const GgufTensorInfo& tensor : layout.tensors) {
    uint64_t written = 0;
    while (written < tensor.byte_size) {
      const uint64_t left = tensor.byte_size - written;
      // The rest in one piece once the fuzzed bytes run out.
      const uint64_t piece =
          fdp.remaining_bytes() == 0
              ? left
              : fdp.ConsumeIntegralInRange<uint64_t>(1, left);
      std::vector<uint8_t> bytes(piece);
      for (uint64_t i = 0; i < piece; ++i) {
        bytes[i] = PatternByte(tensor.offset + written + i);
      }
      absl::Status status = (*writer)->Append(bytes);
      FUZZ_CHECK_MSG(status.ok(), status.ToString());
      written += piece;
    }
  }
  // Nothing more fits.
  const uint8_t extra = 0;
  FUZZ_CHECK(absl::IsInvalidArgument(
      (*writer)->Append(std::span<const uint8_t>(&extra, 1))));
  absl::Status finished = (*writer)->Finish();
  FUZZ_CHECK_MSG(finished.ok(), finished.ToString());
  writer->reset();

  const std::string bytes = fuzz::ReadWholeFile(path);
  FUZZ_CHECK(bytes.size() == layout.file_size);
  FUZZ_CHECK(absl::string_view(bytes).substr(0, layout.data_offset) ==
             layout.header_bytes);
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  unlink(path.c_str());
  FUZZ_CHECK_MSG(file.ok(), file.status().ToString());
  FUZZ_CHECK(SameHeader((*file)->header(), parsed));
  FUZZ_CHECK((*file)->file_size() == layout.file_size);
  for (const GgufTensorInfo& tensor : (*file)->tensors()) {
    std::vector<uint8_t> read(tensor.byte_size);
    absl::Status status = (*file)->ReadAt(tensor, 0, read);
    FUZZ_CHECK_MSG(status.ok(), status.ToString());
    for (uint64_t i = 0; i < read.size(); ++i) {
      FUZZ_CHECK(read[i] == PatternByte(tensor.offset + i));
    }
    // The padding after each tensor is zeros.
    const uint64_t end = tensor.file_offset + tensor.byte_size;
    for (uint64_t i = end; i < bytes.size() && i % 32 != 0; ++i) {
      FUZZ_CHECK(bytes[i] == '\0');
    }
  }
  const std::string* name = (*file)->FindString(kGgufNameKey);
  FUZZ_CHECK(name != nullptr && *name == general_name);
  for (const auto& [key, value] : metadata) {
    const std::string* found = (*file)->FindString(key);
    FUZZ_CHECK(found != nullptr && *found == value);
  }
}

void FuzzWriter(absl::string_view input) {
  FuzzedDataProvider fdp(reinterpret_cast<const uint8_t*>(input.data()),
                         input.size());
  std::vector<GgufTensorSpec> specs(fdp.ConsumeIntegralInRange<size_t>(0, 6));
  for (GgufTensorSpec& spec : specs) {
    spec.name = fdp.ConsumeRandomLengthString(80);
    spec.type = fdp.ConsumeBool()
                    ? static_cast<GgmlType>(fdp.ConsumeIntegral<uint8_t>())
                    : fdp.PickValueInArray(kWritableTypes);
    spec.shape.resize(fdp.ConsumeIntegralInRange<size_t>(0, 5));
    for (int64_t& dim : spec.shape) dim = ConsumeDim(fdp);
  }
  const std::string general_name = fdp.ConsumeRandomLengthString(40);
  std::map<std::string, std::string> metadata;
  for (size_t n = fdp.ConsumeIntegralInRange<size_t>(0, 4); n > 0; --n) {
    std::string key = fdp.ConsumeRandomLengthString(40);
    metadata[key] = fdp.ConsumeRandomLengthString(60);
  }

  absl::StatusOr<GgufLayout> layout =
      ComputeGgufLayout(specs, general_name, metadata);
  if (!layout.ok()) {
    FUZZ_CHECK_MSG(absl::IsInvalidArgument(layout.status()),
                   layout.status().ToString());
    return;
  }
  FUZZ_CHECK(layout->header_bytes.size() == layout->data_offset);
  FUZZ_CHECK(layout->data_offset % kGgufDefaultAlignment == 0);
  FUZZ_CHECK(layout->tensors.size() == specs.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const GgufTensorInfo& tensor = layout->tensors[i];
    FUZZ_CHECK(tensor.name == specs[i].name && tensor.type == specs[i].type);
    std::vector<int64_t> shape = tensor.Shape();
    FUZZ_CHECK(shape == specs[i].shape ||
               (specs[i].shape.empty() && shape == std::vector<int64_t>{1}));
    FUZZ_CHECK(tensor.offset == offset);
    FUZZ_CHECK(tensor.file_offset == layout->data_offset + offset);
    offset += (tensor.byte_size + 31) / 32 * 32;
  }
  FUZZ_CHECK(layout->file_size == layout->data_offset + offset);

  // The reader reads back exactly what the writer laid out.
  absl::StatusOr<GgufHeader> parsed = ParseCopy(layout->header_bytes);
  FUZZ_CHECK_MSG(parsed.ok(), parsed.status().ToString());
  CheckHeader(*parsed, layout->header_bytes);
  FUZZ_CHECK(parsed->version == kGgufVersion);
  FUZZ_CHECK(parsed->alignment == kGgufDefaultAlignment);
  FUZZ_CHECK(parsed->data_offset == layout->data_offset);
  FUZZ_CHECK(parsed->tensors.size() == layout->tensors.size());
  for (size_t i = 0; i < layout->tensors.size(); ++i) {
    FUZZ_CHECK_MSG(SameTensor(parsed->tensors[i], layout->tensors[i]),
                   layout->tensors[i].name);
  }
  FUZZ_CHECK(parsed->metadata.size() == 2 + metadata.size());
  FUZZ_CHECK(parsed->metadata[0].key == kGgufNameKey &&
             parsed->metadata[0].value == GgufValue::String(general_name));
  FUZZ_CHECK(parsed->metadata[1].key == kGgufAlignmentKey &&
             parsed->metadata[1].value ==
                 GgufValue::Unsigned(GgufValueType::kUint32, 32));
  size_t index = 2;
  for (const auto& [key, value] : metadata) {
    FUZZ_CHECK(parsed->metadata[index].key == key &&
               parsed->metadata[index].value == GgufValue::String(value));
    ++index;
  }
  absl::StatusOr<GgufHeader> short_by_one =
      ParseCopy(absl::string_view(layout->header_bytes)
                    .substr(0, parsed->header_size - 1));
  FUZZ_CHECK(absl::IsOutOfRange(short_by_one.status()));

  if (layout->file_size <= kMaxWrittenFileBytes) {
    CheckWrittenFile(fdp, specs, general_name, metadata, *layout, *parsed);
  }
}

}  // namespace
}  // namespace pstore

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.empty()) return 0;
  if (input.front() == 'G') {
    pstore::FuzzParser(input);
  } else {
    pstore::FuzzWriter(input.substr(1));
  }
  return 0;
}
