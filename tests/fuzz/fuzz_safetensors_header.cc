// Fuzzes ParseSafetensorsHeader, and the writer on every header it accepts.
//
// Input: the start of a safetensors file (a little-endian u64 N, then N
// header bytes; fewer if the input ends first), then optionally a
// little-endian u64: the size of the data section (0 when absent). A real
// file's first 8 + N bytes followed by its data size are thus a valid input.
//
// Checks, for every input: the parser returns a header or InvalidArgument.
// For every header it returns: tensors cover the data section exactly, in
// order, each as long as its dtype and shape say, names unique, non-empty,
// valid UTF-8 and not "__metadata__". Then the writer round trip:
// ComputeSafetensorsLayout accepts the same tensors and metadata, its header
// parses back to the same tensors, every tensor is aligned to its element
// size, and laying out the parsed-back header gives the same bytes again.
// For data sections up to 64 KiB, SafetensorsWriter writes the file (on
// tmpfs) and SafetensorsFile reads every tensor's bytes back.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "codec/dtype.h"
#include "formats/safetensors.h"
#include "tests/fuzz/fuzz_util.h"
#include "util/utf8.h"

namespace pstore {
namespace {

using fuzz::LoadU64;

// The largest data section the file round trip writes.
constexpr uint64_t kMaxFileDataBytes = uint64_t{64} << 10;

// Returns the byte at `offset` of the data section of the round-trip file.
uint8_t PatternByte(uint64_t offset) {
  return static_cast<uint8_t>((offset * 131) ^ (offset >> 8));
}

void CheckHeader(const SafetensorsHeader& header, uint64_t header_bytes,
                 uint64_t data_section_size) {
  FUZZ_CHECK(header.data_offset == 8 + header_bytes);
  uint64_t expected_offset = header.data_offset;
  std::set<std::string> names;
  for (const SafetensorsTensor& tensor : header.tensors) {
    FUZZ_CHECK_MSG(!tensor.name.empty() &&
                       tensor.name != kSafetensorsMetadataKey &&
                       names.insert(tensor.name).second,
                   tensor.name);
    FUZZ_CHECK_MSG(IsValidUtf8(tensor.name), tensor.name);
    absl::StatusOr<uint64_t> length =
        TensorByteLength(tensor.dtype, tensor.shape);
    FUZZ_CHECK(length.ok() && *length == tensor.byte_length);
    FUZZ_CHECK_MSG(tensor.data_offset == expected_offset,
                   absl::StrCat(tensor.name, " at ", tensor.data_offset,
                                ", want ", expected_offset));
    expected_offset += tensor.byte_length;
  }
  FUZZ_CHECK(expected_offset - header.data_offset == data_section_size);
  for (const auto& [key, value] : header.metadata) {
    FUZZ_CHECK(IsValidUtf8(key) && IsValidUtf8(value));
  }
}

std::map<std::string, const SafetensorsTensor*> ByName(
    const std::vector<SafetensorsTensor>& tensors) {
  std::map<std::string, const SafetensorsTensor*> by_name;
  for (const SafetensorsTensor& tensor : tensors) {
    by_name[tensor.name] = &tensor;
  }
  return by_name;
}

// Writes the file with SafetensorsWriter and reads it back.
void CheckFileRoundTrip(const std::vector<SafetensorsTensorSpec>& specs,
                        const std::map<std::string, std::string>& metadata) {
  const std::string path = fuzz::ScratchPath("rt.safetensors");
  absl::StatusOr<std::unique_ptr<SafetensorsWriter>> writer =
      SafetensorsWriter::Create(path, specs, metadata);
  FUZZ_CHECK_MSG(writer.ok(), writer.status().ToString());
  const SafetensorsLayout& layout = (*writer)->layout();
  uint64_t offset = 0;  // In the data section.
  for (const SafetensorsTensor& tensor : layout.tensors) {
    std::vector<uint8_t> bytes(tensor.byte_length);
    for (uint64_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = PatternByte(offset + i);
    }
    // Two appends where there is room for them: the writer must not mind.
    const size_t half = bytes.size() / 2;
    absl::Status status =
        (*writer)->Append(std::span<const uint8_t>(bytes).first(half));
    if (status.ok()) {
      status = (*writer)->Append(std::span<const uint8_t>(bytes).subspan(half));
    }
    FUZZ_CHECK_MSG(status.ok(), status.ToString());
    offset += tensor.byte_length;
  }
  absl::Status finished = (*writer)->Finish();
  FUZZ_CHECK_MSG(finished.ok(), finished.ToString());
  const std::string file = fuzz::ReadWholeFile(path);
  FUZZ_CHECK(file.size() == layout.file_size);
  FUZZ_CHECK(absl::string_view(file).substr(0, layout.data_offset) ==
             layout.header_bytes);

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> read =
      SafetensorsFile::Open(path);
  FUZZ_CHECK_MSG(read.ok(), read.status().ToString());
  FUZZ_CHECK((*read)->metadata() == metadata);
  FUZZ_CHECK((*read)->tensors().size() == layout.tensors.size());
  for (const SafetensorsTensor& tensor : (*read)->tensors()) {
    const SafetensorsTensor* found = (*read)->FindTensor(tensor.name);
    FUZZ_CHECK(found == &tensor);
    std::vector<uint8_t> bytes(tensor.byte_length);
    absl::Status status = (*read)->ReadAt(tensor, 0, bytes);
    FUZZ_CHECK_MSG(status.ok(), status.ToString());
    for (uint64_t i = 0; i < bytes.size(); ++i) {
      FUZZ_CHECK(bytes[i] ==
                 PatternByte(tensor.data_offset - layout.data_offset + i));
    }
    // One byte past the end is refused.
    uint8_t extra = 0;
    FUZZ_CHECK(absl::IsOutOfRange((*read)->ReadAt(
        tensor, tensor.byte_length, std::span<uint8_t>(&extra, 1))));
  }
  read->reset();
  unlink(path.c_str());
}

void CheckWriterRoundTrip(const SafetensorsHeader& header,
                          uint64_t data_section_size) {
  std::vector<SafetensorsTensorSpec> specs;
  for (const SafetensorsTensor& tensor : header.tensors) {
    specs.push_back({tensor.name, tensor.dtype, tensor.shape});
  }
  absl::StatusOr<SafetensorsLayout> layout =
      ComputeSafetensorsLayout(specs, header.metadata);
  // Whatever the reader accepts, the writer can write.
  FUZZ_CHECK_MSG(layout.ok(), layout.status().ToString());
  FUZZ_CHECK(layout->header_bytes.size() == layout->data_offset);
  FUZZ_CHECK(layout->data_offset % 8 == 0);
  FUZZ_CHECK(LoadU64(layout->header_bytes) == layout->data_offset - 8);
  FUZZ_CHECK(layout->file_size - layout->data_offset == data_section_size);

  absl::StatusOr<SafetensorsHeader> reread = ParseSafetensorsHeader(
      absl::string_view(layout->header_bytes).substr(8), data_section_size);
  FUZZ_CHECK_MSG(reread.ok(), reread.status().ToString());
  CheckHeader(*reread, layout->data_offset - 8, data_section_size);
  FUZZ_CHECK(reread->metadata == header.metadata);
  auto before = ByName(header.tensors);
  auto after = ByName(reread->tensors);
  auto laid_out = ByName(layout->tensors);
  FUZZ_CHECK(before.size() == after.size() && after.size() == laid_out.size());
  for (const auto& [name, tensor] : before) {
    const SafetensorsTensor* again = after[name];
    const SafetensorsTensor* planned = laid_out[name];
    FUZZ_CHECK_MSG(again != nullptr && planned != nullptr, name);
    FUZZ_CHECK(again->dtype == tensor->dtype && again->shape == tensor->shape &&
               again->byte_length == tensor->byte_length);
    FUZZ_CHECK(planned->data_offset == again->data_offset &&
               planned->byte_length == again->byte_length);
    FUZZ_CHECK_MSG(again->data_offset % DTypeSize(again->dtype) == 0, name);
  }

  // The writer's output is a fixed point.
  std::vector<SafetensorsTensorSpec> again_specs;
  for (const SafetensorsTensor& tensor : reread->tensors) {
    again_specs.push_back({tensor.name, tensor.dtype, tensor.shape});
  }
  absl::StatusOr<SafetensorsLayout> again_layout =
      ComputeSafetensorsLayout(again_specs, reread->metadata);
  FUZZ_CHECK(again_layout.ok() &&
             again_layout->header_bytes == layout->header_bytes);

  if (data_section_size <= kMaxFileDataBytes) {
    CheckFileRoundTrip(specs, header.metadata);
  }
}

}  // namespace
}  // namespace pstore

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pstore;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.size() < 8) return 0;
  const uint64_t declared = fuzz::LoadU64(input);
  const absl::string_view rest = input.substr(8);
  const size_t header_bytes =
      declared < rest.size() ? static_cast<size_t>(declared) : rest.size();
  // An exact-size copy: ASan sees any read past the header's end.
  std::unique_ptr<char[]> header_copy(new char[header_bytes]);
  std::copy(rest.begin(), rest.begin() + header_bytes, header_copy.get());
  const absl::string_view trailer = rest.substr(header_bytes);
  const uint64_t data_section_size =
      trailer.size() >= 8 ? fuzz::LoadU64(trailer) : 0;

  absl::StatusOr<SafetensorsHeader> header = ParseSafetensorsHeader(
      absl::string_view(header_copy.get(), header_bytes), data_section_size);
  if (!header.ok()) {
    FUZZ_CHECK_MSG(absl::IsInvalidArgument(header.status()),
                   header.status().ToString());
    return 0;
  }
  CheckHeader(*header, header_bytes, data_section_size);
  CheckWriterRoundTrip(*header, data_section_size);
  return 0;
}
