// SmallReads: the reads of a pstore::Client that go as one unary ReadTensor
// call instead of a GetTensor stream (a unary call costs less inside gRPC:
// bench/README.md). Internal to client/.
//
// A read is tried as ReadTensor when it is known to be at most
// kMaxSmallReadBytes (the caller's buffer or the range says so, or an
// earlier read of the same tensor and encoding did), or when its size is
// not known at all; it goes as a stream when it is known to be larger, or
// once the server has answered UNIMPLEMENTED (a pstored older than the
// call). A ReadTensor the server refuses as too large (RESOURCE_EXHAUSTED)
// is read as a stream: the one extra round trip a large tensor of unknown
// size costs, once, since the sizes of tensors read are remembered (a
// hint, bounded in number; a wrong one costs a round trip or a stream,
// never a wrong byte).
//
// The reply is checked before any byte reaches the sink: its info must
// describe the range asked for, its bytes must all be there and hash to
// the info's and the chunk's XXH3-64, and a whole raw read to the hash the
// tensor was put with; anything else is DataLoss.
//
// Thread-safe.

#ifndef PSTORE_CLIENT_INTERNAL_SMALL_READS_H_
#define PSTORE_CLIENT_INTERNAL_SMALL_READS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/channels.h"
#include "client/pstore_client.h"
#include "pstore/v1/pstore.pb.h"

namespace pstore::client_internal {

// The most bytes a ReadTensor call sends (proto/pstore/v1/pstore.proto).
inline constexpr uint64_t kMaxSmallReadBytes = uint64_t{1} << 20;

class SmallReads {
 public:
  using Sink = std::function<absl::Status(const v1::TensorInfo& info,
                                          std::span<const uint8_t> bytes)>;

  // Returns true if a read of `name` with `options` should be tried as
  // ReadTensor. `expected_bytes` is what the caller expects the read to
  // send (the size of its buffer), if it knows.
  bool ShouldTry(absl::string_view name, const GetOptions& options,
                 std::optional<uint64_t> expected_bytes);

  // Reads `name` with one ReadTensor call on the next of `channels`,
  // retried on UNAVAILABLE as `client_options` say, and passes the bytes,
  // once checked, to `sink`: in order, in pieces of at most kPieceBytes
  // (call_util.h), or in one call without bytes for an empty read. Returns the
  // info of what was read; nullopt, having called nothing, when the read must
  // go as a stream (the server refused it as too large, or does not have the
  // call). DataLoss for a reply that fails its checks; otherwise the server's
  // code.
  absl::StatusOr<std::optional<v1::TensorInfo>> Read(
      const ClientOptions& client_options, Channels& channels,
      absl::string_view name, const GetOptions& options, const Sink& sink);

  // Records what a read of `name` with `options` sent (`info`), so the
  // next read of that tensor in that encoding goes the right way.
  void Remember(absl::string_view name, const GetOptions& options,
                const v1::TensorInfo& info);

 private:
  // Sizes of tensors remembered at most; past it the memo starts over.
  static constexpr size_t kMaxRemembered = 4096;

  static std::string Key(absl::string_view name, const GetOptions& options);

  std::atomic<bool> unimplemented_{false};
  absl::Mutex mu_;
  // Name and encoding -> bytes of the encoded tensor.
  absl::flat_hash_map<std::string, uint64_t> sizes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pstore::client_internal

#endif  // PSTORE_CLIENT_INTERNAL_SMALL_READS_H_
