// grpc-ceiling: the plain gRPC peer of pstore-bench (bench/peer.proto).
// Serves pstore.bench.Ceiling on the callback API from pre-built messages:
// a Chunk of N bytes is serialized once, as one slice, and every reply of
// that size hands gRPC a reference to it (as pstored hands over slices of
// cached blocks). No storage and no hashing: what a stream or a unary call
// costs here is the transport's price, the ceiling for pstored's reads.
//
//   grpc-ceiling --listen 127.0.0.1:0 --port_file /tmp/port
//
// Stops on SIGTERM or SIGINT.

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "bench/peer.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

constexpr uint32_t kMaxStreamMessageBytes = 16 << 20;
constexpr uint32_t kMaxUnaryBytes = 64 << 20;

// Serialized Chunk messages, one per size, built on first use and shared by
// every call (a ByteBuffer copy only takes a reference to the slice).
class MessageCache {
 public:
  // Returns a Chunk whose `data` holds `bytes` pseudo-random bytes.
  grpc::ByteBuffer Get(uint32_t bytes) {
    absl::MutexLock lock(&mu_);
    auto it = messages_.find(bytes);
    if (it != messages_.end()) return it->second;
    // Tag of field 1, wire type 2, then the varint length, then the bytes.
    std::string header(1, '\x0a');
    uint32_t length = bytes;
    while (length >= 0x80) {
      header.push_back(static_cast<char>((length & 0x7f) | 0x80));
      length >>= 7;
    }
    header.push_back(static_cast<char>(length));
    grpc::Slice slice(header.size() + bytes);
    uint8_t* data = const_cast<uint8_t*>(slice.begin());
    std::memcpy(data, header.data(), header.size());
    std::mt19937_64 rng(bytes);
    uint8_t* payload = data + header.size();
    for (uint32_t i = 0; i < bytes; i += 8) {
      uint64_t word = rng();
      std::memcpy(payload + i, &word, std::min<uint32_t>(8, bytes - i));
    }
    grpc::ByteBuffer buffer(&slice, 1);
    messages_.emplace(bytes, buffer);
    return buffer;
  }

 private:
  absl::Mutex mu_;
  std::map<uint32_t, grpc::ByteBuffer> messages_ ABSL_GUARDED_BY(mu_);
};

// Parses a small request from a raw byte buffer.
template <typename Message>
bool ParseRaw(const grpc::ByteBuffer& buffer, Message* message) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return message->ParseFromString(bytes);
}

// Sends `remaining` bytes in messages of at most `message_bytes`, one write
// in flight.
class StreamReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  StreamReactor(MessageCache* cache, uint64_t bytes, uint32_t message_bytes)
      : cache_(cache), remaining_(bytes), message_bytes_(message_bytes) {
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    if (remaining_ == 0) {
      Finish(grpc::Status::OK);
      return;
    }
    uint32_t size =
        static_cast<uint32_t>(std::min<uint64_t>(remaining_, message_bytes_));
    remaining_ -= size;
    buffer_ = cache_->Get(size);
    StartWrite(&buffer_);
  }

  MessageCache* const cache_;
  uint64_t remaining_;
  const uint32_t message_bytes_;
  grpc::ByteBuffer buffer_;
};

class FailedStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit FailedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

using CeilingBase = pstore::bench::Ceiling::WithRawCallbackMethod_Stream<
    pstore::bench::Ceiling::WithRawCallbackMethod_Unary<
        pstore::bench::Ceiling::CallbackService>>;

class CeilingService final : public CeilingBase {
 public:
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Stream(
      grpc::CallbackServerContext* /*context*/,
      const grpc::ByteBuffer* raw) override {
    pstore::bench::StreamRequest request;
    if (!ParseRaw(*raw, &request) || request.message_bytes() == 0 ||
        request.message_bytes() > kMaxStreamMessageBytes) {
      return new FailedStream(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "bad StreamRequest (message_bytes in 1..16 MiB)"));
    }
    return new StreamReactor(&cache_, request.bytes(), request.message_bytes());
  }

  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* raw,
                                  grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    pstore::bench::UnaryRequest request;
    if (!ParseRaw(*raw, &request) || request.bytes() > kMaxUnaryBytes) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "bad UnaryRequest (bytes up to 64 MiB)"));
      return reactor;
    }
    *response = cache_.Get(request.bytes());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  MessageCache cache_;
};

// Writes `port` to `path` atomically.
bool WritePortFile(const std::string& path, int port) {
  std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << "\n";
    if (!out.good()) return false;
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  return !error;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil keeps the Mutex deadlock detector on (no NDEBUG);
  // gRPC's locks are Abseil's too. pstored turns it off: so do its peers.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::string listen = "127.0.0.1:0";
  std::string port_file;
  CLI::App app("grpc-ceiling: plain gRPC streaming and unary server");
  app.add_option("--listen", listen, "host:port (port 0: any free port)");
  app.add_option("--port_file", port_file, "write the bound port here");
  CLI11_PARSE(app, argc, argv);

  CeilingService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  // As pstored: 64 MiB requests, no limit on replies.
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(-1);
  // As pstored (server/server.cc): HTTP/2's largest frames.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, (16 << 20) - 1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "grpc-ceiling: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    std::fprintf(stderr, "grpc-ceiling: cannot write %s\n", port_file.c_str());
    return 1;
  }
  std::fprintf(stderr, "grpc-ceiling: serving on port %d\n", port);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  std::fflush(nullptr);
  std::_Exit(0);
}
