// Fuzzes the validation pstored runs on PutTensor, GetTensor and PullModel
// requests (server/put_stream.cc, server/service.cc and
// TieredStore::PutTensor): name parsing (storage/names.h), dtype parsing and
// byte lengths (codec/dtype.h), encodings (codec/encoding.h,
// codec/encoding_plan.h).
//
// Input: a little-endian u16 N, then N bytes parsed (ParseFromArray) as a
// pstore.v1.PutTensorRequest, then the rest parsed as a GetTensorRequest and
// as a PullModelRequest (whose fields 1-5 have the same wire types). The
// tensor a put describes, if the server would accept it, is the stored
// tensor the get reads (else an F32 [2, 64] tensor).
//
// Checks:
//   - a tensor or revision name that parses prints back as the same text,
//     and parses again to the same name; its parts pass their validators,
//     agree with an independent reading of the rules in names.h, and tensor
//     names are valid UTF-8 by an independent decoder as well;
//   - a dtype or encoding name that parses is its canonical name up to
//     ASCII case;
//   - TensorByteLength and ElementCount never overflow silently: what they
//     return is the exact product, computed here in 128 bits, and they fail
//     only for a negative dimension or a product past 64 bits;
//   - for a stored tensor: CheckEncodable agrees with its documented rules;
//     the encoded length (EncodedByteLength, EncodedTensorBytes) of an
//     encodable tensor is exact; a byte range passes the server's checks
//     only if it lies within the encoded tensor; EncodingForPull gives raw
//     or the requested encoding, and always one the tensor can take;
//   - EncodedTensorBytes keeps its contract for any (dtype, shape) that
//     CheckEncodable accepts, as the C++ client calls it with the shapes a
//     server sends (client/pstore_client.cc, PullModel).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "pstore/v1/pstore.pb.h"
#include "storage/names.h"
#include "tests/fuzz/fuzz_util.h"
#include "util/utf8.h"

namespace pstore {
namespace {

using Int128 = unsigned __int128;

// server/service.cc and storage/tiered_store.cc: the limits a request must
// keep (their constants are private to those files).
constexpr uint32_t kDefaultChunkBytes = 1 << 20;
constexpr uint32_t kMaxChunkBytes = 16 << 20;
constexpr uint32_t kMaxShards = 1024;
constexpr size_t kMaxDims = 8;

// What the server knows of a stored tensor.
struct Stored {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t byte_length = 0;
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

// Returns true if `text` is well-formed UTF-8 (Unicode 15, table 3-7):
// shortest forms only, no surrogates, nothing above U+10FFFF. Written
// independently of util/utf8.cc, to check it.
bool IsWellFormedUtf8(absl::string_view text) {
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  auto in = [](unsigned char c, unsigned char lo, unsigned char hi) {
    return c >= lo && c <= hi;
  };
  while (i < text.size()) {
    const unsigned char c = byte(i);
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // Range of the second byte.
    if (c <= 0x7F) {
      n = 1;
    } else if (in(c, 0xC2, 0xDF)) {
      n = 2;
    } else if (c == 0xE0) {
      n = 3, lo = 0xA0;
    } else if (in(c, 0xE1, 0xEC) || in(c, 0xEE, 0xEF)) {
      n = 3;
    } else if (c == 0xED) {
      n = 3, hi = 0x9F;
    } else if (c == 0xF0) {
      n = 4, lo = 0x90;
    } else if (in(c, 0xF1, 0xF3)) {
      n = 4;
    } else if (c == 0xF4) {
      n = 4, hi = 0x8F;
    } else {
      return false;
    }
    if (i + n > text.size()) return false;
    if (n > 1 && !in(byte(i + 1), lo, hi)) return false;
    for (size_t k = 2; k < n; ++k) {
      if (!in(byte(i + k), 0x80, 0xBF)) return false;
    }
    i += n;
  }
  return true;
}

// names.h: 1-128 bytes of [A-Za-z0-9._-], not "." or "..".
bool IsSimpleName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxModelNameBytes || name == "." ||
      name == "..") {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
           c == '_' || c == '-';
  });
}

// names.h: 1-1024 bytes of valid UTF-8 without control characters (C0, DEL,
// C1); parts between '/' neither empty, "." nor "..".
bool IsTensorName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxTensorNameBytes ||
      !IsWellFormedUtf8(name)) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7F) return false;
    // U+0080..U+009F are C2 80..C2 9F.
    if (c == 0xC2 && i + 1 < name.size() &&
        static_cast<unsigned char>(name[i + 1]) <= 0x9F) {
      return false;
    }
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

