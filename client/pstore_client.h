// pstore::Client: the C++ client library of pstored.
//
// One object talks to one pstored over one or more gRPC channels. Every
// call returns absl::Status or absl::StatusOr with the server's code
// (see proto/pstore/v1/pstore.proto for what each code means).
//
// Integrity: reads check the XXH3-64 of every chunk as it arrives and the
// XXH3-64 of each whole tensor once it is complete; a mismatch is DataLoss
// and the bytes are never handed over as good. Puts send the XXH3-64 of the
// tensor in their header, so the server refuses bytes damaged on the way.
//
// Small reads: GetTensor and GetTensorTo read at most 1 MiB with one unary
// ReadTensor call, checked as a whole before any byte is handed over, and
// larger reads (or every read, from a pstored without ReadTensor) as a
// GetTensor stream. They choose by themselves: by the caller's buffer, the
// range, or the size an earlier read of the tensor found; a read of
// unknown size tries ReadTensor first, which a large one costs a round
// trip, once per tensor and encoding.
//
// Retries: a call that fails with UNAVAILABLE is sent again, with
// exponential backoff, up to ClientOptions::max_attempts times in all, when
// sending it twice is harmless: the reads (GetTensor, GetTensorTo and
// PullModel, which resume where they stopped), StatTensor, ListTensors,
// GetRevision, ListModels, PublishRevision (publishing a published revision
// is OK), PutTensor and PutTensorFrom (a put replaces the tensor),
// Prefetch, DropCache, Verify and GetServerStatus. CreateRevision,
// DeleteRevision, DeleteTensor, Pin and Unpin are sent once: if their reply
// is lost, a second send would fail with ALREADY_EXISTS or NOT_FOUND where
// the first succeeded, so UNAVAILABLE goes back to the caller, who can look
// (GetRevision, StatTensor, GetServerStatus) before trying again. gRPC's
// own transparent retry still resends any call that never left the client.
// Deadlines: every call gets ClientOptions::call_timeout unless a call's
// options say otherwise.
//
// Thread-safe: one Client may be used from many threads at once.

#ifndef PSTORE_CLIENT_PSTORE_CLIENT_H_
#define PSTORE_CLIENT_PSTORE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pstore/v1/pstore.pb.h"

namespace grpc {
class ChannelCredentials;
class ClientContext;
}  // namespace grpc

namespace pstore {
namespace client_internal {
class Channels;
class SmallReads;
}  // namespace client_internal

struct ClientOptions {
  // host:port of pstored. Default: 127.0.0.1:7070.
  std::string address = "127.0.0.1:7070";

  // Deadline of each call, from its start; 0 means none.
  // Default: 10 minutes (a large pull over a slow link takes a while).
  absl::Duration call_timeout = absl::Minutes(10);

  // Attempts of a retried call (see "Retries" above) that fails with
  // UNAVAILABLE (1: no retry). Default: 4.
  int max_attempts = 4;

  // First retry delay; doubles each attempt, with jitter, up to
  // max_backoff. Defaults: 100 ms, 5 s.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);

  // gRPC channels (TCP connections) to open; parallel pulls spread their
  // streams over them. Default: 1.
  int channels = 1;

  // TLS: PEM file of the CA that signs the server's certificate; setting
  // it turns TLS on. Default: none (plaintext).
  std::string tls_ca_file;
  // Mutual TLS: PEM files of this client's certificate chain and key.
  std::string tls_cert_file;
  std::string tls_key_file;
  // The name to check the server's certificate against, when it differs
  // from the address's host. Default: none.
  std::string tls_server_name;

  // Bearer token sent with every call ("authorization: Bearer ..."), for
  // a pstored started with --tokens_file. Default: none.
  std::string token;

