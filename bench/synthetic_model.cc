#include "bench/synthetic_model.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "codec/encoding.h"

namespace pstore::bench {

uint64_t SyntheticTensor::Elements() const {
  uint64_t elements = 1;
  for (int64_t dim : shape) elements *= static_cast<uint64_t>(dim);
  return elements;
}

uint64_t SyntheticTensor::ByteLength() const {
  return Elements() * DTypeSize(dtype);
}

std::vector<SyntheticTensor> TransformerTensors(const TransformerShape& s) {
  std::vector<SyntheticTensor> tensors;
  auto add = [&](std::string name, std::vector<int64_t> shape, DType dtype) {
    tensors.push_back(
        SyntheticTensor{std::move(name), dtype, std::move(shape)});
  };
  add("model.embed_tokens.weight", {s.vocab, s.hidden}, s.dtype);
  for (int i = 0; i < s.layers; ++i) {
    std::string layer = absl::StrCat("model.layers.", i, ".");
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      add(absl::StrCat(layer, "self_attn.", projection, ".weight"),
          {s.hidden, s.hidden}, s.dtype);
    }
    add(layer + "mlp.gate_proj.weight", {s.ffn, s.hidden}, s.dtype);
    add(layer + "mlp.up_proj.weight", {s.ffn, s.hidden}, s.dtype);
    add(layer + "mlp.down_proj.weight", {s.hidden, s.ffn}, s.dtype);
    add(layer + "input_layernorm.weight", {s.hidden}, DType::kF32);
    add(layer + "post_attention_layernorm.weight", {s.hidden}, DType::kF32);
  }
  add("model.norm.weight", {s.hidden}, DType::kF32);
  add("lm_head.weight", {s.vocab, s.hidden}, s.dtype);
  return tensors;
}

uint64_t TotalBytes(std::span<const SyntheticTensor> tensors) {
  uint64_t total = 0;
  for (const SyntheticTensor& tensor : tensors) total += tensor.ByteLength();
  return total;
}

void FillWeights(DType dtype, uint64_t seed, std::span<uint8_t> out) {
  // Sums of four 16-bit uniforms (Irwin-Hall) approximate a normal
  // distribution well enough for quantization error figures, and fast.
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  constexpr size_t kBatch = 16384;
  std::vector<float> values(kBatch);
  size_t element_size = DTypeSize(dtype);
  size_t elements = out.size() / element_size;
  for (size_t done = 0; done < elements; done += kBatch) {
    size_t count = std::min(kBatch, elements - done);
    for (size_t i = 0; i < count; ++i) {
      uint64_t bits = next();
      double sum = static_cast<double>(bits & 0xffff) +
                   ((bits >> 16) & 0xffff) + ((bits >> 32) & 0xffff) +
                   (bits >> 48);
      // Mean 2 * 65535, variance 4 * 65536^2 / 12.
      values[i] = static_cast<float>((sum - 131070.0) / 37837.0 * 0.02);
    }
    std::span<const uint8_t> f32(
        reinterpret_cast<const uint8_t*>(values.data()), count * 4);
    std::span<uint8_t> target =
        out.subspan(done * element_size, count * element_size);
    if (dtype == DType::kF32) {
      std::memcpy(target.data(), f32.data(), f32.size());
    } else {
      Encoding encoding =
          dtype == DType::kF16 ? Encoding::kF16 : Encoding::kBF16;
      // F32 to F16/BF16 of whole elements cannot fail.
      (void)Encode(DType::kF32, f32, encoding, target);
    }
  }
}

absl::Status PutSyntheticModel(Client& client, const std::string& revision,
                               std::span<const SyntheticTensor> tensors,
                               uint64_t seed) {
  absl::StatusOr<v1::Revision> existing = client.GetRevision(revision);
  if (existing.ok() && existing->published() &&
      existing->tensors_size() == static_cast<int>(tensors.size())) {
    return absl::OkStatus();
  }
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SyntheticTensor& tensor = tensors[i];
    bytes.resize(tensor.ByteLength());
    FillWeights(tensor.dtype, seed + i, std::span<uint8_t>(bytes));
    absl::StatusOr<v1::TensorInfo> put =
        client.PutTensor(absl::StrCat(revision, "/", tensor.name),
                         DTypeName(tensor.dtype), tensor.shape, bytes);
    if (!put.ok()) return put.status();
  }
  return client.PublishRevision(revision).status();
}

}  // namespace pstore::bench
