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

}  // namespace pstore
