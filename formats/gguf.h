// The GGUF file format of ggml and llama.cpp
// (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), version 3,
// read and written. formats/gguf_format.md describes the bytes.
//
// A file is: the magic "GGUF"; a little-endian u32 version; u64 tensor and
// metadata counts; the metadata key-value pairs; one info record per tensor
// (name, dims, ggml type, offset); zero padding to the alignment (the u32
// general.alignment, 32 if absent); then the data section, where every
// tensor starts at a multiple of the alignment from the section's start.
// Dims are in ggml order: dims[0] (ne[0]) is the innermost, contiguous
// dimension, the reverse of pstore's and numpy's shapes.
//
// Reading accepts what other writers write (versions 2 and 3, every metadata
// type, nested arrays, every ggml tensor type whose block layout is known
// here) and checks what ggml checks, with two differences. Stricter: every
// tensor lies within the file, bools are 0 or 1. Looser: tensors may come in
// any offset order with gaps (ggml wants them packed in info order), names
// may be longer than 63 bytes, and the last tensor's padding may be missing.
// Hostile input cannot make the reader allocate more than the limits below.
// Every rejection is InvalidArgument naming the key or tensor and the
// problem.
//
// ParseGgufHeader is pure and works on an in-memory prefix of a file: it
// returns OutOfRange ("need more bytes") when the header runs past the bytes
// given, so a caller (GgufFile::Open, a fuzzer) can read a prefix, try, and
// read more. GgufFile reads tensor bytes with pread, as SafetensorsFile does:
// I/O errors and truncation come back as a Status, never as SIGBUS.
//
// GgufWriter writes what ggml's own writer writes: the tensors in the order
// given, back to back, each padded with zeros to the next multiple of 32, the
// offsets ggml's reader demands (it requires exactly this packing), and the
// metadata general.name, general.alignment = 32 and the caller's strings. The
// same input always gives the same bytes. It writes `path + ".tmp"`, renamed
// into place by Finish.
//
// Thread safety: ParseGgufHeader, ComputeGgufLayout and the type functions
// are pure. A GgufFile is immutable after Open; all its methods may be called
// concurrently. A GgufWriter is not thread-safe: one caller at a time.

#ifndef PSTORE_FORMATS_GGUF_H_
#define PSTORE_FORMATS_GGUF_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "codec/dtype.h"
#include "formats/tensor_file_writer.h"

namespace pstore {

// The version the writer writes. The reader also accepts version 2, whose
// layout is the same.
inline constexpr uint32_t kGgufVersion = 3;
// The alignment of the data section and of every tensor in it when a file
// has no general.alignment, and the one the writer writes.
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr absl::string_view kGgufAlignmentKey = "general.alignment";
inline constexpr absl::string_view kGgufNameKey = "general.name";

// ggml's GGML_MAX_DIMS: a tensor has at most this many dims.
inline constexpr uint32_t kGgufMaxDims = 4;
// ggml's GGML_MAX_NAME less the NUL: ggml refuses longer tensor names, so
// the writer does. The reader accepts names up to kGgufMaxKeyBytes.
inline constexpr size_t kGgufMaxWrittenTensorNameBytes = 63;
// The spec's limit on the length of a metadata key; the reader applies it
// to tensor names too.
inline constexpr size_t kGgufMaxKeyBytes = 65535;

// Limits of the reader, far above any real file (Llama 3's header is about
// 10 MB, with a 128k-token vocabulary), that bound what a hostile file can
// make it allocate.
//
// The longest header (magic to the end of the tensor infos) read.
inline constexpr uint64_t kMaxGgufHeaderBytes = uint64_t{128} << 20;
// The longest string value.
inline constexpr uint64_t kMaxGgufStringBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMaxGgufTensors = uint64_t{1} << 20;
inline constexpr uint64_t kMaxGgufMetadataKeys = uint64_t{1} << 16;
// The most elements in one array.
inline constexpr uint64_t kMaxGgufArrayElements = uint64_t{1} << 24;
// The deepest nesting of arrays: an array holding arrays is 2 deep.
inline constexpr int kMaxGgufArrayDepth = 4;
// The most memory the decoded metadata and tensor infos may take, counted as
// sizeof each decoded value, key-value pair and tensor info plus the bytes
// of their strings and dims. Llama 3's header decodes to about 30 MB; a
// value takes 48 bytes on x86-64, so an array of N one-byte values costs 48N.
inline constexpr uint64_t kMaxGgufDecodedBytes = uint64_t{256} << 20;

// A tensor element type of ggml (enum ggml_type in ggml.h). The numeric
// values are stored in files: never renumber. Values that ggml has removed
// (4, 5, 31-33, 36-38) are not listed.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  kNVFP4 = 40,
  kQ1_0 = 41,
  kQ2_0 = 42,
};