  // Bytes of tensor data per message, on puts and (as the server's
  // max_chunk_bytes) on reads. Larger messages cost less per byte
  // (bench/README.md compares sizes).
  // Default: 4 MiB.
  uint32_t chunk_bytes = 4 << 20;
};

struct PutOptions {
  // Send the XXH3-64 of the tensor, computed before sending (a first pass
  // over the bytes), so the server refuses damaged bytes. Default: true.
  bool send_hash = true;
  // What the entry is: a tensor, or a file or shard header of a model
  // directory (U8, one dimension). FailedPrecondition from a pstored that
  // predates kinds (the reply says it stored a tensor).
  v1::EntryKind kind = v1::ENTRY_TENSOR;
};

namespace client_internal {
class CancelRegistration;
}  // namespace client_internal

// Stops reads and pulls in flight from another thread: a GetTensor,
// GetTensorTo, PullModel or GetRevision given a Canceller returns CANCELLED
// soon after Cancel(): its gRPC calls are cancelled, not waited out, and a
// retry's backoff ends. One started after Cancel() returns CANCELLED at
// once. What the Python module uses to end a load on KeyboardInterrupt.
// Thread-safe. REQUIRES: it outlives the calls it is given to.
class Canceller {
 public:
  Canceller() = default;
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;

  // Cancels every call registered now or later. Idempotent.
  void Cancel();
  // Returns whether Cancel() was called.
  bool cancelled() const;
  // Waits `duration` or until Cancel(); returns false if cancelled.
  bool SleepUnlessCancelled(absl::Duration duration);

 private:
  friend class client_internal::CancelRegistration;

  // Registers `context` to be cancelled by Cancel(). Returns false,
  // registering nothing, if Cancel() came first. Unregister before the
  // context is destroyed.
  bool Register(grpc::ClientContext* context);
  void Unregister(grpc::ClientContext* context);

  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);
};

struct GetOptions {
  // "raw" (the stored bytes), "f32", "f16", "bf16", "q8_0" or "q4_0".
  std::string encoding = "raw";
  // Byte range of the encoded tensor; length 0 means to the end.
  uint64_t offset = 0;
  uint64_t length = 0;
  // Bytes of tensor data per message of a stream (the server's
  // max_chunk_bytes), at most 16 MiB; 0 takes ClientOptions::chunk_bytes.
  // Default: 0.
  uint32_t chunk_bytes = 0;
  // Stops the read when cancelled (CANCELLED). Default: none.
  Canceller* canceller = nullptr;
};

struct PullOptions {
  std::string encoding = "raw";
  // Parallel streams, spread over the client's channels. Default: 1.
  int streams = 1;
  // Bytes of tensor data per message of this pull (the server's
  // max_chunk_bytes), at most 16 MiB; 0 takes ClientOptions::chunk_bytes.
  // Default: 0.
  uint32_t chunk_bytes = 0;
  // Stops the pull when cancelled (CANCELLED). Default: none.
  Canceller* canceller = nullptr;
};

// Where a pull puts each tensor and what it tells the caller. Give either
// `allocate` (the pull copies the bytes into memory) or `write` and
// `read_back` (the pull hands the bytes over as they arrive: a file written
// with pwrite, say).
struct PullCallbacks {
  // Returns memory for tensor `info` (info.byte_length() bytes: the size in
  // info.encoding(), which is the pull's encoding where the tensor can take
  // it and "raw" where not; see PullModelRequest). Called on the calling
  // thread, once per tensor, in manifest order, before any byte arrives. An
  // error aborts the pull.
  std::function<absl::StatusOr<std::span<uint8_t>>(const v1::TensorInfo& info)>
      allocate;
  // Instead of allocate: stores `bytes` at `offset` of tensor `info` (info
  // as allocate would get it). Called from the stream threads, at the same
  // time for different byte ranges, in pieces of at most 256 KiB, each
  // only after its chunk passed its checks: it fits the tensor, hashes
  // right, and covers bytes no other part of the pull covered. A stream
  // that is retried stores its ranges again, with the same bytes. An error
  // aborts the pull with that error.
  std::function<absl::Status(const v1::TensorInfo& info, uint64_t offset,
                             std::span<const uint8_t> bytes)>
      write;
  // With write: fills `out` with the bytes stored at `offset` of tensor
  // `info`. The pull reads back a tensor that arrived in more than one part
  // (split across streams) to check its whole hash; a tensor sent whole in
  // one part is checked by that part's hash, as it arrived. Called from the
  // stream threads and the calling thread. An error aborts the pull.
  std::function<absl::Status(const v1::TensorInfo& info, uint64_t offset,
                             std::span<uint8_t> out)>
      read_back;
  // Called once per tensor when all its bytes are in place and checked,
  // with xxh3_64 set to the hash of the bytes received and, for quantized
  // encodings, the error figures when the server reported them for the
  // whole tensor. Calls are serialized, from the stream threads. Optional.
  std::function<void(const v1::TensorInfo& info)> done;
  // Called with the bytes received so far, from the stream threads, at
  // most once per chunk; calls are serialized. Optional.
  std::function<void(uint64_t received, uint64_t total)> progress;
};

