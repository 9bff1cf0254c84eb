#include "server/service.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "server/convert.h"
#include "storage/names.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr uint32_t kDefaultChunkBytes = 1 << 20;
constexpr uint32_t kMaxChunkBytes = 16 << 20;
constexpr uint32_t kMaxShards = 1024;
constexpr int kDefaultPageSize = 1000;

absl::StatusOr<uint32_t> ChunkBytes(uint32_t requested) {
  if (requested == 0) return kDefaultChunkBytes;
  if (requested > kMaxChunkBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_chunk_bytes ", requested, " is above the limit ", kMaxChunkBytes));
  }
  return requested;
}

// A stream that fails at once with `status`.
class FailedStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  FailedStream(const absl::Status& status, const char* method,
               ServerMetrics* metrics) {
    grpc::Status failed = ToGrpcStatus(status);
    if (metrics != nullptr) {
      metrics->ObserveRpc(method, failed.error_code(), absl::ZeroDuration());
    }
    Finish(failed);
  }
  void OnDone() override { delete this; }
};

// A put refused before it starts.
class RefusedPut : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  RefusedPut(const absl::Status& status, ServerMetrics* metrics) {
    grpc::Status refused = ToGrpcStatus(status);
    if (metrics != nullptr) {
      metrics->ObserveRpc("PutTensor", refused.error_code(),
                          absl::ZeroDuration());
    }
    Finish(refused);
  }
  void OnDone() override { delete this; }
};

absl::Status TooManyStreams(absl::string_view kind, int limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("pstored already serves ", limit, " ", kind,
                   " streams, its limit; retry with backoff"));
}

absl::Status DrainingError() {
  return absl::UnavailableError(
      "pstored is shutting down; retry on another replica or after restart");
}

// Returns the part of `tensor` read in `encoding` over bytes [offset,
// offset + length) of the encoded tensor (length 0: to the end), as
// tensor `index` of the stream.
absl::StatusOr<StreamSource> MakeSource(const TieredStore& store,
                                        const TensorMeta& tensor,
                                        Encoding encoding, uint64_t offset,
                                        uint64_t length, uint32_t index) {
  TensorMeta view = EncodedView(tensor, encoding);
  StreamSource source;
  source.tensor_index = index;
  source.meta = tensor;
  source.encoding = encoding;
  PSTORE_ASSIGN_OR_RETURN(source.slices, SliceTensor(view, offset, length));
  uint64_t sent = length == 0 ? view.byte_length - offset : length;
  source.whole = offset == 0 && sent == view.byte_length;
  ToTensorInfo(tensor, &source.info);
  source.info.set_encoding(std::string(EncodingName(encoding)));
  source.info.set_offset(offset);
  source.info.set_byte_length(sent);
  source.info.clear_xxh3_64();
  if (!source.whole) return source;
  if (IsIdentityEncoding(tensor.dtype, encoding)) {
    source.info.set_xxh3_64(tensor.xxh3_64);
  } else if (std::optional<EncodedTensorSummary> summary =
                 store.FindEncodedSummary(tensor, encoding)) {
    source.info.set_xxh3_64(summary->xxh3_64);
    if (IsQuantized(encoding)) {
      v1::QuantizationError* error = source.info.mutable_quantization_error();
      error->set_max_abs_error(summary->stats.max_abs_error);
      error->set_rms_error(summary->stats.RmsError());
      error->set_relative_rms_error(summary->stats.RelativeRmsError());
    }
  }
  return source;
}

