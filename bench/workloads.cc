// The workloads of pstore-bench: put, get_dram/get_nvme/get_cold,
// latency, pull, pull_file and encodings, each with its peers, alternating
// pstore and the peers inside every repetition. See bench/README.md.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "bench/harness.h"
#include "bench/wire_clients.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "rocksdb/db.h"
#include "util/status.h"

namespace pstore::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Reader = FaultMeter::Reader;

// The reading process of the in-process clients and peers.
constexpr char kSelf[] = "pstore-bench";

// Writes `data`, tensors of `tensor_bytes` cut into blocks of `block_bytes`,
// into a fresh raw RocksDB database in `dir` with the cold tier's options
// (WAL on, no sync), removes it, and returns the write rate in MB/s;
// `meter` counts the faults of the timed writes.
absl::StatusOr<double> RawRocksDbPut(const std::string& dir,
                                     std::span<const uint8_t> data,
                                     uint64_t tensor_bytes,
                                     uint64_t block_bytes, FaultMeter& meter) {
  ColdTierOptions options;
  options.dir = dir;
  options.sync_commits = false;
  PSTORE_ASSIGN_OR_RETURN(std::shared_ptr<ColdDatabase> db,
                          ColdDatabase::Open(options));
  meter.Start();
  auto start = Clock::now();
  for (uint64_t tensor = 0; tensor < data.size(); tensor += tensor_bytes) {
    for (uint64_t offset = 0; offset < tensor_bytes; offset += block_bytes) {
      uint64_t length = std::min(block_bytes, tensor_bytes - offset);
      rocksdb::Slice value(
          reinterpret_cast<const char*>(data.data() + tensor + offset), length);
      std::string key = absl::StrCat(tensor, ".", offset);
      PSTORE_RETURN_IF_ERROR(RocksToStatus(
          db->db()->Put(rocksdb::WriteOptions(),
                        db->family(ColdDatabase::kBlocks), key, value),
          "raw RocksDB put"));
    }
  }
  double seconds = SecondsSince(start);
  meter.Stop();
  db.reset();
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  return data.size() / seconds / 1e6;
}

}  // namespace

// --- put ---

absl::Status Bench::RunPut() {
  const int count = config_.put_tensors;
  const uint64_t size = config_.put_tensor_bytes;
  std::string what = absl::StrCat(count, " x ", ShortBytes(size), " tensors");
  TouchedBuffer data(size * count);
  std::vector<int64_t> shape = {static_cast<int64_t>(size)};
  Series pstore =
      MakeSeries("put/pstore", "put", what, "pstore", "MB/s",
                 "PutTensor of each tensor in turn (U8, fresh random bytes per "
                 "repetition, XXH3-64 sent in the header), one channel; the "
                 "revision is deleted after each repetition",
                 "put");
  Series rocks =
      MakeSeries("put/rocksdb", "put", what, "rocksdb", "MB/s",
                 "raw RocksDB Put of the same 4 MiB blocks into a fresh "
                 "ColdTier database (pstored's options, WAL on, no sync)",
                 "put");
  bool want_rocks = config_.WantsPeer("rocksdb");
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    for (int i = 0; i < count; ++i) {
      FillRandom(uint64_t{5000000} + rep * 1000 + i,
                 data.span().subspan(i * size, size));
    }
    std::string revision = absl::StrCat(prefix_, "-put", rep, "@v1");
    revisions_.push_back(revision);
    FaultMeter meter("pstored", PstoredPids(), kSelf, Reader::kSelf);
    meter.Start();
    auto start = Clock::now();
    for (int i = 0; i < count; ++i) {
      PSTORE_RETURN_IF_ERROR(
          client_
              ->PutTensor(absl::StrCat(revision, "/t", i), "U8", shape,
                          data.span().subspan(i * size, size))
              .status());
    }
    double seconds = SecondsSince(start);
    meter.Stop();
    pstore.samples.push_back(size * count / seconds / 1e6);
    meter.AddTo(pstore, size * count);
    PSTORE_RETURN_IF_ERROR(client_->DeleteRevision(revision));
    revisions_.pop_back();

    if (want_rocks) {
      FaultMeter rocks_meter("", {}, kSelf, Reader::kSelf);
      absl::StatusOr<double> rate =
          RawRocksDbPut(absl::StrCat(work_dir_, "/rocksdb-put", rep),
                        data.span(), size, block_bytes_, rocks_meter);
      if (!rate.ok()) {
        Fail("put raw RocksDB", rate.status());
        want_rocks = false;
      } else {
        rocks.samples.push_back(*rate);
        rocks_meter.AddTo(rocks, size * count);
      }
    }
  }
  PrintSeries(pstore);
  results_.Add(pstore);
  if (!rocks.samples.empty()) {
    PrintSeries(rocks);
    results_.Add(rocks);
    results_.Compare(pstore.id, rocks.id);
  }
  return absl::OkStatus();
}

// --- get_dram, get_nvme, get_cold ---

