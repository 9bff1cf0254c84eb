// The pstore-bench harness: its flags, the numbers they resolve to, and
// Bench, which starts pstored and the peers, prepares the data sets, runs
// the workloads (workloads.cc) and writes the report (results.h).
//
// Thread-compatible: Bench is driven by the main thread; workloads start
// their own threads and join them before returning. Children (pstored and
// the peers) are forked from the main thread only (see
// util/child_process.h).

#ifndef PSTORE_BENCH_HARNESS_H_
#define PSTORE_BENCH_HARNESS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/bench_util.h"
#include "bench/peers.h"
#include "bench/results.h"
#include "bench/synthetic_model.h"
#include "client/pstore_client.h"
#include "storage/cold/cold_database.h"
#include "storage/rados/rados_pool.h"
#include "util/child_process.h"

#ifndef PSTORED_DEFAULT_PATH
#define PSTORED_DEFAULT_PATH ""
#endif
#ifndef GRPC_CEILING_DEFAULT_PATH
#define GRPC_CEILING_DEFAULT_PATH ""
#endif
#ifndef PSTORE_CLI_DEFAULT_PATH
#define PSTORE_CLI_DEFAULT_PATH ""
#endif
#ifndef CEPH_SCRIPT_DEFAULT_PATH
#define CEPH_SCRIPT_DEFAULT_PATH ""
#endif
// The python line's interpreter (CMake's PSTORE_PYTHON), the build tree's
// directory holding the pstore package, and bench/python_load.py.
#ifndef PSTORE_PYTHON_DEFAULT_PATH
#define PSTORE_PYTHON_DEFAULT_PATH "/usr/bin/python3"
#endif
#ifndef PYTHON_PACKAGE_DEFAULT_DIR
#define PYTHON_PACKAGE_DEFAULT_DIR ""
#endif
#ifndef PYTHON_LOAD_SCRIPT_DEFAULT_PATH
#define PYTHON_LOAD_SCRIPT_DEFAULT_PATH ""
#endif