// How a ggml type packs elements: in blocks of `block_elements` elements
// taking `block_bytes` bytes (1 and the element size for unquantized types).
struct GgmlTypeTraits {
  uint32_t block_elements = 1;
  uint32_t block_bytes = 4;
};

// Returns the traits of the ggml type numbered `value`, or nullopt if it is
// not a type listed in GgmlType.
std::optional<GgmlTypeTraits> GgmlTypeTraitsOf(uint32_t value);

// Returns ggml's name of `type` ("F32", "Q8_0", "BF16"), or "unknown".
absl::string_view GgmlTypeName(GgmlType type);

// Returns true for the types GgufWriter writes: F32, F16, BF16, Q8_0, Q4_0
// and the plain F64, I8, I16, I32 and I64.
bool IsGgufWritableType(GgmlType type);

// Returns the ggml type holding elements of `dtype` unchanged (F32, F16,
// BF16, F64, I8, I16, I32, I64), or nullopt.
std::optional<GgmlType> GgmlTypeFromDType(DType dtype);
// Returns the dtype holding elements of `type` unchanged, or nullopt for the
// quantized types.
std::optional<DType> DTypeFromGgmlType(GgmlType type);

// Returns the byte size of a tensor of `type` with `dims` in ggml order (at
// most kGgufMaxDims of them; none is a scalar). Returns InvalidArgument if
// `type` is unknown, dims[0] is not a multiple of the block size, there are
// too many dims, or the element count reaches INT64_MAX (ggml's limit).
absl::StatusOr<uint64_t> GgmlTensorByteSize(GgmlType type,
                                            std::span<const uint64_t> dims);

// The type of a metadata value (enum gguf_type in gguf.h).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// Returns the spec's name of `type` ("UINT32", "STRING"), or "unknown".
absl::string_view GgufValueTypeName(GgufValueType type);

struct GgufValue;

// An array value: every element has type `element_type`.
struct GgufArray {
  GgufValueType element_type = GgufValueType::kUint8;
  std::vector<GgufValue> elements;
};
bool operator==(const GgufArray& a, const GgufArray& b);

// A metadata value as the file stores it: `type` keeps the exact width, and
// `value` holds it widened: uint64_t for kUint8..kUint64, int64_t for
// kInt8..kInt64, double for kFloat32/kFloat64, bool, std::string (bytes as
// stored; the spec says UTF-8, the reader does not check) or GgufArray.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;

  static GgufValue Unsigned(GgufValueType type, uint64_t value);
  static GgufValue Signed(GgufValueType type, int64_t value);
  static GgufValue Float(GgufValueType type, double value);
  static GgufValue Bool(bool value);
  static GgufValue String(std::string value);
  static GgufValue Array(GgufArray value);

  // Returns the value of an integer type that fits in a uint64_t (unsigned,
  // or signed and non-negative), else nullopt.
  std::optional<uint64_t> AsUint64() const;
  // Returns the value of an integer type that fits in an int64_t, else
  // nullopt.
  std::optional<int64_t> AsInt64() const;
  // Returns the value of any number type as a double, else nullopt.
  std::optional<double> AsDouble() const;
  // Returns the string, or nullptr if this is not a string.
  const std::string* AsString() const;
  // Returns the array, or nullptr if this is not an array.
  const GgufArray* AsArray() const;
};
bool operator==(const GgufValue& a, const GgufValue& b);

