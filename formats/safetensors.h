// The safetensors file format (https://github.com/huggingface/safetensors),
// read and written.
//
// A file is: an 8-byte little-endian u64 N; N bytes of UTF-8 JSON (the
// header, possibly padded with trailing spaces); then the data section. The
// header maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
// end]} (offsets relative to the data section) and may hold "__metadata__", an
// object of string -> string.
//
// Reading is strict, as Hugging Face's Rust reader is, and stricter where the
// format leaves room: the tensors must cover the data section exactly (no
// holes, no overlaps, nothing after the last tensor), each byte range must
// match its dtype and shape, JSON keys may not repeat in any object, dtype
// names are case-sensitive ("F32", not "f32"), a tensor entry has exactly the
// three keys above, and the JSON must start with '{'. Every rejection is
// InvalidArgument with a message naming the tensor and the problem.
//
// SafetensorsFile reads tensor bytes with pread rather than mmap: an I/O error
// or a file truncated under us comes back as a Status instead of SIGBUS, the
// bytes are copied into the caller's buffers (which the store copies into its
// own blocks anyway), and large files cost no address space.
//
// SafetensorsWriter lays tensors out as the Rust crate does: by dtype in
// decreasing alignment (F64/I64 first, BOOL/U8 last), then by name. Every
// tensor thus starts at a multiple of its element size (the data section
// starts at a multiple of 8), the same input always gives the same bytes,
// and a file holds the same bytes the crate writes for the same tensors. It
// writes `path + ".tmp"`, renamed into place by Finish.
//
// Thread safety: ParseSafetensorsHeader and ComputeSafetensorsLayout are pure.
// A SafetensorsFile is immutable after Open; all its methods may be called
// concurrently. A SafetensorsWriter is not thread-safe: one caller at a time.

#ifndef PSTORE_FORMATS_SAFETENSORS_H_
#define PSTORE_FORMATS_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/dtype.h"
#include "formats/tensor_file_writer.h"

namespace pstore {

// The largest header a reader accepts or a writer produces: 100 MiB, the
// limit of Hugging Face's Rust reader.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;

// The key of the metadata object in the header; not a valid tensor name.
inline constexpr absl::string_view kSafetensorsMetadataKey = "__metadata__";

// One tensor of a safetensors file.
struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // Empty for a 0-dim (scalar) tensor.
  uint64_t data_offset = 0;    // Of the first byte, from the start of the file.
  uint64_t byte_length = 0;    // Element count times DTypeSize(dtype).
};

// A parsed, validated header.
struct SafetensorsHeader {
  // The offset of the data section in the file: 8 + the header length.
  uint64_t data_offset = 0;
  // Sorted by data_offset (ties, which only 0-byte tensors have, by name);
  // each tensor starts where the previous one ends.
  std::vector<SafetensorsTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Parses and validates `header_json`, the N header bytes exactly as they are
// in the file (padding included, so that the data section starts at 8 + N),
// for a data section of `data_section_size` bytes (or, without it, of the
// bytes its tensors cover: the header of a shard whose data is elsewhere).
// Returns the header, with absolute tensor offsets; InvalidArgument naming
// the tensor and the problem if the header is not valid (see the file
// comment).
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(
    absl::string_view header_json, std::optional<uint64_t> data_section_size);

// An open safetensors file whose header has been read and validated.
class SafetensorsFile {
 public:
  // Opens `path` and reads and validates its header; tensor data is read
  // only by ReadAt. Returns the file; NotFound if `path` does not exist;
  // InvalidArgument (with the path and the problem) if it is not a valid
  // safetensors file; other codes from ErrnoToStatus for I/O errors.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Returns the file size at Open.
  uint64_t file_size() const { return file_size_; }
  // Returns the offset of the data section: 8 + the header length.
  uint64_t data_offset() const { return header_.data_offset; }
  // Returns the tensors in data-offset order.
  const std::vector<SafetensorsTensor>& tensors() const {
    return header_.tensors;
  }
  // Returns "__metadata__" (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const {
    return header_.metadata;
  }

  // Returns the tensor called `name`, or nullptr if there is none. The
  // pointer lives as long as this object.
  const SafetensorsTensor* FindTensor(absl::string_view name) const;

