// pstore-bench: how fast is each tier of pstored, and how does it compare
// with what a user has today, in one run on this machine. In the manner of
// db_bench: `--benchmarks=put,get_dram,...` runs workloads in that order,
// prints one line per figure as it goes, and ends with a markdown report
// (optionally a JSON file with every raw sample and a PNG).
//
// Every figure is the median of `--repetitions` runs (min and max beside
// it), and every comparison is a ratio against a peer measured in the same
// repetitions on the same bytes: a plain gRPC server (grpc-ceiling), nginx,
// redis, fio and a raw RocksDB reader. See bench/README.md.
//
//   pstore-bench                        # full run, starts its own pstored
//   pstore-bench --quick                # CI smoke test, under two minutes
//   pstore-bench --server=HOST:PORT --benchmarks=get_dram,latency

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_util.h"
#include "bench/harness.h"
#include "client/pstore_client.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "util/child_process.h"
#include "util/status.h"
#include "util/units.h"

namespace pstore::bench {
namespace {

// Parses "a,b,c" of sizes ("64KiB,1MiB").
absl::StatusOr<std::vector<uint64_t>> ParseSizes(const std::string& text) {
  std::vector<uint64_t> sizes;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    PSTORE_ASSIGN_OR_RETURN(uint64_t size, ParseByteSize(part));
    if (size == 0) return absl::InvalidArgumentError("size 0");
    sizes.push_back(size);
  }
  return sizes;
}

// Parses "a,b,c" of positive integers.
absl::StatusOr<std::vector<int>> ParseInts(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value) || value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a positive integer: ", part));
    }
    values.push_back(value);
  }
  return values;
}

// Returns `shape` with the number of layers (at least 1) that brings the
// model's size nearest to `bytes`.
TransformerShape NearestModel(TransformerShape shape, uint64_t bytes) {
  auto distance = [bytes](const TransformerShape& candidate) {
    std::vector<SyntheticTensor> tensors = TransformerTensors(candidate);
    uint64_t total = TotalBytes(tensors);
    return total > bytes ? total - bytes : bytes - total;
  };
  shape.layers = 1;
  uint64_t best = distance(shape);
  for (int layers = 2; layers <= 4096; ++layers) {
    TransformerShape candidate = shape;
    candidate.layers = layers;
    uint64_t d = distance(candidate);
    if (d > best) break;  // Sizes grow with layers: past the nearest.
    best = d;
    shape = candidate;
  }
  return shape;
}

// --- Signals ---

// Blocks SIGINT, SIGTERM and SIGHUP in every thread (call first in main)
// and starts a thread that, on one of them, stops every child, removes the
// temporary directories and exits.
void StartSignalThread() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::thread([signals] {
    int number = 0;
    sigwait(&signals, &number);
    std::fprintf(stderr,
                 "\npstore-bench: got signal %d; stopping children and "
                 "removing temporary directories\n",
                 number);
    StopAllChildren(absl::Seconds(10));
    RemoveTempDirs();
    std::fflush(nullptr);
    std::_Exit(128 + number);
  }).detach();
}

