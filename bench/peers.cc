#include "bench/peers.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "bench/wire_clients.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace pstore::bench {
namespace {

// As client/pstore_client.cc: 64 MiB messages, HTTP/2's largest frame and
// a 16 MiB lookahead.
constexpr int kMaxMessageBytes = 64 << 20;
constexpr int kMaxFrameBytes = (16 << 20) - 1;
constexpr int kLookaheadBytes = 16 << 20;
constexpr absl::Duration kStartTimeout = absl::Seconds(30);

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::minutes(10));
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

absl::Status StopChild(std::unique_ptr<ChildProcess>& process) {
  if (process == nullptr || !process->Running()) return absl::OkStatus();
  absl::StatusOr<int> stopped = process->Stop(absl::Seconds(10));
  if (!stopped.ok()) return stopped.status();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CeilingPeer>> CeilingPeer::Start(
    const std::string& binary, const std::string& dir) {
  std::unique_ptr<CeilingPeer> peer(new CeilingPeer());
  std::string port_file = dir + "/grpc-ceiling.port";
  std::filesystem::remove(port_file);
  peer->process_ = std::make_unique<ChildProcess>(
      "grpc-ceiling",
      std::vector<std::string>{binary, "--listen=127.0.0.1:0",
                               "--port_file=" + port_file},
      dir + "/grpc-ceiling.log");
  if (absl::Status s = peer->process_->Start(); !s.ok()) return s;
  absl::StatusOr<int> port =
      peer->process_->WaitForPortFile(port_file, kStartTimeout);
  if (!port.ok()) return port.status();
  peer->address_ = absl::StrCat("127.0.0.1:", *port);
  peer->EnsureChannels(1);
  return peer;
}

CeilingPeer::~CeilingPeer() {
  stubs_.clear();
  (void)Stop();  // Best effort; Stop ends in SIGKILL.
}

void CeilingPeer::EnsureChannels(int count) {
  while (static_cast<int>(stubs_.size()) < count) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("pstore.channel_index", static_cast<int>(stubs_.size()));
    args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, kMaxFrameBytes);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kLookaheadBytes);
    stubs_.push_back(pstore::bench::Ceiling::NewStub(grpc::CreateCustomChannel(
        address_, grpc::InsecureChannelCredentials(), args)));
  }
}

absl::Status CeilingPeer::Stream(int channel, uint64_t bytes,
                                 uint32_t message_bytes,
                                 std::span<uint8_t> out) {
  if (out.size() < bytes) {
    return absl::InvalidArgumentError("ceiling stream: buffer too small");
  }
  grpc::ClientContext context;
  SetDeadline(&context);
  pstore::bench::StreamRequest request;
  request.set_bytes(bytes);
  request.set_message_bytes(message_bytes);
  std::unique_ptr<grpc::ClientReader<pstore::bench::Chunk>> reader =
      stubs_[channel % stubs_.size()]->Stream(&context, request);
  pstore::bench::Chunk chunk;
  uint64_t received = 0;
  while (reader->Read(&chunk)) {
    const std::string& data = chunk.data();
    if (received + data.size() > bytes) {
      context.TryCancel();
      (void)reader->Finish();  // The overrun is the error that matters.
      return absl::InternalError("ceiling stream: too many bytes");
    }
    std::memcpy(out.data() + received, data.data(), data.size());
    received += data.size();
  }
  if (absl::Status s = FromGrpc(reader->Finish(), "ceiling stream"); !s.ok()) {
    return s;
  }
  if (received != bytes) {
    return absl::InternalError(
        absl::StrCat("ceiling stream: received ", received, " of ", bytes));
  }
  return absl::OkStatus();
}

absl::Status CeilingPeer::Unary(int channel, uint32_t bytes,
                                std::span<uint8_t> out) {
  grpc::ClientContext context;
  SetDeadline(&context);
  pstore::bench::UnaryRequest request;
  request.set_bytes(bytes);
  pstore::bench::Chunk chunk;
  grpc::Status status =
      stubs_[channel % stubs_.size()]->Unary(&context, request, &chunk);
  if (absl::Status s = FromGrpc(status, "ceiling unary"); !s.ok()) return s;
  if (chunk.data().size() != bytes || out.size() < bytes) {
    return absl::InternalError("ceiling unary: wrong size");
  }
  std::memcpy(out.data(), chunk.data().data(), bytes);
  return absl::OkStatus();
}

absl::Status CeilingPeer::Stop() {
  stubs_.clear();
  return StopChild(process_);
}

absl::StatusOr<std::unique_ptr<NginxPeer>> NginxPeer::Start(
    const std::string& binary, const std::string& dir,
    const std::string& root) {
  std::unique_ptr<NginxPeer> peer(new NginxPeer());
  absl::StatusOr<int> port = FreeLoopbackPort();
  if (!port.ok()) return port.status();
  peer->port_ = *port;
  std::string prefix = dir + "/nginx";
  std::filesystem::create_directories(prefix + "/logs");
  std::string conf = prefix + "/nginx.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << "worker_processes 1;\n"
        << "daemon off;\n"
        << "pid " << prefix << "/nginx.pid;\n"
        << "error_log " << prefix << "/logs/error.log;\n"
        << "events { worker_connections 64; }\n"
        << "http {\n"
        << "  access_log off;\n"
        << "  sendfile on;\n"
        << "  tcp_nopush on;\n"
        << "  client_body_temp_path " << prefix << "/body;\n"
        << "  server {\n"
        << "    listen 127.0.0.1:" << *port << ";\n"
        << "    root " << root << ";\n"
        << "  }\n"
        << "}\n";
    if (!out.good()) return absl::UnavailableError("cannot write " + conf);
  }
  peer->process_ = std::make_unique<ChildProcess>(
      "nginx",
      std::vector<std::string>{binary, "-p", prefix, "-c", conf, "-e",
                               prefix + "/logs/error.log"},
      prefix + "/logs/stderr.log");
  if (absl::Status s = peer->process_->Start(); !s.ok()) return s;
  if (absl::Status s = peer->process_->WaitForTcp(*port, kStartTimeout);
      !s.ok()) {
    return s;
  }
  return peer;
}