absl::Status Bench::RunGet(const std::string& tier) {
  PSTORE_RETURN_IF_ERROR(PrepareTierData());
  const TensorSet& set = *get_set_;
  const std::string workload = "get_" + tier;
  std::string what = absl::StrCat(
      set.count, " x ", ShortBytes(set.tensor_bytes), " tensors, 1 stream");
  uint64_t blocks = set.BlocksPerTensor(block_bytes_) * set.count;
  TouchedBuffer buffer(set.tensor_bytes);
  TouchedBuffer piece(1 << 20);

  std::string prep;
  if (tier == "dram") {
    prep = "Prefetch(TIER_DRAM) before each repetition";
  } else if (tier == "nvme") {
    prep =
        "Prefetch(TIER_NVME) then DropCache(TIER_DRAM) before each "
        "repetition";
  } else {
    prep =
        "DropCache(TIER_DRAM), DropCache(TIER_NVME) and drop_caches=3 "
        "before each repetition";
  }
  Series pstore =
      MakeSeries(workload + "/pstore", workload, what, "pstore", "MB/s",
                 absl::StrCat("GetTensor of each tensor in turn into one "
                              "pre-touched buffer (4 MiB chunks, every chunk "
                              "and tensor XXH3-checked); ",
                              prep),
                 tier);

  // Peers of this tier.
  CeilingPeer* ceiling = tier == "dram" ? Ceiling() : nullptr;
  NginxPeer* nginx = tier == "dram" ? Nginx() : nullptr;
  RedisPeer* redis = nullptr;
  bool fio = tier == "nvme" && FioAvailable();
  bool rocks = tier == "cold" && config_.WantsPeer("rocksdb");
  // A peer that fails is recorded as a failure and left out; pstore's
  // figures stand.
  if (tier == "dram" && config_.WantsPeer("redis")) {
    if (absl::Status s = PrepareRedis(); !s.ok()) {
      Fail(workload + " redis: load the values", s);
    } else {
      redis = redis_.get();
    }
  }
  if (nginx != nullptr && !nginx_get_file_ready_) {
    if (absl::Status s = WriteSetFile(set, shm_dir_ + "/get.bin", false);
        !s.ok()) {
      Fail(workload + " nginx: write the file", s);
      nginx = nullptr;
    } else {
      nginx_get_file_ready_ = true;
    }
  }
  if (fio) {
    if (absl::Status s = PrepareFioFile(); !s.ok()) {
      Fail(workload + " fio: write the file", s);
      fio = false;
    }
  }
  if (rocks) {
    if (absl::Status s = PrepareRawRocksDb(); !s.ok() || raw_db_ == nullptr) {
      Fail(workload + " raw RocksDB: write the values",
           s.ok() ? absl::FailedPreconditionError("no database") : s);
      rocks = false;
    }
  }
  std::unique_ptr<RespClient> resp;
  if (redis != nullptr) {
    resp = std::make_unique<RespClient>();
    if (absl::Status s = resp->Connect(redis->port()); !s.ok()) {
      Fail(workload + " redis: connect", s);
      resp.reset();
    }
  }
  if (tier == "cold" && pstored_ != nullptr) {
    // Cold figures must not race pstored's own compactions.
    if (!WaitForDiskQuiet(pstored_->pid(), absl::Seconds(2),
                          absl::Seconds(120))) {
      Note("pstored kept writing to disk for 2 minutes before get_cold.");
    }
  }

  Series ceiling_series = MakeSeries(
      workload + "/grpc-ceiling", workload, what, "grpc-ceiling", "MB/s",
      "Ceiling.Stream of each tensor's size in 4 MiB "
      "messages from pre-built buffers, typed stub, copied "
      "into the same buffer; pstore client's channel args",
      tier);
  Series nginx_series = MakeSeries(
      workload + "/nginx", workload,
      absl::StrCat("the same bytes as one ", ShortBytes(set.Bytes()), " file"),
      "nginx", "MB/s",
      "one HTTP/1.1 GET of the file (tmpfs, sendfile), "
      "recv() of 1 MiB pieces into one buffer",
      tier);
  Series redis_series = MakeSeries(
      workload + "/redis", workload,
      absl::StrCat("the same ", blocks, " blocks as values"), "redis", "MB/s",
      "GET of each block value in turn on one connection "
      "(minimal RESP client), received into the same buffer",
      tier);
  Series fio_series = MakeSeries(
      workload + "/fio", workload,
      absl::StrCat("the same bytes as one ", ShortBytes(set.Bytes()), " file"),
      "fio", "MB/s",
      "fio io_uring O_DIRECT sequential read, bs=4m, iodepth 8, "
      "a file on the NVMe directory's filesystem",
      tier);
  Series rocks_series = MakeSeries(
      workload + "/rocksdb", workload,
      absl::StrCat("the same ", blocks, " block values"), "rocksdb", "MB/s",
      "raw DB::Get into a PinnableSlice of each block key, one "
      "thread, ColdTier's options and ReadOptions, no hash, "
      "no copy; drop_caches=3 before each repetition",
      tier);

  auto read_pstore = [&]() -> absl::Status {
    for (int i = 0; i < set.count; ++i) {
      PSTORE_RETURN_IF_ERROR(
          client_->GetTensor(set.Name(i), buffer.span()).status());
    }
    return absl::OkStatus();
  };
  auto read_ceiling = [&]() -> absl::Status {
    for (int i = 0; i < set.count; ++i) {
      PSTORE_RETURN_IF_ERROR(ceiling->Stream(0, set.tensor_bytes,
                                             kStreamChunkBytes, buffer.span()));
    }
    return absl::OkStatus();
  };
  auto read_redis = [&]() -> absl::Status {
    for (int i = 0; i < set.count; ++i) {
      uint64_t offset = 0;
      for (uint64_t j = 0; offset < set.tensor_bytes; ++j) {
        PSTORE_ASSIGN_OR_RETURN(uint64_t got,
                                resp->Get(absl::StrCat("g", i, ".", j),
                                          buffer.span().subspan(offset)));
        offset += got;
      }
    }
    return absl::OkStatus();
  };
  // Warm-up: connections, and the DRAM tier for dram.
  if (tier == "dram") {
    PSTORE_RETURN_IF_ERROR(
        client_->Prefetch(set.revision, v1::TIER_DRAM).status());
    PSTORE_RETURN_IF_ERROR(read_pstore());
    if (ceiling != nullptr) {
      if (absl::Status s = read_ceiling(); !s.ok()) {
        Fail(workload + " grpc-ceiling", s);
        ceiling = nullptr;
      }
    }
    if (nginx != nullptr) {
      if (absl::Status s = nginx->Get("/get.bin", piece.span()).status();
          !s.ok()) {
        Fail(workload + " nginx", s);
        nginx = nullptr;
      }
    }
    if (resp != nullptr) {
      if (absl::Status s = read_redis(); !s.ok()) {
        Fail(workload + " redis", s);
        resp.reset();
      }
    }
  } else {
    PSTORE_RETURN_IF_ERROR(
        client_->GetTensor(set.Name(0), buffer.span()).status());
  }

  // The processes whose faults count, known once the peers have served
  // (nginx forks its worker after it listens).
  FaultMeter pstore_meter("pstored", PstoredPids(), kSelf, Reader::kSelf);
  FaultMeter ceiling_meter("grpc-ceiling",
                           ceiling != nullptr
                               ? std::vector<pid_t>{ceiling->pid()}
                               : std::vector<pid_t>{},
                           kSelf, Reader::kSelf);
  FaultMeter nginx_meter(
      "nginx (master + worker)",
      nginx != nullptr ? nginx->pids() : std::vector<pid_t>{}, kSelf,
      Reader::kSelf);
  FaultMeter redis_meter("redis-server",
                         redis != nullptr ? std::vector<pid_t>{redis->pid()}
                                          : std::vector<pid_t>{},
                         kSelf, Reader::kSelf);
  FaultMeter rocks_meter("", {}, kSelf, Reader::kSelf);
  std::vector<std::pair<Counters, Counters>> counters;
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    if (tier == "dram") {
      PSTORE_RETURN_IF_ERROR(
          client_->Prefetch(set.revision, v1::TIER_DRAM).status());
    } else if (tier == "nvme") {
      PSTORE_RETURN_IF_ERROR(
          client_->Prefetch(set.revision, v1::TIER_NVME).status());
      PSTORE_RETURN_IF_ERROR(DropTiers(true, false, false));
    } else {
      PSTORE_RETURN_IF_ERROR(DropTiers(true, true, true));
    }
    PSTORE_ASSIGN_OR_RETURN(Counters before, ReadCounters());
    pstore_meter.Start();
    auto start = Clock::now();
    PSTORE_RETURN_IF_ERROR(read_pstore());
    double seconds = SecondsSince(start);
    pstore_meter.Stop();
    PSTORE_ASSIGN_OR_RETURN(Counters after, ReadCounters());
    counters.emplace_back(before, after);
    pstore.samples.push_back(set.Bytes() / seconds / 1e6);
    pstore_meter.AddTo(pstore, set.Bytes());

    if (ceiling != nullptr) {
      ceiling_meter.Start();
      start = Clock::now();
      absl::Status s = read_ceiling();
      seconds = SecondsSince(start);
      ceiling_meter.Stop();
      if (!s.ok()) {
        Fail(workload + " grpc-ceiling", s);
        ceiling = nullptr;
      } else {
        ceiling_series.samples.push_back(set.Bytes() / seconds / 1e6);
        ceiling_meter.AddTo(ceiling_series, set.Bytes());
      }
    }
    if (nginx != nullptr) {
      nginx_meter.Start();
      start = Clock::now();
      absl::StatusOr<uint64_t> got = nginx->Get("/get.bin", piece.span());
      seconds = SecondsSince(start);
      nginx_meter.Stop();
      if (!got.ok()) {
        Fail(workload + " nginx", got.status());
        nginx = nullptr;
      } else {
        nginx_series.samples.push_back(*got / seconds / 1e6);
        nginx_meter.AddTo(nginx_series, *got);
      }
    }
    if (resp != nullptr) {
      redis_meter.Start();
      start = Clock::now();
      absl::Status s = read_redis();
      seconds = SecondsSince(start);
      redis_meter.Stop();
      if (!s.ok()) {
        Fail(workload + " redis", s);
        resp.reset();
      } else {
        redis_series.samples.push_back(set.Bytes() / seconds / 1e6);
        redis_meter.AddTo(redis_series, set.Bytes());
      }
    }
    if (fio) {
      absl::StatusOr<FioResult> result = Fio(
          {"--name=seq", "--filename=" + fio_file_, "--rw=read", "--bs=4m",
           "--iodepth=8", "--direct=1", absl::StrCat("--size=", set.Bytes())});
      if (!result.ok()) {
        Fail(workload + " fio", result.status());
        fio = false;
      } else {
        fio_series.samples.push_back(result->bytes_per_second / 1e6);
        // fio is its own reader: no serving process.
        fio_series.client_process = "fio (its JSON minf: the whole job)";
        fio_series.client_faults.push_back(
            FaultsPerGiB(result->minor_faults, result->bytes));
      }
    }
    if (rocks) {
      PSTORE_RETURN_IF_ERROR(DropTiers(false, false, true));
      rocksdb::ReadOptions read_options;  // As ColdTier::Read.
      read_options.verify_checksums = false;
      read_options.fill_cache = false;
      rocksdb::PinnableSlice value;
      uint64_t bytes = 0;
      rocks_meter.Start();
      start = Clock::now();
      rocksdb::Status got;
      for (const std::string& key : raw_keys_[set.revision]) {
        value.Reset();
        got = raw_db_->db()->Get(
            read_options, raw_db_->family(ColdDatabase::kBlocks), key, &value);
        if (!got.ok()) break;
        bytes += value.size();
      }
      seconds = SecondsSince(start);
      rocks_meter.Stop();
      if (!got.ok()) {
        Fail(workload + " raw RocksDB", RocksToStatus(got, "get"));
        rocks = false;
      } else {
        rocks_series.samples.push_back(bytes / seconds / 1e6);
        rocks_meter.AddTo(rocks_series, bytes);
      }
    }
  }
  Isolation(absl::StrCat(workload, " (", what, ")"), tier, blocks, counters);
  PrintSeries(pstore);
  results_.Add(pstore);
  fio_series.method =
      absl::StrReplaceAll(fio_series.method, {{"io_uring", fio_engine_}});
  for (Series* peer : {&ceiling_series, &nginx_series, &redis_series,
                       &fio_series, &rocks_series}) {
    if (peer->samples.empty()) continue;
    PrintSeries(*peer);
    results_.Add(*peer);
    results_.Compare(pstore.id, peer->id);
  }
  return absl::OkStatus();
}

