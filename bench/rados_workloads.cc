// The RADOS workloads of pstore-bench: rados (one node's cold streaming
// from a Ceph pool against plain librados aio reads of the same objects)
// and rados_scale (aggregate pull throughput of 1, 2, 3 nodes over one
// pool), with the Ceph and the RADOS-backed pstored nodes they run on.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/harness.h"
#include "codec/hash.h"
#include "rados/librados.h"
#include "storage/rados/rados_pool.h"
#include "storage/rados/rados_tier.h"
#include "util/status.h"

namespace pstore::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kPool[] = "pstore";
constexpr char kSelf[] = "pstore-bench";

// Process ids of every process on this machine whose command is `comm`.
std::vector<pid_t> ProcessesNamed(const std::string& comm) {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream in(entry.path() / "comm");
    std::string name;
    std::getline(in, name);
    if (name == comm) pids.push_back(pid);
  }
  return pids;
}

// CPU seconds of groups of processes between Start and Stop.
class CpuMeter {
 public:
  void Add(const std::string& group, std::vector<pid_t> pids) {
    groups_.emplace_back(group, std::move(pids));
  }
  void Start() {
    before_.clear();
    for (const auto& [group, pids] : groups_) before_.push_back(Sum(pids));
    start_ = Clock::now();
  }
  // "ceph-osd 1.4 cores, ..." over the time since Start.
  std::string Stop() const {
    double wall = SecondsSince(start_);
    std::vector<std::string> parts;
    for (size_t i = 0; i < groups_.size(); ++i) {
      double used = Sum(groups_[i].second) - before_[i];
      parts.push_back(
          absl::StrFormat("%s %.2f", groups_[i].first, used / wall));
    }
    return absl::StrCat(absl::StrJoin(parts, ", "), " cores");
  }

 private:
  static double Sum(const std::vector<pid_t>& pids) {
    double sum = 0;
    for (pid_t pid : pids) sum += ProcessCpuSeconds(pid);
    return sum;
  }

  std::vector<std::pair<std::string, std::vector<pid_t>>> groups_;
  std::vector<double> before_;
  Clock::time_point start_;
};

// Reads `objects` whole, each into its own `object_bytes` range of `out`
// in turn, with plain librados aio, `depth` reads in flight: what a
// program that reads the pool itself does. No checks, no copies.
absl::Status ReadObjectsAio(rados_ioctx_t io,
                            const std::vector<std::string>& objects,
                            uint64_t object_bytes, std::span<uint8_t> out,
                            int depth) {
  std::vector<rados_completion_t> slots(objects.size(), nullptr);
  absl::Status status;
  auto finish = [&](size_t i) {
    rados_aio_wait_for_complete(slots[i]);
    int result = rados_aio_get_return_value(slots[i]);
    rados_aio_release(slots[i]);
    slots[i] = nullptr;
    if (result < 0 && status.ok()) {
      status = absl::InternalError(absl::StrCat("librados read of ", objects[i],
                                                ": ", strerror(-result)));
    }
  };
  for (size_t i = 0; i < objects.size(); ++i) {
    if (i >= static_cast<size_t>(depth)) finish(i - depth);
    uint64_t offset = i * object_bytes;
    size_t length = std::min<uint64_t>(object_bytes, out.size() - offset);
    if (rados_aio_create_completion2(nullptr, nullptr, &slots[i]) < 0) {
      return absl::InternalError("rados_aio_create_completion2 failed");
    }
    int started =
        rados_aio_read(io, objects[i].c_str(), slots[i],
                       reinterpret_cast<char*>(out.data() + offset), length, 0);
    if (started < 0) {
      rados_aio_release(slots[i]);
      slots[i] = nullptr;
      status = absl::InternalError(absl::StrCat(
          "rados_aio_read of ", objects[i], ": ", strerror(-started)));
      break;
    }
  }
  for (size_t i = 0; i < objects.size(); ++i) {
    if (slots[i] != nullptr) finish(i);
  }
  return status;
}