NginxPeer::~NginxPeer() { (void)Stop(); }  // Best effort.

absl::StatusOr<uint64_t> NginxPeer::Get(absl::string_view path,
                                        std::span<uint8_t> buffer) {
  return HttpGet(port_, path, buffer);
}

absl::StatusOr<uint64_t> NginxPeer::GetToFile(absl::string_view path,
                                              std::span<uint8_t> buffer,
                                              int out_fd) {
  return HttpGet(port_, path, buffer, out_fd);
}

std::vector<pid_t> NginxPeer::pids() const {
  return ProcessAndChildren(process_->pid());
}

absl::Status NginxPeer::Stop() { return StopChild(process_); }

absl::StatusOr<std::unique_ptr<RedisPeer>> RedisPeer::Start(
    const std::string& binary, const std::string& dir) {
  std::unique_ptr<RedisPeer> peer(new RedisPeer());
  absl::StatusOr<int> port = FreeLoopbackPort();
  if (!port.ok()) return port.status();
  peer->port_ = *port;
  std::string work = dir + "/redis";
  std::filesystem::create_directories(work);
  peer->process_ = std::make_unique<ChildProcess>(
      "redis-server",
      std::vector<std::string>{binary, "--port", absl::StrCat(*port), "--bind",
                               "127.0.0.1", "--protected-mode", "yes", "--save",
                               "", "--appendonly", "no", "--proto-max-bulk-len",
                               "512mb", "--daemonize", "no", "--dir", work,
                               "--logfile", ""},
      work + "/redis.log");
  if (absl::Status s = peer->process_->Start(); !s.ok()) return s;
  if (absl::Status s = peer->process_->WaitForTcp(*port, kStartTimeout);
      !s.ok()) {
    return s;
  }
  return peer;
}

RedisPeer::~RedisPeer() { (void)Stop(); }  // Best effort.

absl::Status RedisPeer::Stop() { return StopChild(process_); }

absl::StatusOr<FioResult> RunFio(const std::string& binary,
                                 const std::vector<std::string>& args,
                                 const std::string& dir,
                                 absl::Duration timeout) {
  std::string output = dir + "/fio.json";
  std::filesystem::remove(output);
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--output-format=json");
  argv.push_back("--output=" + output);
  std::string log = dir + "/fio.log";
  std::filesystem::remove(log);
  ChildProcess fio("fio", argv, log);
  if (absl::Status s = fio.Start(); !s.ok()) return s;
  absl::StatusOr<int> status = fio.Wait(timeout);
  if (!status.ok()) return status.status();
  if (*status != 0) {
    return absl::InternalError(absl::StrCat(
        "fio failed (", DescribeWaitStatus(*status), "): ", fio.LogTail(1500)));
  }
  std::ifstream in(output);
  std::stringstream text;
  text << in.rdbuf();
  std::string json_text = text.str();
  // fio may print notes before the document.
  size_t open = json_text.find('{');
  if (open == std::string::npos) {
    return absl::InternalError("fio wrote no JSON: " + fio.LogTail(1500));
  }
  nlohmann::json doc =
      nlohmann::json::parse(json_text.substr(open), nullptr, false);
  if (doc.is_discarded() || !doc.contains("jobs") || doc["jobs"].empty()) {
    return absl::InternalError("fio JSON without jobs");
  }
  const nlohmann::json& job = doc["jobs"][0];
  if (job.value("error", 0) != 0) {
    return absl::InternalError(absl::StrCat(
        "fio job error ", job.value("error", 0), ": ", fio.LogTail(1500)));
  }
  const nlohmann::json& read = job["read"];
  FioResult result;
  double runtime_ms = read.value("runtime", 0.0);
  double io_bytes = read.value("io_bytes", 0.0);
  result.bytes_per_second = runtime_ms > 0 ? io_bytes / (runtime_ms / 1000.0)
                                           : read.value("bw_bytes", 0.0);
  result.bytes = static_cast<uint64_t>(io_bytes);
  result.ios = read.value("total_ios", uint64_t{0});
  result.minor_faults = job.value("minf", uint64_t{0});
  const nlohmann::json& lat = read["lat_ns"];
  result.max_us = lat.value("max", 0.0) / 1000.0;
  if (lat.contains("percentile")) {
    const nlohmann::json& p = lat["percentile"];
    result.p50_us = p.value("50.000000", 0.0) / 1000.0;
    result.p90_us = p.value("90.000000", 0.0) / 1000.0;
    result.p99_us = p.value("99.000000", 0.0) / 1000.0;
    result.p999_us = p.value("99.900000", 0.0) / 1000.0;
  }
  if (job.contains("job options")) {
    result.engine = job["job options"].value("ioengine", "");
  }
  return result;
}

}  // namespace pstore::bench