void CheckRevisionName(absl::string_view text) {
  absl::StatusOr<RevisionName> name = ParseRevisionName(text);
  const size_t at = text.find('@');
  const bool expected = at == absl::string_view::npos
                            ? IsSimpleName(text)
                            : IsSimpleName(text.substr(0, at)) &&
                                  IsSimpleName(text.substr(at + 1));
  FUZZ_CHECK_MSG(name.ok() == expected,
                 absl::StrCat("'", absl::CHexEscape(text),
                              "': ", name.status().ToString()));
  if (!name.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(name.status()));
    return;
  }
  FUZZ_CHECK(name->ToString() == text);
  FUZZ_CHECK(ValidateModelName(name->model).ok());
  FUZZ_CHECK(name->revision.empty() ||
             ValidateRevisionName(name->revision).ok());
  absl::StatusOr<RevisionName> again = ParseRevisionName(name->ToString());
  FUZZ_CHECK(again.ok() && *again == *name);
}

// Returns the tensor name `text` parses to, after checking it.
std::optional<TensorName> CheckTensorName(absl::string_view text) {
  FUZZ_CHECK(IsValidUtf8(text) == IsWellFormedUtf8(text));
  absl::StatusOr<TensorName> name = ParseTensorName(text);
  const size_t slash = text.find('/');
  bool expected = slash != absl::string_view::npos;
  if (expected) {
    const absl::string_view revision = text.substr(0, slash);
    const size_t at = revision.find('@');
    expected = (at == absl::string_view::npos
                    ? IsSimpleName(revision)
                    : IsSimpleName(revision.substr(0, at)) &&
                          IsSimpleName(revision.substr(at + 1))) &&
               IsTensorName(text.substr(slash + 1));
  }
  FUZZ_CHECK_MSG(name.ok() == expected,
                 absl::StrCat("'", absl::CHexEscape(text),
                              "': ", name.status().ToString()));
  if (!name.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(name.status()));
    return std::nullopt;
  }
  FUZZ_CHECK(name->ToString() == text);
  FUZZ_CHECK(ValidateModelName(name->revision.model).ok());
  FUZZ_CHECK(ValidateTensorName(name->tensor).ok());
  absl::StatusOr<TensorName> again = ParseTensorName(name->ToString());
  FUZZ_CHECK(again.ok() && *again == *name);
  return *name;
}

std::optional<DType> CheckDType(absl::string_view text) {
  absl::StatusOr<DType> dtype = ParseDType(text);
  if (!dtype.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(dtype.status()));
    return std::nullopt;
  }
  FUZZ_CHECK(absl::EqualsIgnoreCase(DTypeName(*dtype), text));
  FUZZ_CHECK(IsValidDTypeValue(static_cast<uint32_t>(*dtype)));
  const size_t size = DTypeSize(*dtype);
  FUZZ_CHECK(size == 1 || size == 2 || size == 4 || size == 8);
  return *dtype;
}

std::optional<Encoding> CheckEncoding(absl::string_view text) {
  absl::StatusOr<Encoding> encoding = ParseEncoding(text);
  if (!encoding.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(encoding.status()));
    return std::nullopt;
  }
  FUZZ_CHECK(text.empty()
                 ? *encoding == Encoding::kRaw
                 : absl::EqualsIgnoreCase(EncodingName(*encoding), text));
  return *encoding;
}

// Returns the exact element count of `shape`, or nullopt if a dimension is
// negative or the count passes 64 bits (or, with a zero dimension later
// on, a prefix of it does: ElementCount refuses those too).
std::optional<uint64_t> ExactElements(const std::vector<int64_t>& shape) {
  Int128 count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    count *= static_cast<uint64_t>(dim);
    if (count > UINT64_MAX) return std::nullopt;
  }
  return static_cast<uint64_t>(count);
}