// Bytes node `client` has read from the pool since it started.
absl::StatusOr<uint64_t> PoolReadBytes(Client& client) {
  PSTORE_ASSIGN_OR_RETURN(v1::ServerStatus status, client.GetServerStatus());
  for (const v1::TierStatus& tier : status.tiers()) {
    if (tier.tier() == v1::TIER_COLD) return tier.read_bytes();
  }
  return uint64_t{0};
}

// Pulls `revision` through `client` with `streams` streams, its tensors one
// after another into `arena`: what every node of rados_scale and fleet does.
absl::Status PullIntoArena(Client& client, const std::string& revision,
                           int streams, TouchedBuffer& arena) {
  uint64_t cursor = 0;
  PullCallbacks callbacks;
  callbacks.allocate = ArenaAllocator(arena, &cursor);
  PullOptions options;
  options.streams = streams;
  return client.PullModel(revision, options, callbacks).status();
}

}  // namespace

absl::StatusOr<Bench::RadosNode> Bench::StartRadosNode(
    const std::string& name, const std::vector<std::string>& flags) {
  std::string data = absl::StrCat(work_dir_, "/", name);
  std::filesystem::create_directories(data);
  std::string port_file = data + "/port";
  std::vector<std::string> argv = {
      flags_.pstored,
      "--listen=127.0.0.1:0",
      "--port_file=" + port_file,
      "--data_dir=" + data,
      "--backend=rados",
      "--ceph_conf=" + ceph_conf_,
      absl::StrCat("--rados_pool=", kPool),
      "--rados_namespace=" + prefix_,
      "--dram_bytes=" + flags_.rados_dram_bytes,
      "--nvme_bytes=0",
      "--drain_seconds=5",
      "--log_level=warn",
  };
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), flags_.pstored_flags.begin(),
              flags_.pstored_flags.end());
  RadosNode node;
  node.process = std::make_unique<ChildProcess>(absl::StrCat("pstored-", name),
                                                argv, data + ".log");
  PSTORE_RETURN_IF_ERROR(node.process->Start());
  PSTORE_ASSIGN_OR_RETURN(
      int port, node.process->WaitForPortFile(port_file, absl::Seconds(60)));
  node.address = absl::StrCat("127.0.0.1:", port);
  ClientOptions options;
  options.address = node.address;
  options.channels = 4;
  options.chunk_bytes = kStreamChunkBytes;
  PSTORE_ASSIGN_OR_RETURN(node.client, Client::Create(options));
  std::fprintf(stderr, "pstore-bench: started %s (pid %d) at %s\n",
               name.c_str(), node.process->pid(), node.address.c_str());
  return node;
}

void Bench::StopRadosNodes(std::vector<RadosNode>& nodes) {
  for (RadosNode& node : nodes) {
    node.client.reset();
    if (node.process != nullptr && node.process->Running()) {
      if (absl::StatusOr<int> s = node.process->Stop(); !s.ok()) {
        Fail(absl::StrCat("stop ", node.process->name()), s.status());
      }
    }
  }
  nodes.clear();
}

