#include "bench/harness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/wire_clients.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "codec/hash.h"
#include "rocksdb/db.h"
#include "util/status.h"

namespace pstore::bench {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// --- Setup ---

absl::Status Bench::Setup() {
  PSTORE_ASSIGN_OR_RETURN(work_dir_, MakeTempDir(flags_.dir, "pstore-bench."));
  // nginx's workers run as an unprivileged user: let them read.
  PSTORE_ASSIGN_OR_RETURN(shm_dir_,
                          MakeTempDir(flags_.shm_dir, "pstore-bench.", 0755));
  fio_dir_ = work_dir_;
  if (!flags_.fio_dir.empty()) {
    PSTORE_ASSIGN_OR_RETURN(fio_dir_,
                            MakeTempDir(flags_.fio_dir, "pstore-bench."));
  }
  std::fprintf(stderr, "pstore-bench: work dir %s, tmpfs dir %s\n",
               work_dir_.c_str(), shm_dir_.c_str());
  // Idle clients notice a server's GOAWAY quickly (see
  // tests/testing/pstored_process.cc).
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "50", 0);
  uint64_t salt =
      static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^ getpid();
  prefix_ = absl::StrCat("bench-", absl::Hex(salt & 0xffffff));

  if (flags_.server.empty()) {
    PSTORE_RETURN_IF_ERROR(StartPstored());
  } else {
    address_ = flags_.server;
    Note(absl::StrCat(
        "Ran against a running pstored at ", address_,
        ": its configuration is its own, and its reads_served counters also "
        "count other clients' reads. DropCache calls dropped its caches."));
  }
  PSTORE_ASSIGN_OR_RETURN(client_, NewClient(1));
  absl::StatusOr<v1::ServerStatus> status = client_->GetServerStatus();
  if (!status.ok()) {
    return Annotate(status.status(), absl::StrCat("pstored at ", address_));
  }
  if (status->block_bytes() > 0) block_bytes_ = status->block_bytes();
  bool nvme_enabled = false;
  for (const v1::TierStatus& tier : status->tiers()) {
    if (tier.tier() == v1::TIER_NVME) nvme_enabled = tier.enabled();
  }
  if (!nvme_enabled &&
      (config_.Wants("get_nvme") || config_.Wants("latency"))) {
    Note("pstored's NVMe tier is disabled: the nvme figures are missing.");
  }
  server_description_ = absl::StrCat(status->version(), ", io_uring ",
                                     status->io_uring() ? "on" : "off");
  std::fprintf(
      stderr, "pstore-bench: pstored %s at %s, block %s, io_uring %s\n",
      status->version().c_str(), address_.c_str(),
      ShortBytes(block_bytes_).c_str(), status->io_uring() ? "on" : "off");
  return absl::OkStatus();
}

absl::Status Bench::StartPstored() {
  if (flags_.pstored.empty() || access(flags_.pstored.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no pstored binary at '", flags_.pstored,
                     "' (build it, or pass --pstored=PATH or --server)"));
  }
  std::string data = work_dir_ + "/pstored";
  std::filesystem::create_directories(data);
  std::string port_file = data + "/port";
  std::vector<std::string> argv = {
      flags_.pstored,
      "--listen=127.0.0.1:0",
      "--port_file=" + port_file,
      "--data_dir=" + data,
      "--dram_bytes=" + flags_.dram_bytes,
      "--nvme_bytes=" + flags_.nvme_bytes,
      "--sync_commits=false",
      "--drain_seconds=5",
      "--log_level=warn",
  };
  argv.insert(argv.end(), flags_.pstored_flags.begin(),
              flags_.pstored_flags.end());
  pstored_ = std::make_unique<ChildProcess>("pstored", argv,
                                            work_dir_ + "/pstored.log");
  PSTORE_RETURN_IF_ERROR(pstored_->Start());
  PSTORE_ASSIGN_OR_RETURN(
      int port, pstored_->WaitForPortFile(port_file, absl::Seconds(60)));
  address_ = absl::StrCat("127.0.0.1:", port);
  std::vector<std::string> shown(argv.begin() + 1, argv.end());
  std::fprintf(stderr, "pstore-bench: started pstored (pid %d): %s\n",
               pstored_->pid(), absl::StrJoin(shown, " ").c_str());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Client>> Bench::NewClient(int channels) {
  ClientOptions options;
  options.address = address_;
  options.channels = channels;
  options.chunk_bytes = kStreamChunkBytes;
  return Client::Create(options);
}

absl::StatusOr<Counters> Bench::ReadCounters() {
  return ReadNodeCounters(*client_);
}

absl::StatusOr<Counters> Bench::ReadNodeCounters(Client& client) {
  PSTORE_ASSIGN_OR_RETURN(v1::ServerStatus status, client.GetServerStatus());
  Counters counters;
  for (const v1::TierStatus& tier : status.tiers()) {
    if (tier.tier() == v1::TIER_DRAM) counters.dram = tier.reads_served();
    if (tier.tier() == v1::TIER_NVME) counters.nvme = tier.reads_served();
    if (tier.tier() == v1::TIER_COLD) counters.cold = tier.reads_served();
  }
  counters.encoded = status.blocks_encoded();
  counters.encoded_hits = status.encoded_hits();
  return counters;
}

