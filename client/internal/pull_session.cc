#include "client/internal/pull_session.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/internal/call_util.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/sync_stream.h"
#include "util/status.h"

namespace pstore::client_internal {
namespace {

// Bytes read back at a time to hash a tensor stored through write.
constexpr size_t kReadBackBytes = 1 << 20;

}  // namespace

PullSession::PullSession(Client& client, Channels& channels,
                         absl::string_view name, const PullOptions& options,
                         const PullCallbacks& callbacks)
    : client_(client),
      channels_(channels),
      client_options_(client.options()),
      name_(name),
      options_(options),
      callbacks_(callbacks) {}

absl::StatusOr<PullResult> PullSession::Run() {
  if (options_.streams < 1 || options_.streams > 256) {
    return absl::InvalidArgumentError("streams must be in 1..256");
  }
  if (options_.chunk_bytes > (16u << 20)) {
    return absl::InvalidArgumentError("chunk_bytes must be in 0..16 MiB");
  }
  const bool to_memory = static_cast<bool>(callbacks_.allocate);
  const bool through_write = static_cast<bool>(callbacks_.write);
  if (to_memory == through_write ||
      through_write != static_cast<bool>(callbacks_.read_back)) {
    return absl::InvalidArgumentError(
        "a pull takes PullCallbacks::allocate, or write and read_back");
  }
  if (absl::Status resolved = ResolveManifest(); !resolved.ok()) {
    return resolved;
  }
  shard_status_.resize(options_.streams);
  std::vector<std::thread> threads;
  for (int shard = 1; shard < options_.streams; ++shard) {
    threads.emplace_back([this, shard] { RunShard(shard); });
  }
  RunShard(0);
  for (std::thread& thread : threads) thread.join();
  return Finish();
}

absl::Status PullSession::ResolveManifest() {
  absl::StatusOr<v1::Revision> revision =
      client_.GetRevision(name_, /*with_blocks=*/false, options_.canceller);
  if (!revision.ok()) return revision.status();
  result_.revision = *std::move(revision);
  const v1::Revision& manifest = result_.revision;
  num_tensors_ = manifest.tensors_size();
  absl::StatusOr<Encoding> requested = ParseEncoding(options_.encoding);
  if (!requested.ok()) return requested.status();

  tensors_ = std::make_unique<TensorState[]>(num_tensors_);
  for (size_t i = 0; i < num_tensors_; ++i) {
    TensorState& state = tensors_[i];
    v1::TensorInfo& info = state.info;
    info = manifest.tensors(i);
    absl::StatusOr<DType> dtype = ParseDType(info.dtype());
    if (!dtype.ok()) return dtype.status();
    std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
    Encoding encoding = EncodingForPull(*dtype, shape, *requested);
    if (absl::Status valid = CheckEncodable(*dtype, shape, encoding);
        !valid.ok()) {
      return absl::DataLossError(absl::StrCat(
          "pull ", name_, ": the server's manifest has ", info.name(),
          " with a shape that is not valid: ", valid.message()));
    }
    info.set_encoding(std::string(EncodingName(encoding)));
    info.set_byte_length(EncodedTensorBytes(*dtype, shape, encoding));
    if (encoding != Encoding::kRaw) info.clear_xxh3_64();
    state.placed_info = info;
    if (callbacks_.allocate) {
      absl::StatusOr<std::span<uint8_t>> memory = callbacks_.allocate(info);
      if (!memory.ok()) return memory.status();
      if (memory->size() != info.byte_length()) {
        return absl::InvalidArgumentError(
            absl::StrCat("allocate gave ", memory->size(), " bytes for ",
                         info.name(), " of ", info.byte_length()));
      }
      state.memory = *memory;
    }
    if (info.has_xxh3_64()) state.expected_hash = info.xxh3_64();
    total_bytes_ += info.byte_length();
  }
  return absl::OkStatus();
}

void PullSession::RunShard(int shard) {
  uint64_t shard_retries = 0;
  StreamState stream;
  shard_status_[shard] = WithRetries(
      client_options_, client_options_.max_attempts,
      [&] { return ReadShardOnce(shard, &stream); }, &shard_retries,
      options_.canceller);
  retries_ += shard_retries;
}

absl::Status PullSession::ReadShardOnce(int shard, StreamState* stream) {
  TakeBackClaims(stream);
  stream->current = SIZE_MAX;
  stream->expected_offset = 0;
  stream->part_hasher.Reset();

  Channels::Connection& connection = channels_.Get(shard);
  grpc::ClientContext context;
  SetDeadline(client_options_, &context);
  CancelRegistration registration(options_.canceller, &context);
  PSTORE_RETURN_IF_ERROR(registration.status());
  v1::PullModelRequest request;
  request.set_name(result_.revision.name());
  request.set_encoding(options_.encoding);
  request.set_shard_index(shard);
  request.set_shard_count(options_.streams);
  request.set_max_chunk_bytes(options_.chunk_bytes != 0
                                  ? options_.chunk_bytes
                                  : client_options_.chunk_bytes);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader = StartRawRead(
      connection.channel.get(), connection.pull_model, &context, request);
  grpc::ByteBuffer message;
  RawTensorChunk raw;
  absl::Status failed;
  while (failed.ok() && reader->Read(&message)) {
    failed = raw.Parse(message);
    if (failed.ok()) failed = TakeChunk(raw, stream);
  }
  if (!failed.ok()) {
    context.TryCancel();
    (void)reader->Finish();  // The failure found here is the cause.
    return failed;
  }
  return FromGrpc(reader->Finish());
}

absl::Status PullSession::TakeChunk(const RawTensorChunk& raw,
                                    StreamState* stream) {
  const v1::TensorChunk& chunk = raw.fields();
  const size_t index = chunk.tensor_index();
  if (index >= num_tensors_) {
    return absl::DataLossError("chunk names an unknown tensor");
  }
  TensorState& state = tensors_[index];
  const v1::TensorInfo& info = state.info;
  if (chunk.has_info()) {
    if (chunk.info().stored_xxh3_64() != info.stored_xxh3_64() ||
        chunk.info().encoding() != info.encoding()) {
      return absl::DataLossError(
          absl::StrCat(info.name(), " differs from the manifest"));
    }
    if (chunk.info().offset() > info.byte_length()) {
      return absl::DataLossError(absl::StrCat(
          info.name(), ": a part starts at offset ", chunk.info().offset(),
          ", past its ", info.byte_length(), " bytes"));
    }
    stream->current = index;
    stream->part_begin = chunk.info().offset();
    stream->expected_offset = chunk.info().offset();
    stream->part_hasher.Reset();
    Learn(index, chunk.info());
  }
  if (index != stream->current) {
    return absl::DataLossError("chunk arrived out of order");
  }
  PSTORE_RETURN_IF_ERROR(
      CheckChunk(raw, stream->expected_offset,
                 info.byte_length() - stream->expected_offset, info.name()));
  const uint64_t size = raw.data_size();
  // A retry resends the parts of tensors already done and handed to the
  // caller: checked, never written again.
  const bool resent = state.done.load();
  if (!resent) {
    PSTORE_RETURN_IF_ERROR(
        ClaimRange(index, chunk.offset(), chunk.offset() + size));
    if (size != 0) {
      stream->claims.push_back({index, chunk.offset(), chunk.offset() + size});
    }
  }
  uint64_t at = chunk.offset();
  absl::Status stored =
      ForEachPiece(raw, [&](std::span<const uint8_t> piece) -> absl::Status {
        stream->part_hasher.Update(piece);
        absl::Status written;
        if (!resent && callbacks_.write) {
          written = callbacks_.write(state.placed_info, at, piece);
        } else if (!resent) {
          std::memcpy(state.memory.data() + at, piece.data(), piece.size());
        }
        at += piece.size();
        return written;
      });
  if (!stored.ok()) {
    return WithContext(stored, absl::StrCat("pull ", info.name(), ": write"));
  }
  stream->expected_offset += size;
  if (!resent) {
    state.received += size;
    if (callbacks_.progress && size != 0) {
      absl::MutexLock lock(&callback_mu_);
      received_total_ += size;
      callbacks_.progress(received_total_, total_bytes_);
    }
  }
  if (!chunk.last()) return absl::OkStatus();
  const uint64_t part_hash = stream->part_hasher.Digest();
  if (part_hash != chunk.xxh3_64_of_all()) {
    return absl::DataLossError(
        absl::StrCat(info.name(), ": the bytes of this stream hash to ",
                     Hex(part_hash), ", not ", Hex(chunk.xxh3_64_of_all())));
  }
  if (chunk.has_final_info()) Learn(index, chunk.final_info());
  // A part that runs from the first byte to the last brought the whole
  // tensor: its hash, checked above, is the tensor's.
  std::optional<uint64_t> whole_part_hash;
  if (stream->part_begin == 0 &&
      stream->expected_offset == info.byte_length()) {
    whole_part_hash = part_hash;
  }
  return CompleteTensor(index, whole_part_hash, &stream->read_back_buffer);
}

void PullSession::Learn(size_t index, const v1::TensorInfo& reported) {
  TensorState& state = tensors_[index];
  bool whole = reported.offset() == 0 &&
               reported.byte_length() == state.info.byte_length();
  absl::MutexLock lock(&callback_mu_);
  if (whole && reported.has_xxh3_64()) {
    state.expected_hash = reported.xxh3_64();
  }
  if (whole && reported.has_quantization_error()) {
    *state.info.mutable_quantization_error() = reported.quantization_error();
  }
}

absl::Status PullSession::ClaimRange(size_t index, uint64_t begin,
                                     uint64_t end) {
  if (begin == end) return absl::OkStatus();
  TensorState& state = tensors_[index];
  absl::MutexLock lock(&state.ranges_mu);
  auto next = state.ranges.lower_bound(begin);
  bool overlaps = next != state.ranges.end() && next->first < end;
  if (!overlaps && next != state.ranges.begin()) {
    overlaps = std::prev(next)->second > begin;
  }
  if (overlaps) {
    return absl::DataLossError(absl::StrCat(
        state.info.name(), ": bytes ", begin, "..", end, " arrived twice"));
  }
  state.ranges.emplace(begin, end);
  return absl::OkStatus();
}

void PullSession::TakeBackClaims(StreamState* stream) {
  for (const Claim& claimed : stream->claims) {
    TensorState& state = tensors_[claimed.index];
    if (state.done) continue;
    state.received -= claimed.end - claimed.begin;
    absl::MutexLock lock(&state.ranges_mu);
    state.ranges.erase(claimed.begin);
  }
  stream->claims.clear();
}

absl::StatusOr<uint64_t> PullSession::HashStored(size_t index,
                                                 std::vector<uint8_t>* buffer) {
  const TensorState& state = tensors_[index];
  if (!callbacks_.write) {
    return Xxh3_64(state.memory.data(), state.memory.size());
  }
  const uint64_t size = state.placed_info.byte_length();
  if (buffer->size() < kReadBackBytes && size > buffer->size()) {
    buffer->resize(kReadBackBytes);
  }
  Xxh3_64Hasher hasher;
  for (uint64_t offset = 0; offset < size; offset += buffer->size()) {
    std::span<uint8_t> piece(buffer->data(),
                             std::min<uint64_t>(buffer->size(), size - offset));
    PSTORE_RETURN_IF_ERROR(
        callbacks_.read_back(state.placed_info, offset, piece));
    hasher.Update(piece);
  }
  return hasher.Digest();
}

absl::Status PullSession::CompleteTensor(
    size_t index, std::optional<uint64_t> whole_part_hash,
    std::vector<uint8_t>* buffer) {
  TensorState& state = tensors_[index];
  const v1::TensorInfo& info = state.info;
  if (state.received.load() != info.byte_length()) return absl::OkStatus();
  if (state.done.exchange(true)) return absl::OkStatus();
  uint64_t hash;
  if (whole_part_hash.has_value()) {
    hash = *whole_part_hash;
  } else {
    absl::StatusOr<uint64_t> stored = HashStored(index, buffer);
    if (!stored.ok()) {
      return WithContext(stored.status(),
                         absl::StrCat("pull ", info.name(), ": read back"));
    }
    hash = *stored;
  }
  absl::MutexLock lock(&callback_mu_);
  // An encoded tensor cut across streams has no whole hash until the
  // server has encoded it once; every chunk and part was checked.
  if (state.expected_hash.has_value() && hash != *state.expected_hash) {
    return absl::DataLossError(
        absl::StrCat("pull ", info.name(), ": the tensor hashes to ", Hex(hash),
                     ", not ", Hex(*state.expected_hash)));
  }
  state.info.set_xxh3_64(hash);
  if (callbacks_.done) callbacks_.done(state.info);
  return absl::OkStatus();
}

absl::StatusOr<PullResult> PullSession::Finish() {
  for (const absl::Status& status : shard_status_) {
    if (!status.ok()) return WithContext(status, absl::StrCat("pull ", name_));
  }
  std::vector<uint8_t> read_back_buffer;
  for (size_t i = 0; i < num_tensors_; ++i) {
    if (tensors_[i].done) continue;
    PSTORE_RETURN_IF_ERROR(
        CompleteTensor(i, /*whole_part_hash=*/std::nullopt, &read_back_buffer));
    if (!tensors_[i].done) {
      return absl::DataLossError(absl::StrCat(
          "pull ", name_, ": ", tensors_[i].info.name(), " is incomplete"));
    }
  }
  result_.bytes = total_bytes_;
  result_.retries = retries_;
  return std::move(result_);
}

}  // namespace pstore::client_internal