absl::Status Bench::PrepareRados(int nodes) {
  if (ceph_conf_.empty()) {
    if (!flags_.ceph_conf.empty()) {
      ceph_conf_ = flags_.ceph_conf;
    } else {
      if (flags_.ceph_script.empty() ||
          access(flags_.ceph_script.c_str(), X_OK) != 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "no Ceph: pass --ceph_conf, or --ceph_script (not found at '",
            flags_.ceph_script, "')"));
      }
      std::string dir = work_dir_ + "/ceph";
      ChildProcess start("ceph.sh", {flags_.ceph_script, "start", dir, kPool},
                         work_dir_ + "/ceph-start.log");
      PSTORE_RETURN_IF_ERROR(start.Start());
      PSTORE_ASSIGN_OR_RETURN(int exit, start.Wait(absl::Seconds(150)));
      if (exit != 0) {
        return absl::InternalError(
            absl::StrCat("scripts/ceph.sh start failed (",
                         DescribeWaitStatus(exit), "): ", start.LogTail(1500)));
      }
      ceph_dir_ = dir;
      ceph_conf_ = dir + "/ceph.conf";
      std::fprintf(stderr, "pstore-bench: started a Ceph in %s\n", dir.c_str());
    }
    RadosOptions options;
    options.ceph_conf = ceph_conf_;
    options.pool = kPool;
    options.name_space = prefix_;
    PSTORE_ASSIGN_OR_RETURN(rados_pool_, RadosPool::Connect(options));
  }
  while (static_cast<int>(rados_nodes_.size()) < nodes) {
    // Without peers: these lines measure each node's reads of the pool.
    PSTORE_ASSIGN_OR_RETURN(
        RadosNode node,
        StartRadosNode(absl::StrCat("rados-node-", rados_nodes_.size()),
                       {"--peers=false"}));
    rados_nodes_.push_back(std::move(node));
  }
  if (!rados_set_.has_value()) {
    TensorSet set;
    set.revision = absl::StrCat(prefix_, "-rados@1");
    set.count = config_.get_tensors;
    set.tensor_bytes = config_.get_tensor_bytes;
    set.seed = 0x7ad05;
    Client& client = *rados_nodes_[0].client;
    std::vector<uint8_t> bytes(set.tensor_bytes);
    std::vector<int64_t> shape = {static_cast<int64_t>(set.tensor_bytes)};
    auto start = Clock::now();
    for (int i = 0; i < set.count; ++i) {
      set.Fill(i, std::span<uint8_t>(bytes));
      PSTORE_RETURN_IF_ERROR(
          client.PutTensor(set.Name(i), "U8", shape, bytes).status());
      for (uint64_t offset = 0; offset < bytes.size(); offset += block_bytes_) {
        size_t length = std::min<uint64_t>(block_bytes_, bytes.size() - offset);
        rados_objects_.push_back(BlockObjectName(BlockId::Of(
            std::span<const uint8_t>(bytes).subspan(offset, length))));
      }
    }
    PSTORE_RETURN_IF_ERROR(client.PublishRevision(set.revision).status());
    double seconds = SecondsSince(start);
    Note(absl::StrFormat(
        "rados: %d x %s put into RADOS through one node in %.1f s (%.0f MB/s, "
        "one stream; not a measured line)",
        set.count, ShortBytes(set.tensor_bytes), seconds,
        set.Bytes() / seconds / 1e6));
    rados_set_ = set;
  }
  return absl::OkStatus();
}

void Bench::StopRados() {
  StopRadosNodes(rados_nodes_);
  rados_pool_.reset();
  if (!ceph_dir_.empty()) {
    ChildProcess stop("ceph.sh", {flags_.ceph_script, "stop", ceph_dir_},
                      work_dir_ + "/ceph-stop.log");
    absl::Status s = stop.Start();
    if (s.ok()) s = stop.Wait(absl::Seconds(60)).status();
    if (!s.ok()) Fail("stop Ceph", s);
    ceph_dir_.clear();
  }
  ceph_conf_.clear();
  rados_set_.reset();
  rados_objects_.clear();
}

// --- rados ---