struct PullResult {
  v1::Revision revision;  // The manifest, revision resolved.
  uint64_t bytes = 0;
  uint64_t retries = 0;
};

// Sets glibc's allocator to keep large freed buffers on the heap for reuse
// (an mmap threshold of 32 MiB, glibc's largest, and a trim threshold of
// `trim_bytes`): gRPC allocates its receive buffers with malloc, and with
// glibc's defaults a pull faults the pages of most of its buffers in
// afresh (a 1 GiB pull into Python: 47,000 minor faults per GiB and 1.0
// GB/s, against 600-3,600 and 2.3-2.8 GB/s with these settings; README,
// "A data path without page faults"). Process-wide, so an application's
// choice, which the library never makes by itself: pstore-cli, the Python
// module (at import) and the benchmarks call it at start. Does nothing and
// returns false when the environment asks for glibc's own settings: a
// variable PSTORE_MALLOC_DEFAULTS (any value), or GLIBC_TUNABLES naming
// glibc.malloc settings of the user's.
bool KeepFreedBuffersOnHeap(size_t trim_bytes);

// Decodes the bytes of a whole tensor read as `info` describes (encoding
// f32, f16, bf16, q8_0 or q4_0, or raw of a F32/F16/BF16 tensor) into f32
// values: dequantization for q8_0/q4_0. InvalidArgument for other dtypes
// or a size that does not match the shape.
absl::StatusOr<std::vector<float>> DecodeToFloat(
    const v1::TensorInfo& info, std::span<const uint8_t> bytes);

class Client {
 public:
  // Creates a client; connects lazily. InvalidArgument for bad options;
  // NotFound if a TLS file cannot be read.
  static absl::StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  ~Client();

  // --- Tensors ---
  // Stores `data` as tensor `name` ("MODEL@REV/TENSOR").
  absl::StatusOr<v1::TensorInfo> PutTensor(absl::string_view name,
                                           absl::string_view dtype,
                                           std::span<const int64_t> shape,
                                           std::span<const uint8_t> data,
                                           const PutOptions& options = {});

  // Stores `byte_length` bytes that `read` supplies, in pieces: read(offset,
  // out) fills `out` with bytes [offset, offset + out.size()). It may be
  // called twice per byte when PutOptions::send_hash is set.
  absl::StatusOr<v1::TensorInfo> PutTensorFrom(
      absl::string_view name, absl::string_view dtype,
      std::span<const int64_t> shape, uint64_t byte_length,
      absl::FunctionRef<absl::Status(uint64_t offset, std::span<uint8_t> out)>
          read,
      const PutOptions& options = {});

  // Reads tensor `name` into `out`, which must hold exactly the bytes the
  // read sends (Stat the tensor, or use the overload below).
  // InvalidArgument if `out` has the wrong size.
  absl::StatusOr<v1::TensorInfo> GetTensor(absl::string_view name,
                                           std::span<uint8_t> out,
                                           const GetOptions& options = {});

  // Reads tensor `name` into a new buffer: one of 4 MiB or more is backed
  // by transparent huge pages where the kernel grants them on request, so
  // that filling it faults once per 2 MiB rather than once per page.
  absl::StatusOr<std::pair<v1::TensorInfo, std::vector<uint8_t>>> GetTensor(
      absl::string_view name, const GetOptions& options = {});

  // Streams tensor `name` to `sink` in order, in pieces: each call passes
  // the bytes that follow those of the previous call (at most 256 KiB; a
  // chunk of the stream may take several calls, and a chunk without bytes
  // one call with none). A read of at most 1 MiB (one ReadTensor call) is
  // checked whole before any byte is passed on. On a stream, a whole tensor
  // is checked once, end to end, against the hash it was put with when the
  // last byte is in; a range or a first encoding has each chunk checked
  // before any of it is passed on and the stream's hash at the end. The
  // bytes the sink saw are good only if the call returns OK. For reads too
  // large to hold in memory (pstore-cli get).
  absl::StatusOr<v1::TensorInfo> GetTensorTo(
      absl::string_view name, const GetOptions& options,
      const std::function<absl::Status(const v1::TensorInfo& info,
                                       std::span<const uint8_t> bytes)>& sink);

