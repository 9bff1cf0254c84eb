#include "server/service.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "server/convert.h"
#include "server/unary_read.h"
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
    grpc::Status refused = ToGrpcStatus(CallGate::ClosedError());
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
  absl::StatusOr<StreamAdmission> admission =
      StreamAdmission::Admit(&put_counters_.streams_in_flight,
                             options_.max_put_streams, "put", &gate_);
  if (!admission.ok()) {
    return new RefusedPut(admission.status(), options_.metrics);
  }
  return new PutTensorReactor(context, *std::move(admission), store_,
                              workers_.get(), raw_response, &put_counters_,
                              options_.metrics, options_.auth);
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
  absl::StatusOr<StreamAdmission> admission =
      StreamAdmission::Admit(&stream_counters_.streams_in_flight,
                             options_.max_read_streams, "read", &gate_);
  if (!admission.ok()) {
    return new FailedStream(admission.status(), "GetTensor", options_.metrics);
  }
  TieredStore* store = store_;
  auto planner = [store, name = *std::move(name), encoding = *encoding,
                  offset = request.offset(),
                  length = request.length()](CatalogRead mode) {
    return store->PlanTensorRead(name, encoding, offset, length, mode);
  };
  ReadStreamOptions options;
  options.max_chunk_bytes = *chunk_bytes;
  options.readahead_bytes = options_.readahead_bytes;
  return new ReadStreamReactor(*std::move(admission), store_, workers_.get(),
                               std::move(planner), options, &stream_counters_,
                               "GetTensor", options_.metrics);
}