// Parses and checks the flags; returns the config or a usage error.
absl::StatusOr<Config> Resolve(Flags& flags, const CLI::App& app) {
  auto given = [&app](const std::string& name) {
    return app.count("--" + name) > 0;
  };
  if (flags.quick) {
    // Small sizes, fewer repetitions and configs: under two minutes on
    // two cores.
    if (!given("repetitions")) flags.repetitions = 3;
    if (!given("put_tensors")) flags.put_tensors = 4;
    if (!given("put_tensor_bytes")) flags.put_tensor_bytes = "16MiB";
    if (!given("get_tensors")) flags.get_tensors = 4;
    if (!given("get_tensor_bytes")) flags.get_tensor_bytes = "16MiB";
    if (!given("latency_set_bytes")) flags.latency_set_bytes = "32MiB";
    if (!given("latency_max_tensors")) flags.latency_max_tensors = 64;
    if (!given("latency_dram_reads")) flags.latency_dram_reads = 200;
    if (!given("latency_dram_bytes")) flags.latency_dram_bytes = "64MiB";
    if (!given("model_layers")) flags.model_layers = 2;
    if (!given("model_hidden")) flags.model_hidden = 1024;
    if (!given("model_ffn")) flags.model_ffn = 2816;
    if (!given("model_vocab")) flags.model_vocab = 8000;
    if (!given("pull_streams")) flags.pull_streams = "1,4";
    if (!given("pull_file_bytes")) flags.pull_file_bytes = "64MiB";
    if (!given("python_bytes")) flags.python_bytes = "64MiB";
    if (!given("dram_bytes")) flags.dram_bytes = "2GiB";
    if (!given("nvme_bytes")) flags.nvme_bytes = "1GiB";
    if (!given("rados_nodes")) flags.rados_nodes = "1,2";
    if (!given("fleet_nodes")) flags.fleet_nodes = "1,3";
    if (!given("rados_dram_bytes")) flags.rados_dram_bytes = "512MiB";
  } else if (flags.repetitions < 5) {
    return absl::InvalidArgumentError(
        "a full run takes --repetitions of at least 5 (use --quick for "
        "fewer)");
  }
  if (flags.repetitions < 1) {
    return absl::InvalidArgumentError("--repetitions must be at least 1");
  }
  if (!flags.out.empty()) {
    if (flags.report.empty()) flags.report = flags.out + "/report.md";
    if (flags.json.empty()) flags.json = flags.out + "/samples.json";
    if (flags.png.empty()) flags.png = flags.out + "/pstore-bench.png";
  }
  Config config;
  for (absl::string_view name :
       absl::StrSplit(flags.benchmarks, ',', absl::SkipEmpty())) {
    std::string benchmark(name);
    if (std::find(kAllBenchmarks.begin(), kAllBenchmarks.end(), benchmark) ==
        kAllBenchmarks.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown benchmark '", benchmark,
                       "'; known: ", absl::StrJoin(kAllBenchmarks, ",")));
    }
    config.benchmarks.push_back(benchmark);
  }
  for (absl::string_view name :
       absl::StrSplit(flags.peers, ',', absl::SkipEmpty())) {
    std::string peer(name);
    if (std::find(kAllPeers.begin(), kAllPeers.end(), peer) ==
        kAllPeers.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown peer '", peer, "'; known: ", absl::StrJoin(kAllPeers, ",")));
    }
    config.peers.insert(peer);
  }
  config.repetitions = flags.repetitions;
  config.put_tensors = flags.put_tensors;
  config.get_tensors = flags.get_tensors;
  config.latency_max_tensors = flags.latency_max_tensors;
  config.latency_dram_reads = flags.latency_dram_reads;
  config.encoding_streams = flags.encoding_streams;
  config.pull_file_streams = flags.pull_file_streams;
  config.python_streams = flags.python_streams;
  if (flags.put_tensors < 1 || flags.get_tensors < 1 ||
      flags.latency_max_tensors < 1 || flags.latency_dram_reads < 1 ||
      flags.encoding_streams < 1 || flags.model_layers < 1 ||
      flags.pull_file_streams < 1 || flags.python_streams < 1) {
    return absl::InvalidArgumentError("counts must be at least 1");
  }
  for (auto [text, out] : std::vector<std::pair<std::string, uint64_t*>>{
           {flags.put_tensor_bytes, &config.put_tensor_bytes},
           {flags.get_tensor_bytes, &config.get_tensor_bytes},
           {flags.latency_set_bytes, &config.latency_set_bytes},
           {flags.latency_dram_bytes, &config.latency_dram_bytes},
           {flags.dram_bytes, &config.dram_bytes},
           {flags.nvme_bytes, &config.nvme_bytes}}) {
    PSTORE_ASSIGN_OR_RETURN(*out, ParseByteSize(text));
  }
  PSTORE_ASSIGN_OR_RETURN(config.latency_sizes,
                          ParseSizes(flags.latency_sizes));
  PSTORE_ASSIGN_OR_RETURN(config.latency_outstanding,
                          ParseInts(flags.latency_outstanding));
  PSTORE_ASSIGN_OR_RETURN(config.pull_streams, ParseInts(flags.pull_streams));
  PSTORE_ASSIGN_OR_RETURN(config.rados_nodes, ParseInts(flags.rados_nodes));
  if (config.rados_nodes.empty() ||
      *std::min_element(config.rados_nodes.begin(), config.rados_nodes.end()) <
          1 ||
      *std::max_element(config.rados_nodes.begin(), config.rados_nodes.end()) >
          8) {
    return absl::InvalidArgumentError(
        "--rados_nodes takes node counts from 1 to 8");
  }
  PSTORE_ASSIGN_OR_RETURN(config.fleet_nodes, ParseInts(flags.fleet_nodes));
  std::sort(config.fleet_nodes.begin(), config.fleet_nodes.end());
  if (config.fleet_nodes.empty() || config.fleet_nodes.front() < 1 ||
      config.fleet_nodes.back() > 8) {
    return absl::InvalidArgumentError(
        "--fleet_nodes takes node counts from 1 to 8");
  }
  if (flags.rados_peer_depth < 1 || flags.rados_scale_streams < 1) {
    return absl::InvalidArgumentError(
        "--rados_peer_depth and --rados_scale_streams must be at least 1");
  }
  PSTORE_RETURN_IF_ERROR(ParseByteSize(flags.rados_dram_bytes).status());
  if (config.pull_streams.empty() || config.latency_sizes.empty() ||
      config.latency_outstanding.empty()) {
    return absl::InvalidArgumentError(
        "--pull_streams, --latency_sizes and --latency_outstanding need at "
        "least one value");
  }
  std::sort(config.latency_sizes.begin(), config.latency_sizes.end());
  for (absl::string_view name :
       absl::StrSplit(flags.encodings, ',', absl::SkipEmpty())) {
    PSTORE_RETURN_IF_ERROR(ParseEncoding(name).status());
    if (name != "raw") config.encodings.emplace_back(name);
  }
  config.model.layers = flags.model_layers;
  config.model.hidden = flags.model_hidden;
  config.model.ffn = flags.model_ffn;
  config.model.vocab = flags.model_vocab;
  PSTORE_ASSIGN_OR_RETURN(config.model.dtype, ParseDType(flags.model_dtype));
  PSTORE_ASSIGN_OR_RETURN(uint64_t pull_file_bytes,
                          ParseByteSize(flags.pull_file_bytes));
  config.pull_file_model = NearestModel(config.model, pull_file_bytes);
  PSTORE_ASSIGN_OR_RETURN(uint64_t python_bytes,
                          ParseByteSize(flags.python_bytes));
  config.python_model = NearestModel(config.model, python_bytes);
  return config;
}

}  // namespace
}  // namespace pstore::bench