absl::Status Bench::RunRados() {
  PSTORE_RETURN_IF_ERROR(PrepareRados(1));
  const TensorSet& set = *rados_set_;
  RadosNode& node = rados_nodes_[0];
  const int depth = flags_.rados_peer_depth;
  std::string what = absl::StrCat(
      set.count, " x ", ShortBytes(set.tensor_bytes), " tensors, 1 stream");
  Series pstore = MakeSeries(
      "rados/pstore", "rados", what, "pstore", "MB/s",
      "GetTensor of each tensor in turn from a RADOS-backed pstored "
      "(--nvme_bytes=0) into one pre-touched buffer (4 MiB chunks, every "
      "block checked against its id, every chunk and tensor XXH3-checked); "
      "DropCache(TIER_DRAM) before each repetition",
      "rados");
  Series peer = MakeSeries(
      "rados/librados", "rados",
      absl::StrCat("the same ", rados_objects_.size(), " block objects"),
      "librados", "MB/s",
      absl::StrCat("rados_aio_read of each block object whole, in order, ",
                   depth,
                   " in flight (pstored's read-ahead: 32 MiB of 4 MiB "
                   "blocks), into one pre-touched buffer, no checks; in "
                   "this process"),
      "rados");
  TouchedBuffer buffer(set.tensor_bytes);
  TouchedBuffer all(set.Bytes());
  const uint64_t blocks_per_tensor = set.BlocksPerTensor(block_bytes_);
  auto read_pstore = [&]() -> absl::Status {
    for (int i = 0; i < set.count; ++i) {
      PSTORE_RETURN_IF_ERROR(
          node.client->GetTensor(set.Name(i), buffer.span()).status());
    }
    return absl::OkStatus();
  };
  auto read_peer = [&]() -> absl::Status {
    return ReadObjectsAio(rados_pool_->io(), rados_objects_, block_bytes_,
                          all.span(), depth);
  };
  // Warm-up: connections, both ways.
  PSTORE_RETURN_IF_ERROR(node.client->DropCache(v1::TIER_DRAM));
  PSTORE_RETURN_IF_ERROR(read_pstore());
  PSTORE_RETURN_IF_ERROR(read_peer());
  FaultMeter pstore_meter("pstored (RADOS node)", {node.process->pid()}, kSelf,
                          FaultMeter::Reader::kSelf);
  FaultMeter peer_meter("", {}, "pstore-bench (librados in process)",
                        FaultMeter::Reader::kSelf);
  CpuMeter cpu;
  cpu.Add("ceph-osd", ProcessesNamed("ceph-osd"));
  cpu.Add("pstored", {node.process->pid()});
  cpu.Add("pstore-bench", {getpid()});
  std::vector<std::string> pstore_cpu, peer_cpu;
  std::vector<std::pair<Counters, Counters>> counters;
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    // Alternate who reads first: the OSD's own caches see both the same.
    for (int turn = 0; turn < 2; ++turn) {
      if ((rep + turn) % 2 == 0) {
        PSTORE_RETURN_IF_ERROR(node.client->DropCache(v1::TIER_DRAM));
        PSTORE_ASSIGN_OR_RETURN(Counters before,
                                ReadNodeCounters(*node.client));
        pstore_meter.Start();
        cpu.Start();
        auto start = Clock::now();
        PSTORE_RETURN_IF_ERROR(read_pstore());
        double seconds = SecondsSince(start);
        pstore_cpu.push_back(cpu.Stop());
        pstore_meter.Stop();
        PSTORE_ASSIGN_OR_RETURN(Counters after, ReadNodeCounters(*node.client));
        counters.emplace_back(before, after);
        pstore.samples.push_back(set.Bytes() / seconds / 1e6);
        pstore_meter.AddTo(pstore, set.Bytes());
      } else {
        peer_meter.Start();
        cpu.Start();
        auto start = Clock::now();
        PSTORE_RETURN_IF_ERROR(read_peer());
        double seconds = SecondsSince(start);
        peer_cpu.push_back(cpu.Stop());
        peer_meter.Stop();
        peer.samples.push_back(set.Bytes() / seconds / 1e6);
        peer_meter.AddTo(peer, set.Bytes());
      }
    }
  }
  Note(absl::StrCat("rados: CPU in use per repetition (of ",
                    sysconf(_SC_NPROCESSORS_ONLN), " on this machine): pstore ",
                    absl::StrJoin(pstore_cpu, "; "), "; librados ",
                    absl::StrJoin(peer_cpu, "; ")));
  Isolation(absl::StrCat("rados (", what, ")"), "cold",
            blocks_per_tensor * set.count, counters);
  PrintSeries(pstore);
  results_.Add(pstore);
  PrintSeries(peer);
  results_.Add(peer);
  results_.Compare(pstore.id, peer.id);
  return absl::OkStatus();
}

// --- rados_scale ---