// One metadata key-value pair.
struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

// One tensor of a GGUF file.
struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  // In ggml order: dims[0] is the innermost dimension. Each is at most
  // INT64_MAX.
  std::vector<uint64_t> dims;
  // Of the first byte, from the start of the data section, as in the file;
  // a multiple of the alignment.
  uint64_t offset = 0;
  // Of the first byte, from the start of the file.
  uint64_t file_offset = 0;
  // GgmlTensorByteSize(type, dims).
  uint64_t byte_size = 0;

  // Returns dims in pstore order (outermost first), as pstore shapes are.
  std::vector<int64_t> Shape() const;
};

// A parsed, validated header.
struct GgufHeader {
  uint32_t version = kGgufVersion;
  // From general.alignment, or kGgufDefaultAlignment.
  uint32_t alignment = kGgufDefaultAlignment;
  // In file order; keys are unique.
  std::vector<GgufKeyValue> metadata;
  // In file order; names are unique, byte ranges do not overlap.
  std::vector<GgufTensorInfo> tensors;
  // The bytes from the magic to the end of the tensor infos.
  uint64_t header_size = 0;
  // The offset of the data section: header_size rounded up to alignment.
  uint64_t data_offset = 0;
  // The end of the last tensor's bytes, from the start of the data section
  // (0 without tensors); the file must hold data_offset + data_size bytes.
  uint64_t data_size = 0;
};

// Parses and validates the header at the start of `bytes`, a prefix of a file
// (or all of it). Bytes past the tensor infos are ignored. Returns the
// header; OutOfRange, with "need more bytes" in the message, if the header
// runs past the end of `bytes` (a longer prefix may parse); InvalidArgument
// naming the key or tensor and the problem if it is malformed, exceeds a
// limit above, or has tensors that overlap, are misaligned or whose end
// overflows 64 bits. Whether the tensors lie within the file is for the
// caller to check against data_size.
absl::StatusOr<GgufHeader> ParseGgufHeader(absl::string_view bytes);

// An open GGUF file whose header has been read and validated.
class GgufFile {
 public:
  // Opens `path` and reads and validates its header, reading a growing
  // prefix of the file until ParseGgufHeader no longer asks for more (at most
  // kMaxGgufHeaderBytes); tensor data is read only by ReadAt. Returns the
  // file; NotFound if `path` does not exist; InvalidArgument (with the path
  // and the problem) if it is not a valid GGUF file or a tensor runs past its
  // end; other codes from ErrnoToStatus for I/O errors.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(
      const std::string& path);

  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  // Returns the file size at Open.
  uint64_t file_size() const { return file_size_; }
  const GgufHeader& header() const { return header_; }
  uint32_t version() const { return header_.version; }
  uint32_t alignment() const { return header_.alignment; }
  uint64_t data_offset() const { return header_.data_offset; }
  // Returns the metadata in file order.
  const std::vector<GgufKeyValue>& metadata() const { return header_.metadata; }
  // Returns the tensors in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return header_.tensors; }

  // Returns the value of metadata `key`, or nullptr if there is none. The
  // pointer lives as long as this object.
  const GgufValue* FindMetadata(absl::string_view key) const;
  // Returns the string value of metadata `key`, or nullptr if there is none
  // or it is not a string.
  const std::string* FindString(absl::string_view key) const;
  // Returns the tensor called `name`, or nullptr if there is none. The
  // pointer lives as long as this object.
  const GgufTensorInfo* FindTensor(absl::string_view name) const;

  // Reads dest.size() bytes of `tensor` (one of tensors()), starting `offset`
  // bytes into the tensor, into `dest`. Returns OK; OutOfRange if the range
  // runs past the end of the tensor; InvalidArgument if `tensor` lies outside
  // this file's data section; DataLoss if the file has been truncated since
  // Open; other codes from ErrnoToStatus for I/O errors.
  absl::Status ReadAt(const GgufTensorInfo& tensor, uint64_t offset,
                      std::span<uint8_t> dest) const;

 private:
  GgufFile(std::string path, int fd, uint64_t file_size, GgufHeader header);

  const std::string path_;
  const int fd_;
  const uint64_t file_size_;
  const GgufHeader header_;
  // Name or key (pointing into header_) -> index in header_.tensors or
  // header_.metadata.
  absl::flat_hash_map<absl::string_view, size_t> tensor_index_;
  absl::flat_hash_map<absl::string_view, size_t> metadata_index_;
};

