// Throughput of the codec encodings on one 4 MiB stored block (Google
// Benchmark), per kernel table: the scalar reference, AVX2 + F16C,
// AVX-512F, and "dispatched" (what Encode picks on this CPU). One thread;
// bytes_per_second counts source bytes, so it is the rate at which a core
// turns stored bytes into an encoding. Quantizations run with and without
// QuantizationStats; decodes count encoded bytes.
//
//   build/bench/codec_bench --benchmark_min_time=1
//   build/bench/codec_bench --benchmark_filter='q8_0'
//
// Compare paths with the ratio of their figures from the same run: the
// machines are shared and noisy.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/internal/encoding_kernels.h"

namespace pstore {
namespace {

using codec_internal::EncodingKernels;

constexpr size_t kBlockBytes = size_t{4} << 20;  // One stored block.

// Returns kBlockBytes of `dtype` holding weight-like values (normal, with
// a per-row scale), little endian.
std::vector<uint8_t> MakeSource(DType dtype) {
  const size_t count = kBlockBytes / DTypeSize(dtype);
  std::vector<float> values(count);
  std::mt19937_64 rng(static_cast<uint64_t>(dtype));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float scale = 0.02f;
  for (size_t i = 0; i < count; ++i) {
    if (i % 4096 == 0) scale = 0.005f + 0.05f * std::fabs(normal(rng));
    values[i] = scale * normal(rng);
  }
  if (dtype == DType::kF32) {
    std::vector<uint8_t> bytes(kBlockBytes);
    std::memcpy(bytes.data(), values.data(), kBlockBytes);
    return bytes;
  }
  const Encoding as = dtype == DType::kF16 ? Encoding::kF16 : Encoding::kBF16;
  std::vector<uint8_t> bytes(kBlockBytes);
  absl::Status status = Encode(
      DType::kF32,
      std::span(reinterpret_cast<const uint8_t*>(values.data()), 4 * count), as,
      bytes);
  if (!status.ok()) std::abort();
  return bytes;
}

void RunEncode(benchmark::State& state, const EncodingKernels* kernels,
               DType dtype, Encoding encoding, bool with_stats) {
  const std::vector<uint8_t> source = MakeSource(dtype);
  const uint64_t count = source.size() / DTypeSize(dtype);
  std::vector<uint8_t> out(EncodedByteLength(dtype, encoding, count));
  QuantizationStats stats;
  for (auto _ : state) {
    absl::Status status = codec_internal::EncodeWithKernels(
        *kernels, dtype, source, encoding, out, with_stats ? &stats : nullptr);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(source.size()));
  if (with_stats) state.counters["rel_rms_error"] = stats.RelativeRmsError();
}

void RunDecode(benchmark::State& state, const EncodingKernels* kernels,
               Encoding encoding) {
  const std::vector<uint8_t> source = MakeSource(DType::kF32);
  const uint64_t count = source.size() / 4;
  std::vector<uint8_t> encoded(EncodedByteLength(DType::kF32, encoding, count));
  if (!Encode(DType::kF32, source, encoding, encoded).ok()) std::abort();
  std::vector<float> out(count);
  for (auto _ : state) {
    absl::Status status = codec_internal::DecodeToF32WithKernels(
        *kernels, encoding, encoded, out);
    if (!status.ok()) {
      state.SkipWithError(status.ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(encoded.size()));
}

void RegisterAll() {
  struct Path {
    std::string name;
    const EncodingKernels* kernels;
  };
  std::vector<Path> paths;
  for (const EncodingKernels* kernels : codec_internal::AvailableKernels()) {
    paths.push_back({kernels->name, kernels});
  }
  paths.push_back({"dispatched", &codec_internal::DispatchedKernels()});

  struct Workload {
    DType dtype;
    Encoding encoding;
    bool with_stats;
  };
  const Workload workloads[] = {
      {DType::kF32, Encoding::kQ8_0, false},
      {DType::kF32, Encoding::kQ8_0, true},
      {DType::kF16, Encoding::kQ8_0, false},
      {DType::kBF16, Encoding::kQ8_0, false},
      {DType::kF32, Encoding::kQ4_0, false},
      {DType::kF32, Encoding::kQ4_0, true},
      {DType::kF32, Encoding::kBF16, false},
      {DType::kF32, Encoding::kF16, false},
      {DType::kF16, Encoding::kF32, false},
      {DType::kBF16, Encoding::kF32, false},
  };
  for (const Workload& workload : workloads) {
    for (const Path& path : paths) {
      const std::string name =
          "Encode/" + std::string(DTypeName(workload.dtype)) + "->" +
          std::string(EncodingName(workload.encoding)) +
          (workload.with_stats ? "+stats" : "") + "/" + path.name;
      benchmark::RegisterBenchmark(name.c_str(), RunEncode, path.kernels,
                                   workload.dtype, workload.encoding,
                                   workload.with_stats)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (Encoding encoding : {Encoding::kQ8_0, Encoding::kQ4_0}) {
    for (const Path& path : paths) {
      const std::string name = "Decode/" + std::string(EncodingName(encoding)) +
                               "->f32/" + path.name;
      benchmark::RegisterBenchmark(name.c_str(), RunDecode, path.kernels,
                                   encoding)
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace pstore

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  pstore::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