// --- latency ---

absl::Status Bench::RunLatency() {
  PSTORE_RETURN_IF_ERROR(PrepareTierData());
  // A peer that fails is recorded and left out; pstore's figures stand.
  if (config_.WantsPeer("redis")) {
    if (absl::Status s = PrepareRedis(); !s.ok()) {
      Fail("latency redis: load the values", s);
    }
  }
  if (FioAvailable()) {
    if (absl::Status s = PrepareFioFile(); !s.ok()) {
      Fail("latency fio: write the file", s);
    }
  }
  if (config_.WantsPeer("rocksdb")) {
    if (absl::Status s = PrepareRawRocksDb(); !s.ok()) {
      Fail("latency raw RocksDB: write the values", s);
    }
  }
  for (const std::string tier : {"dram", "nvme", "cold"}) {
    if (tier == "cold" && pstored_ != nullptr &&
        !WaitForDiskQuiet(pstored_->pid(), absl::Seconds(2),
                          absl::Seconds(120))) {
      Note("pstored kept writing to disk for 2 minutes before cold latency.");
    }
    for (const auto& [size, set] : latency_sets_) {
      for (int outstanding : config_.latency_outstanding) {
        PSTORE_RETURN_IF_ERROR(RunLatencyConfig(tier, set, outstanding));
      }
    }
  }
  Note(absl::StrCat(
      "Latency sample counts: a DRAM run reads the prepared one-block tensors "
      "over and over; an NVMe or cold run must read each tensor from that "
      "tier, so it reads each prepared tensor once and its sample count is "
      "the number of tensors prepared per size (",
      absl::StrJoin(latency_sets_, ", ",
                    [](std::string* out, const auto& entry) {
                      absl::StrAppend(out, ShortBytes(entry.first), ": ",
                                      entry.second.count);
                    }),
      "); p99.9 of fewer than 1000 samples is the maximum."));
  return absl::OkStatus();
}

