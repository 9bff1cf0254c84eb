#include "server/peer_client.h"

#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/convert.h"
#include "server/flags.h"
#include "spdlog/spdlog.h"
#include "storage/block.h"
#include "storage/buffer_pool.h"
#include "util/file_io.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr char kReadBlockMethod[] = "/pstore.v1.PeerStore/ReadBlock";

// Reads the bytes of a byte buffer's slices in order.
class SliceReader {
 public:
  explicit SliceReader(const std::vector<grpc::Slice>& slices)
      : slices_(slices) {}

  bool Byte(uint8_t* out) {
    if (AtEnd()) return false;
    *out = slices_[slice_].begin()[offset_++];
    return true;
  }

  bool Varint(uint64_t* out) {
    *out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t byte;
      if (!Byte(&byte)) return false;
      *out |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  // Copies the next `size` bytes to `out` (null: skips them), and gives
  // each piece to `hasher` (if not null) while it is in cache; false if
  // fewer are left.
  bool Copy(uint8_t* out, uint64_t size, Xxh3_128Hasher* hasher = nullptr) {
    while (size > 0) {
      if (AtEnd()) return false;
      size_t n = std::min<uint64_t>(size, slices_[slice_].size() - offset_);
      if (out != nullptr) {
        std::memcpy(out, slices_[slice_].begin() + offset_, n);
        if (hasher != nullptr) hasher->Update(std::span<const uint8_t>(out, n));
        out += n;
      }
      size -= n;
      offset_ += n;
    }
    return true;
  }

  // True when no byte is left; else moves to the slice of the next one.
  bool AtEnd() {
    while (slice_ < slices_.size() && offset_ == slices_[slice_].size()) {
      ++slice_;
      offset_ = 0;
    }
    return slice_ == slices_.size();
  }

 private:
  const std::vector<grpc::Slice>& slices_;
  size_t slice_ = 0;
  size_t offset_ = 0;
};

// Returns the block a serialized BlockData holds, in a pool buffer, with
// the XXH3-128 of its bytes.
absl::StatusOr<PeerBlock> ParseBlockData(const grpc::ByteBuffer& response,
                                         uint64_t max_bytes) {
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return absl::DataLossError("unreadable answer");
  }
  SliceReader reader(slices);
  std::optional<PeerBlock> block;
  // Fields other than `data` (from a newer node) are skipped.
  while (!reader.AtEnd()) {
    uint64_t key;
    uint64_t length;
    if (!reader.Varint(&key)) break;
    switch (key & 7) {
      case 0:  // Varint.
        if (!reader.Varint(&length)) return absl::DataLossError("cut short");
        continue;
      case 1:  // 64-bit.
        if (!reader.Copy(nullptr, 8)) return absl::DataLossError("cut short");
        continue;
      case 5:  // 32-bit.
        if (!reader.Copy(nullptr, 4)) return absl::DataLossError("cut short");
        continue;
      case 2:  // Length-delimited.
        if (!reader.Varint(&length)) return absl::DataLossError("cut short");
        break;
      default:
        return absl::DataLossError("the answer is not a BlockData");
    }
    if ((key >> 3) != 1) {
      if (!reader.Copy(nullptr, length))
        return absl::DataLossError("cut short");
      continue;
    }
    if (length > max_bytes) {
      return absl::DataLossError(absl::StrCat("the answer holds ", length,
                                              " bytes, over the block size ",
                                              max_bytes));
    }
    Buffer buffer = BufferPool::Default().Allocate(length);
    Xxh3_128Hasher hasher;
    if (!reader.Copy(buffer.data(), length, &hasher)) {
      return absl::DataLossError("the answer is cut short");
    }
    block = PeerBlock{MakeBlock(std::move(buffer), length),
                      BlockId(hasher.Digest())};
  }
  if (!block.has_value()) {  // An empty block.
    return PeerBlock{CopyBlock({}), BlockId::Of({})};
  }
  return *std::move(block);
}

}  // namespace

struct GrpcPeerClient::Call {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  PeerReadCallback done;
  std::string address;
  BlockId id;
};

