#include "server/convert.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace pstore {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void ToTensorInfo(const TensorMeta& meta, v1::TensorInfo* info) {
  info->set_name(meta.name.ToString());
  info->set_model(meta.name.revision.model);
  info->set_revision(meta.name.revision.revision);
  info->set_tensor(meta.name.tensor);
  info->set_dtype(std::string(DTypeName(meta.dtype)));
  info->mutable_shape()->Assign(meta.shape.begin(), meta.shape.end());
  info->set_stored_byte_length(meta.byte_length);
  info->set_stored_xxh3_64(meta.xxh3_64);
  info->set_encoding("raw");
  info->set_byte_length(meta.byte_length);
  info->set_offset(0);
  info->set_xxh3_64(meta.xxh3_64);
  info->set_created_unix_micros(meta.created_unix_micros);
  info->set_kind(static_cast<v1::EntryKind>(meta.kind));
}

void AddBlocks(const TensorMeta& meta, v1::TensorInfo* info) {
  info->set_block_bytes(meta.block_bytes);
  for (const BlockId& id : meta.blocks) {
    info->add_block_ids(id.ToByteString());
  }
}

void SetDerivedInfo(Encoding encoding, uint64_t xxh3_64,
                    const QuantizationStats& stats, v1::TensorInfo* info) {
  info->set_xxh3_64(xxh3_64);
  if (!IsQuantized(encoding)) return;
  v1::QuantizationError* error = info->mutable_quantization_error();
  error->set_max_abs_error(stats.max_abs_error);
  error->set_rms_error(stats.RmsError());
  error->set_relative_rms_error(stats.RelativeRmsError());
}

void ToTensorInfo(const ReadPart& part, v1::TensorInfo* info) {
  ToTensorInfo(part.tensor, info);
  info->set_encoding(std::string(EncodingName(part.encoding)));
  info->set_offset(part.offset);
  info->set_byte_length(part.byte_length);
  info->clear_xxh3_64();
  if (part.xxh3_64.has_value()) {
    SetDerivedInfo(part.encoding, *part.xxh3_64,
                   part.quantization.value_or(QuantizationStats()), info);
    if (!part.quantization.has_value()) info->clear_quantization_error();
  }
}

void ToRevision(const RevisionInfo& info, v1::Revision* revision) {
  revision->set_name(info.name.ToString());
  revision->set_model(info.name.model);
  revision->set_revision(info.name.revision);
  revision->set_published(info.published);
  revision->set_latest(info.latest);
  revision->mutable_metadata()->insert(info.metadata.begin(),
                                       info.metadata.end());
  revision->set_created_unix_micros(info.created_unix_micros);
  revision->set_published_unix_micros(info.published_unix_micros);
}

bool PutDataPieces(const std::vector<grpc::Slice>& slices,
                   std::vector<std::span<const uint8_t>>& pieces) {
  pieces.clear();
  // The key of field 2 (`data`) with wire type 2 (length-delimited).
  constexpr uint8_t kDataKey = (2 << 3) | 2;
  uint64_t total = 0;
  for (const grpc::Slice& slice : slices) total += slice.size();
  // The key, then the length as a varint of at most 10 bytes, read across
  // slice boundaries.
  uint64_t length = 0;
  uint64_t prefix = 0;  // Bytes of key and length.
  int shift = 0;
  bool done = false;
  for (const grpc::Slice& slice : slices) {
    for (size_t i = 0; i < slice.size() && !done; ++i) {
      const uint8_t byte = slice.begin()[i];
      if (prefix++ == 0) {
        if (byte != kDataKey) return false;
        continue;
      }
      if (shift > 63) return false;
      length |= uint64_t{byte & 0x7fu} << shift;
      shift += 7;
      done = (byte & 0x80) == 0;
    }
    if (done) break;
  }
  if (!done || total - prefix != length) return false;
  uint64_t skip = prefix;
  for (const grpc::Slice& slice : slices) {
    uint64_t size = slice.size();
    if (skip >= size) {
      skip -= size;
      continue;
    }
    pieces.emplace_back(slice.begin() + skip, size - skip);
    skip = 0;
  }
  return true;
}

absl::StatusOr<TierKind> FromWireTier(v1::Tier tier) {
  switch (tier) {
    case v1::TIER_DRAM:
      return TierKind::kDram;
    case v1::TIER_NVME:
      return TierKind::kNvme;
    case v1::TIER_COLD:
      return TierKind::kCold;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tier ", static_cast<int>(tier),
                       " is not one of TIER_DRAM, TIER_NVME, TIER_COLD"));
  }
}

v1::Tier ToWireTier(TierKind kind) {
  switch (kind) {
    case TierKind::kDram:
      return v1::TIER_DRAM;
    case TierKind::kNvme:
      return v1::TIER_NVME;
    case TierKind::kCold:
      return v1::TIER_COLD;
  }
  return v1::TIER_UNSPECIFIED;
}

}  // namespace pstore