// Returns the sources of shard `shard` of `count` of a pull of `tensors`,
// each in the encoding EncodingForPull gives it: the revision's encoded
// blocks, in manifest order, cut into `count` contiguous runs of about
// equal bytes.
std::vector<StreamSource> PlanShard(const TieredStore& store,
                                    const std::vector<TensorMeta>& tensors,
                                    Encoding requested, uint32_t shard,
                                    uint32_t count) {
  std::vector<TensorMeta> views;
  std::vector<Encoding> encodings;
  uint64_t total = 0;
  for (const TensorMeta& tensor : tensors) {
    encodings.push_back(EncodingForPull(tensor.dtype, tensor.shape, requested));
    views.push_back(EncodedView(tensor, encodings.back()));
    total += views.back().byte_length;
  }
  auto shard_of = [&](uint64_t offset) -> uint32_t {
    if (total == 0) return 0;
    unsigned __int128 scaled =
        static_cast<unsigned __int128>(offset) * count / total;
    return static_cast<uint32_t>(
        std::min<unsigned __int128>(scaled, count - 1));
  };
  std::vector<StreamSource> sources;
  uint64_t base = 0;
  for (size_t index = 0; index < tensors.size(); ++index) {
    // The whole tensor, sliced; a slice cannot fail.
    StreamSource source = *MakeSource(store, tensors[index], encodings[index],
                                      0, 0, static_cast<uint32_t>(index));
    std::vector<BlockSlice> mine;
    if (source.slices.empty()) {
      if (shard_of(base) == shard) sources.push_back(std::move(source));
      base += views[index].byte_length;
      continue;
    }
    for (const BlockSlice& slice : source.slices) {
      if (shard_of(base + slice.tensor_offset) == shard) mine.push_back(slice);
    }
    base += views[index].byte_length;
    if (mine.empty()) continue;
    if (mine.size() != source.slices.size()) {
      uint64_t bytes = 0;
      for (const BlockSlice& slice : mine) bytes += slice.length;
      source.whole = false;
      source.info.set_offset(mine.front().tensor_offset);
      source.info.set_byte_length(bytes);
      source.info.clear_xxh3_64();
      source.info.clear_quantization_error();
      source.slices = std::move(mine);
    }
    sources.push_back(std::move(source));
  }
  return sources;
}

}  // namespace

ParamStoreService::ParamStoreService(TieredStore* store, ServiceOptions options)
    : store_(store),
      options_(std::move(options)),
      started_(absl::Now()),
      workers_(
          std::make_unique<ThreadPool>("pstore-rpc", options_.worker_threads)),
      admin_(std::make_unique<ThreadPool>("pstore-admin",
                                          options_.admin_threads)) {
  stream_counters_.readahead_budget_bytes = options_.readahead_budget_bytes;
}

ParamStoreService::~ParamStoreService() = default;

absl::Status ParamStoreService::Authorize(
    const grpc::CallbackServerContext& context, Scope scope,
    absl::string_view model) const {
  if (options_.auth == nullptr) return absl::OkStatus();
  return options_.auth->Check(context, scope, model);
}

template <typename Request, typename Response, typename Fn>
grpc::ServerUnaryReactor* ParamStoreService::RunUnary(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response, ThreadPool* pool, const char* method,
    Fn fn) {
  absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!gate_.Enter()) {
    grpc::Status refused = ToGrpcStatus(DrainingError());
    if (options_.metrics != nullptr) {
      options_.metrics->ObserveRpc(method, refused.error_code(),
                                   absl::Now() - start);
    }
    reactor->Finish(refused);
    return reactor;
  }
  pool->Schedule([this, context, raw_request, raw_response, reactor, method,
                  start, fn = std::move(fn)]() mutable {
    grpc::Status status = grpc::Status::CANCELLED;
    if (!context->IsCancelled()) {
      Request request;
      Response response;
      absl::Status done = ParseRaw(*raw_request, &request);
      if (done.ok()) done = fn(&request, &response);
      status = ToGrpcStatus(done);
      bool own_buffer = false;
      if (status.ok()) {
        status = grpc::SerializationTraits<Response>::Serialize(
            response, raw_response, &own_buffer);
      }
    }
    if (options_.metrics != nullptr) {
      options_.metrics->ObserveRpc(method, status.error_code(),
                                   absl::Now() - start);
    }
    reactor->Finish(status);
    gate_.Leave();
  });
  return reactor;
}