absl::Status Bench::RunRadosScale() {
  const int max_nodes =
      *std::max_element(config_.rados_nodes.begin(), config_.rados_nodes.end());
  PSTORE_RETURN_IF_ERROR(PrepareRados(max_nodes));
  const TensorSet& set = *rados_set_;
  const int streams = flags_.rados_scale_streams;
  std::vector<TouchedBuffer> arenas;
  for (int i = 0; i < max_nodes; ++i) arenas.emplace_back(set.Bytes());
  auto pull = [&](int n) {
    return PullIntoArena(*rados_nodes_[n].client, set.revision, streams,
                         arenas[n]);
  };
  // Warm-up: every node's connections.
  for (int n = 0; n < max_nodes; ++n) PSTORE_RETURN_IF_ERROR(pull(n));

  CpuMeter cpu;
  cpu.Add("ceph-osd", ProcessesNamed("ceph-osd"));
  std::vector<pid_t> node_pids;
  for (const RadosNode& node : rados_nodes_) {
    node_pids.push_back(node.process->pid());
  }
  cpu.Add("pstored (all nodes)", node_pids);
  cpu.Add("pstore-bench (clients)", {getpid()});
  std::map<int, Series> series;
  std::map<int, std::vector<std::string>> cpu_lines;
  for (int nodes : config_.rados_nodes) {
    series.emplace(
        nodes,
        MakeSeries(
            absl::StrCat("rados_scale/pstore/", nodes), "rados_scale",
            absl::StrCat(nodes, nodes == 1 ? " node" : " nodes", ", each ",
                         set.count, " x ", ShortBytes(set.tensor_bytes), ", ",
                         streams, " streams"),
            "pstore", "MB/s",
            "every node pulls the whole set from RADOS at once (PullModel, "
            "its own client); DropCache(TIER_DRAM) on each before each "
            "repetition; MB/s of all nodes together",
            "rados"));
  }
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    for (int nodes : config_.rados_nodes) {
      for (int n = 0; n < nodes; ++n) {
        PSTORE_RETURN_IF_ERROR(
            rados_nodes_[n].client->DropCache(v1::TIER_DRAM));
      }
      std::vector<absl::Status> results(nodes);
      cpu.Start();
      auto start = Clock::now();
      std::vector<std::thread> threads;
      for (int n = 0; n < nodes; ++n) {
        threads.emplace_back([&, n] { results[n] = pull(n); });
      }
      for (std::thread& thread : threads) thread.join();
      double seconds = SecondsSince(start);
      cpu_lines[nodes].push_back(cpu.Stop());
      for (const absl::Status& result : results) {
        PSTORE_RETURN_IF_ERROR(result);
      }
      series.at(nodes).samples.push_back(nodes * set.Bytes() / seconds / 1e6);
    }
  }
  for (auto& [nodes, one] : series) {
    PrintSeries(one);
    results_.Add(one);
    Note(absl::StrCat(
        "rados_scale, ", nodes, nodes == 1 ? " node" : " nodes",
        ": CPU in use per repetition (of ", sysconf(_SC_NPROCESSORS_ONLN),
        " on this machine): ", absl::StrJoin(cpu_lines[nodes], "; ")));
  }
  return absl::OkStatus();
}

// --- fleet ---

