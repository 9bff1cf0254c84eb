// Which encoding each tensor of a whole-model pull gets, shared by the
// server (which encodes) and clients (which size their buffers).
//
// Pure functions; thread-safe.

#ifndef PSTORE_CODEC_ENCODING_PLAN_H_
#define PSTORE_CODEC_ENCODING_PLAN_H_

#include <cstdint>
#include <span>

#include "codec/dtype.h"
#include "codec/encoding.h"

namespace pstore {

// Returns the encoding a pull that asks for `requested` applies to a tensor
// of `dtype` and `shape`: `requested` where it fits, else raw. Float
// conversions fit every float tensor; quantizations fit float tensors of 2
// or more dimensions whose innermost one is a multiple of 32 (1-D norms and
// biases stay as stored, as llama.cpp's converters keep them in float).
Encoding EncodingForPull(DType dtype, std::span<const int64_t> shape,
                         Encoding requested);

// Returns the bytes of a tensor of `dtype` and `shape` in `encoding`.
// REQUIRES: CheckEncodable(dtype, shape, encoding) is OK.
uint64_t EncodedTensorBytes(DType dtype, std::span<const int64_t> shape,
                            Encoding encoding);

}  // namespace pstore

#endif  // PSTORE_CODEC_ENCODING_PLAN_H_