// Checks ElementCount and TensorByteLength against 128-bit arithmetic.
void CheckByteLength(DType dtype, const std::vector<int64_t>& shape) {
  const std::string context =
      absl::StrCat(DTypeName(dtype), " ", ShapeText(shape));
  absl::StatusOr<uint64_t> count = ElementCount(shape);
  absl::StatusOr<uint64_t> length = TensorByteLength(dtype, shape);
  std::optional<uint64_t> exact = ExactElements(shape);
  FUZZ_CHECK_MSG(count.ok() == exact.has_value(), context);
  if (!exact) {
    FUZZ_CHECK_MSG(!length.ok() && absl::IsInvalidArgument(length.status()),
                   context);
    return;
  }
  FUZZ_CHECK_MSG(*count == *exact, context);
  const Int128 bytes = Int128{*exact} * DTypeSize(dtype);
  FUZZ_CHECK_MSG(length.ok() == (bytes <= UINT64_MAX), context);
  if (length.ok()) FUZZ_CHECK_MSG(*length == bytes, context);
}

bool IsFloat(DType dtype) {
  return dtype == DType::kF64 || dtype == DType::kF32 || dtype == DType::kF16 ||
         dtype == DType::kBF16;
}

// Returns the exact bytes `elements` elements of `dtype` take as `encoding`.
Int128 ExactEncodedBytes(DType dtype, Encoding encoding, uint64_t elements) {
  switch (encoding) {
    case Encoding::kRaw:
      return Int128{elements} * DTypeSize(dtype);
    case Encoding::kF32:
      return Int128{elements} * 4;
    case Encoding::kF16:
    case Encoding::kBF16:
      return Int128{elements} * 2;
    case Encoding::kQ8_0:
      return Int128{elements / kQuantBlockElements} * kQ8_0BlockBytes;
    case Encoding::kQ4_0:
      return Int128{elements / kQuantBlockElements} * kQ4_0BlockBytes;
  }
  return 0;
}

// The codec contract for any (dtype, shape): CheckEncodable's documented
// rules, and EncodedTensorBytes exact whenever CheckEncodable allows it.
void CheckEncodableContract(DType dtype, const std::vector<int64_t>& shape,
                            Encoding encoding) {
  const std::string context = absl::StrCat(
      DTypeName(dtype), " ", ShapeText(shape), " as ", EncodingName(encoding));
  absl::Status encodable = CheckEncodable(dtype, shape, encoding);
  // The shape has an element count and its bytes in the encoding fit in 64
  // bits; then the dtype rules, and for quantized encodings the innermost
  // dimension.
  std::optional<uint64_t> elements = ExactElements(shape);
  bool expected = elements.has_value() &&
                  ExactEncodedBytes(dtype, encoding, *elements) <= UINT64_MAX &&
                  (encoding == Encoding::kRaw || IsFloat(dtype));
  if (expected && IsQuantized(encoding)) {
    expected = !shape.empty() && shape.back() >= 0 &&
               shape.back() % kQuantBlockElements == 0;
  }
  FUZZ_CHECK_MSG(encodable.ok() == expected,
                 absl::StrCat(context, ": ", encodable.ToString()));
  if (!encodable.ok()) return;
  // REQUIRES of EncodedTensorBytes: CheckEncodable is OK. It is.
  const uint64_t bytes = EncodedTensorBytes(dtype, shape, encoding);
  const Int128 exact = ExactEncodedBytes(dtype, encoding, *elements);
  FUZZ_CHECK_MSG(exact == bytes,
                 absl::StrCat(context, ": EncodedTensorBytes returned ", bytes,
                              ", the exact size does not fit 64 bits"));
}

// PutTensorReactor::Process and TieredStore::PutTensor. Returns the stored
// tensor if the put would be accepted.
std::optional<Stored> ValidatePut(const v1::PutTensorRequest& request) {
  if (!request.has_header()) return std::nullopt;  // Data before header.
  const v1::PutTensorRequest::Header& header = request.header();
  std::optional<TensorName> name = CheckTensorName(header.name());
  std::optional<DType> dtype = CheckDType(header.dtype());
  std::vector<int64_t> shape(header.shape().begin(), header.shape().end());
  if (dtype) {
    CheckByteLength(*dtype, shape);
    for (Encoding encoding :
         {Encoding::kRaw, Encoding::kF32, Encoding::kF16, Encoding::kBF16,
          Encoding::kQ8_0, Encoding::kQ4_0}) {
      CheckEncodableContract(*dtype, shape, encoding);
    }
  }
  if (!name || !dtype) return std::nullopt;
  if (name->revision.revision.empty()) return std::nullopt;
  if (shape.size() > kMaxDims) return std::nullopt;
  absl::StatusOr<uint64_t> length = TensorByteLength(*dtype, shape);
  if (!length.ok()) return std::nullopt;
  return Stored{*dtype, std::move(shape), *length};
}

