#include "client/internal/raw_chunk.h"

#include <algorithm>
#include <cstddef>
#include <limits>

#include "absl/strings/str_cat.h"

namespace pstore::client_internal {
namespace {

// The field number of TensorChunk.data (proto/pstore/v1/pstore.proto).
constexpr uint64_t kDataField = 3;

// Protobuf wire types.
constexpr uint64_t kVarint = 0;
constexpr uint64_t kFixed64 = 1;
constexpr uint64_t kLengthDelimited = 2;
constexpr uint64_t kFixed32 = 5;

// The longest varint: ten bytes carry 64 bits.
constexpr int kMaxVarintBytes = 10;

// A read position in a sequence of slices. Copying it saves the position.
class SliceCursor {
 public:
  explicit SliceCursor(const std::vector<grpc::Slice>& slices)
      : slices_(&slices) {
    for (const grpc::Slice& slice : slices) remaining_ += slice.size();
    total_ = remaining_;
    SkipExhaustedSlices();
  }

  // Returns the bytes after the position.
  uint64_t remaining() const { return remaining_; }
  // Returns the offset of the position from the first byte.
  uint64_t position() const { return total_ - remaining_; }

  // Reads a base-128 varint into `value`. False, with the position
  // undefined, if the bytes end first or it runs past ten bytes.
  bool ReadVarint(uint64_t* value) {
    uint64_t result = 0;
    for (int i = 0; i < kMaxVarintBytes; ++i) {
      if (remaining_ == 0) return false;
      const uint8_t byte = (*slices_)[index_].begin()[offset_];
      Advance(1);
      result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  // Passes the next `n` bytes to `fn`, one non-empty span per slice they
  // lie in, and moves past them. REQUIRES: n <= remaining().
  template <typename Fn>
  void Consume(uint64_t n, Fn fn) {
    while (n > 0) {
      const grpc::Slice& slice = (*slices_)[index_];
      const size_t take =
          static_cast<size_t>(std::min<uint64_t>(n, slice.size() - offset_));
      fn(std::span<const uint8_t>(slice.begin() + offset_, take));
      Advance(take);
      n -= take;
    }
  }

 private:
  // REQUIRES: n <= bytes left in the current slice.
  void Advance(size_t n) {
    offset_ += n;
    remaining_ -= n;
    SkipExhaustedSlices();
  }
  void SkipExhaustedSlices() {
    while (index_ < slices_->size() && offset_ == (*slices_)[index_].size()) {
      ++index_;
      offset_ = 0;
    }
  }

  const std::vector<grpc::Slice>* slices_;
  size_t index_ = 0;   // The slice of the position.
  size_t offset_ = 0;  // The position in that slice.
  uint64_t remaining_ = 0;
  uint64_t total_ = 0;
};

absl::Status Malformed(uint64_t position, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("malformed TensorChunk at byte ", position, ": ", what));
}

}  // namespace

absl::Status RawTensorChunk::Parse(const grpc::ByteBuffer& buffer) {
  Clear();
  if (buffer.Valid()) {
    grpc::Status dumped = buffer.Dump(&slices_);
    if (!dumped.ok()) {
      Clear();
      return absl::DataLossError(absl::StrCat(
          "cannot read the TensorChunk message: ", dumped.error_message()));
    }
  }
  SliceCursor cursor(slices_);
  bool seen_data = false;
  while (cursor.remaining() > 0) {
    const SliceCursor field_start = cursor;
    absl::Status error;
    uint64_t tag = 0;
    uint64_t length = 0;  // Of the value after the tag and length prefix.
    if (!cursor.ReadVarint(&tag)) {
      error = Malformed(field_start.position(), "truncated or overlong tag");
    } else if (tag > std::numeric_limits<uint32_t>::max() || (tag >> 3) == 0) {
      error = Malformed(field_start.position(),
                        absl::StrCat("tag ", tag, " is not valid"));
    } else {
      switch (tag & 7) {
        case kVarint: {
          uint64_t value;
          if (!cursor.ReadVarint(&value)) {
            error = Malformed(field_start.position(),
                              absl::StrCat("field ", tag >> 3,
                                           ": truncated or overlong varint"));
          }
          break;
        }
        case kFixed64:
          length = 8;
          break;
        case kFixed32:
          length = 4;
          break;
        case kLengthDelimited:
          if (!cursor.ReadVarint(&length)) {
            error = Malformed(field_start.position(),
                              absl::StrCat("field ", tag >> 3,
                                           ": truncated or overlong length"));
          }
          break;
        default:
          // 3 and 4 are groups, which proto3 never sends; 6 and 7 do not
          // exist.
          error = Malformed(field_start.position(),
                            absl::StrCat("field ", tag >> 3, " has wire type ",
                                         tag & 7, ", which is not supported"));
      }
    }
    if (error.ok() && length > cursor.remaining()) {
      error = Malformed(field_start.position(),
                        absl::StrCat("field ", tag >> 3, " of ", length,
                                     " bytes runs past the end (",
                                     cursor.remaining(), " bytes left)"));
    }
    if (error.ok() && (tag >> 3) == kDataField) {
      if ((tag & 7) != kLengthDelimited) {
        error = Malformed(field_start.position(),
                          absl::StrCat("data has wire type ", tag & 7,
                                       ", not 2 (length-delimited)"));
      } else if (seen_data) {
        error = Malformed(field_start.position(), "data appears twice");
      }
    }
    if (!error.ok()) {
      Clear();
      return error;
    }
    if ((tag >> 3) == kDataField) {
      seen_data = true;
      data_size_ = length;
      cursor.Consume(length, [this](std::span<const uint8_t> bytes) {
        data_.push_back(bytes);
      });
    } else {
      // Copies the whole field, tag to end, for protobuf to parse.
      const uint64_t field_bytes =
          field_start.remaining() - cursor.remaining() + length;
      cursor = field_start;
      cursor.Consume(field_bytes, [this](std::span<const uint8_t> bytes) {
        other_fields_.append(reinterpret_cast<const char*>(bytes.data()),
                             bytes.size());
      });
    }
  }
  if (!fields_.ParseFromString(other_fields_)) {
    Clear();
    return absl::DataLossError(
        "malformed TensorChunk: its fields other than data do not parse");
  }
  return absl::OkStatus();
}

void RawTensorChunk::Clear() {
  slices_.clear();
  data_.clear();
  data_size_ = 0;
  other_fields_.clear();
  fields_.Clear();
}

}  // namespace pstore::client_internal