int main(int argc, char** argv) {
  // Debian's Abseil keeps the Mutex deadlock detector on (no NDEBUG);
  // gRPC's locks are Abseil's too. pstored turns it off: so do its peers.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The client's allocator settings as pstore-cli and the Python module
  // have them, so that the C++ client is measured at its best
  // (PSTORE_MALLOC_DEFAULTS keeps glibc's).
  pstore::KeepFreedBuffersOnHeap(size_t{256} << 20);
  pstore::bench::StartSignalThread();
  pstore::bench::Flags flags;
  CLI::App app(
      "pstore-bench: throughput and latency of each pstored tier against "
      "plain gRPC, nginx, redis, fio and raw RocksDB, in one run. See "
      "bench/README.md.",
      "pstore-bench");
  app.option_defaults()->always_capture_default();
  app.add_option("--benchmarks", flags.benchmarks,
                 "comma-separated workloads, run in this order");
  app.add_option("--peers", flags.peers,
                 "comma-separated peers to run: grpc,nginx,redis,fio,rocksdb");
  app.add_option("--server", flags.server,
                 "HOST:PORT of a running pstored (default: start one)");
  app.add_option("--server_pid", flags.server_pid,
                 "process id of the pstored given by --server, for its page "
                 "fault counts (default: not counted)");
  app.add_option("--pstored", flags.pstored, "pstored binary to start");
  app.add_option("--grpc_ceiling", flags.grpc_ceiling,
                 "grpc-ceiling binary (the plain gRPC peer)");
  app.add_option("--pstore_cli", flags.pstore_cli,
                 "pstore-cli binary (the pull_file workload)");
  app.add_option("--nginx", flags.nginx, "nginx binary");
  app.add_option("--redis_server", flags.redis, "redis-server binary");
  app.add_option("--fio", flags.fio, "fio binary");
  app.add_option("--gnuplot", flags.gnuplot, "gnuplot binary");
  app.add_option("--dir", flags.dir,
                 "parent of the temporary directory: pstored's data (NVMe "
                 "and cold tiers), the raw RocksDB peer, fio's file, logs");
  app.add_option("--fio_dir", flags.fio_dir,
                 "where fio's file goes (default: --dir); with --server, a "
                 "directory on the filesystem of pstored's NVMe tier");
  app.add_option("--shm_dir", flags.shm_dir,
                 "tmpfs directory for the files nginx serves and the files "
                 "pull_file writes");
  app.add_flag("--quick", flags.quick,
               "small sizes, 3 repetitions, fewer configs: a smoke test "
               "under two minutes");
  app.add_option("--repetitions", flags.repetitions,
                 "runs per figure (at least 5 unless --quick; quick: 3)");
  app.add_option("--put_tensors", flags.put_tensors, "tensors per put run");
  app.add_option("--put_tensor_bytes", flags.put_tensor_bytes,
                 "size of each put tensor (quick: 16MiB)");
  app.add_option("--get_tensors", flags.get_tensors,
                 "tensors of the get_* data set (quick: 4)");
  app.add_option("--get_tensor_bytes", flags.get_tensor_bytes,
                 "size of each get_* tensor (quick: 16MiB)");
  app.add_option("--latency_sizes", flags.latency_sizes,
                 "one-block tensor sizes for latency");
  app.add_option("--latency_outstanding", flags.latency_outstanding,
                 "outstanding requests (threads) for latency");
  app.add_option("--latency_set_bytes", flags.latency_set_bytes,
                 "bytes of one-block tensors prepared per size (quick: "
                 "32MiB); bounds NVMe/cold samples");
  app.add_option("--latency_max_tensors", flags.latency_max_tensors,
                 "at most this many tensors per size (quick: 64)");
  app.add_option("--latency_dram_reads", flags.latency_dram_reads,
                 "requests per DRAM latency run (quick: 200)");
  app.add_option("--latency_dram_bytes", flags.latency_dram_bytes,
                 "at most this many bytes per DRAM latency run beyond one "
                 "pass over the tensors (quick: 64MiB)");
  app.add_option("--model_layers", flags.model_layers,
                 "layers of the synthetic model (quick: 2)");
  app.add_option("--model_hidden", flags.model_hidden, "(quick: 1024)");
  app.add_option("--model_ffn", flags.model_ffn, "(quick: 2816)");
  app.add_option("--model_vocab", flags.model_vocab, "(quick: 8000)");
  app.add_option("--model_dtype", flags.model_dtype, "F32, F16 or BF16");
  app.add_option("--pull_streams", flags.pull_streams,
                 "stream counts for pull (quick: 1,4)");
  app.add_option("--pull_file_bytes", flags.pull_file_bytes,
                 "about this size, the pull_file model: the synthetic "
                 "model's shape with the layers nearest to it (quick: "
                 "64MiB)");
  app.add_option("--pull_file_streams", flags.pull_file_streams,
                 "pstore-cli pull --streams of pull_file");
  app.add_option("--python", flags.python,
                 "python: the interpreter, with torch (CMake's PSTORE_PYTHON)");
  app.add_option("--python_path", flags.python_path,
                 "python: the directory holding the pstore package, as "
                 "PYTHONPATH (the build tree's client/python)");
  app.add_option("--python_script", flags.python_script,
                 "python: bench/python_load.py of the source tree");
  app.add_option("--python_bytes", flags.python_bytes,
                 "about this size, the python model: the synthetic model's "
                 "shape with the layers nearest to it (quick: 64MiB)");
  app.add_option("--python_streams", flags.python_streams,
                 "python: streams of client.load and of the C++ pulls beside "
                 "it");
  app.add_option("--encoding_streams", flags.encoding_streams,
                 "streams of encodings pulls");
  app.add_option("--encodings", flags.encodings,
                 "encodings to compare with raw");
  app.add_option("--dram_bytes", flags.dram_bytes,
                 "own pstored's --dram_bytes (quick: 2GiB)");
  app.add_option("--nvme_bytes", flags.nvme_bytes,
                 "own pstored's --nvme_bytes (quick: 1GiB)");
  app.add_option("--pstored_flag", flags.pstored_flags,
                 "extra flag for the own pstored and the RADOS nodes "
                 "(repeatable)");
  app.add_option("--ceph_conf", flags.ceph_conf,
                 "rados, rados_scale: a running Ceph (its pool 'pstore'); "
                 "without it the run starts one with --ceph_script");
  app.add_option("--ceph_script", flags.ceph_script,
                 "scripts/ceph.sh of the source tree");
  app.add_option("--rados_nodes", flags.rados_nodes,
                 "node counts of rados_scale (quick: 1,2)");
  app.add_option("--rados_dram_bytes", flags.rados_dram_bytes,
                 "--dram_bytes of each RADOS node (quick: 512MiB)");
  app.add_option("--rados_peer_depth", flags.rados_peer_depth,
                 "librados reads in flight of the rados peer");
  app.add_option("--fleet_nodes", flags.fleet_nodes,
                 "node counts of fleet (quick: 1,3)");
  app.add_option("--rados_scale_streams", flags.rados_scale_streams,
                 "pull streams of each node in rados_scale");
  app.add_option("--report", flags.report,
                 "write the markdown report here (it is printed anyway)");
  app.add_option("--json", flags.json, "write every raw sample here");
  app.add_option("--png", flags.png,
                 "draw latency CDFs and throughput bars here (gnuplot)");
  app.add_option("--out", flags.out,
                 "directory for report.md, samples.json and pstore-bench.png "
                 "(unless given one by one)");
  app.add_flag("--keep_temp", flags.keep_temp,
               "keep the temporary directories (logs, data)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Help prints and exits 0; a bad flag exits 2.
    return app.exit(error) == 0 ? 0 : 2;
  }
  absl::StatusOr<pstore::bench::Config> config =
      pstore::bench::Resolve(flags, app);
  if (!config.ok()) {
    std::fprintf(stderr, "pstore-bench: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  pstore::bench::Bench bench(flags, *std::move(config));
  int code = bench.Run();
  std::fflush(nullptr);
  // Skip static destructors: gRPC may still be closing channels.
  std::_Exit(code);
}