// ChunkBytes in server/service.cc.
std::optional<uint32_t> ChunkBytes(uint32_t requested) {
  if (requested == 0) return kDefaultChunkBytes;
  if (requested > kMaxChunkBytes) return std::nullopt;
  return requested;
}

// The checks of ParamStoreService::GetTensor and its planner (MakeSource,
// EncodedView, SliceTensor) on `stored`.
void ValidateGet(const v1::GetTensorRequest& request, const Stored& stored) {
  std::optional<Encoding> encoding = CheckEncoding(request.encoding());
  std::optional<TensorName> name = CheckTensorName(request.name());
  std::optional<uint32_t> chunk = ChunkBytes(request.max_chunk_bytes());
  if (!encoding || !name || !chunk) return;
  FUZZ_CHECK(*chunk >= 1 && *chunk <= kMaxChunkBytes);
  const std::string context =
      absl::StrCat(DTypeName(stored.dtype), " ", ShapeText(stored.shape),
                   " as ", EncodingName(*encoding));
  if (!CheckEncodable(stored.dtype, stored.shape, *encoding).ok()) return;
  if (IsQuantized(*encoding)) {
    const uint64_t block =
        *encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
    if (request.offset() % block != 0 || request.length() % block != 0) {
      return;
    }
  }
  // EncodedView: the stored bytes for an identity encoding, else the
  // encoding of every element.
  const uint64_t elements = stored.byte_length / DTypeSize(stored.dtype);
  FUZZ_CHECK(elements * DTypeSize(stored.dtype) == stored.byte_length);
  const uint64_t encoded = EncodedByteLength(stored.dtype, *encoding, elements);
  const Int128 exact = ExactEncodedBytes(stored.dtype, *encoding, elements);
  FUZZ_CHECK_MSG(encoded == exact,
                 absl::StrCat(context, ": EncodedByteLength returned ", encoded,
                              ", the exact size does not fit 64 bits"));
  FUZZ_CHECK_MSG(
      EncodedTensorBytes(stored.dtype, stored.shape, *encoding) == encoded,
      context);
  // SliceTensor.
  const uint64_t offset = request.offset();
  const uint64_t length = request.length();
  if (offset > encoded || (length > 0 && length > encoded - offset)) return;
  const uint64_t sent = length == 0 ? encoded - offset : length;
  FUZZ_CHECK(Int128{offset} + sent <= encoded);

  const Encoding pulled =
      EncodingForPull(stored.dtype, stored.shape, *encoding);
  FUZZ_CHECK(pulled == Encoding::kRaw || pulled == *encoding);
  FUZZ_CHECK_MSG(CheckEncodable(stored.dtype, stored.shape, pulled).ok(),
                 context);
  if (IsQuantized(pulled)) FUZZ_CHECK(stored.shape.size() >= 2);
}

// ParamStoreService::PullModel's checks.
void ValidatePull(const v1::PullModelRequest& request) {
  CheckRevisionName(request.name());
  std::optional<Encoding> encoding = CheckEncoding(request.encoding());
  std::optional<uint32_t> chunk = ChunkBytes(request.max_chunk_bytes());
  const uint32_t shard_count = std::max<uint32_t>(1, request.shard_count());
  const bool shard_ok =
      shard_count <= kMaxShards && request.shard_index() < shard_count;
  if (encoding && chunk && shard_ok) {
    FUZZ_CHECK(request.shard_index() < kMaxShards);
  }
}

}  // namespace
}  // namespace pstore

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pstore;
  if (size < 2) return 0;
  const size_t put_size = std::min<size_t>(data[0] | (data[1] << 8), size - 2);
  const uint8_t* put_bytes = data + 2;
  const uint8_t* get_bytes = put_bytes + put_size;
  const size_t get_size = size - 2 - put_size;

  std::optional<Stored> stored;
  v1::PutTensorRequest put;
  if (put.ParseFromArray(put_bytes, static_cast<int>(put_size))) {
    stored = ValidatePut(put);
  }
  if (!stored) stored = Stored{DType::kF32, {2, 64}, 2 * 64 * 4};

  v1::GetTensorRequest get;
  if (get.ParseFromArray(get_bytes, static_cast<int>(get_size))) {
    ValidateGet(get, *stored);
  }
  v1::PullModelRequest pull;
  if (pull.ParseFromArray(get_bytes, static_cast<int>(get_size))) {
    ValidatePull(pull);
  }
  return 0;
}