  // Reads dest.size() bytes of `tensor` (one of tensors()), starting `offset`
  // bytes into the tensor, into `dest`. Returns OK; OutOfRange if the range
  // runs past the end of the tensor; InvalidArgument if `tensor` lies outside
  // this file; DataLoss if the file has been truncated since Open; other
  // codes from ErrnoToStatus for I/O errors.
  absl::Status ReadAt(const SafetensorsTensor& tensor, uint64_t offset,
                      std::span<uint8_t> dest) const;

 private:
  SafetensorsFile(std::string path, int fd, uint64_t file_size,
                  SafetensorsHeader header);

  const std::string path_;
  const int fd_;
  const uint64_t file_size_;
  const SafetensorsHeader header_;
  // Tensor name -> index in header_.tensors.
  absl::flat_hash_map<std::string, size_t> index_by_name_;
};

// What a writer needs to know about a tensor before its bytes.
struct SafetensorsTensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

// Where everything goes in a file written from given specs.
struct SafetensorsLayout {
  // The bytes at [0, data_offset): the length prefix, the compact JSON
  // header ("__metadata__" first if there is any, then tensors in layout
  // order) and
  // the space padding.
  std::string header_bytes;
  // The offset of the data section; a multiple of 8.
  uint64_t data_offset = 0;
  uint64_t file_size = 0;
  // In data-offset order (dtype alignment, then name), absolute offsets.
  std::vector<SafetensorsTensor> tensors;
};

// Computes the layout of a file holding `tensors` (in any order) and
// `metadata`. Returns the layout; InvalidArgument if a name is empty,
// repeated or "__metadata__", a shape has a negative dimension or overflows,
// a name or metadata string is not valid UTF-8, the header would exceed
// kMaxSafetensorsHeaderBytes, or the file size overflows 64 bits.
absl::StatusOr<SafetensorsLayout> ComputeSafetensorsLayout(
    std::span<const SafetensorsTensorSpec> tensors,
    const std::map<std::string, std::string>& metadata);

// Writes one safetensors file front to back through a buffer: Create, then
// Append the data of every tensor in layout().tensors order, then Finish.
// A thin wrapper: the layout is computed here, the file written by a
// TensorFileWriter.
//
// Owns the file descriptor of `path + ".tmp"`. Destroying the writer without
// a successful Finish closes and removes the temporary file, so `path` is
// never left half written. Two writers must not write the same path at once.
class SafetensorsWriter {
 public:
  // Computes the layout (see ComputeSafetensorsLayout) and creates (or
  // truncates) `path + ".tmp"`. Returns the writer; InvalidArgument for bad
  // specs; NotFound if the directory does not exist; other codes from
  // ErrnoToStatus.
  static absl::StatusOr<std::unique_ptr<SafetensorsWriter>> Create(
      const std::string& path, std::span<const SafetensorsTensorSpec> tensors,
      const std::map<std::string, std::string>& metadata);

  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  const SafetensorsLayout& layout() const { return layout_; }

  // Appends `bytes` to the current tensor: the first one in layout().tensors
  // that is not yet complete (0-byte tensors complete themselves). A call
  // never spans two tensors. Returns OK; InvalidArgument, writing nothing,
  // if `bytes` runs past the end of the current tensor or every tensor is
  // complete; FailedPrecondition after Finish or an earlier I/O error;
  // ResourceExhausted on ENOSPC and other codes from ErrnoToStatus.
  absl::Status Append(std::span<const uint8_t> bytes);

  // Flushes, fsyncs and closes the temporary file, renames it to the target
  // path and fsyncs the directory. Returns OK; FailedPrecondition, changing
  // nothing, if some tensor is not complete (the writer stays usable), or if
  // Finish already ran or an earlier I/O error occurred; ResourceExhausted on
  // ENOSPC and other codes from ErrnoToStatus. On an I/O error the temporary
  // file is removed; if only the final directory fsync fails, the complete
  // file is already in place.
  absl::Status Finish();

 private:
  SafetensorsWriter(SafetensorsLayout layout,
                    std::unique_ptr<TensorFileWriter> file);

  const SafetensorsLayout layout_;
  const std::unique_ptr<TensorFileWriter> file_;
};

}  // namespace pstore

#endif  // PSTORE_FORMATS_SAFETENSORS_H_