grpc::ServerReadReactor<grpc::ByteBuffer>* ParamStoreService::PutTensor(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* raw_response) {
  // Take a slot first, so that concurrent calls cannot all pass the check.
  if (put_counters_.streams_in_flight.fetch_add(1) >=
      static_cast<uint64_t>(options_.max_put_streams)) {
    put_counters_.streams_in_flight.fetch_sub(1);
    return new RefusedPut(TooManyStreams("put", options_.max_put_streams),
                          options_.metrics);
  }
  if (!gate_.Enter()) {
    put_counters_.streams_in_flight.fetch_sub(1);
    return new RefusedPut(DrainingError(), options_.metrics);
  }
  return new PutTensorReactor(context, store_, workers_.get(), raw_response,
                              &put_counters_, &gate_, options_.metrics,
                              options_.auth);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* ParamStoreService::GetTensor(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw) {
  v1::GetTensorRequest request;
  absl::Status status = ParseRaw(*raw, &request);
  absl::StatusOr<Encoding> encoding = ParseEncoding(request.encoding());
  if (status.ok()) status = encoding.status();
  absl::StatusOr<uint32_t> chunk_bytes = ChunkBytes(request.max_chunk_bytes());
  if (status.ok()) status = chunk_bytes.status();
  absl::StatusOr<TensorName> name = ParseTensorName(request.name());
  if (status.ok()) status = name.status();
  if (status.ok()) {
    status = Authorize(*context, Scope::kRead, name->revision.model);
  }
  if (!status.ok()) {
    return new FailedStream(status, "GetTensor", options_.metrics);
  }
  // Take a slot first, so that concurrent calls cannot all pass the check;
  // the reactor gives it back when it finishes the call.
  if (stream_counters_.streams_in_flight.fetch_add(1) >=
      static_cast<uint64_t>(options_.max_read_streams)) {
    stream_counters_.streams_in_flight.fetch_sub(1);
    return new FailedStream(TooManyStreams("read", options_.max_read_streams),
                            "GetTensor", options_.metrics);
  }
  if (!gate_.Enter()) {
    stream_counters_.streams_in_flight.fetch_sub(1);
    return new FailedStream(DrainingError(), "GetTensor", options_.metrics);
  }

  TieredStore* store = store_;
  auto planner =
      [store, name = *std::move(name), encoding = *encoding,
       request](CatalogRead mode) -> absl::StatusOr<std::vector<StreamSource>> {
    PSTORE_ASSIGN_OR_RETURN(TensorMeta meta, store->StatTensor(name, mode));
    PSTORE_RETURN_IF_ERROR(
        Annotate(CheckEncodable(meta.dtype, meta.shape, encoding),
                 meta.name.ToString()));
    if (IsQuantized(encoding)) {
      uint64_t block =
          encoding == Encoding::kQ8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
      if (request.offset() % block != 0 || request.length() % block != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a ", EncodingName(encoding), " byte range must start and end on ",
            block, "-byte block boundaries; got offset ", request.offset(),
            " length ", request.length()));
      }
    }
    PSTORE_ASSIGN_OR_RETURN(StreamSource source,
                            MakeSource(*store, meta, encoding, request.offset(),
                                       request.length(), 0));
    std::vector<StreamSource> sources;
    sources.push_back(std::move(source));
    return sources;
  };
  ReadStreamOptions options;
  options.max_chunk_bytes = *chunk_bytes;
  options.readahead_bytes = options_.readahead_bytes;
  return new ReadStreamReactor(store_, workers_.get(), std::move(planner),
                               options, &stream_counters_, &gate_, "GetTensor",
                               options_.metrics);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* ParamStoreService::PullModel(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw) {
  v1::PullModelRequest request;
  absl::Status status = ParseRaw(*raw, &request);
  absl::StatusOr<Encoding> encoding = ParseEncoding(request.encoding());
  if (status.ok()) status = encoding.status();
  absl::StatusOr<uint32_t> chunk_bytes = ChunkBytes(request.max_chunk_bytes());
  if (status.ok()) status = chunk_bytes.status();
  absl::StatusOr<RevisionName> name = ParseRevisionName(request.name());
  if (status.ok()) status = name.status();
  uint32_t shard_count = std::max<uint32_t>(1, request.shard_count());
  if (status.ok() &&
      (shard_count > kMaxShards || request.shard_index() >= shard_count)) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "shard ", request.shard_index(), " of ", shard_count,
        " is not valid: want shard_index < shard_count <= ", kMaxShards));
  }
  if (status.ok()) status = Authorize(*context, Scope::kRead, name->model);
  if (!status.ok()) {
    return new FailedStream(status, "PullModel", options_.metrics);
  }
  // Take a slot first, so that concurrent calls cannot all pass the check;
  // the reactor gives it back when it finishes the call.
  if (stream_counters_.streams_in_flight.fetch_add(1) >=
      static_cast<uint64_t>(options_.max_read_streams)) {
    stream_counters_.streams_in_flight.fetch_sub(1);
    return new FailedStream(TooManyStreams("read", options_.max_read_streams),
                            "PullModel", options_.metrics);
  }
  if (!gate_.Enter()) {
    stream_counters_.streams_in_flight.fetch_sub(1);
    return new FailedStream(DrainingError(), "PullModel", options_.metrics);
  }

  TieredStore* store = store_;
  uint32_t shard = request.shard_index();
  auto planner =
      [store, name = *std::move(name), encoding = *encoding, shard,
       shard_count](
          CatalogRead mode) -> absl::StatusOr<std::vector<StreamSource>> {
    // A manifest is many records: always read on the pool.
    if (mode == CatalogRead::kMemoryOnly) return WouldBlockError("manifest");
    PSTORE_ASSIGN_OR_RETURN(auto manifest, store->catalog().GetManifest(name));
    return PlanShard(*store, manifest.second, encoding, shard, shard_count);
  };
  ReadStreamOptions options;
  options.max_chunk_bytes = *chunk_bytes;
  options.readahead_bytes = options_.readahead_bytes;
  return new ReadStreamReactor(store_, workers_.get(), std::move(planner),
                               options, &stream_counters_, &gate_, "PullModel",
                               options_.metrics);
}