  absl::StatusOr<v1::TensorInfo> StatTensor(absl::string_view name);
  // Returns every tensor of `revision` whose name starts with `prefix`,
  // following pages.
  absl::StatusOr<std::vector<v1::TensorInfo>> ListTensors(
      absl::string_view revision, absl::string_view prefix = "");
  // Deletes tensor `name` of an open revision. Sent once (not retried).
  absl::Status DeleteTensor(absl::string_view name);

  // --- Revisions ---
  // Creates open revision `name` ("MODEL@REV"). Sent once (not retried).
  absl::StatusOr<v1::Revision> CreateRevision(
      absl::string_view name,
      const std::map<std::string, std::string>& metadata = {});
  // Publishes revision `name`; publishing a published one is OK. Retried.
  absl::StatusOr<v1::Revision> PublishRevision(absl::string_view name);
  // Deletes revision `name` and its tensors. Sent once (not retried).
  absl::Status DeleteRevision(absl::string_view name);
  // Returns the manifest of `name` ("MODEL@REV" or "MODEL"), with each
  // entry's block ids if `with_blocks`.
  absl::StatusOr<v1::Revision> GetRevision(absl::string_view name,
                                           bool with_blocks = false,
                                           Canceller* canceller = nullptr);
  absl::StatusOr<std::vector<v1::Model>> ListModels();

  // Pulls every tensor of revision `name` over PullOptions::streams
  // parallel streams into memory the callbacks provide, or through their
  // write. The revision is resolved once, so a publish during the pull does
  // not mix revisions. InvalidArgument if the callbacks give neither
  // allocate nor write and read_back, or both; DataLoss for bytes that fail
  // a check (see "Integrity").
  absl::StatusOr<PullResult> PullModel(absl::string_view name,
                                       const PullOptions& options,
                                       const PullCallbacks& callbacks);

  // --- Operator calls ---
  // Pins revision `name` ("MODEL@REV" or "MODEL"): its blocks are never
  // evicted from DRAM. Returns the bytes pinned in all. Sent once (not
  // retried).
  absl::StatusOr<uint64_t> Pin(absl::string_view name);
  // Unpins revision `name`. Sent once (not retried).
  absl::Status Unpin(absl::string_view name);
  absl::StatusOr<v1::PrefetchResponse> Prefetch(absl::string_view name,
                                                v1::Tier tier);
  absl::Status DropCache(v1::Tier tier);
  absl::StatusOr<v1::ServerStatus> GetServerStatus();
  // Scrubs revision `name` on the server (see the Verify RPC).
  absl::StatusOr<v1::VerifyResponse> Verify(absl::string_view name);

  // Runs one garbage collection of a RADOS-backed store (see the
  // CollectGarbage RPC).
  absl::StatusOr<v1::CollectGarbageResponse> CollectGarbage(bool dry_run);

  const ClientOptions& options() const { return options_; }

 private:
  Client(ClientOptions options,
         std::shared_ptr<grpc::ChannelCredentials> credentials);

  // Reads as GetTensorTo does: as one ReadTensor call when the read is
  // small, else as a GetTensor stream. `expected_bytes` is what the
  // caller's buffer holds, if it has one.
  absl::StatusOr<v1::TensorInfo> ReadTo(
      absl::string_view name, const GetOptions& options,
      std::optional<uint64_t> expected_bytes,
      const std::function<absl::Status(const v1::TensorInfo& info,
                                       std::span<const uint8_t> bytes)>& sink);
  // Reads as GetTensorTo does, as a GetTensor stream.
  absl::StatusOr<v1::TensorInfo> StreamTo(
      absl::string_view name, const GetOptions& options,
      const std::function<absl::Status(const v1::TensorInfo& info,
                                       std::span<const uint8_t> bytes)>& sink);

  const ClientOptions options_;
  std::unique_ptr<client_internal::Channels> channels_;
  std::unique_ptr<client_internal::SmallReads> small_reads_;
};

}  // namespace pstore

#endif  // PSTORE_CLIENT_PSTORE_CLIENT_H_