namespace pstore::bench {

inline const std::vector<std::string> kAllBenchmarks = {
    "put",       "get_dram", "get_nvme",  "get_cold", "latency",     "pull",
    "pull_file", "python",   "encodings", "rados",    "rados_scale", "fleet"};
inline const std::vector<std::string> kAllPeers = {"grpc", "nginx", "redis",
                                                   "fio", "rocksdb"};
inline constexpr uint32_t kStreamChunkBytes = 4 << 20;  // The client's default.
// Writes past the cold tier's memtables (two of at most 64 MiB each; see
// TieredStore::Open) so that the data before them is in SST files, as
// after a restart.
inline constexpr uint64_t kMemtableFillerBytes = uint64_t{320} << 20;

// --- Flags ---

// pstore-bench's command line (see pstore_bench.cc for the help texts).
struct Flags {
  std::string benchmarks = absl::StrJoin(kAllBenchmarks, ",");
  std::string peers = absl::StrJoin(kAllPeers, ",");
  std::string server;
  int server_pid = 0;
  std::string pstored = PSTORED_DEFAULT_PATH;
  std::string grpc_ceiling = GRPC_CEILING_DEFAULT_PATH;
  std::string pstore_cli = PSTORE_CLI_DEFAULT_PATH;
  std::string nginx = "/usr/sbin/nginx";
  std::string redis = "/usr/bin/redis-server";
  std::string fio = "/usr/bin/fio";
  std::string gnuplot = "/usr/bin/gnuplot";
  std::string dir = "/var/tmp";
  std::string fio_dir;
  std::string shm_dir = "/dev/shm";
  bool quick = false;
  int repetitions = 5;
  int put_tensors = 16;
  std::string put_tensor_bytes = "64MiB";
  int get_tensors = 16;
  std::string get_tensor_bytes = "64MiB";
  std::string latency_sizes = "64KiB,1MiB,4MiB";
  std::string latency_outstanding = "1,16";
  std::string latency_set_bytes = "512MiB";
  int latency_max_tensors = 1024;
  int latency_dram_reads = 2000;
  std::string latency_dram_bytes = "1GiB";
  int model_layers = 20;
  int model_hidden = 2048;
  int model_ffn = 5632;
  int model_vocab = 32000;
  std::string model_dtype = "F16";
  std::string pull_streams = "1,2,4,8";
  std::string pull_file_bytes = "1GiB";
  int pull_file_streams = 4;
  std::string python = PSTORE_PYTHON_DEFAULT_PATH;
  std::string python_path = PYTHON_PACKAGE_DEFAULT_DIR;
  std::string python_script = PYTHON_LOAD_SCRIPT_DEFAULT_PATH;
  std::string python_bytes = "1GiB";
  int python_streams = 4;
  int encoding_streams = 2;
  std::string encodings = "q8_0,bf16";
  std::string dram_bytes = "6GiB";
  std::string nvme_bytes = "4GiB";
  std::vector<std::string> pstored_flags;
  std::string ceph_conf;
  std::string ceph_script = CEPH_SCRIPT_DEFAULT_PATH;
  std::string rados_nodes = "1,2,3";
  std::string fleet_nodes = "1,2,3,4";
  std::string rados_dram_bytes = "2GiB";
  int rados_peer_depth = 8;
  int rados_scale_streams = 4;
  std::string report;
  std::string json;
  std::string png;
  std::string out;
  bool keep_temp = false;
};

// The numbers the flags resolve to.
struct Config {
  std::vector<std::string> benchmarks;
  std::set<std::string> peers;
  int repetitions = 5;
  int put_tensors = 0;
  uint64_t put_tensor_bytes = 0;
  int get_tensors = 0;
  uint64_t get_tensor_bytes = 0;
  std::vector<uint64_t> latency_sizes;
  std::vector<int> latency_outstanding;
  uint64_t latency_set_bytes = 0;
  int latency_max_tensors = 0;
  int latency_dram_reads = 0;
  uint64_t latency_dram_bytes = 0;
  TransformerShape model;
  std::vector<int> pull_streams;
  // The pull_file model: the synthetic model's shape with the number of
  // layers that brings it nearest to pull_file_bytes.
  TransformerShape pull_file_model;
  int pull_file_streams = 4;
  // The python model: the synthetic model's shape with the number of
  // layers that brings it nearest to python_bytes.
  TransformerShape python_model;
  int python_streams = 4;
  int encoding_streams = 2;
  std::vector<std::string> encodings;
  uint64_t dram_bytes = 0;
  uint64_t nvme_bytes = 0;
  std::vector<int> rados_nodes;  // Node counts of rados_scale.
  std::vector<int> fleet_nodes;  // Node counts of fleet, ascending.

  bool Wants(const std::string& benchmark) const {
    return std::find(benchmarks.begin(), benchmarks.end(), benchmark) !=
           benchmarks.end();
  }
  bool WantsPeer(const std::string& peer) const { return peers.count(peer); }
  // Tensors of `size` prepared for latency runs that must hit one tier.
  int LatencyTensors(uint64_t size) const {
    uint64_t by_bytes = latency_set_bytes / size;
    return static_cast<int>(std::min<uint64_t>(
        latency_max_tensors, std::max<uint64_t>(16, by_bytes)));
  }
  // Requests per DRAM latency run of `size`.
  int DramReads(uint64_t size) const {
    uint64_t by_bytes = latency_dram_bytes / size;
    return static_cast<int>(
        std::min<uint64_t>(latency_dram_reads,
                           std::max<uint64_t>(LatencyTensors(size), by_bytes)));
  }
};

// --- Data sets ---

// `count` tensors of `tensor_bytes` random bytes (dtype U8) in one
// revision; tensor i is FillRandom(seed + i).
struct TensorSet {
  std::string revision;
  int count = 0;
  uint64_t tensor_bytes = 0;
  uint64_t seed = 0;

  std::string Name(int i) const { return absl::StrCat(revision, "/t", i); }
  void Fill(int i, std::span<uint8_t> out) const {
    FillRandom(seed + static_cast<uint64_t>(i), out);
  }
  uint64_t BlocksPerTensor(uint64_t block_bytes) const {
    return (tensor_bytes + block_bytes - 1) / block_bytes;
  }
  uint64_t Bytes() const { return tensor_bytes * count; }
};

// Block reads each tier served, and encodings, from GetServerStatus.
struct Counters {
  uint64_t dram = 0;
  uint64_t nvme = 0;
  uint64_t cold = 0;
  uint64_t encoded = 0;
  uint64_t encoded_hits = 0;

