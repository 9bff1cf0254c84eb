// PutBytes: stores a tensor in a TieredStore from bytes in memory, through
// a TensorWriter, for tests that compose stores of their own.

#ifndef PSTORE_TESTS_TESTING_STORE_PUTS_H_
#define PSTORE_TESTS_TESTING_STORE_PUTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/tiered_store.h"
#include "util/status.h"

namespace pstore::testing {

// Puts `bytes` as U8 tensor `name` ("MODEL@REV/TENSOR") of shape
// [bytes.size()] and commits it.
inline absl::StatusOr<TensorMeta> PutBytes(TieredStore& store,
                                           const std::string& name,
                                           const std::vector<uint8_t>& bytes) {
  PutTensorSpec spec;
  PSTORE_ASSIGN_OR_RETURN(spec.name, ParseTensorName(name));
  spec.dtype = DType::kU8;
  spec.shape = {static_cast<int64_t>(bytes.size())};
  PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<TensorWriter> writer,
                          store.PutTensor(std::move(spec)));
  PSTORE_RETURN_IF_ERROR(writer->Append(bytes));
  return writer->Commit();
}

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_STORE_PUTS_H_
