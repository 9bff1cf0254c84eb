// What every call of pstore::Client shares: the mapping of gRPC's status,
// retries with backoff, deadlines and the bearer token, raw streaming
// reads, and the checks of a chunk as it arrives. Internal to client/.
//
// Functions only; each is safe to call from any thread.

#ifndef PSTORE_CLIENT_INTERNAL_CALL_UTIL_H_
#define PSTORE_CLIENT_INTERNAL_CALL_UTIL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/internal/raw_chunk.h"
#include "client/pstore_client.h"
#include "grpcpp/client_context.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"
#include "grpcpp/support/sync_stream.h"

namespace pstore::client_internal {

// Received bytes go to the hashes and the destination in pieces of at most
// this size, each still in cache when the next consumer reads it.
inline constexpr size_t kPieceBytes = 256 << 10;

// Returns `status` as an absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status);

// Returns `status` with "`what`: " before its message; OK stays OK.
absl::Status WithContext(const absl::Status& status, absl::string_view what);

// Returns `value` as 16 hex digits.
std::string Hex(uint64_t value);

// Runs `attempt` until it succeeds, fails with a code other than
// UNAVAILABLE, or has run `max_attempts` times (at least once); sleeps with
// jittered exponential backoff in between, as `options` say. Adds the
// attempts after the first to `*retries` if given. Returns the last
// attempt's status, or CANCELLED if `canceller` (if given) is cancelled
// during a backoff.
template <typename Fn>
absl::Status WithRetries(const ClientOptions& options, int max_attempts,
                         Fn attempt, uint64_t* retries = nullptr,
                         Canceller* canceller = nullptr) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options.initial_backoff;
  absl::Status status;
  for (int i = 0; i < std::max(1, max_attempts); ++i) {
    if (i > 0) {
      if (retries != nullptr) ++*retries;
      std::uniform_real_distribution<double> jitter(0.5, 1.0);
      const absl::Duration pause = backoff * jitter(rng);
      if (canceller == nullptr) {
        absl::SleepFor(pause);
      } else if (!canceller->SleepUnlessCancelled(pause)) {
        return absl::CancelledError("cancelled by the caller");
      }
      backoff = std::min(backoff * 2, options.max_backoff);
    }
    status = attempt();
    if (!absl::IsUnavailable(status)) return status;
  }
  return status;
}

// Registers a call's context with `canceller` (none: does nothing) from
// construction to destruction, so that Canceller::Cancel() cancels the
// call. Construct it before the call starts.
class CancelRegistration {
 public:
  CancelRegistration(Canceller* canceller, grpc::ClientContext* context);
  ~CancelRegistration();
  CancelRegistration(const CancelRegistration&) = delete;
  CancelRegistration& operator=(const CancelRegistration&) = delete;

  // Returns CANCELLED if the canceller was cancelled before the call could
  // start (do not start it), else OK.
  absl::Status status() const;

 private:
  Canceller* const canceller_;
  grpc::ClientContext* const context_;
  bool registered_ = false;
};

// Sets the call's deadline (options.call_timeout) and bearer token.
void SetDeadline(const ClientOptions& options, grpc::ClientContext* context);

// Starts server-streaming call `method` on `channel` and returns a reader of
// its responses as they came off the wire, unparsed: the generated stub's
// reader, minus protobuf's copy of every message.
template <typename Request>
std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> StartRawRead(
    grpc::ChannelInterface* channel, const grpc::internal::RpcMethod& method,
    grpc::ClientContext* context, const Request& request) {
  return std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>>(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
          channel, method, context, request));
}

// Calls `fn` with the data of `chunk`, in order, in non-empty pieces of at
// most kPieceBytes; stops at and returns the first error `fn` returns.
template <typename Fn>
absl::Status ForEachPiece(const RawTensorChunk& chunk, Fn fn) {
  for (std::span<const uint8_t> span : chunk.data()) {
    for (size_t at = 0; at < span.size(); at += kPieceBytes) {
      absl::Status status =
          fn(span.subspan(at, std::min(kPieceBytes, span.size() - at)));
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

// Checks that a chunk of tensor `name` comes at `expected_offset` and holds
// at most `remaining` bytes and, if `verify_hash`, that its data hash to its
// own xxh3_64. DataLoss if not.
absl::Status CheckChunk(const RawTensorChunk& raw, uint64_t expected_offset,
                        uint64_t remaining, absl::string_view name,
                        bool verify_hash = true);

}  // namespace pstore::client_internal

#endif  // PSTORE_CLIENT_INTERNAL_CALL_UTIL_H_