grpc::ServerUnaryReactor* ParamStoreService::ReadTensor(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  v1::GetTensorRequest request;
  absl::Status status = ParseRaw(*raw_request, &request);
  absl::StatusOr<Encoding> encoding = ParseEncoding(request.encoding());
  if (status.ok()) status = encoding.status();
  absl::StatusOr<TensorName> name = ParseTensorName(request.name());
  if (status.ok()) status = name.status();
  if (status.ok()) {
    status = Authorize(*context, Scope::kRead, name->revision.model);
  }
  auto refuse = [&](const absl::Status& error) {
    grpc::Status refused = ToGrpcStatus(error);
    if (options_.metrics != nullptr) {
      options_.metrics->ObserveRpc("ReadTensor", refused.error_code(),
                                   absl::ZeroDuration());
    }
    reactor->Finish(refused);
    return reactor;
  };
  if (!status.ok()) return refuse(status);
  absl::StatusOr<StreamAdmission> admission =
      StreamAdmission::Admit(&stream_counters_.streams_in_flight,
                             options_.max_read_streams, "read", &gate_);
  if (!admission.ok()) return refuse(admission.status());
  TieredStore* store = store_;
  auto planner = [store, name = *std::move(name), encoding = *encoding,
                  offset = request.offset(),
                  length = request.length()](CatalogRead mode) {
    return store->PlanTensorRead(name, encoding, offset, length, mode);
  };
  UnaryRead::Start(*std::move(admission), store_, workers_.get(), planner,
                   reactor, raw_response, &stream_counters_, "ReadTensor",
                   options_.metrics);
  return reactor;
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
  absl::StatusOr<StreamAdmission> admission =
      StreamAdmission::Admit(&stream_counters_.streams_in_flight,
                             options_.max_read_streams, "read", &gate_);
  if (!admission.ok()) {
    return new FailedStream(admission.status(), "PullModel", options_.metrics);
  }
  TieredStore* store = store_;
  auto planner = [store, name = *std::move(name), encoding = *encoding,
                  shard = request.shard_index(),
                  shard_count](CatalogRead mode) {
    return store->PlanRevisionRead(name, encoding, shard, shard_count, mode);
  };
  ReadStreamOptions options;
  options.max_chunk_bytes = *chunk_bytes;
  options.readahead_bytes = options_.readahead_bytes;
  return new ReadStreamReactor(*std::move(admission), store_, workers_.get(),
                               std::move(planner), options, &stream_counters_,
                               "PullModel", options_.metrics);
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
        PSTORE_ASSIGN_OR_RETURN(RevisionInfo info, store_->GetRevision(name));
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
        PSTORE_ASSIGN_OR_RETURN(RevisionInfo info, store_->GetRevision(name));
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
        PSTORE_ASSIGN_OR_RETURN(Manifest manifest, store_->GetManifest(name));
        ToRevision(manifest.revision, response);
        uint64_t total = 0;
        for (const TensorMeta& meta : manifest.tensors) {
          v1::TensorInfo* info = response->add_tensors();
          ToTensorInfo(meta, info);
          if (request->with_blocks()) AddBlocks(meta, info);
          total += meta.byte_length;
        }
        response->set_total_bytes(total);
        std::vector<std::string> pins = store_->ListPins();
        response->set_pinned(std::find(pins.begin(), pins.end(),
                                       manifest.revision.name.ToString()) !=
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
                                store_->ListModels());
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
        for (int t = 0; t < kNumTierKinds; ++t) {
          v1::VerifyResponse::TierCount* count = response->add_checked();
          count->set_tier(ToWireTier(static_cast<TierKind>(t)));
          count->set_copies(report.checked[t]);
        }
        for (const BadBlock& bad : report.bad) {
          v1::VerifyResponse::BadBlock* out = response->add_bad();
          out->set_tensor(bad.tensor);
          out->set_block_index(bad.block_index);
          out->set_block_id(bad.id.ToHex());
          out->set_tier(ToWireTier(bad.tier));
          out->set_error(bad.error.ToString());
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ParamStoreService::CollectGarbage(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  return RunUnary<v1::CollectGarbageRequest, v1::CollectGarbageResponse>(
      context, raw_request, raw_response, admin_.get(), "CollectGarbage",
      [this, context](const v1::CollectGarbageRequest* request,
                      v1::CollectGarbageResponse* response) {
        PSTORE_RETURN_IF_ERROR(Authorize(*context, Scope::kAdmin, ""));
        PSTORE_ASSIGN_OR_RETURN(GcReport report,
                                store_->CollectGarbage(request->dry_run()));
        response->set_dry_run(report.dry_run);
        response->set_referenced_blocks(report.referenced_blocks);
        response->set_block_objects(report.block_objects);
        response->set_removed(report.removed);
        response->set_removed_bytes(report.removed_bytes);
        response->set_kept_recent(report.kept_recent);
        response->set_kept_raced(report.kept_raced);
        response->set_seconds(report.seconds);
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
        for (const NodeInfo& node : store_->Members()) {
          v1::NodeStatus* out = response->add_nodes();
          out->set_id(node.id);
          out->set_address(node.address);
          out->set_started_unix_micros(node.started_unix_micros);
          out->set_heartbeat_unix_micros(node.heartbeat_unix_micros);
          out->set_self(node.self);
        }
        if (stats.peers.enabled || stats.peers.served_blocks > 0) {
          v1::PeerStatus* peers = response->mutable_peers();
          peers->set_enabled(stats.peers.enabled);
          peers->set_ring_nodes(stats.peers.ring_nodes);
          peers->set_peer_blocks(stats.peers.peer_blocks);
          peers->set_peer_bytes(stats.peers.peer_bytes);
          peers->set_peer_errors(stats.peers.peer_errors);
          peers->set_peer_bad_blocks(stats.peers.peer_bad_blocks);
          peers->set_hedges(stats.peers.hedges);
          peers->set_hedge_wins(stats.peers.hedge_wins);
          peers->set_served_blocks(stats.peers.served_blocks);
          peers->set_served_bytes(stats.peers.served_bytes);
        }
        return absl::OkStatus();
      });
}

}  // namespace pstore
