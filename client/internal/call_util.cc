#include "client/internal/call_util.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "codec/hash.h"

namespace pstore::client_internal {
namespace {

// Returns the XXH3-64 of the data of `chunk`.
uint64_t HashData(const RawTensorChunk& chunk) {
  if (chunk.data().size() == 1) return Xxh3_64(chunk.data().front());
  Xxh3_64Hasher hasher;
  for (std::span<const uint8_t> span : chunk.data()) hasher.Update(span);
  return hasher.Digest();
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::Status WithContext(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(what, ": ", status.message()));
}

std::string Hex(uint64_t value) {
  return absl::StrCat(absl::Hex(value, absl::kZeroPad16));
}

CancelRegistration::CancelRegistration(Canceller* canceller,
                                       grpc::ClientContext* context)
    : canceller_(canceller), context_(context) {
  if (canceller_ != nullptr) registered_ = canceller_->Register(context_);
}

CancelRegistration::~CancelRegistration() {
  if (registered_) canceller_->Unregister(context_);
}

absl::Status CancelRegistration::status() const {
  if (canceller_ != nullptr && !registered_) {
    return absl::CancelledError("cancelled by the caller");
  }
  return absl::OkStatus();
}

void SetDeadline(const ClientOptions& options, grpc::ClientContext* context) {
  if (options.call_timeout > absl::ZeroDuration()) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(options.call_timeout));
  }
  if (!options.token.empty()) {
    context->AddMetadata("authorization", "Bearer " + options.token);
  }
}

absl::Status CheckChunk(const RawTensorChunk& raw, uint64_t expected_offset,
                        uint64_t remaining, absl::string_view name,
                        bool verify_hash) {
  const v1::TensorChunk& chunk = raw.fields();
  if (chunk.offset() != expected_offset) {
    return absl::DataLossError(
        absl::StrCat(name, ": chunk at offset ", chunk.offset(),
                     " arrived where offset ", expected_offset, " was due"));
  }
  if (raw.data_size() > remaining) {
    return absl::DataLossError(absl::StrCat(
        name, ": chunk at offset ", chunk.offset(), " runs past the end"));
  }
  if (!verify_hash) return absl::OkStatus();
  uint64_t hash = HashData(raw);
  if (hash != chunk.xxh3_64()) {
    return absl::DataLossError(
        absl::StrCat(name, ": chunk at offset ", chunk.offset(), " hashes to ",
                     Hex(hash), ", not ", Hex(chunk.xxh3_64())));
  }
  return absl::OkStatus();
}

}  // namespace pstore::client_internal
