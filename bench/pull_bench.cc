// pull_bench: pulls a whole revision from a running pstored into memory
// with the C++ client, `--repetitions` times, and prints the throughput of
// each pull and their median. Buffers are allocated and touched before the
// first pull, so every pull measures the transfer alone.
//
//   pull_bench --addr 127.0.0.1:7070 --model llm --streams 4 --repetitions 5

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "bench/synthetic_model.h"
#include "client/pstore_client.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"

int main(int argc, char** argv) {
  // Debian's Abseil keeps the Mutex deadlock detector on (no NDEBUG);
  // gRPC's locks are Abseil's too. pstored turns it off: so do its peers.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The client's allocator settings as pstore-cli and the Python module
  // have them, so that the C++ client is measured at its best
  // (PSTORE_MALLOC_DEFAULTS keeps glibc's).
  pstore::KeepFreedBuffersOnHeap(size_t{256} << 20);
  std::string address = "127.0.0.1:7070";
  std::string model;
  int streams = 4;
  int repetitions = 5;
  int channels = 0;
  uint32_t chunk_bytes = 4 << 20;
  std::string encoding = "raw";
  int create_layers = 0;
  std::string create_dtype = "F16";
  CLI::App app("pull_bench: whole-revision pull throughput of the C++ client");
  app.add_option("--addr", address, "pstored address");
  app.add_option("--model", model, "MODEL or MODEL@REV")->required();
  app.add_option("--streams", streams, "parallel streams");
  app.add_option("--channels", channels, "TCP connections (0: one per stream)");
  app.add_option("--repetitions", repetitions, "pulls to run");
  app.add_option("--chunk_bytes", chunk_bytes, "bytes per message");
  app.add_option("--encoding", encoding, "raw f32 f16 bf16 q8_0 q4_0");
  app.add_option("--create_layers", create_layers,
                 "first put a synthetic transformer of this many layers "
                 "(hidden 2048, ffn 5632, vocab 32000) as MODEL@REV");
  app.add_option("--create_dtype", create_dtype, "F32, F16 or BF16");
  CLI11_PARSE(app, argc, argv);

  pstore::ClientOptions options;
  options.address = address;
  options.channels = channels > 0 ? channels : streams;
  options.chunk_bytes = chunk_bytes;
  auto client = pstore::Client::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  if (create_layers > 0) {
    pstore::bench::TransformerShape shape;
    shape.layers = create_layers;
    absl::StatusOr<pstore::DType> dtype = pstore::ParseDType(create_dtype);
    if (!dtype.ok()) {
      std::fprintf(stderr, "%s\n", dtype.status().ToString().c_str());
      return 1;
    }
    shape.dtype = *dtype;
    auto tensors = pstore::bench::TransformerTensors(shape);
    absl::Status put =
        pstore::bench::PutSyntheticModel(**client, model, tensors, 1);
    if (!put.ok()) {
      std::fprintf(stderr, "%s\n", put.ToString().c_str());
      return 1;
    }
  }
  // Memory for every tensor, allocated and touched before any pull.
  auto revision = (*client)->GetRevision(model);
  if (!revision.ok()) {
    std::fprintf(stderr, "%s\n", revision.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<pstore::Encoding> requested = pstore::ParseEncoding(encoding);
  if (!requested.ok()) {
    std::fprintf(stderr, "%s\n", requested.status().ToString().c_str());
    return 1;
  }
  std::vector<std::vector<uint8_t>> buffers;
  uint64_t parameters = 0;
  for (const pstore::v1::TensorInfo& info : revision->tensors()) {
    pstore::DType dtype = *pstore::ParseDType(info.dtype());
    std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
    pstore::Encoding applied =
        pstore::EncodingForPull(dtype, shape, *requested);
    buffers.emplace_back(pstore::EncodedTensorBytes(dtype, shape, applied), 1);
    parameters += *pstore::ElementCount(shape);
  }
  std::vector<double> rates;
  std::vector<double> param_rates;
  for (int rep = 0; rep < repetitions; ++rep) {
    size_t next = 0;
    pstore::PullCallbacks callbacks;
    callbacks.allocate = [&](const pstore::v1::TensorInfo& info)
        -> absl::StatusOr<std::span<uint8_t>> {
      if (next == buffers.size() ||
          buffers[next].size() != info.byte_length()) {
        return absl::FailedPreconditionError("the revision changed");
      }
      return std::span<uint8_t>(buffers[next++]);
    };
    pstore::PullOptions pull;
    pull.streams = streams;
    pull.encoding = encoding;
    auto start = std::chrono::steady_clock::now();
    auto result = (*client)->PullModel(model, pull, callbacks);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (!result.ok()) {
      std::fprintf(stderr, "%s\n", result.status().ToString().c_str());
      return 1;
    }
    double rate = result->bytes / seconds / 1e9;
    rates.push_back(rate);
    param_rates.push_back(parameters / seconds / 1e9);
    std::printf("pull %d: %lu bytes in %.3f s = %.3f GB/s = %.3f Gparams/s\n",
                rep, static_cast<unsigned long>(result->bytes), seconds, rate,
                parameters / seconds / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  std::sort(param_rates.begin(), param_rates.end());
  std::printf(
      "median %.3f GB/s min %.3f max %.3f; %.3f Gparams/s min %.3f max %.3f "
      "(%s, %d streams)\n",
      rates[rates.size() / 2], rates.front(), rates.back(),
      param_rates[param_rates.size() / 2], param_rates.front(),
      param_rates.back(), encoding.c_str(), streams);
  return 0;
}
