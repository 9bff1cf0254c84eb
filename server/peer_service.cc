#include "server/peer_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/chunk.h"
#include "server/convert.h"
#include "storage/block.h"

namespace pstore {
namespace {

constexpr char kMethod[] = "ReadBlock";

// Returns a copy of `block` with one byte flipped (a test fault).
BlockRef Corrupted(const BlockRef& block) {
  std::string bytes(block->view());
  if (!bytes.empty()) bytes[bytes.size() / 2] ^= 0x01;
  return CopyBlock(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace

PeerStoreService::PeerStoreService(TieredStore* store, ParamStoreService* reads,
                                   PeerServiceOptions options)
    : store_(store), reads_(reads), options_(options) {}

grpc::ServerUnaryReactor* PeerStoreService::ReadBlock(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ServerMetrics* metrics = reads_->metrics();
  auto finish = [reactor, metrics, start](const absl::Status& status) {
    grpc::Status answer = ToGrpcStatus(status);
    if (metrics != nullptr) {
      metrics->ObserveRpc(kMethod, answer.error_code(), absl::Now() - start);
    }
    reactor->Finish(answer);
  };
  v1::ReadBlockRequest request;
  absl::Status status = ParseRaw(*raw_request, &request);
  absl::StatusOr<BlockId> id = BlockId::FromBytes(request.block_id());
  if (status.ok()) status = id.status();
  if (status.ok()) status = reads_->Authorize(*context, Scope::kPeer, "");
  if (!status.ok()) {
    finish(status);
    return reactor;
  }
  absl::StatusOr<StreamAdmission> admission = reads_->AdmitRead();
  if (!admission.ok()) {
    finish(admission.status());
    return reactor;
  }
  // The block's bytes count against a read-ahead budget for other nodes
  // (the size of the clients' one) until the answer is handed to gRPC;
  // past it the asking node reads the durable tier itself.
  StreamCounters* counters = reads_->mutable_stream_counters();
  uint64_t charge = store_->options().block_bytes;
  if (counters->peer_readahead_bytes.fetch_add(charge,
                                               std::memory_order_relaxed) +
          charge >
      counters->readahead_budget_bytes) {
    counters->peer_readahead_bytes.fetch_sub(charge, std::memory_order_relaxed);
    finish(absl::ResourceExhaustedError(absl::StrCat(
        "the read-ahead budget of ", counters->readahead_budget_bytes,
        " bytes is taken: read the block elsewhere")));
    return reactor;
  }
  store_->ReadBlockForPeerAsync(
      *id,
      [admission = std::make_shared<StreamAdmission>(*std::move(admission)),
       counters, charge, raw_response, finish,
       corrupt = options_.corrupt_replies](absl::StatusOr<BlockRef> block) {
        if (block.ok()) {
          *raw_response =
              MakeBlockDataBuffer(corrupt ? Corrupted(*block) : *block);
        }
        counters->peer_readahead_bytes.fetch_sub(charge,
                                                 std::memory_order_relaxed);
        admission->ReleaseSlot();
        finish(block.status());
      });
  return reactor;
}

}  // namespace pstore
