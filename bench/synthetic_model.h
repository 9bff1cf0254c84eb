// Synthetic models shaped like real ones, for benchmarks: a decoder-only
// transformer's tensors (embedding, attention and MLP matrices, norms)
// filled with deterministic, roughly normal weights.

#ifndef PSTORE_BENCH_SYNTHETIC_MODEL_H_
#define PSTORE_BENCH_SYNTHETIC_MODEL_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/pstore_client.h"
#include "codec/dtype.h"

namespace pstore::bench {

struct SyntheticTensor {
  std::string name;
  DType dtype = DType::kF16;
  std::vector<int64_t> shape;
  uint64_t ByteLength() const;
  uint64_t Elements() const;
};

struct TransformerShape {
  int layers = 8;
  int hidden = 2048;
  int ffn = 5632;
  int vocab = 32000;
  DType dtype = DType::kF16;
};

// Returns the tensors of a Llama-style model: token embedding, per layer
// q/k/v/o projections, gate/up/down MLP matrices and two norms, a final
// norm and the output head. Sizes run from KiB (norms) to hundreds of MiB
// (embedding and head at large vocab x hidden).
std::vector<SyntheticTensor> TransformerTensors(const TransformerShape& shape);

// Returns the total bytes of `tensors`.
uint64_t TotalBytes(std::span<const SyntheticTensor> tensors);

// Fills `out` with weights of about N(0, 0.02^2) as `dtype` (F32, F16 or
// BF16), the same for the same `seed`.
void FillWeights(DType dtype, uint64_t seed, std::span<uint8_t> out);

// Puts `tensors` into `revision` ("MODEL@REV") and publishes it, skipping
// the puts if the revision is already published with these tensors.
absl::Status PutSyntheticModel(Client& client, const std::string& revision,
                               std::span<const SyntheticTensor> tensors,
                               uint64_t seed);

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_SYNTHETIC_MODEL_H_