grpc::ServerUnaryReactor* ParamStoreService::StatTensor(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::StatTensorRequest, v1::TensorInfo>(
      context, raw_request, raw_response, workers_.get(), "StatTensor",
      [this, context](const v1::StatTensorRequest* request,
                      v1::TensorInfo* response) {
        PSTORE_ASSIGN_OR_RETURN(TensorName name,
                                ParseTensorName(request->name()));
        PSTORE_RETURN_IF_ERROR(
            Authorize(*context, Scope::kRead, name.revision.model));
        PSTORE_ASSIGN_OR_RETURN(TensorMeta meta, store_->StatTensor(name));
        ToTensorInfo(meta, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::ListTensors(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::ListTensorsRequest, v1::ListTensorsResponse>(
      context, raw_request, raw_response, workers_.get(), "ListTensors",
      [this, context](const v1::ListTensorsRequest* request,
                      v1::ListTensorsResponse* response) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->revision()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kRead, name.model));
        int page_size =
            request->page_size() == 0 ? kDefaultPageSize : request->page_size();
        PSTORE_ASSIGN_OR_RETURN(
            TensorPage page,
            store_->ListTensors(name, request->prefix(), page_size,
                                request->page_token()));
        for (const TensorMeta& meta : page.tensors) {
          ToTensorInfo(meta, response->add_tensors());
        }
        response->set_next_page_token(page.next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::DeleteTensor(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::DeleteTensorRequest, v1::DeleteTensorResponse>(
      context, raw_request, raw_response, workers_.get(), "DeleteTensor",
      [this, context](const v1::DeleteTensorRequest* request,
                      v1::DeleteTensorResponse* /*response*/) {
        PSTORE_ASSIGN_OR_RETURN(TensorName name,
                                ParseTensorName(request->name()));
        PSTORE_RETURN_IF_ERROR(
            Authorize(*context, Scope::kWrite, name.revision.model));
        return store_->DeleteTensor(name);
      });
}

grpc::ServerUnaryReactor* ParamStoreService::CreateRevision(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::CreateRevisionRequest, v1::Revision>(
      context, raw_request, raw_response, workers_.get(), "CreateRevision",
      [this, context](const v1::CreateRevisionRequest* request,
                      v1::Revision* response) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kWrite, name.model));
        std::map<std::string, std::string> metadata(request->metadata().begin(),
                                                    request->metadata().end());
        PSTORE_RETURN_IF_ERROR(store_->CreateRevision(name, metadata));
        PSTORE_ASSIGN_OR_RETURN(RevisionInfo info,
                                store_->catalog().GetRevision(name));
        ToRevision(info, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::PublishRevision(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::PublishRevisionRequest, v1::Revision>(
      context, raw_request, raw_response, workers_.get(), "PublishRevision",
      [this, context](const v1::PublishRevisionRequest* request,
                      v1::Revision* response) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kWrite, name.model));
        PSTORE_RETURN_IF_ERROR(store_->PublishRevision(name));
        PSTORE_ASSIGN_OR_RETURN(RevisionInfo info,
                                store_->catalog().GetRevision(name));
        ToRevision(info, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::DeleteRevision(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::DeleteRevisionRequest, v1::DeleteRevisionResponse>(
      context, raw_request, raw_response, workers_.get(), "DeleteRevision",
      [this, context](const v1::DeleteRevisionRequest* request,
                      v1::DeleteRevisionResponse* /*response*/) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kWrite, name.model));
        return store_->DeleteRevision(name);
      });
}

grpc::ServerUnaryReactor* ParamStoreService::GetRevision(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::GetRevisionRequest, v1::Revision>(
      context, raw_request, raw_response, workers_.get(), "GetRevision",
      [this, context](const v1::GetRevisionRequest* request,
                      v1::Revision* response) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kRead, name.model));
        PSTORE_ASSIGN_OR_RETURN(auto manifest,
                                store_->catalog().GetManifest(name));
        ToRevision(manifest.first, response);
        uint64_t total = 0;
        for (const TensorMeta& meta : manifest.second) {
          ToTensorInfo(meta, response->add_tensors());
          total += meta.byte_length;
        }
        response->set_total_bytes(total);
        std::vector<std::string> pins = store_->ListPins();
        response->set_pinned(std::find(pins.begin(), pins.end(),
                                       manifest.first.name.ToString()) !=
                             pins.end());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::ListModels(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::ListModelsRequest, v1::ListModelsResponse>(
      context, raw_request, raw_response, workers_.get(), "ListModels",
      [this, context](const v1::ListModelsRequest* /*request*/,
                      v1::ListModelsResponse* response) {
        // A token limited to some models lists only those.
        std::shared_ptr<const TokenGrant> grant;
        if (options_.auth != nullptr) {
          grant = options_.auth->GrantOf(*context);
          if (grant == nullptr) return Authorize(*context, Scope::kRead, "");
        }
        PSTORE_ASSIGN_OR_RETURN(std::vector<ModelInfo> models,
                                store_->catalog().ListModels());
        for (const ModelInfo& model : models) {
          if (grant != nullptr && !grant->Allows(Scope::kRead, model.name)) {
            continue;
          }
          v1::Model* out = response->add_models();
          out->set_name(model.name);
          out->set_latest_revision(model.latest_revision);
          for (const RevisionInfo& revision : model.revisions) {
            ToRevision(revision, out->add_revisions());
          }
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::Pin(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::PinRequest, v1::PinResponse>(
      context, raw_request, raw_response, admin_.get(), "Pin",
      [this, context](const v1::PinRequest* request,
                      v1::PinResponse* response) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kAdmin, name.model));
        PSTORE_RETURN_IF_ERROR(store_->Pin(name));
        response->set_pinned_bytes(store_->Stats().pinned_bytes);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::Unpin(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::UnpinRequest, v1::UnpinResponse>(
      context, raw_request, raw_response, workers_.get(), "Unpin",
      [this, context](const v1::UnpinRequest* request,
                      v1::UnpinResponse* /*response*/) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kAdmin, name.model));
        return store_->Unpin(name);
      });
}

grpc::ServerUnaryReactor* ParamStoreService::Prefetch(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::PrefetchRequest, v1::PrefetchResponse>(
      context, raw_request, raw_response, admin_.get(), "Prefetch",
      [this, context](const v1::PrefetchRequest* request,
                      v1::PrefetchResponse* response) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kAdmin, name.model));
        PSTORE_ASSIGN_OR_RETURN(TierKind tier, FromWireTier(request->tier()));
        PSTORE_ASSIGN_OR_RETURN(PrefetchResult result,
                                store_->Prefetch(name, tier));
        response->set_blocks(result.blocks);
        response->set_bytes(result.bytes);
        response->set_already_present(result.already_present);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::DropCache(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::DropCacheRequest, v1::DropCacheResponse>(
      context, raw_request, raw_response, workers_.get(), "DropCache",
      [this, context](const v1::DropCacheRequest* request,
                      v1::DropCacheResponse* /*response*/) {
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kAdmin, ""));
        PSTORE_ASSIGN_OR_RETURN(TierKind tier, FromWireTier(request->tier()));
        return store_->DropCache(tier);
      });
}

grpc::ServerUnaryReactor* ParamStoreService::Verify(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::VerifyRequest, v1::VerifyResponse>(
      context, raw_request, raw_response, admin_.get(), "Verify",
      [this, context](const v1::VerifyRequest* request,
                      v1::VerifyResponse* response) {
        PSTORE_ASSIGN_OR_RETURN(RevisionName name,
                                ParseRevisionName(request->name()));
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kAdmin, name.model));
        PSTORE_ASSIGN_OR_RETURN(VerifyReport report, store_->Verify(name));
        response->set_revision(report.revision.ToString());
        response->set_blocks(report.blocks);
        response->set_bytes(report.bytes);
        constexpr v1::Tier kWireTiers[] = {v1::TIER_DRAM, v1::TIER_NVME,
                                           v1::TIER_COLD};
        for (int t = 0; t < 3; ++t) {
          v1::VerifyResponse::TierCount* count = response->add_checked();
          count->set_tier(kWireTiers[t]);
          count->set_copies(report.checked[t]);
        }
        for (const BadBlock& bad : report.bad) {
          v1::VerifyResponse::BadBlock* out = response->add_bad();
          out->set_tensor(bad.tensor);
          out->set_block_index(bad.block_index);
          out->set_block_id(bad.id.ToHex());
          out->set_tier(kWireTiers[static_cast<int>(bad.tier)]);
          out->set_error(bad.error.ToString());
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::GetServerStatus(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::GetServerStatusRequest, v1::ServerStatus>(
      context, raw_request, raw_response, workers_.get(), "GetServerStatus",
      [this, context](const v1::GetServerStatusRequest* /*request*/,
                      v1::ServerStatus* response) {
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kRead, ""));
        StoreStats stats = store_->Stats();
        response->set_version(options_.version);
        response->set_uptime_seconds(
            absl::ToInt64Seconds(absl::Now() - started_));
        auto add_tier = [&](v1::Tier tier, TierKind kind,
                            const TierStats& tier_stats, bool enabled) {
          v1::TierStatus* status = response->add_tiers();
          status->set_tier(tier);
          status->set_name(std::string(TierKindName(kind)));
          status->set_enabled(enabled);
          status->set_capacity_bytes(tier_stats.capacity_bytes);
          status->set_used_bytes(tier_stats.used_bytes);
          status->set_blocks(tier_stats.blocks);
          status->set_hits(tier_stats.hits);
          status->set_misses(tier_stats.misses);
          status->set_evictions(tier_stats.evictions);
          status->set_reads_served(stats.reads_from[static_cast<int>(kind)]);
          status->set_read_bytes(tier_stats.read_bytes);
          status->set_checksum_failures(tier_stats.checksum_failures);
          status->set_io_errors(tier_stats.io_errors);
        };
        add_tier(v1::TIER_DRAM, TierKind::kDram, stats.dram, true);
        add_tier(v1::TIER_NVME, TierKind::kNvme, stats.nvme,
                 stats.nvme_enabled);
        add_tier(v1::TIER_COLD, TierKind::kCold, stats.cold, true);
        response->set_pinned_bytes(stats.pinned_bytes);
        response->set_pin_budget_bytes(stats.pin_budget_bytes);
        for (const std::string& pin : store_->ListPins())
          response->add_pins(pin);
        response->set_spills(stats.spills);
        response->set_dedup_blocks(stats.dedup_blocks);
        response->set_collected_blocks(stats.collected_blocks);
        response->set_coalesced_reads(stats.coalesced_reads);
        response->set_io_uring(stats.io_uring);
        response->set_block_bytes(store_->options().block_bytes);
        response->set_blocks_encoded(stats.blocks_encoded);
        response->set_encoded_hits(stats.encoded_hits);
        return absl::OkStatus();
      });
}

}  // namespace pstore