absl::Status Bench::RunLatencyConfig(const std::string& tier,
                                     const TensorSet& set, int outstanding) {
  const uint64_t size = set.tensor_bytes;
  const size_t requests = tier == "dram"
                              ? static_cast<size_t>(config_.DramReads(size))
                              : static_cast<size_t>(set.count);
  std::string id = absl::StrCat("latency/", tier, "/", size, "/", outstanding);
  std::vector<TouchedBuffer> buffers;
  for (int t = 0; t < outstanding; ++t) buffers.emplace_back(size);

  std::string prep =
      tier == "dram" ? "tensors Prefetch(TIER_DRAM)ed, read over and over"
      : tier == "nvme"
          ? "Prefetch(TIER_NVME) then DropCache(TIER_DRAM) before each "
            "run; each tensor read once per run"
          : "DropCache(TIER_DRAM), DropCache(TIER_NVME), drop_caches=3 "
            "before each run; each tensor read once per run";
  LatencySeries pstore =
      MakeLatencySeries(id + "/pstore", tier, size, outstanding, "pstore",
                        absl::StrCat("GetTensor of distinct one-block tensors "
                                     "from ",
                                     "N threads on one channel (N = "
                                     "outstanding); ",
                                     prep));
  CeilingPeer* ceiling = tier == "dram" ? Ceiling() : nullptr;
  bool grpc = ceiling != nullptr;
  bool redis = tier == "dram" && redis_ != nullptr;
  bool fio = tier == "nvme" && FioAvailable() && fio_file_ready_;
  bool rocks = tier == "cold" && raw_db_ != nullptr;
  if (grpc) ceiling->EnsureChannels(1);
  LatencySeries ceiling_series = MakeLatencySeries(
      id + "/grpc", tier, size, outstanding, "grpc-unary",
      "Ceiling.Unary returning a pre-built message of the same size, N "
      "threads on one channel, typed stub, data copied out");
  LatencySeries stream_series = MakeLatencySeries(
      id + "/grpc-stream", tier, size, outstanding, "grpc-stream",
      "Ceiling.Stream of one pre-built message of the same size (a "
      "server-streaming call, as GetTensor is), N threads on one channel, "
      "typed stub, data copied out");
  LatencySeries redis_series = MakeLatencySeries(
      id + "/redis", tier, size, outstanding, "redis",
      "GET of the same values, N connections (one per thread)");
  LatencySeries fio_series = MakeLatencySeries(
      id + "/fio", tier, size, outstanding, "fio",
      "fio io_uring O_DIRECT randread, bs = size, iodepth = outstanding, "
      "same request count; total latency (lat_ns) percentiles");
  LatencySeries rocks_series = MakeLatencySeries(
      id + "/rocksdb", tier, size, outstanding, "rocksdb",
      "raw DB::Get of the same block keys from N threads, drop_caches=3 "
      "before each run");
  std::vector<std::unique_ptr<RespClient>> resp;
  if (redis) {
    for (int t = 0; t < outstanding; ++t) {
      resp.push_back(std::make_unique<RespClient>());
      PSTORE_RETURN_IF_ERROR(resp.back()->Connect(redis_->port()));
    }
  }

  auto pstore_call = [&](int thread, size_t index) {
    return client_
        ->GetTensor(set.Name(static_cast<int>(index % set.count)),
                    buffers[thread].span())
        .status();
  };
  // Times `count` calls of a peer into `series`; on an error says so and
  // leaves the peer out (`*on` false) for the remaining runs.
  auto time_peer = [&](bool* on, const std::string& what, LatencySeries* series,
                       size_t count,
                       const std::function<absl::Status(int, size_t)>& call) {
    if (!*on) return;
    absl::StatusOr<std::vector<double>> run =
        TimeCalls(outstanding, count, call);
    if (!run.ok()) {
      Fail(absl::StrCat(id, " ", what), run.status());
      *on = false;
      return;
    }
    series->runs.push_back(*std::move(run));
  };
  if (tier == "dram") {
    PSTORE_RETURN_IF_ERROR(
        client_->Prefetch(set.revision, v1::TIER_DRAM).status());
    // Warm-up: threads, connections, caches.
    PSTORE_RETURN_IF_ERROR(
        TimeCalls(outstanding, std::min<size_t>(requests, 64), pstore_call)
            .status());
  }
  std::vector<std::pair<Counters, Counters>> counters;
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    if (tier == "nvme") {
      PSTORE_RETURN_IF_ERROR(
          client_->Prefetch(set.revision, v1::TIER_NVME).status());
      PSTORE_RETURN_IF_ERROR(DropTiers(true, false, false));
    } else if (tier == "cold") {
      PSTORE_RETURN_IF_ERROR(DropTiers(true, true, true));
    }
    PSTORE_ASSIGN_OR_RETURN(Counters before, ReadCounters());
    PSTORE_ASSIGN_OR_RETURN(std::vector<double> latencies,
                            TimeCalls(outstanding, requests, pstore_call));
    PSTORE_ASSIGN_OR_RETURN(Counters after, ReadCounters());
    counters.emplace_back(before, after);
    pstore.runs.push_back(std::move(latencies));

    time_peer(&grpc, "grpc unary", &ceiling_series, requests,
              [&](int thread, size_t) {
                return ceiling->Unary(0, static_cast<uint32_t>(size),
                                      buffers[thread].span());
              });
    time_peer(&grpc, "grpc stream", &stream_series, requests,
              [&](int thread, size_t) {
                return ceiling->Stream(0, size, static_cast<uint32_t>(size),
                                       buffers[thread].span());
              });
    time_peer(&redis, "redis", &redis_series, requests,
              [&](int thread, size_t index) {
                return resp[thread]
                    ->Get(absl::StrCat("l", size, ".", index % set.count),
                          buffers[thread].span())
                    .status();
              });
    if (fio) {
      absl::StatusOr<FioResult> result =
          Fio({"--name=rand", "--filename=" + fio_file_, "--rw=randread",
               absl::StrCat("--bs=", size),
               absl::StrCat("--iodepth=", outstanding), "--direct=1",
               absl::StrCat("--size=", std::filesystem::file_size(fio_file_)),
               absl::StrCat("--number_ios=", requests), "--lat_percentiles=1",
               "--percentile_list=50:90:99:99.9"});
      if (!result.ok()) {
        Fail(id + " fio", result.status());
        fio = false;
      } else {
        // fio reports percentiles, not samples: keep them as a run of five
        // values whose quantiles at 0.5/0.9/0.99/0.999/1 are fio's.
        fio_series.requests = result->ios;
        fio_series.runs.push_back(std::vector<double>{});
        std::vector<double>& run = fio_series.runs.back();
        // 1000 synthetic points reproduce fio's percentiles exactly under
        // nearest rank: ranks 1-500 -> p50, 501-900 -> p90, 901-990 ->
        // p99, 991-999 -> p99.9, 1000 -> max.
        run.insert(run.end(), 500, result->p50_us);
        run.insert(run.end(), 400, result->p90_us);
        run.insert(run.end(), 90, result->p99_us);
        run.insert(run.end(), 9, result->p999_us);
        run.push_back(result->max_us);
      }
    }
    if (rocks) {
      PSTORE_RETURN_IF_ERROR(DropTiers(false, false, true));
      const std::vector<std::string>& keys = raw_keys_[set.revision];
      rocksdb::ReadOptions read_options;
      read_options.verify_checksums = false;
      read_options.fill_cache = false;
      time_peer(&rocks, "raw RocksDB", &rocks_series,
                std::min(requests, keys.size()), [&](int, size_t index) {
                  rocksdb::PinnableSlice value;
                  return RocksToStatus(
                      raw_db_->db()->Get(read_options,
                                         raw_db_->family(ColdDatabase::kBlocks),
                                         keys[index], &value),
                      "raw RocksDB get");
                });
    }
  }
  Isolation(
      absl::StrCat("latency ", tier, " ", ShortBytes(size), " x", outstanding),
      tier, requests, counters);
  PrintLatency(pstore);
  results_.AddLatency(pstore);
  for (LatencySeries* peer : {&ceiling_series, &stream_series, &redis_series,
                              &fio_series, &rocks_series}) {
    if (peer->runs.empty()) continue;
    if (peer == &fio_series) {
      peer->method =
          absl::StrReplaceAll(peer->method, {{"io_uring", fio_engine_}});
      peer->method += absl::StrCat(
          " (fio reports percentiles, not samples: "
          "its CDF is drawn through them)");
    }
    PrintLatency(*peer);
    results_.AddLatency(*peer);
    results_.Compare(pstore.id, peer->id);
  }
  return absl::OkStatus();
}