absl::StatusOr<std::shared_ptr<GrpcPeerClient>> GrpcPeerClient::Create(
    GrpcPeerClientOptions options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a node's certificate for peer calls needs both its file and its "
        "key's");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions tls;
    PSTORE_ASSIGN_OR_RETURN(tls.pem_root_certs,
                            ReadFileToString(options.tls_ca_file));
    if (!options.tls_cert_file.empty()) {
      PSTORE_ASSIGN_OR_RETURN(tls.pem_cert_chain,
                              ReadFileToString(options.tls_cert_file));
      PSTORE_ASSIGN_OR_RETURN(tls.pem_private_key,
                              ReadFileToString(options.tls_key_file));
    }
    credentials = grpc::SslCredentials(tls);
  } else if (!options.tls_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "peer calls with a certificate need the CA that signs the nodes' "
        "certificates");
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return std::shared_ptr<GrpcPeerClient>(
      new GrpcPeerClient(std::move(options), std::move(credentials)));
}

GrpcPeerClient::GrpcPeerClient(
    GrpcPeerClientOptions options,
    std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)),
      bearer_(options_.token.empty() ? ""
                                     : absl::StrCat("Bearer ", options_.token)),
      credentials_(std::move(credentials)) {}

GrpcPeerClient::~GrpcPeerClient() {
  absl::MutexLock lock(&mu_);
  for (Call* call : calls_) call->context.TryCancel();
  mu_.Await(absl::Condition(
      +[](GrpcPeerClient* client) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return client->calls_.empty() && client->callbacks_running_ == 0;
      },
      this));
}

void GrpcPeerClient::WarnMisconfigured(const absl::Status& status) {
  // At most one line every 10 s: every block asked costs one such answer.
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  int64_t last = last_warning_.load(std::memory_order_relaxed);
  if (now - last < 10 || !last_warning_.compare_exchange_strong(
                             last, now, std::memory_order_relaxed)) {
    return;
  }
  spdlog::warn(
      "event=peer_refused action=read_durable status=\"{}\" hint=\"every "
      "node needs a token of scope peer (--peer_token_file) that the others "
      "accept, and a pstored that serves pstore.v1.PeerStore\"",
      status.ToString());
}

grpc::GenericStub* GrpcPeerClient::StubFor(const std::string& address) {
  auto it = stubs_.find(address);
  if (it != stubs_.end()) return it->second.get();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(
      static_cast<int>(options_.max_block_bytes + (64 << 10)));
  // Peers come and go: try a node that went away again within a second
  // or two of it coming back, not after gRPC's default backoff of minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto stub = std::make_unique<grpc::GenericStub>(
      grpc::CreateCustomChannel(address, credentials_, args));
  grpc::GenericStub* result = stub.get();
  stubs_.emplace(address, std::move(stub));
  return result;
}

void GrpcPeerClient::ReadBlock(const std::string& address, const BlockId& id,
                               absl::Duration timeout, PeerReadCallback done) {
  if (!bearer_.empty() && options_.tls_ca_file.empty() &&
      !IsLocalOnlyAddress(address)) {
    // Never in plaintext across a network, whatever the members say.
    std::move(done)(absl::FailedPreconditionError(
        absl::StrCat("peer ", address,
                     ": the peer token is not sent in plaintext to "
                     "another machine")));
    return;
  }
  auto* call = new Call;
  call->done = std::move(done);
  call->address = address;
  call->id = id;
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!bearer_.empty()) call->context.AddMetadata("authorization", bearer_);
  v1::ReadBlockRequest request;
  request.set_block_id(id.ToByteString());
  bool own_buffer = false;
  (void)grpc::SerializationTraits<v1::ReadBlockRequest>::Serialize(
      request, &call->request, &own_buffer);
  grpc::GenericStub* stub;
  {
    absl::MutexLock lock(&mu_);
    stub = StubFor(address);
    calls_.insert(call);
  }
  stub->UnaryCall(
      &call->context, kReadBlockMethod, grpc::StubOptions(), &call->request,
      &call->response, [this, call](grpc::Status status) {
        absl::StatusOr<PeerBlock> block =
            status.ok()
                ? ParseBlockData(call->response, options_.max_block_bytes)
                : absl::StatusOr<PeerBlock>(absl::Status(
                      static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message()));
        if (!block.ok()) {
          block = absl::Status(
              block.status().code(),
              absl::StrCat("peer ", call->address, ": block ", call->id.ToHex(),
                           ": ", block.status().message()));
        }
        if (absl::IsUnauthenticated(block.status()) ||
            absl::IsPermissionDenied(block.status()) ||
            absl::IsUnimplemented(block.status())) {
          WarnMisconfigured(block.status());
        }
        PeerReadCallback done = std::move(call->done);
        {
          absl::MutexLock lock(&mu_);
          calls_.erase(call);
          ++callbacks_running_;
        }
        delete call;
        std::move(done)(std::move(block));
        absl::MutexLock lock(&mu_);
        --callbacks_running_;
      });
}

}  // namespace pstore
