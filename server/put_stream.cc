#include "server/put_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/convert.h"
#include "storage/names.h"
#include "util/status.h"

namespace pstore {

PutTensorReactor::PutTensorReactor(
    grpc::CallbackServerContext* context, StreamAdmission admission,
    TieredStore* store, ThreadPool* pool, grpc::ByteBuffer* raw_response,
    PutCounters* counters, ServerMetrics* metrics, const Authorizer* auth)
    : admission_(std::move(admission)),
      context_(context),
      store_(store),
      pool_(pool),
      raw_response_(raw_response),
      counters_(counters),
      metrics_(metrics),
      auth_(auth),
      start_(absl::Now()) {
  StartRead(&raw_request_);
}

void PutTensorReactor::OnReadDone(bool ok) {
  if (!ok) {
    // Either the client half-closed (commit) or the call is cancelled.
    if (context_->IsCancelled()) {
      pool_->Schedule([this] { Fail(absl::CancelledError("put cancelled")); });
    } else {
      pool_->Schedule([this] { Commit(); });
    }
    return;
  }
  pool_->Schedule([this] { Process(); });
}

void PutTensorReactor::Process() {
  // Data messages (all but the first) go from gRPC's receive slices into
  // the tensor's block without a parse into a string: no copy, and no fresh
  // multi-MiB string to fault in per message.
  // Dump replaces what slices_ held.
  const bool data_only = writer_ != nullptr &&
                         raw_request_.Dump(&slices_).ok() &&
                         PutDataPieces(slices_, pieces_);
  const absl::Status appended = data_only ? AppendPieces() : absl::OkStatus();
  slices_.clear();  // Gives back the references to gRPC's slices.
  if (data_only) {
    raw_request_.Clear();
    if (!appended.ok()) {
      Fail(appended);
      return;
    }
    StartRead(&raw_request_);
    return;
  }
  request_.Clear();
  absl::Status parsed = ParseRaw(raw_request_, &request_);
  raw_request_.Clear();
  if (!parsed.ok()) {
    Fail(parsed);
    return;
  }
  if (request_.has_header()) {
    if (writer_ != nullptr) {
      Fail(absl::InvalidArgumentError(
          "PutTensor got a second header; send one header, then data"));
      return;
    }
    const v1::PutTensorRequest::Header& header = request_.header();
    absl::StatusOr<TensorName> name = ParseTensorName(header.name());
    if (!name.ok()) {
      Fail(name.status());
      return;
    }
    if (auth_ != nullptr) {
      absl::Status allowed =
          auth_->Check(*context_, Scope::kWrite, name->revision.model);
      if (!allowed.ok()) {
        Fail(allowed);
        return;
      }
    }
    absl::StatusOr<DType> dtype = ParseDType(header.dtype());
    if (!dtype.ok()) {
      Fail(dtype.status());
      return;
    }
    PutTensorSpec spec;
    spec.name = *std::move(name);
    spec.dtype = *dtype;
    spec.shape.assign(header.shape().begin(), header.shape().end());
    if (!IsValidEntryKind(static_cast<uint32_t>(header.kind()))) {
      Fail(absl::InvalidArgumentError(absl::StrCat(
          "put of ", header.name(), ": unknown entry kind ", header.kind())));
      return;
    }
    spec.kind = static_cast<EntryKind>(header.kind());
    if (header.has_xxh3_64()) spec.expected_xxh3_64 = header.xxh3_64();
    absl::StatusOr<std::unique_ptr<TensorWriter>> writer =
        store_->PutTensor(std::move(spec));
    if (!writer.ok()) {
      Fail(writer.status());
      return;
    }
    writer_ = *std::move(writer);
  } else if (request_.part_case() == v1::PutTensorRequest::kData) {
    if (writer_ == nullptr) {
      Fail(absl::InvalidArgumentError(
          "PutTensor got data before its header; send the header first"));
      return;
    }
    const std::string& data = request_.data();
    counters_->bytes_received.fetch_add(data.size(), std::memory_order_relaxed);
    absl::Status appended = writer_->Append(
        {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    if (!appended.ok()) {
      Fail(appended);
      return;
    }
  } else {
    Fail(absl::InvalidArgumentError(
        "PutTensor got a message with neither header nor data"));
    return;
  }
  request_.Clear();
  StartRead(&raw_request_);
}

absl::Status PutTensorReactor::AppendPieces() {
  for (std::span<const uint8_t> piece : pieces_) {
    counters_->bytes_received.fetch_add(piece.size(),
                                        std::memory_order_relaxed);
    PSTORE_RETURN_IF_ERROR(writer_->Append(piece));
  }
  return absl::OkStatus();
}

void PutTensorReactor::Commit() {
  if (writer_ == nullptr) {
    Fail(absl::InvalidArgumentError("PutTensor stream ended without a header"));
    return;
  }
  absl::StatusOr<TensorMeta> meta = writer_->Commit();
  if (!meta.ok()) {
    Fail(meta.status());
    return;
  }
  writer_.reset();
  v1::TensorInfo info;
  ToTensorInfo(*meta, &info);
  bool own_buffer = false;
  FinishCall(grpc::SerializationTraits<v1::TensorInfo>::Serialize(
      info, raw_response_, &own_buffer));
}

void PutTensorReactor::Fail(const absl::Status& status) {
  if (writer_ != nullptr) writer_->Abort();
  writer_.reset();
  FinishCall(ToGrpcStatus(status));
}

void PutTensorReactor::FinishCall(const grpc::Status& status) {
  if (metrics_ != nullptr) {
    metrics_->ObserveRpc("PutTensor", status.error_code(),
                         absl::Now() - start_);
  }
  admission_.ReleaseSlot();
  Finish(status);
}

void PutTensorReactor::OnDone() {
  // Deleting the reactor gives back its admission: the slot, if Finish did
  // not, and the gate.
  if (writer_ == nullptr) {
    delete this;
    return;
  }
  // Aborting a put does I/O: not on a gRPC thread.
  pool_->Schedule([this] {
    writer_.reset();
    delete this;
  });
}

}  // namespace pstore