// --- pull ---

absl::StatusOr<double> Bench::PullOnce(Client& client, int streams,
                                       const std::string& encoding,
                                       uint64_t* bytes) {
  uint64_t cursor = 0;
  PullCallbacks callbacks;
  callbacks.allocate = ArenaAllocator(arena_, &cursor);
  PullOptions options;
  options.streams = streams;
  options.encoding = encoding;
  auto start = Clock::now();
  PSTORE_ASSIGN_OR_RETURN(PullResult result,
                          client.PullModel(model_, options, callbacks));
  double seconds = SecondsSince(start);
  if (result.bytes != cursor) {
    return absl::InternalError(
        absl::StrCat("pulled ", result.bytes, " bytes, buffers for ", cursor));
  }
  if (bytes != nullptr) *bytes = result.bytes;
  return seconds;
}

absl::Status Bench::RunPull() {
  PSTORE_RETURN_IF_ERROR(PrepareModel());
  const uint64_t bytes = manifest_.total_bytes();
  PSTORE_RETURN_IF_ERROR(client_->Prefetch(model_, v1::TIER_DRAM).status());
  std::map<int, std::unique_ptr<Client>> clients;
  for (int streams : config_.pull_streams) {
    PSTORE_ASSIGN_OR_RETURN(clients[streams], NewClient(streams));
    // Warm-up: connections; leaves the model's bytes in the arena.
    PSTORE_RETURN_IF_ERROR(
        PullOnce(*clients[streams], streams, "raw").status());
  }
  NginxPeer* nginx = Nginx();
  if (nginx != nullptr) {
    std::string path = shm_dir_ + "/model.bin";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(arena_.data()),
              static_cast<std::streamsize>(bytes));
    out.close();
    if (!out.good() || chmod(path.c_str(), 0644) != 0) {
      Fail("pull nginx", absl::UnavailableError("cannot write " + path));
      nginx = nullptr;
    }
  }
  CeilingPeer* ceiling = Ceiling();
  int max_streams = *std::max_element(config_.pull_streams.begin(),
                                      config_.pull_streams.end());
  if (ceiling != nullptr) ceiling->EnsureChannels(max_streams);
  TouchedBuffer piece(1 << 20);
  std::string model_what = absl::StrCat(
      manifest_.tensors_size(), " tensors, ", ShortBytes(bytes), ", ",
      config_.model.layers, " layers ", DTypeName(config_.model.dtype));
  auto ceiling_pull = [&](int streams) -> absl::Status {
    uint64_t part = (bytes + streams - 1) / streams;
    return RunThreads(streams, [&](int s) -> absl::Status {
      uint64_t begin = std::min<uint64_t>(bytes, part * s);
      uint64_t end = std::min<uint64_t>(bytes, begin + part);
      if (end == begin) return absl::OkStatus();
      return ceiling->Stream(s, end - begin, kStreamChunkBytes,
                             arena_.span().subspan(begin, end - begin));
    });
  };
  std::map<int, Series> pstore, ceiling_series;
  for (int streams : config_.pull_streams) {
    std::string what = absl::StrCat(streams, " stream", streams > 1 ? "s" : "");
    std::string bar = absl::StrCat(" x", streams);
    pstore[streams] = MakeSeries(
        absl::StrCat("pull/pstore/", streams), "pull", what, "pstore", "MB/s",
        absl::StrCat("PullModel of the DRAM-resident model (", model_what,
                     ") into pre-allocated, pre-touched memory, N streams "
                     "over N channels, every chunk and tensor XXH3-checked"),
        "pull");
    ceiling_series[streams] = MakeSeries(
        absl::StrCat("pull/grpc-ceiling/", streams), "pull", what,
        "grpc-ceiling", "MB/s",
        "N concurrent Ceiling.Streams of 1/N of the model's bytes each, 4 MiB "
        "messages, N channels, into the same memory",
        "pull");
    pstore[streams].bar_label = "pstore" + bar;
    ceiling_series[streams].bar_label = "grpc-ceiling" + bar;
  }
  Series nginx_series =
      MakeSeries("pull/nginx", "pull", "the model as one file", "nginx", "MB/s",
                 "one HTTP/1.1 GET of the model's bytes as one file "
                 "(tmpfs, sendfile), recv() of 1 MiB pieces",
                 "pull");
  nginx_series.bar_label = "nginx (1 file)";
  if (nginx != nullptr) {  // Warm-up.
    if (absl::Status s = nginx->Get("/model.bin", piece.span()).status();
        !s.ok()) {
      Fail("pull nginx", s);
      nginx = nullptr;
    }
  }
  FaultMeter pstore_meter("pstored", PstoredPids(), kSelf, Reader::kSelf);
  FaultMeter ceiling_meter("grpc-ceiling",
                           ceiling != nullptr
                               ? std::vector<pid_t>{ceiling->pid()}
                               : std::vector<pid_t>{},
                           kSelf, Reader::kSelf);
  FaultMeter nginx_meter(
      "nginx (master + worker)",
      nginx != nullptr ? nginx->pids() : std::vector<pid_t>{}, kSelf,
      Reader::kSelf);
  std::map<int, std::vector<std::pair<Counters, Counters>>> counters;
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    for (int streams : config_.pull_streams) {
      PSTORE_ASSIGN_OR_RETURN(Counters before, ReadCounters());
      pstore_meter.Start();
      PSTORE_ASSIGN_OR_RETURN(double seconds,
                              PullOnce(*clients[streams], streams, "raw"));
      pstore_meter.Stop();
      PSTORE_ASSIGN_OR_RETURN(Counters after, ReadCounters());
      counters[streams].emplace_back(before, after);
      pstore[streams].samples.push_back(bytes / seconds / 1e6);
      pstore_meter.AddTo(pstore[streams], bytes);
      if (ceiling != nullptr) {
        ceiling_meter.Start();
        auto start = Clock::now();
        absl::Status s = ceiling_pull(streams);
        seconds = SecondsSince(start);
        ceiling_meter.Stop();
        if (!s.ok()) {
          Fail("pull grpc-ceiling", s);
          ceiling = nullptr;
        } else {
          ceiling_series[streams].samples.push_back(bytes / seconds / 1e6);
          ceiling_meter.AddTo(ceiling_series[streams], bytes);
        }
      }
    }
    if (nginx != nullptr) {
      nginx_meter.Start();
      auto start = Clock::now();
      absl::StatusOr<uint64_t> got = nginx->Get("/model.bin", piece.span());
      double seconds = SecondsSince(start);
      nginx_meter.Stop();
      if (!got.ok()) {
        Fail("pull nginx", got.status());
        nginx = nullptr;
      } else {
        nginx_series.samples.push_back(*got / seconds / 1e6);
        nginx_meter.AddTo(nginx_series, *got);
      }
    }
  }
  for (int streams : config_.pull_streams) {
    Isolation(absl::StrCat("pull (", model_what, ", ", streams, " stream",
                           streams > 1 ? "s" : "", ")"),
              "dram", model_blocks_, counters[streams]);
    PrintSeries(pstore[streams]);
    results_.Add(pstore[streams]);
    if (!ceiling_series[streams].samples.empty()) {
      PrintSeries(ceiling_series[streams]);
      results_.Add(ceiling_series[streams]);
      results_.Compare(pstore[streams].id, ceiling_series[streams].id);
    }
  }
  if (!nginx_series.samples.empty()) {
    PrintSeries(nginx_series);
    results_.Add(nginx_series);
    for (int streams : config_.pull_streams) {
      results_.Compare(pstore[streams].id, nginx_series.id);
    }
  }
  std::filesystem::remove(shm_dir_ + "/model.bin");
  return absl::OkStatus();
}