absl::Status Bench::DropTiers(bool dram, bool nvme, bool page_cache) {
  if (dram) PSTORE_RETURN_IF_ERROR(client_->DropCache(v1::TIER_DRAM));
  if (nvme) PSTORE_RETURN_IF_ERROR(client_->DropCache(v1::TIER_NVME));
  if (page_cache && page_cache_droppable_) {
    absl::Status dropped = DropPageCache();
    if (!dropped.ok()) {
      page_cache_droppable_ = false;
      if (!page_cache_noted_) {
        page_cache_noted_ = true;
        Note(absl::StrCat("Could not drop the OS page cache (",
                          dropped.ToString(),
                          "): cold-tier and raw RocksDB figures include the "
                          "page cache."));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<pid_t> Bench::PstoredPids() const {
  if (pstored_ != nullptr && pstored_->pid() > 0) return {pstored_->pid()};
  if (flags_.server_pid > 0) return {static_cast<pid_t>(flags_.server_pid)};
  return {};
}

void Bench::Teardown() {
  // Models this run made on a server it did not start.
  if (!flags_.server.empty() && client_ != nullptr) {
    if (model_ready_) (void)client_->Unpin(model_);  // May not be pinned.
    for (const std::string& revision : revisions_) {
      absl::Status deleted = client_->DeleteRevision(revision);
      if (!deleted.ok() && !absl::IsNotFound(deleted)) {
        std::fprintf(stderr, "pstore-bench: could not delete %s: %s\n",
                     revision.c_str(), deleted.ToString().c_str());
      }
    }
  }
  client_.reset();
  raw_db_.reset();
  if (ceiling_ != nullptr) {
    if (absl::Status s = ceiling_->Stop(); !s.ok())
      Fail("stop grpc-ceiling", s);
  }
  if (nginx_ != nullptr) {
    if (absl::Status s = nginx_->Stop(); !s.ok()) Fail("stop nginx", s);
  }
  if (redis_ != nullptr) {
    if (absl::Status s = redis_->Stop(); !s.ok()) Fail("stop redis", s);
  }
  ceiling_.reset();
  nginx_.reset();
  redis_.reset();
  if (pstored_ != nullptr && pstored_->Running()) {
    absl::StatusOr<int> stopped = pstored_->Stop(absl::Seconds(30));
    if (!stopped.ok()) {
      Fail("stop pstored", stopped.status());
    } else if (*stopped != 0) {
      Fail("stop pstored",
           absl::InternalError(absl::StrCat("pstored ended with ",
                                            DescribeWaitStatus(*stopped), ":\n",
                                            pstored_->LogTail(2000))));
    }
  }
  pstored_.reset();
  StopRados();
  if (!flags_.keep_temp) {
    RemoveTempDirs();
  } else {
    std::fprintf(stderr, "pstore-bench: kept %s and %s\n", work_dir_.c_str(),
                 shm_dir_.c_str());
  }
}

// --- Peers ---

bool Bench::PeerBinaryPresent(const std::string& peer,
                              const std::string& binary,
                              const std::string& package) {
  if (!binary.empty() && access(binary.c_str(), X_OK) == 0) return true;
  std::string line =
      absl::StrCat("peer ", peer, " skipped: no executable at '", binary,
                   "' (package ", package, "; bench/setup installs it)");
  std::fprintf(stderr, "pstore-bench: %s\n", line.c_str());
  Note(line);
  peer_state_[peer] = "skipped";
  return false;
}

CeilingPeer* Bench::Ceiling() {
  if (ceiling_ != nullptr) return ceiling_.get();
  if (!config_.WantsPeer("grpc") || peer_state_.count("grpc")) return nullptr;
  if (!PeerBinaryPresent("grpc", flags_.grpc_ceiling,
                         "none: build target grpc-ceiling")) {
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<CeilingPeer>> peer =
      CeilingPeer::Start(flags_.grpc_ceiling, work_dir_);
  if (!peer.ok()) {
    peer_state_["grpc"] = "failed";
    Fail("start grpc-ceiling", peer.status());
    return nullptr;
  }
  ceiling_ = *std::move(peer);
  std::fprintf(stderr, "pstore-bench: started grpc-ceiling\n");
  return ceiling_.get();
}

NginxPeer* Bench::Nginx() {
  if (nginx_ != nullptr) return nginx_.get();
  if (!config_.WantsPeer("nginx") || peer_state_.count("nginx")) return nullptr;
  if (!PeerBinaryPresent("nginx", flags_.nginx, "nginx-light")) return nullptr;
  absl::StatusOr<std::unique_ptr<NginxPeer>> peer =
      NginxPeer::Start(flags_.nginx, work_dir_, shm_dir_);
  if (!peer.ok()) {
    peer_state_["nginx"] = "failed";
    Fail("start nginx", peer.status());
    return nullptr;
  }
  nginx_ = *std::move(peer);
  std::fprintf(stderr, "pstore-bench: started nginx on port %d\n",
               nginx_->port());
  return nginx_.get();
}

RedisPeer* Bench::Redis() {
  if (redis_ != nullptr) return redis_.get();
  if (!config_.WantsPeer("redis") || peer_state_.count("redis")) return nullptr;
  if (!PeerBinaryPresent("redis", flags_.redis, "redis-server")) {
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<RedisPeer>> peer =
      RedisPeer::Start(flags_.redis, work_dir_);
  if (!peer.ok()) {
    peer_state_["redis"] = "failed";
    Fail("start redis-server", peer.status());
    return nullptr;
  }
  redis_ = *std::move(peer);
  std::fprintf(stderr, "pstore-bench: started redis-server on port %d\n",
               redis_->port());
  return redis_.get();
}

bool Bench::FioAvailable() {
  if (!config_.WantsPeer("fio") || peer_state_.count("fio")) return false;
  return PeerBinaryPresent("fio", flags_.fio, "fio");
}

absl::StatusOr<FioResult> Bench::Fio(std::vector<std::string> args) {
  std::vector<std::string> with_engine = args;
  with_engine.push_back("--ioengine=" + fio_engine_);
  absl::StatusOr<FioResult> result =
      RunFio(flags_.fio, with_engine, work_dir_, absl::Minutes(5));
  if (result.ok() || fio_engine_ != "io_uring") return result;
  args.push_back("--ioengine=libaio");
  absl::StatusOr<FioResult> fallback =
      RunFio(flags_.fio, args, work_dir_, absl::Minutes(5));
  if (!fallback.ok()) return result;
  fio_engine_ = "libaio";
  Note(absl::StrCat("fio could not use io_uring here (",
                    result.status().ToString(),
                    "); its figures are with ioengine=libaio."));
  return fallback;
}

void Bench::ReleaseAfter(size_t done) {
  std::set<std::string> left(config_.benchmarks.begin() + done + 1,
                             config_.benchmarks.end());
  auto needs = [&left](std::initializer_list<const char*> names) {
    for (const char* name : names) {
      if (left.count(name)) return true;
    }
    return false;
  };
  if (redis_ != nullptr && !needs({"get_dram", "latency"})) {
    if (absl::Status s = redis_->Stop(); !s.ok()) Fail("stop redis", s);
    redis_.reset();
    peer_state_["redis"] = "done";
  }
  if (!needs({"rados", "rados_scale", "fleet"})) StopRados();
  if (nginx_get_file_ready_ && !needs({"get_dram"})) {
    std::filesystem::remove(shm_dir_ + "/get.bin");
    nginx_get_file_ready_ = false;
  }
  if (raw_db_ != nullptr && !needs({"get_cold", "latency"})) {
    raw_db_.reset();
    std::error_code error;
    std::filesystem::remove_all(work_dir_ + "/rocksdb-peer", error);
  }
  if (fio_file_ready_ && !needs({"get_nvme", "latency"})) {
    std::filesystem::remove(fio_file_);
  }
}

// --- Data ---

absl::Status Bench::PutSet(const TensorSet& set) {
  std::vector<uint8_t> bytes(set.tensor_bytes);
  std::vector<int64_t> shape = {static_cast<int64_t>(set.tensor_bytes)};
  for (int i = 0; i < set.count; ++i) {
    set.Fill(i, std::span<uint8_t>(bytes));
    PSTORE_RETURN_IF_ERROR(
        client_->PutTensor(set.Name(i), "U8", shape, bytes).status());
  }
  revisions_.push_back(set.revision);
  return client_->PublishRevision(set.revision).status();
}

absl::Status Bench::PrepareTierData() {
  if (tier_data_ready_) return absl::OkStatus();
  auto start = Clock::now();
  bool wants_get = config_.Wants("get_dram") || config_.Wants("get_nvme") ||
                   config_.Wants("get_cold");
  if (wants_get) {
    get_set_ = TensorSet{absl::StrCat(prefix_, "-get@v1"), config_.get_tensors,
                         config_.get_tensor_bytes, 1000};
    PSTORE_RETURN_IF_ERROR(PutSet(*get_set_));
  }
  if (config_.Wants("latency")) {
    uint64_t seed = 100000;
    for (uint64_t size : config_.latency_sizes) {
      TensorSet set{absl::StrCat(prefix_, "-lat", size, "@v1"),
                    config_.LatencyTensors(size), size, seed};
      seed += 100000;
      PSTORE_RETURN_IF_ERROR(PutSet(set));
      latency_sets_.emplace(size, set);
    }
  }
  if (config_.Wants("get_cold") || config_.Wants("latency")) {
    // Push the sets out of the cold tier's memtables into SST files, so
    // that cold reads read files, as after a restart.
    TensorSet filler{absl::StrCat(prefix_, "-filler@v1"), 5,
                     kMemtableFillerBytes / 5, 900000};
    PSTORE_RETURN_IF_ERROR(PutSet(filler));
    PSTORE_RETURN_IF_ERROR(client_->DeleteRevision(filler.revision));
    revisions_.pop_back();
  }
  tier_data_ready_ = true;
  std::fprintf(stderr, "pstore-bench: put the tier data sets in %.1f s\n",
               SecondsSince(start));
  return absl::OkStatus();
}

absl::Status Bench::WriteSetFile(const TensorSet& set, const std::string& path,
                                 bool sync) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::vector<uint8_t> bytes(set.tensor_bytes);
  for (int i = 0; i < set.count; ++i) {
    set.Fill(i, std::span<uint8_t>(bytes));
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  out.close();
  if (!out.good()) return absl::UnavailableError("cannot write " + path);
  if (chmod(path.c_str(), 0644) != 0) {
    return ErrnoToStatus(errno, "chmod " + path);
  }
  if (sync) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "open " + path);
    int synced = fsync(fd);
    close(fd);
    if (synced != 0) return ErrnoToStatus(errno, "fsync " + path);
  }
  return absl::OkStatus();
}

absl::Status Bench::PrepareRawRocksDb() {
  if (raw_db_ready_) return absl::OkStatus();
  raw_db_ready_ = true;
  absl::Status loaded = LoadRawRocksDb();
  if (!loaded.ok()) raw_db_.reset();
  return loaded;
}

absl::Status Bench::LoadRawRocksDb() {
  auto start = Clock::now();
  ColdTierOptions options;  // As pstored opens it: defaults, sync off.
  options.dir = work_dir_ + "/rocksdb-peer";
  options.sync_commits = false;
  PSTORE_ASSIGN_OR_RETURN(raw_db_, ColdDatabase::Open(options));
  std::vector<const TensorSet*> sets;
  if (get_set_.has_value()) sets.push_back(&*get_set_);
  for (const auto& [size, set] : latency_sets_) sets.push_back(&set);
  std::vector<uint8_t> bytes;
  for (const TensorSet* set : sets) {
    std::vector<std::string>& keys = raw_keys_[set->revision];
    bytes.resize(set->tensor_bytes);
    for (int i = 0; i < set->count; ++i) {
      set->Fill(i, std::span<uint8_t>(bytes));
      for (uint64_t offset = 0; offset < bytes.size(); offset += block_bytes_) {
        uint64_t length =
            std::min<uint64_t>(block_bytes_, bytes.size() - offset);
        std::span<const uint8_t> block(bytes.data() + offset, length);
        std::string key = BlockKey(BlockId::Of(block));
        rocksdb::Status put = raw_db_->db()->Put(
            rocksdb::WriteOptions(), raw_db_->family(ColdDatabase::kBlocks),
            key,
            rocksdb::Slice(reinterpret_cast<const char*>(block.data()),
                           block.size()));
        if (!put.ok()) return RocksToStatus(put, "raw RocksDB put");
        keys.push_back(std::move(key));
      }
    }
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  PSTORE_RETURN_IF_ERROR(RocksToStatus(
      raw_db_->db()->Flush(flush, raw_db_->family(ColdDatabase::kBlocks)),
      "flush"));
  // Let compactions finish, as pstored's have (WaitForDiskQuiet).
  for (int i = 0; i < 600; ++i) {
    uint64_t running = 0, pending = 0;
    raw_db_->db()->GetIntProperty(raw_db_->family(ColdDatabase::kBlocks),
                                  "rocksdb.num-running-compactions", &running);
    raw_db_->db()->GetIntProperty(raw_db_->family(ColdDatabase::kBlocks),
                                  "rocksdb.compaction-pending", &pending);
    if (running == 0 && pending == 0) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::fprintf(stderr, "pstore-bench: wrote the raw RocksDB peer in %.1f s\n",
               SecondsSince(start));
  return absl::OkStatus();
}

absl::Status Bench::PrepareFioFile() {
  if (fio_file_ready_) return absl::OkStatus();
  // The get set's bytes as one file (or as much as the latency reads
  // need), on the NVMe directory's filesystem.
  TensorSet set =
      get_set_.has_value()
          ? *get_set_
          : TensorSet{"", config_.get_tensors, config_.get_tensor_bytes, 1000};
  fio_file_ = fio_dir_ + "/fio-get.bin";
  absl::Status written = WriteSetFile(set, fio_file_, /*sync=*/true);
  if (!written.ok()) {
    peer_state_["fio"] = "failed";
    return written;
  }
  fio_file_ready_ = true;
  return absl::OkStatus();
}

absl::Status Bench::PrepareRedis() {
  if (redis_ready_) return absl::OkStatus();
  redis_ready_ = true;
  absl::Status loaded = LoadRedis();
  if (!loaded.ok() && redis_ != nullptr) {
    (void)redis_->Stop();  // Failed already; its figures are left out.
    redis_.reset();
    peer_state_["redis"] = "failed";
  }
  return loaded;
}

absl::Status Bench::LoadRedis() {
  RedisPeer* redis = Redis();
  if (redis == nullptr) return absl::OkStatus();
  RespClient resp;
  PSTORE_RETURN_IF_ERROR(resp.Connect(redis->port()));
  std::vector<uint8_t> bytes;
  auto load = [&](const TensorSet& set, const std::string& key_prefix,
                  bool by_block) -> absl::Status {
    bytes.resize(set.tensor_bytes);
    for (int i = 0; i < set.count; ++i) {
      set.Fill(i, std::span<uint8_t>(bytes));
      if (!by_block) {
        PSTORE_RETURN_IF_ERROR(resp.Set(absl::StrCat(key_prefix, i), bytes));
        continue;
      }
      for (uint64_t offset = 0, j = 0; offset < bytes.size();
           offset += block_bytes_, ++j) {
        uint64_t length =
            std::min<uint64_t>(block_bytes_, bytes.size() - offset);
        PSTORE_RETURN_IF_ERROR(
            resp.Set(absl::StrCat(key_prefix, i, ".", j),
                     std::span<const uint8_t>(bytes.data() + offset, length)));
      }
    }
    return absl::OkStatus();
  };
  if (get_set_.has_value() && config_.Wants("get_dram")) {
    PSTORE_RETURN_IF_ERROR(load(*get_set_, "g", /*by_block=*/true));
  }
  for (const auto& [size, set] : latency_sets_) {
    PSTORE_RETURN_IF_ERROR(load(set, absl::StrCat("l", size, "."), false));
  }
  return absl::OkStatus();
}

absl::Status Bench::PrepareModel() {
  if (model_ready_) return absl::OkStatus();
  auto start = Clock::now();
  model_ = absl::StrCat(prefix_, "-llm@v1");
  std::vector<SyntheticTensor> tensors = TransformerTensors(config_.model);
  PSTORE_RETURN_IF_ERROR(PutSyntheticModel(*client_, model_, tensors, 7));
  revisions_.push_back(model_);
  PSTORE_ASSIGN_OR_RETURN(manifest_, client_->GetRevision(model_));
  uint64_t largest = 0;
  std::vector<std::string> encodings = config_.encodings;
  encodings.push_back("raw");
  for (const std::string& name : encodings) {
    PSTORE_ASSIGN_OR_RETURN(Encoding requested, ParseEncoding(name));
    uint64_t total = 0;
    for (const v1::TensorInfo& info : manifest_.tensors()) {
      PSTORE_ASSIGN_OR_RETURN(DType dtype, ParseDType(info.dtype()));
      std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
      total += EncodedTensorBytes(dtype, shape,
                                  EncodingForPull(dtype, shape, requested));
    }
    largest = std::max(largest, total);
  }
  model_parameters_ = 0;
  model_blocks_ = 0;
  for (const v1::TensorInfo& info : manifest_.tensors()) {
    std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
    model_parameters_ += *ElementCount(shape);
    model_blocks_ +=
        (info.stored_byte_length() + block_bytes_ - 1) / block_bytes_;
  }
  arena_ = TouchedBuffer(largest);
  model_ready_ = true;
  std::fprintf(stderr,
               "pstore-bench: put model %s (%d tensors, %s, %.2f G "
               "parameters) in %.1f s\n",
               model_.c_str(), manifest_.tensors_size(),
               ShortBytes(manifest_.total_bytes()).c_str(),
               model_parameters_ / 1e9, SecondsSince(start));
  return absl::OkStatus();
}

absl::Status Bench::PrepareFileModel() {
  if (file_model_ready_) return absl::OkStatus();
  auto start = Clock::now();
  file_model_ = absl::StrCat(prefix_, "-file@v1");
  std::vector<SyntheticTensor> tensors =
      TransformerTensors(config_.pull_file_model);
  PSTORE_RETURN_IF_ERROR(PutSyntheticModel(*client_, file_model_, tensors, 11));
  revisions_.push_back(file_model_);
  PSTORE_ASSIGN_OR_RETURN(v1::Revision manifest,
                          client_->GetRevision(file_model_));
  file_model_bytes_ = manifest.total_bytes();
  file_model_blocks_ = 0;
  for (const v1::TensorInfo& info : manifest.tensors()) {
    file_model_blocks_ +=
        (info.stored_byte_length() + block_bytes_ - 1) / block_bytes_;
  }
  file_model_ready_ = true;
  std::fprintf(stderr,
               "pstore-bench: put model %s (%d tensors, %s) in %.1f s\n",
               file_model_.c_str(), manifest.tensors_size(),
               ShortBytes(file_model_bytes_).c_str(), SecondsSince(start));
  return absl::OkStatus();
}

absl::Status Bench::PreparePythonModel() {
  if (python_model_ready_) return absl::OkStatus();
  const TransformerShape& shape = config_.python_model;
  const TransformerShape& file_shape = config_.pull_file_model;
  if (shape.layers == file_shape.layers && shape.hidden == file_shape.hidden &&
      shape.ffn == file_shape.ffn && shape.vocab == file_shape.vocab &&
      shape.dtype == file_shape.dtype) {
    PSTORE_RETURN_IF_ERROR(PrepareFileModel());
    python_model_ = file_model_;
  } else {
    auto start = Clock::now();
    python_model_ = absl::StrCat(prefix_, "-python@v1");
    std::vector<SyntheticTensor> tensors = TransformerTensors(shape);
    PSTORE_RETURN_IF_ERROR(
        PutSyntheticModel(*client_, python_model_, tensors, 13));
    revisions_.push_back(python_model_);
    std::fprintf(stderr, "pstore-bench: put model %s (%zu tensors) in %.1f s\n",
                 python_model_.c_str(), tensors.size(), SecondsSince(start));
  }
  PSTORE_ASSIGN_OR_RETURN(v1::Revision manifest,
                          client_->GetRevision(python_model_));
  python_model_bytes_ = manifest.total_bytes();
  python_model_tensors_ = manifest.tensors_size();
  python_model_blocks_ = 0;
  for (const v1::TensorInfo& info : manifest.tensors()) {
    python_model_blocks_ +=
        (info.stored_byte_length() + block_bytes_ - 1) / block_bytes_;
  }
  python_model_ready_ = true;
  return absl::OkStatus();
}

// --- Reporting helpers ---

void Bench::PrintSeries(const Series& series) {
  Summary s = series.summary();
  auto faults = [](const std::string& process,
                   const std::vector<double>& values) -> std::string {
    if (values.empty()) return "";
    return absl::StrFormat(" %s %.0f", process, Summarize(values).median);
  };
  std::string fault_text =
      absl::StrCat(faults(series.server_process, series.server_faults),
                   faults(series.client_process, series.client_faults));
  // GB/s figures (pull_file) are near 1: two decimals.
  auto number = [&series](double value) -> std::string {
    return series.unit == "GB/s" ? absl::StrFormat("%.2f", value)
                                 : absl::StrFormat("%.1f", value);
  };
  std::printf(
      "%-10s %-14s %-40s : %10s %s (median of %zu; min %s, max %s)%s%s\n",
      series.workload.c_str(), series.system.c_str(), series.config.c_str(),
      number(s.median).c_str(), series.unit.c_str(), s.count,
      number(s.min).c_str(), number(s.max).c_str(),
      fault_text.empty() ? "" : "; minor faults/GiB:", fault_text.c_str());
  std::fflush(stdout);
}

void Bench::PrintLatency(const LatencySeries& series) {
  auto median = [&](double q) { return Summarize(series.PerRun(q)).median; };
  std::printf(
      "latency    %-14s %-4s %8s x%-2d : p50 %8.1f  p99 %8.1f  p999 %8.1f  "
      "max %8.1f us (%zu runs of %zu)\n",
      series.system.c_str(), series.tier.c_str(),
      ShortBytes(series.bytes).c_str(), series.outstanding, median(0.5),
      median(0.99), median(0.999), median(1.0), series.runs.size(),
      series.runs.empty() ? size_t{0} : series.runs.front().size());
  std::fflush(stdout);
}

void Bench::Isolation(const std::string& what, const std::string& tier,
                      uint64_t expected,
                      const std::vector<std::pair<Counters, Counters>>& runs) {
  bool ok = true;
  std::vector<std::string> per_run;
  for (const auto& [before, after] : runs) {
    Counters d = after - before;
    uint64_t served = d.Of(tier);
    uint64_t others = d.dram + d.nvme + d.cold - served;
    if (served != expected || others != 0) ok = false;
    per_run.push_back(
        absl::StrCat(served, "/", expected,
                     others != 0 ? absl::StrCat(" (dram ", d.dram, ", nvme ",
                                                d.nvme, ", cold ", d.cold, ")")
                                 : ""));
  }
  std::string line;
  if (ok) {
    line = absl::StrCat(what, ": ", tier, " served ", expected, "/", expected,
                        " blocks in each of ", runs.size(),
                        " runs (other tiers 0)");
  } else {
    line = absl::StrCat(what, ": ", tier,
                        " served, per run: ", absl::StrJoin(per_run, ", "));
  }
  if (!runs.empty()) {
    const auto& [before, after] = runs.front();
    absl::StrAppend(&line, "; run 1 reads_served before -> after: dram ",
                    before.dram, " -> ", after.dram, ", nvme ", before.nvme,
                    " -> ", after.nvme, ", cold ", before.cold, " -> ",
                    after.cold);
  }
  results_.AddIsolation(line, ok);
  if (!ok) std::fprintf(stderr, "pstore-bench: isolation: %s\n", line.c_str());
}

void Bench::Fail(const std::string& what, const absl::Status& status) {
  std::string line = absl::StrCat(what, ": ", status.ToString());
  std::fprintf(stderr, "pstore-bench: FAILED %s\n", line.c_str());
  failures_.push_back(line);
  results_.AddNote(absl::StrCat("FAILED ", line));
}

void Bench::Note(const std::string& line) { results_.AddNote(line); }

// --- Targets and outputs ---

void Bench::AddTargets() {
  auto median = [&](const std::string& id) -> std::optional<double> {
    const Series* series = results_.Find(id);
    if (series == nullptr || series->samples.empty()) return std::nullopt;
    return series->summary().median;
  };
  auto ratio = [&](Target target, const std::string& a, const std::string& b) {
    std::optional<double> x = median(a);
    std::optional<double> y = median(b);
    if (x.has_value() && y.has_value() && *y > 0) {
      target.ratio = *x / *y;
    } else {
      target.missing = absl::StrCat(x.has_value() ? b : a, " was not run");
    }
    results_.AddTarget(target);
  };
  ratio(Target{"DRAM-hit streaming vs plain gRPC",
               "get_dram pstore / grpc-ceiling",
               {},
               true,
               0.9,
               ""},
        "get_dram/pstore", "get_dram/grpc-ceiling");
  ratio(Target{"DRAM-hit streaming vs nginx",
               "get_dram pstore / nginx",
               {},
               true,
               1.0,
               ""},
        "get_dram/pstore", "get_dram/nginx");
  ratio(Target{"NVMe-tier streaming vs fio",
               "get_nvme pstore / fio seq O_DIRECT bs=4m iodepth 8",
               {},
               true,
               0.85,
               ""},
        "get_nvme/pstore", "get_nvme/fio");
  ratio(Target{"cold-tier streaming vs raw RocksDB",
               "get_cold pstore / rocksdb Get",
               {},
               true,
               0.85,
               ""},
        "get_cold/pstore", "get_cold/rocksdb");
  ratio(Target{"cold-tier streaming from RADOS vs librados aio",
               "rados pstore / librados aio reads of the same objects",
               {},
               true,
               0.85,
               ""},
        "rados/pstore", "rados/librados");
  // 64 KiB DRAM-hit latency vs unary gRPC, one outstanding request.
  std::string lat = absl::StrCat("latency/dram/", 64 << 10, "/1");
  const LatencySeries* a = results_.FindLatency(lat + "/pstore");
  const LatencySeries* b = results_.FindLatency(lat + "/grpc");
  for (auto [q, goal, label] :
       {std::tuple<double, double, const char*>{0.5, 1.2, "p50"},
        std::tuple<double, double, const char*>{0.99, 1.5, "p99"}}) {
    Target target{
        absl::StrCat("64 KiB DRAM-hit latency ", label, " vs gRPC unary"),
        "latency dram 64 KiB x1 pstore / grpc-unary",
        {},
        false,
        goal,
        ""};
    if (a != nullptr && b != nullptr && !a->runs.empty() && !b->runs.empty()) {
      target.ratio =
          Summarize(a->PerRun(q)).median / Summarize(b->PerRun(q)).median;
    } else {
      target.missing = "latency dram 64 KiB x1 (pstore and grpc) was not run";
    }
    results_.AddTarget(target);
  }
  // Whole-model pull: the best stream count against nginx.
  std::string best;
  double best_median = -1;
  for (int streams : config_.pull_streams) {
    std::string id = absl::StrCat("pull/pstore/", streams);
    std::optional<double> m = median(id);
    if (m.has_value() && *m > best_median) {
      best_median = *m;
      best = id;
    }
  }
  const Series* best_series = results_.Find(best);
  ratio(Target{"whole-model pull vs nginx",
               absl::StrCat("pull pstore best (",
                            best_series != nullptr ? best_series->config
                                                   : std::string("-"),
                            ") / nginx one file"),
               {},
               true,
               0.85,
               ""},
        best.empty() ? "pull/pstore" : best, "pull/nginx");
  ratio(Target{"pstore-cli pull into a tmpfs file vs nginx",
               absl::StrCat("pull_file pstore-cli, ", config_.pull_file_streams,
                            " streams / nginx one file, a client reading 1 "
                            "MiB per recv() and writing it to the same tmpfs"),
               {},
               true,
               0.85,
               ""},
        "pull_file/pstore", "pull_file/nginx");
  ratio(
      Target{"Python load into torch tensors vs the C++ client's pull",
             absl::StrCat("python pstore.Client.load, ", config_.python_streams,
                          " streams / C++ PullModel into pre-touched "
                          "memory, same streams, same model"),
             {},
             true,
             0.9,
             ""},
      "python/pstore-load", "python/cpp-pull");
}

absl::Status Bench::WriteOutputs() {
  std::string markdown = results_.Markdown();
  std::printf("\n%s", markdown.c_str());
  std::fflush(stdout);
  auto write = [](const std::string& path,
                  const std::string& text) -> absl::Status {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.close();
    if (!out.good()) return absl::UnavailableError("cannot write " + path);
    std::fprintf(stderr, "pstore-bench: wrote %s\n", path.c_str());
    return absl::OkStatus();
  };
  if (!flags_.report.empty())
    PSTORE_RETURN_IF_ERROR(write(flags_.report, markdown));
  if (!flags_.json.empty())
    PSTORE_RETURN_IF_ERROR(write(flags_.json, results_.Json()));
  if (!flags_.png.empty()) {
    if (access(flags_.gnuplot.c_str(), X_OK) != 0) {
      std::fprintf(stderr,
                   "pstore-bench: no PNG: no gnuplot at '%s' (package "
                   "gnuplot-nox; bench/setup installs it)\n",
                   flags_.gnuplot.c_str());
      return absl::OkStatus();
    }
    std::filesystem::path parent =
        std::filesystem::path(flags_.png).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    PSTORE_ASSIGN_OR_RETURN(std::string script,
                            results_.WriteGnuplot(flags_.png));
    std::string log = work_dir_ + "/gnuplot.log";
    ChildProcess gnuplot("gnuplot", {flags_.gnuplot, script}, log);
    PSTORE_RETURN_IF_ERROR(gnuplot.Start());
    PSTORE_ASSIGN_OR_RETURN(int status, gnuplot.Wait(absl::Seconds(120)));
    if (status != 0) {
      return absl::InternalError(absl::StrCat("gnuplot failed (",
                                              DescribeWaitStatus(status),
                                              "): ", gnuplot.LogTail(2000)));
    }
    std::fprintf(stderr, "pstore-bench: wrote %s (script %s)\n",
                 flags_.png.c_str(), script.c_str());
  }
  return absl::OkStatus();
}

int Bench::Run() {
  auto start = Clock::now();
  std::string load_at_start = LoadAverage();
  results_.set_machine(DescribeMachine(flags_.dir));
  absl::Status setup = Setup();
  if (!setup.ok()) {
    Fail("setup", setup);
    if (pstored_ != nullptr) {
      std::fprintf(stderr, "pstored log:\n%s\n", pstored_->LogTail().c_str());
    }
    Teardown();
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> settings = {
      {"mode", flags_.quick ? "quick" : "full"},
      {"repetitions", absl::StrCat(config_.repetitions)},
      {"benchmarks", absl::StrJoin(config_.benchmarks, ",")},
      {"server",
       flags_.server.empty()
           ? absl::StrCat("own pstored --dram_bytes=", flags_.dram_bytes,
                          " --nvme_bytes=", flags_.nvme_bytes,
                          " --sync_commits=false",
                          flags_.pstored_flags.empty() ? "" : " ",
                          absl::StrJoin(flags_.pstored_flags, " "))
           : flags_.server},
      {"pstored", server_description_},
      {"block", ShortBytes(block_bytes_)},
      {"put", absl::StrCat(config_.put_tensors, "x",
                           ShortBytes(config_.put_tensor_bytes))},
      {"get", absl::StrCat(config_.get_tensors, "x",
                           ShortBytes(config_.get_tensor_bytes))},
      {"latency_sizes", flags_.latency_sizes},
      {"latency_outstanding", flags_.latency_outstanding},
      {"model",
       absl::StrCat(config_.model.layers, "L/h", config_.model.hidden, "/ffn",
                    config_.model.ffn, "/v", config_.model.vocab, "/",
                    DTypeName(config_.model.dtype))},
      {"pull_streams", flags_.pull_streams},
      {"pull_file", absl::StrCat(config_.pull_file_model.layers, "L/h",
                                 config_.pull_file_model.hidden, "/ffn",
                                 config_.pull_file_model.ffn, "/v",
                                 config_.pull_file_model.vocab, "/",
                                 DTypeName(config_.pull_file_model.dtype), " x",
                                 config_.pull_file_streams, " streams")},
      {"python",
       absl::StrCat(config_.python_model.layers, "L/h",
                    config_.python_model.hidden, "/ffn",
                    config_.python_model.ffn, "/v", config_.python_model.vocab,
                    "/", DTypeName(config_.python_model.dtype), " x",
                    config_.python_streams, " streams")},
      {"encoding_streams", absl::StrCat(config_.encoding_streams)},
  };
  results_.set_settings(settings);

  for (size_t i = 0; i < config_.benchmarks.size(); ++i) {
    const std::string& benchmark = config_.benchmarks[i];
    auto workload_start = Clock::now();
    std::fprintf(stderr, "pstore-bench: running %s\n", benchmark.c_str());
    absl::Status status;
    if (benchmark == "put") {
      status = RunPut();
    } else if (benchmark == "get_dram") {
      status = RunGet("dram");
    } else if (benchmark == "get_nvme") {
      status = RunGet("nvme");
    } else if (benchmark == "get_cold") {
      status = RunGet("cold");
    } else if (benchmark == "latency") {
      status = RunLatency();
    } else if (benchmark == "pull") {
      status = RunPull();
    } else if (benchmark == "pull_file") {
      status = RunPullFile();
    } else if (benchmark == "python") {
      status = RunPython();
    } else if (benchmark == "encodings") {
      status = RunEncodings();
    } else if (benchmark == "rados") {
      status = RunRados();
    } else if (benchmark == "rados_scale") {
      status = RunRadosScale();
    } else if (benchmark == "fleet") {
      status = RunFleet();
    }
    if (!status.ok()) {
      Fail(benchmark, status);
      if (pstored_ != nullptr && !pstored_->Running()) {
        std::fprintf(stderr, "pstored exited; its log:\n%s\n",
                     pstored_->LogTail().c_str());
        break;
      }
    }
    ReleaseAfter(i);
    std::fprintf(stderr, "pstore-bench: %s took %.1f s\n", benchmark.c_str(),
                 SecondsSince(workload_start));
  }
  AddTargets();
  Note(absl::StrCat("Load average (1, 5, 15 min) at the start: ", load_at_start,
                    "; at the end: ", LoadAverage(), " (on ",
                    sysconf(_SC_NPROCESSORS_ONLN),
                    " CPUs; other work on "
                    "the machine shows here)."));
  results_.set_elapsed(absl::Seconds(SecondsSince(start)));
  if (absl::Status s = WriteOutputs(); !s.ok()) Fail("outputs", s);
  Teardown();
  std::fprintf(stderr, "pstore-bench: done in %.1f s\n", SecondsSince(start));
  if (!failures_.empty()) {
    std::fprintf(stderr, "pstore-bench: %zu failure(s):\n", failures_.size());
    for (const std::string& line : failures_) {
      std::fprintf(stderr, "  %s\n", line.c_str());
    }
    return 1;
  }
  return 0;
}

}  // namespace pstore::bench