  Counters operator-(const Counters& o) const {
    return Counters{dram - o.dram, nvme - o.nvme, cold - o.cold,
                    encoded - o.encoded, encoded_hits - o.encoded_hits};
  }
  uint64_t Of(const std::string& tier) const {
    if (tier == "dram") return dram;
    if (tier == "nvme") return nvme;
    return cold;
  }
};

// What one run of bench/python_load.py measured: per timed repetition,
// seconds and minor faults of the Python process (getrusage, every thread)
// and of pstored (/proc/PID/stat; empty when its pid is unknown).
struct PythonRun {
  int tensors = 0;
  uint64_t bytes = 0;       // Of the loaded tensors, summed.
  uint64_t file_bytes = 0;  // Of the torch.save file.
  std::string versions;     // "Python 3.11.2, torch 1.13.0, pstore 0.1.0".
  std::vector<double> load_seconds, load_faults, load_server_faults;
  // The process's first load (its warm-up): into fresh memory, where the
  // timed loads after it get the first one's memory back from the module's
  // pool.
  std::vector<double> first_load_seconds, first_load_faults;
  std::vector<double> torch_load_seconds, torch_load_faults;
};

// --- The harness ---

class Bench {
 public:
  Bench(Flags flags, Config config)
      : flags_(std::move(flags)), config_(std::move(config)) {}

  // Runs everything; returns the exit code.
  int Run();

 private:
  // Setup and teardown.
  absl::Status Setup();
  absl::Status StartPstored();
  void Teardown();
  absl::StatusOr<std::unique_ptr<Client>> NewClient(int channels);
  // The block reads each tier of the own pstored (or of the one `client`
  // talks to) served so far.
  absl::StatusOr<Counters> ReadCounters();
  absl::StatusOr<Counters> ReadNodeCounters(Client& client);
  absl::Status DropTiers(bool dram, bool nvme, bool page_cache);
  // pstored's process id for its fault counts: the own pstored's, or
  // --server_pid; empty when unknown.
  std::vector<pid_t> PstoredPids() const;

  // Peers, started on first use; null when skipped (with a printed line)
  // or failed (recorded as a failure).
  CeilingPeer* Ceiling();
  NginxPeer* Nginx();
  RedisPeer* Redis();
  bool FioAvailable();
  // Runs one fio job (`args` without the engine) with io_uring, or libaio
  // once the kernel has refused io_uring (noted in the report).
  absl::StatusOr<FioResult> Fio(std::vector<std::string> args);
  // Stops the peers and frees the data no benchmark after `done` needs.
  void ReleaseAfter(size_t done);
  bool PeerBinaryPresent(const std::string& peer, const std::string& binary,
                         const std::string& package);

  // Data.
  absl::Status PutSet(const TensorSet& set);
  absl::Status PrepareTierData();
  // Prepare* set a peer's data up once; on failure the peer is left out
  // (Load* do the work).
  absl::Status PrepareRawRocksDb();
  absl::Status LoadRawRocksDb();
  absl::Status PrepareFioFile();
  absl::Status PrepareRedis();
  absl::Status LoadRedis();
  absl::Status PrepareModel();
  absl::Status PrepareFileModel();
  // The python line's model: pull_file's when the two have the same shape,
  // else one of its own.
  absl::Status PreparePythonModel();
  absl::Status WriteSetFile(const TensorSet& set, const std::string& path,
                            bool sync);
  // A Ceph (--ceph_conf, or one started with --ceph_script), at least
  // `nodes` RADOS-backed pstored on it, and the get_* data set put in
  // through the first (rados_workloads.cc). StopRados stops them all.
  absl::Status PrepareRados(int nodes);
  void StopRados();