// --- pull_file ---

absl::Status Bench::RunPullFile() {
  if (flags_.pstore_cli.empty() ||
      access(flags_.pstore_cli.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no pstore-cli binary at '", flags_.pstore_cli,
                     "' (build it, or pass --pstore_cli=PATH)"));
  }
  PSTORE_RETURN_IF_ERROR(PrepareFileModel());
  PSTORE_RETURN_IF_ERROR(
      client_->Prefetch(file_model_, v1::TIER_DRAM).status());
  const int streams = config_.pull_file_streams;
  // On tmpfs: the file nginx serves (the first pull's), and the outputs of
  // pstore-cli and of the nginx client, removed after each run.
  const std::string served = shm_dir_ + "/pull-file.safetensors";
  const std::string pulled = shm_dir_ + "/pull-file.pstore-cli.safetensors";
  const std::string downloaded = shm_dir_ + "/pull-file.nginx.safetensors";
  auto remove_file = [](const std::string& path) {
    std::error_code error;
    std::filesystem::remove(path, error);
  };
  // Runs pstore-cli pull into `pulled`; returns the seconds from fork to
  // exit.
  auto run_cli = [&](FaultMeter* meter) -> absl::StatusOr<double> {
    ChildProcess cli("pstore-cli",
                     {flags_.pstore_cli, "--addr", address_, "pull",
                      file_model_, pulled, "--streams", absl::StrCat(streams)},
                     work_dir_ + "/pstore-cli.log");
    if (meter != nullptr) meter->Start();
    auto start = Clock::now();
    PSTORE_RETURN_IF_ERROR(cli.Start());
    PSTORE_ASSIGN_OR_RETURN(int status, cli.Wait(absl::Minutes(5)));
    double seconds = SecondsSince(start);
    if (meter != nullptr) meter->Stop();
    if (status != 0) {
      return absl::InternalError(absl::StrCat("pstore-cli pull ended with ",
                                              DescribeWaitStatus(status), ": ",
                                              cli.LogTail(2000)));
    }
    return seconds;
  };
  // Warm-up; its output becomes nginx's file.
  remove_file(served);
  remove_file(pulled);
  PSTORE_RETURN_IF_ERROR(run_cli(nullptr).status());
  std::error_code error;
  std::filesystem::rename(pulled, served, error);
  if (error) return ErrnoToStatus(error.value(), "rename " + pulled);
  if (chmod(served.c_str(), 0644) != 0) {
    return ErrnoToStatus(errno, "chmod " + served);
  }
  const uint64_t file_bytes = std::filesystem::file_size(served, error);
  if (error) return ErrnoToStatus(error.value(), "stat " + served);

  {
    // What pstore-cli costs without a pull: start-up, one call, exit.
    ChildProcess cli("pstore-cli",
                     {flags_.pstore_cli, "--addr", address_, "status"},
                     work_dir_ + "/pstore-cli.log");
    uint64_t faults = ChildrenMinorFaults();
    auto start = Clock::now();
    absl::StatusOr<int> status =
        cli.Start().ok() ? cli.Wait(absl::Minutes(1)) : absl::StatusOr<int>(-1);
    double seconds = SecondsSince(start);
    faults = ChildrenMinorFaults() - faults;
    if (status.ok() && *status == 0) {
      Note(absl::StrFormat(
          "pull_file: `pstore-cli status` (start-up, one call, exit, no pull) "
          "took %.3f s and %d minor faults, a part of each pull_file figure "
          "of pstore-cli (the file is %s).",
          seconds, faults, ShortBytes(file_bytes)));
    }
  }
  NginxPeer* nginx = Nginx();
  TouchedBuffer piece(1 << 20);
  // GETs the file into `downloaded`; returns the seconds from open to
  // close.
  auto run_nginx = [&](FaultMeter* meter) -> absl::StatusOr<double> {
    if (meter != nullptr) meter->Start();
    auto start = Clock::now();
    int fd = open(downloaded.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0644);
    if (fd < 0) return ErrnoToStatus(errno, "open " + downloaded);
    absl::StatusOr<uint64_t> got =
        nginx->GetToFile("/pull-file.safetensors", piece.span(), fd);
    int closed = close(fd);
    int close_error = errno;
    double seconds = SecondsSince(start);
    if (meter != nullptr) meter->Stop();
    if (!got.ok()) return got.status();
    if (closed != 0) return ErrnoToStatus(close_error, "close " + downloaded);
    if (*got != file_bytes) {
      return absl::InternalError(
          absl::StrCat("nginx sent ", *got, " bytes of ", file_bytes));
    }
    return seconds;
  };
  if (nginx != nullptr) {  // Warm-up.
    absl::Status s = run_nginx(nullptr).status();
    remove_file(downloaded);
    if (!s.ok()) {
      Fail("pull_file nginx", s);
      nginx = nullptr;
    }
  }

  std::string what = absl::StrCat(ShortBytes(file_bytes), " safetensors file, ",
                                  streams, " streams");
  Series pstore = MakeSeries(
      "pull_file/pstore", "pull_file", what, "pstore", "GB/s",
      absl::StrCat(
          "pstore-cli pull --streams ", streams,
          " of a DRAM-resident synthetic model (",
          config_.pull_file_model.layers, " layers ",
          DTypeName(config_.pull_file_model.dtype),
          ") into a new safetensors file on tmpfs (--shm_dir): a process of "
          "its own, timed from fork to exit (start-up, connecting, the pull, "
          "the file written; to 5 ms: the harness polls for its exit); "
          "every file compared with the first pull's, then removed"),
      "");
  Series nginx_series = MakeSeries(
      "pull_file/nginx", "pull_file", "the same bytes as one file", "nginx",
      "GB/s",
      "one HTTP/1.1 GET of the first pull's file (tmpfs, sendfile), recv() "
      "of 1 MiB pieces, each write()n to a new file on the same tmpfs, in "
      "pstore-bench; timed from open to close; every file compared with the "
      "served one, then removed",
      "");
  FaultMeter cli_meter("pstored", PstoredPids(), "pstore-cli",
                       Reader::kChildren);
  FaultMeter nginx_meter(
      "nginx (master + worker)",
      nginx != nullptr ? nginx->pids() : std::vector<pid_t>{}, kSelf,
      Reader::kSelf);
  std::vector<std::pair<Counters, Counters>> counters;
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    remove_file(pulled);
    PSTORE_ASSIGN_OR_RETURN(Counters before, ReadCounters());
    PSTORE_ASSIGN_OR_RETURN(double seconds, run_cli(&cli_meter));
    PSTORE_ASSIGN_OR_RETURN(Counters after, ReadCounters());
    counters.emplace_back(before, after);
    pstore.samples.push_back(file_bytes / seconds / 1e9);
    cli_meter.AddTo(pstore, file_bytes);
    PSTORE_ASSIGN_OR_RETURN(bool same, SameFileContents(pulled, served));
    remove_file(pulled);
    if (!same) {
      return absl::InternalError(absl::StrCat(
          "pull_file: repetition ", rep + 1,
          " of pstore-cli pull wrote other bytes than the first pull"));
    }
    if (nginx != nullptr) {
      absl::StatusOr<double> nginx_seconds = run_nginx(&nginx_meter);
      absl::StatusOr<bool> nginx_same =
          nginx_seconds.ok() ? SameFileContents(downloaded, served) : false;
      remove_file(downloaded);
      if (nginx_seconds.ok() && nginx_same.ok() && !*nginx_same) {
        nginx_same = absl::InternalError("the file written differs");
      }
      if (!nginx_seconds.ok() || !nginx_same.ok()) {
        Fail("pull_file nginx", !nginx_seconds.ok() ? nginx_seconds.status()
                                                    : nginx_same.status());
        nginx = nullptr;
      } else {
        nginx_series.samples.push_back(file_bytes / *nginx_seconds / 1e9);
        nginx_meter.AddTo(nginx_series, file_bytes);
      }
    }
  }
  remove_file(served);
  Isolation(absl::StrCat("pull_file (pstore-cli pull, ", what, ")"), "dram",
            file_model_blocks_, counters);
  PrintSeries(pstore);
  results_.Add(pstore);
  if (!nginx_series.samples.empty()) {
    PrintSeries(nginx_series);
    results_.Add(nginx_series);
    results_.Compare(pstore.id, nginx_series.id);
  }
  return absl::OkStatus();
}

