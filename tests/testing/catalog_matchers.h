// GoogleTest matchers for catalog reads: EqualsMeta(expected) compares every
// field of a TensorMeta (which has no operator==) and names the ones that
// differ; WouldBlock() matches a Status or StatusOr that IsWouldBlock;
// MetaOrWouldBlock(expected) matches a StatusOr<TensorMeta> that holds
// `expected` or would block, which is all a memory-only read may return for
// a tensor that exists.

#ifndef PSTORE_TESTS_TESTING_CATALOG_MATCHERS_H_
#define PSTORE_TESTS_TESTING_CATALOG_MATCHERS_H_

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "storage/catalog.h"
#include "tests/testing/status_matchers.h"
#include "util/status.h"

namespace pstore::testing {

MATCHER_P(EqualsMeta, expected,
          "is the record of " + expected.name.ToString()) {
  const TensorMeta& actual = arg;
  bool same = true;
  auto differs = [&](const char* field) {
    *result_listener << (same ? "" : ", ") << field << " differs";
    same = false;
  };
  if (!(actual.name == expected.name)) differs("name");
  if (actual.kind != expected.kind) differs("kind");
  if (actual.dtype != expected.dtype) differs("dtype");
  if (actual.shape != expected.shape) differs("shape");
  if (actual.byte_length != expected.byte_length) differs("byte_length");
  if (actual.xxh3_64 != expected.xxh3_64) differs("xxh3_64");
  if (actual.block_bytes != expected.block_bytes) differs("block_bytes");
  if (actual.blocks != expected.blocks) differs("blocks");
  if (actual.created_unix_micros != expected.created_unix_micros) {
    differs("created_unix_micros");
  }
  return same;
}

MATCHER(WouldBlock, "is a WouldBlockError") {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return IsWouldBlock(status);
}

MATCHER_P(MetaOrWouldBlock, expected,
          "holds the record of " + expected.name.ToString() +
              " or is a WouldBlockError") {
  const absl::StatusOr<TensorMeta>& read = arg;
  if (!read.ok()) {
    *result_listener << "status is " << read.status();
    return IsWouldBlock(read.status());
  }
  return ::testing::ExplainMatchResult(EqualsMeta(expected), *read,
                                       result_listener);
}

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_CATALOG_MATCHERS_H_
