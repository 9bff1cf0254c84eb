// The catalog's records as bytes (catalog.proto): one encoding for every
// catalog that stores them (RocksDB values, RADOS omap values). Decoding
// checks what a record must hold and returns DataLoss naming the record.

#ifndef PSTORE_STORAGE_COLD_CATALOG_CODEC_H_
#define PSTORE_STORAGE_COLD_CATALOG_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/cold/catalog.pb.h"
#include "storage/names.h"
#include "storage/records.h"

namespace pstore {

absl::StatusOr<TensorMeta> DecodeTensor(const TensorName& name,
                                        absl::string_view value);
std::string EncodeTensor(const TensorMeta& meta);

absl::StatusOr<storage::ModelRecord> DecodeModel(absl::string_view model,
                                                 absl::string_view value);

absl::StatusOr<storage::RevisionRecord> DecodeRevision(const RevisionName& name,
                                                       absl::string_view value);

// Returns revision `name` as `record` holds it; latest if it is the
// model's `latest` revision.
RevisionInfo ToRevisionInfo(const RevisionName& name,
                            const storage::RevisionRecord& record,
                            absl::string_view latest);

}  // namespace pstore

#endif  // PSTORE_STORAGE_COLD_CATALOG_CODEC_H_