// What a writer needs to know about a tensor before its bytes.
struct GgufTensorSpec {
  std::string name;
  GgmlType type = GgmlType::kF32;
  // In pstore order (outermost first); written reversed, in ggml order.
  std::vector<int64_t> shape;
};

// Where everything goes in a file written from given specs.
struct GgufLayout {
  // The bytes at [0, data_offset): magic, version, counts, metadata, tensor
  // infos and the zero padding.
  std::string header_bytes;
  // The offset of the data section; a multiple of 32.
  uint64_t data_offset = 0;
  // data_offset plus every tensor's bytes, each padded to a multiple of 32.
  uint64_t file_size = 0;
  // In spec order, which is data order; dims in ggml order. A 0-dim spec
  // becomes dims {1}, as ggml has no 0-dim tensors.
  std::vector<GgufTensorInfo> tensors;
};

// Computes the layout of a file holding `tensors` (in this order) and the
// metadata general.name = `general_name`, general.alignment = 32,
// `metadata` (strings, in key order) and `typed_metadata` (values of any
// type, as given, in the order given: what a GgufFile read, say). Returns the
// layout; InvalidArgument if a tensor name is empty, repeated, longer than
// kGgufMaxWrittenTensorNameBytes or not UTF-8; a type is not
// IsGgufWritableType; a shape has more than 4 dims, a negative or zero dim
// (ggml mishandles empty tensors), an innermost dim not a multiple of 32 for
// Q8_0/Q4_0, or too many elements; a metadata key is empty, longer than
// kGgufMaxKeyBytes, general.name or general.alignment, or given twice; a key or
// string value of `metadata` is not UTF-8; or the file size overflows 64 bits.
absl::StatusOr<GgufLayout> ComputeGgufLayout(
    std::span<const GgufTensorSpec> tensors, absl::string_view general_name,
    const std::map<std::string, std::string>& metadata,
    std::span<const GgufKeyValue> typed_metadata = {});

// Writes one GGUF file front to back through a buffer: Create, then Append
// the data of every tensor in layout().tensors order, then Finish.
// A thin wrapper: the layout is computed here, the file written by a
// TensorFileWriter.
//
// Owns the file descriptor of `path + ".tmp"`. Destroying the writer without
// a successful Finish closes and removes the temporary file, so `path` is
// never left half written. Two writers must not write the same path at once.
class GgufWriter {
 public:
  // Computes the layout (see ComputeGgufLayout) and creates (or truncates)
  // `path + ".tmp"`. Returns the writer; InvalidArgument for bad specs or
  // metadata; NotFound if the directory does not exist; other codes from
  // ErrnoToStatus.
  static absl::StatusOr<std::unique_ptr<GgufWriter>> Create(
      const std::string& path, std::span<const GgufTensorSpec> tensors,
      absl::string_view general_name,
      const std::map<std::string, std::string>& metadata);

  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  const GgufLayout& layout() const { return layout_; }

  // Appends `bytes` to the current tensor: the first one in layout().tensors
  // that is not yet complete. A call never spans two tensors; the zero
  // padding after a tensor is written when it completes. Returns OK;
  // InvalidArgument, writing nothing, if `bytes` runs past the end of the
  // current tensor or every tensor is complete; FailedPrecondition after
  // Finish or an earlier I/O error; ResourceExhausted on ENOSPC and other
  // codes from ErrnoToStatus.
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
  GgufWriter(GgufLayout layout, std::unique_ptr<TensorFileWriter> file);

  const GgufLayout layout_;
  const std::unique_ptr<TensorFileWriter> file_;
};

}  // namespace pstore

#endif  // PSTORE_FORMATS_GGUF_H_