  // Workloads.
  absl::Status RunPut();
  absl::Status RunGet(const std::string& tier);
  absl::Status RunLatency();
  absl::Status RunLatencyConfig(const std::string& tier, const TensorSet& set,
                                int outstanding);
  absl::Status RunPull();
  absl::Status RunPullFile();
  absl::Status RunPython();
  // Runs bench/python_load.py once (a warm-up load, `repetitions` timed
  // client.load calls, then as many torch.load calls of a torch.save file
  // on tmpfs) and returns its output. FailedPrecondition, with the
  // script's message, when the interpreter lacks torch or the package.
  absl::StatusOr<PythonRun> RunPythonScript(int repetitions);
  absl::Status RunEncodings();
  absl::Status RunRados();
  absl::Status RunRadosScale();
  absl::Status RunFleet();
  // Pulls the model in `encoding` into the arena; returns the seconds it
  // took and sets `*bytes` (if given) to the bytes received.
  absl::StatusOr<double> PullOnce(Client& client, int streams,
                                  const std::string& encoding,
                                  uint64_t* bytes = nullptr);

  // Reporting.
  void PrintSeries(const Series& series);
  void PrintLatency(const LatencySeries& series);
  void Isolation(const std::string& what, const std::string& tier,
                 uint64_t expected,
                 const std::vector<std::pair<Counters, Counters>>& runs);
  void Fail(const std::string& what, const absl::Status& status);
  void Note(const std::string& line);
  void AddTargets();
  absl::Status WriteOutputs();

  Flags flags_;
  Config config_;
  Results results_;
  std::vector<std::string> failures_;

  std::string work_dir_;  // Under --dir: pstored data, peers' files, logs.
  std::string shm_dir_;   // Under /dev/shm: files nginx serves.
  std::string fio_dir_;
  std::string address_;
  std::unique_ptr<ChildProcess> pstored_;
  std::unique_ptr<Client> client_;  // One channel: control calls, gets.
  uint64_t block_bytes_ = 4 << 20;
  std::string prefix_;              // Model names of this run.
  std::string server_description_;  // pstored's version, io_uring.
  bool page_cache_droppable_ = true;
  bool page_cache_noted_ = false;

  // Peers: started on first use.
  std::map<std::string, std::string> peer_state_;  // "skipped", "failed".
  std::unique_ptr<CeilingPeer> ceiling_;
  std::unique_ptr<NginxPeer> nginx_;
  std::unique_ptr<RedisPeer> redis_;

  // Data sets.
  bool tier_data_ready_ = false;
  std::optional<TensorSet> get_set_;
  std::map<uint64_t, TensorSet> latency_sets_;  // By tensor size.
  std::vector<std::string> revisions_;          // Created by this run.
  std::shared_ptr<ColdDatabase> raw_db_;
  std::map<std::string, std::vector<std::string>> raw_keys_;  // By revision.
  bool raw_db_ready_ = false;
  std::string fio_engine_ = "io_uring";
  bool fio_file_ready_ = false;
  std::string fio_file_;
  bool redis_ready_ = false;
  bool nginx_get_file_ready_ = false;
  // The synthetic model.
  bool model_ready_ = false;
  std::string model_;
  v1::Revision manifest_;
  uint64_t model_parameters_ = 0;
  uint64_t model_blocks_ = 0;
  TouchedBuffer arena_;
  // The RADOS workloads.
  struct RadosNode {
    std::unique_ptr<ChildProcess> process;
    std::string address;
    std::unique_ptr<Client> client;  // Four channels.
  };
  std::string ceph_dir_;   // Set when this run started the Ceph.
  std::string ceph_conf_;  // Set once the Ceph is up.
  std::shared_ptr<RadosPool> rados_pool_;  // The librados peer's.
  std::vector<RadosNode> rados_nodes_;
  // Starts a RADOS-backed pstored with empty tiers, its data and log under
  // work_dir_/`name`, with `flags` after the common ones.
  absl::StatusOr<RadosNode> StartRadosNode(
      const std::string& name, const std::vector<std::string>& flags);
  void StopRadosNodes(std::vector<RadosNode>& nodes);
  std::optional<TensorSet> rados_set_;
  std::vector<std::string> rados_objects_;  // rados_set_'s blocks, in order.
  // The pull_file model.
  bool file_model_ready_ = false;
  std::string file_model_;
  uint64_t file_model_bytes_ = 0;
  uint64_t file_model_blocks_ = 0;
  // The python model.
  bool python_model_ready_ = false;
  std::string python_model_;
  uint64_t python_model_bytes_ = 0;
  uint64_t python_model_blocks_ = 0;
  int python_model_tensors_ = 0;
  int python_runs_ = 0;  // Invocations of the script, for their log names.
};

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_HARNESS_H_