absl::Status Bench::RunFleet() {
  PSTORE_RETURN_IF_ERROR(PrepareRados(1));
  // The nodes of the other lines are members too: they would serve the
  // fleet's blocks.
  StopRadosNodes(rados_nodes_);
  const TensorSet& set = *rados_set_;
  const int max_nodes =
      *std::max_element(config_.fleet_nodes.begin(), config_.fleet_nodes.end());
  std::vector<TouchedBuffer> arenas;
  for (int i = 0; i < max_nodes; ++i) arenas.emplace_back(set.Bytes());
  // Each node count with fresh nodes, without peers then with: both meet
  // the OSD as the run before left it.
  for (int nodes : config_.fleet_nodes) {
    for (bool peers : {false, true}) {
      const std::string mode = peers ? "peers" : "no peers";
      std::vector<RadosNode> fleet;
      while (static_cast<int>(fleet.size()) < nodes) {
        PSTORE_ASSIGN_OR_RETURN(
            RadosNode node,
            StartRadosNode(
                absl::StrCat("fleet-", nodes, peers ? "-peers-" : "-alone-",
                             fleet.size()),
                {absl::StrCat("--peers=", peers ? "true" : "false"),
                 "--peer_heartbeat_seconds=1", "--peer_timeout_seconds=3"}));
        fleet.push_back(std::move(node));
      }
      if (peers) {
        // Every node's ring holds the fleet (a join is seen at once; the
        // ring follows within its refresh).
        auto deadline = Clock::now() + std::chrono::seconds(20);
        for (RadosNode& node : fleet) {
          for (;;) {
            PSTORE_ASSIGN_OR_RETURN(v1::ServerStatus status,
                                    node.client->GetServerStatus());
            if (status.peers().ring_nodes() == static_cast<uint64_t>(nodes)) {
              break;
            }
            if (Clock::now() > deadline) {
              return absl::DeadlineExceededError(absl::StrCat(
                  node.address, " has ", status.peers().ring_nodes(),
                  " nodes on its ring after 20 s, not ", nodes));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }
      }
      std::string config = absl::StrCat(
          nodes, nodes == 1 ? " node, " : " nodes, ", mode, ", each ",
          set.count, " x ", ShortBytes(set.tensor_bytes));
      Series slowest = MakeSeries(
          absl::StrCat("fleet/", peers ? "peers" : "alone", "/", nodes),
          "fleet", config, peers ? "pstore (peers)" : "pstore (no peers)", "s",
          "every node pulls the same revision at once (PullModel, 4 streams, "
          "its own client), DRAM dropped on each before each repetition; the "
          "slowest node's seconds",
          "");
      Series pool_reads = MakeSeries(
          absl::StrCat("fleet/", peers ? "peers" : "alone", "/", nodes,
                       "/rados_bytes"),
          "fleet", config, peers ? "pstore (peers)" : "pstore (no peers)",
          "x revision",
          "bytes all nodes read from RADOS during the pull (their cold tiers' "
          "read bytes), per byte of the revision",
          "");
      std::vector<pid_t> pids;
      for (const RadosNode& node : fleet) pids.push_back(node.process->pid());
      for (int rep = 0; rep < config_.repetitions; ++rep) {
        uint64_t before = 0;
        for (RadosNode& node : fleet) {
          PSTORE_RETURN_IF_ERROR(node.client->DropCache(v1::TIER_DRAM));
          PSTORE_ASSIGN_OR_RETURN(uint64_t bytes, PoolReadBytes(*node.client));
          before += bytes;
        }
        FaultMeter faults("pstored (all nodes)", pids, "pstore-bench",
                          FaultMeter::Reader::kSelf);
        std::vector<absl::Status> results(nodes);
        std::vector<double> seconds(nodes);
        faults.Start();
        std::vector<std::thread> threads;
        for (int n = 0; n < nodes; ++n) {
          threads.emplace_back([&, n] {
            auto start = Clock::now();
            results[n] = PullIntoArena(*fleet[n].client, set.revision,
                                       flags_.rados_scale_streams, arenas[n]);
            seconds[n] = SecondsSince(start);
          });
        }
        for (std::thread& thread : threads) thread.join();
        faults.Stop();
        for (const absl::Status& result : results) {
          PSTORE_RETURN_IF_ERROR(result);
        }
        uint64_t after = 0;
        for (RadosNode& node : fleet) {
          PSTORE_ASSIGN_OR_RETURN(uint64_t bytes, PoolReadBytes(*node.client));
          after += bytes;
        }
        slowest.samples.push_back(
            *std::max_element(seconds.begin(), seconds.end()));
        faults.AddTo(slowest, nodes * set.Bytes());
        pool_reads.samples.push_back(static_cast<double>(after - before) /
                                     set.Bytes());
      }
      PrintSeries(slowest);
      PrintSeries(pool_reads);
      results_.Add(slowest);
      results_.Add(pool_reads);
      StopRadosNodes(fleet);
    }
  }
  return absl::OkStatus();
}

}  // namespace pstore::bench
