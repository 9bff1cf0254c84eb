#include "storage/cold/catalog_codec.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace pstore {

absl::StatusOr<TensorMeta> DecodeTensor(const TensorName& name,
                                        absl::string_view value) {
  storage::TensorRecord record;
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(
        "catalog record of tensor ", name.ToString(), " is corrupt: ", what));
  };
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return corrupt("does not parse");
  }
  if (!IsValidDTypeValue(record.dtype())) return corrupt("unknown dtype");
  if (!IsValidEntryKind(record.kind())) return corrupt("unknown kind");
  if (record.block_ids().size() % BlockId::kSize != 0) {
    return corrupt("block id list length");
  }
  TensorMeta meta;
  meta.name = name;
  meta.kind = static_cast<EntryKind>(record.kind());
  meta.dtype = static_cast<DType>(record.dtype());
  meta.shape.assign(record.shape().begin(), record.shape().end());
  meta.byte_length = record.byte_length();
  meta.xxh3_64 = record.xxh3_64();
  meta.block_bytes = record.block_bytes();
  meta.created_unix_micros = record.created_unix_micros();
  absl::StatusOr<uint64_t> expected_length =
      TensorByteLength(meta.dtype, meta.shape);
  if (!expected_length.ok() || *expected_length != meta.byte_length) {
    return corrupt("byte length does not match shape");
  }
  size_t num_blocks = record.block_ids().size() / BlockId::kSize;
  uint64_t expected_blocks =
      meta.block_bytes == 0
          ? 0
          : (meta.byte_length + meta.block_bytes - 1) / meta.block_bytes;
  if (num_blocks != expected_blocks) return corrupt("block count");
  meta.blocks.reserve(num_blocks);
  for (size_t i = 0; i < num_blocks; ++i) {
    absl::StatusOr<BlockId> id = BlockId::FromBytes(absl::string_view(
        record.block_ids().data() + i * BlockId::kSize, BlockId::kSize));
    if (!id.ok()) return corrupt("block id");
    meta.blocks.push_back(*id);
  }
  return meta;
}

std::string EncodeTensor(const TensorMeta& meta) {
  storage::TensorRecord record;
  record.set_kind(static_cast<uint32_t>(meta.kind));
  record.set_dtype(static_cast<uint32_t>(meta.dtype));
  for (int64_t dim : meta.shape) record.add_shape(dim);
  record.set_byte_length(meta.byte_length);
  record.set_xxh3_64(meta.xxh3_64);
  record.set_block_bytes(meta.block_bytes);
  std::string ids;
  ids.reserve(meta.blocks.size() * BlockId::kSize);
  for (const BlockId& id : meta.blocks) ids += id.ToByteString();
  record.set_block_ids(std::move(ids));
  record.set_created_unix_micros(meta.created_unix_micros);
  return record.SerializeAsString();
}

absl::StatusOr<storage::ModelRecord> DecodeModel(absl::string_view model,
                                                 absl::string_view value) {
  storage::ModelRecord record;
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("catalog record of model ", model, " is corrupt"));
  }
  return record;
}

absl::StatusOr<storage::RevisionRecord> DecodeRevision(
    const RevisionName& name, absl::string_view value) {
  storage::RevisionRecord record;
  if (!record.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("catalog record of revision ",
                                            name.ToString(), " is corrupt"));
  }
  return record;
}

RevisionInfo ToRevisionInfo(const RevisionName& name,
                            const storage::RevisionRecord& record,
                            absl::string_view latest) {
  RevisionInfo info;
  info.name = name;
  info.published = record.state() == storage::RevisionRecord::PUBLISHED;
  info.latest = !latest.empty() && latest == name.revision;
  info.metadata.insert(record.metadata().begin(), record.metadata().end());
  info.created_unix_micros = record.created_unix_micros();
  info.published_unix_micros = record.published_unix_micros();
  return info;
}

}  // namespace pstore
