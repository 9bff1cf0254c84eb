// PullSession: one Client::PullModel call, from the manifest to the
// result. Internal to client/.
//
// The session resolves the revision once, asks the caller for each
// tensor's memory (or stores the bytes through the caller's write), then
// reads shard i of the revision on stream i
// (PullOptions::streams of them, spread over the client's channels), each
// stream on its own thread, the first on the calling thread. A stream
// that fails with UNAVAILABLE is read again from its start, after the byte
// ranges it had claimed are given back; the parts of tensors already
// complete are checked again but never rewritten.
//
// Every chunk is checked before any of its bytes is written: it must name
// a tensor of the manifest, follow the part it belongs to, fit in the
// tensor, hash to its own hash, and cover bytes no other chunk covered;
// the bytes of each part must hash to what the part's last chunk says, and
// a complete tensor to its whole hash when one is known. The hash of a
// tensor that came as one part, on one stream, is that part's; one split
// across streams is hashed again where it was stored (the caller's memory,
// or read back through the caller's read_back). Any mismatch is DataLoss.
//
// Thread-safe as used: the streams share the tensors' progress (atomics),
// their byte ranges (a mutex per tensor) and the callbacks (one mutex).
// Run once.

#ifndef PSTORE_CLIENT_INTERNAL_PULL_SESSION_H_
#define PSTORE_CLIENT_INTERNAL_PULL_SESSION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/channels.h"
#include "client/internal/raw_chunk.h"
#include "client/pstore_client.h"
#include "codec/hash.h"
#include "pstore/v1/pstore.pb.h"

namespace pstore::client_internal {

class PullSession {
 public:
  // A session of `client` that pulls revision `name` over `channels` (the
  // client's) as `options` say, into memory `callbacks` give. Keeps
  // references to all of them until Run returns.
  PullSession(Client& client, Channels& channels, absl::string_view name,
              const PullOptions& options, const PullCallbacks& callbacks);

  PullSession(const PullSession&) = delete;
  PullSession& operator=(const PullSession&) = delete;

  // Pulls the revision. Returns its manifest and the bytes and retries of
  // the pull. InvalidArgument for bad options or memory of the wrong size
  // from allocate; DataLoss for a manifest the pull cannot follow or bytes
  // that fail a check; the error of allocate; else the first failed
  // stream's code after its retries.
  absl::StatusOr<PullResult> Run();

 private:
  // Progress of one tensor, shared by the streams.
  struct TensorState {
    v1::TensorInfo info;  // What this pull sends of the tensor.
    // `info` as allocate saw it; never changed once the streams run, so
    // write and read_back get it from any thread.
    v1::TensorInfo placed_info;
    std::span<uint8_t> memory;  // Empty when the bytes go through write.
    std::atomic<uint64_t> received{0};
    std::atomic<bool> done{false};
    // The byte ranges received, start -> end, so that a part sent twice is
    // caught rather than counted: bytes received == byte_length then means
    // every byte arrived.
    absl::Mutex ranges_mu;
    std::map<uint64_t, uint64_t> ranges ABSL_GUARDED_BY(ranges_mu);
    // The hash of the encoded tensor, once known (from the manifest, or a
    // chunk that reports it). Guarded by callback_mu_ once streams run.
    std::optional<uint64_t> expected_hash;
  };

  // A byte range one stream claimed in its current attempt.
  struct Claim {
    size_t index;
    uint64_t begin;
    uint64_t end;
  };

  // What one attempt of one stream has seen so far.
  struct StreamState {
    size_t current = SIZE_MAX;  // The tensor of the part being read.
    uint64_t part_begin = 0;    // Where that part starts in the tensor.
    uint64_t expected_offset = 0;
    Xxh3_64Hasher part_hasher;  // This stream's bytes of `current`.
    // Ranges this attempt added, taken back if it fails so that a retry
    // can send them again.
    std::vector<Claim> claims;
    // Bytes read back to hash a tensor that came in several parts; kept
    // from one tensor to the next.
    std::vector<uint8_t> read_back_buffer;
  };

  // Resolves the revision to its manifest, works out what the pull sends
  // of each tensor (its encoding and size) and gets its memory from
  // callbacks_.allocate. Errors as Run.
  absl::Status ResolveManifest();

  // Reads shard `shard` with retries into shard_status_[shard]; adds its
  // retries to retries_.
  void RunShard(int shard);

  // Reads shard `shard` once, from its start, on stream state `stream`;
  // first takes back the claims of the attempt before. Returns the first
  // chunk's error (the call is then cancelled), or the call's status.
  absl::Status ReadShardOnce(int shard, StreamState* stream);

  // Takes one chunk of a stream: checks it, claims its byte range, copies
  // its bytes into place (or passes them to write) and hashes them; at a
  // part's last chunk checks the part's hash and completes the tensor.
  // DataLoss for a chunk that does not fit; the error of write or
  // CompleteTensor.
  absl::Status TakeChunk(const RawTensorChunk& raw, StreamState* stream);

  // Takes what a chunk's info says of the whole tensor `index`: its
  // encoded hash and quantization error.
  void Learn(size_t index, const v1::TensorInfo& reported);

  // Records bytes [begin, end) of tensor `index` as received; DataLoss if
  // some of them already were.
  absl::Status ClaimRange(size_t index, uint64_t begin, uint64_t end);

  // Gives back every range `stream` claimed for tensors not yet done.
  void TakeBackClaims(StreamState* stream);

  // Marks tensor `index` done once all its bytes are in: checks the
  // whole hash if known and calls callbacks_.done. `whole_part_hash` is
  // the hash of the part that brought every byte of the tensor, if one
  // did; else the stored bytes are hashed (read back into `buffer` when
  // they went through write). OK (and nothing done) while bytes are
  // missing or if it is done already; DataLoss if the bytes hash to
  // something else; the error of read_back.
  absl::Status CompleteTensor(size_t index,
                              std::optional<uint64_t> whole_part_hash,
                              std::vector<uint8_t>* buffer);

  // Returns the hash of the stored bytes of tensor `index`: its memory,
  // or what read_back gives, read into `buffer`. The error of read_back.
  absl::StatusOr<uint64_t> HashStored(size_t index,
                                      std::vector<uint8_t>* buffer);

  // Ends the pull once every stream has: the first stream error, else
  // completes what is left and returns the result. DataLoss if a tensor
  // is incomplete.
  absl::StatusOr<PullResult> Finish();

  Client& client_;
  Channels& channels_;
  const ClientOptions& client_options_;
  const std::string name_;
  const PullOptions& options_;
  const PullCallbacks& callbacks_;

  PullResult result_;  // result_.revision is the manifest.
  std::unique_ptr<TensorState[]> tensors_;
  size_t num_tensors_ = 0;
  uint64_t total_bytes_ = 0;

  absl::Mutex callback_mu_;
  uint64_t received_total_ ABSL_GUARDED_BY(callback_mu_) = 0;
  std::atomic<uint64_t> retries_{0};
  std::vector<absl::Status> shard_status_;  // One per stream, own thread.
};

}  // namespace pstore::client_internal

#endif  // PSTORE_CLIENT_INTERNAL_PULL_SESSION_H_