// --- encodings ---

absl::Status Bench::RunEncodings() {
  PSTORE_RETURN_IF_ERROR(PrepareModel());
  const int streams = config_.encoding_streams;
  PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, NewClient(streams));
  absl::StatusOr<uint64_t> pinned = client_->Pin(model_);
  bool pinned_here = pinned.ok();
  if (!pinned.ok() && !absl::IsAlreadyExists(pinned.status())) {
    Note(absl::StrCat("encodings: could not pin the model (",
                      pinned.status().ToString(),
                      "), so DropCache(TIER_DRAM) also drops its blocks and "
                      "the first pulls read them from below DRAM."));
  }
  // Blocks each encoding derives: those of tensors it applies to.
  std::map<std::string, uint64_t> derived_blocks;
  for (const std::string& name : config_.encodings) {
    PSTORE_ASSIGN_OR_RETURN(Encoding requested, ParseEncoding(name));
    uint64_t blocks = 0;
    for (const v1::TensorInfo& info : manifest_.tensors()) {
      PSTORE_ASSIGN_OR_RETURN(DType dtype, ParseDType(info.dtype()));
      std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
      Encoding applied = EncodingForPull(dtype, shape, requested);
      bool identity = applied == Encoding::kRaw ||
                      (applied == Encoding::kF32 && dtype == DType::kF32) ||
                      (applied == Encoding::kF16 && dtype == DType::kF16) ||
                      (applied == Encoding::kBF16 && dtype == DType::kBF16);
      if (!identity) {
        blocks += (info.stored_byte_length() + block_bytes_ - 1) / block_bytes_;
      }
    }
    derived_blocks[name] = blocks;
  }
  PSTORE_RETURN_IF_ERROR(client_->Prefetch(model_, v1::TIER_DRAM).status());
  PSTORE_RETURN_IF_ERROR(
      PullOnce(*client, streams, "raw").status());  // Warm-up.
  std::string what_suffix = absl::StrCat(", ", streams, " streams");
  auto make = [&](const std::string& label, const std::string& method) {
    return MakeSeries(absl::StrCat("encodings/", label), "encodings",
                      label + what_suffix, "pstore", "Mparams/s", method, "");
  };
  Series raw = make("raw", "PullModel of the pinned F16 model as stored");
  std::map<std::string, Series> first, cached;
  std::map<std::string, std::vector<uint64_t>> first_encoded, cached_hits;
  for (const std::string& name : config_.encodings) {
    first[name] = make(name + " first",
                       "DropCache(TIER_DRAM) (drops derived blocks only: the "
                       "model is pinned), then PullModel in this encoding: "
                       "encoded while sent");
    cached[name] = make(name + " cached",
                        "PullModel in this encoding right after the first: "
                        "derived blocks are DRAM hits");
  }
  // Faults per GiB of the bytes received (the encoded size).
  FaultMeter meter("pstored", PstoredPids(), kSelf, Reader::kSelf);
  uint64_t bytes = 0;
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    for (const std::string& name : config_.encodings) {
      PSTORE_RETURN_IF_ERROR(DropTiers(true, false, false));
      PSTORE_ASSIGN_OR_RETURN(Counters before, ReadCounters());
      meter.Start();
      PSTORE_ASSIGN_OR_RETURN(double seconds,
                              PullOnce(*client, streams, name, &bytes));
      meter.Stop();
      PSTORE_ASSIGN_OR_RETURN(Counters middle, ReadCounters());
      first[name].samples.push_back(model_parameters_ / seconds / 1e6);
      meter.AddTo(first[name], bytes);
      meter.Start();
      PSTORE_ASSIGN_OR_RETURN(seconds,
                              PullOnce(*client, streams, name, &bytes));
      meter.Stop();
      PSTORE_ASSIGN_OR_RETURN(Counters after, ReadCounters());
      cached[name].samples.push_back(model_parameters_ / seconds / 1e6);
      meter.AddTo(cached[name], bytes);
      first_encoded[name].push_back((middle - before).encoded);
      cached_hits[name].push_back((after - middle).encoded_hits);
    }
    meter.Start();
    PSTORE_ASSIGN_OR_RETURN(double seconds,
                            PullOnce(*client, streams, "raw", &bytes));
    meter.Stop();
    raw.samples.push_back(model_parameters_ / seconds / 1e6);
    meter.AddTo(raw, bytes);
  }
  if (pinned_here) PSTORE_RETURN_IF_ERROR(client_->Unpin(model_));
  PrintSeries(raw);
  results_.Add(raw);
  for (const std::string& name : config_.encodings) {
    for (Series* series : {&first[name], &cached[name]}) {
      PrintSeries(*series);
      results_.Add(*series);
      results_.Compare(series->id, raw.id);
    }
    uint64_t expected = derived_blocks[name];
    bool ok =
        std::all_of(first_encoded[name].begin(), first_encoded[name].end(),
                    [&](uint64_t v) { return v == expected; }) &&
        std::all_of(cached_hits[name].begin(), cached_hits[name].end(),
                    [&](uint64_t v) { return v == expected; });
    results_.AddIsolation(
        absl::StrCat("encodings ", name, ": first pulls encoded ",
                     absl::StrJoin(first_encoded[name], ", "),
                     " blocks, cached pulls hit ",
                     absl::StrJoin(cached_hits[name], ", "),
                     " derived blocks (expected ", expected, " each)"),
        ok);
  }
  return absl::OkStatus();
}

}  // namespace pstore::bench
