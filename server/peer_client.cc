#include "server/peer_client.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/convert.h"
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
    while (slice_ < slices_.size() && offset_ == slices_[slice_].size()) {
      ++slice_;
      offset_ = 0;
    }
    if (slice_ == slices_.size()) return false;
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

  // Copies the next `size` bytes to `out`; false if fewer are left.
  bool Copy(uint8_t* out, uint64_t size) {
    while (size > 0) {
      if (slice_ == slices_.size()) return false;
      size_t n = std::min<uint64_t>(size, slices_[slice_].size() - offset_);
      std::memcpy(out, slices_[slice_].begin() + offset_, n);
      out += n;
      size -= n;
      offset_ += n;
      if (offset_ == slices_[slice_].size()) {
        ++slice_;
        offset_ = 0;
      }
    }
    return true;
  }

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

// Returns the block a serialized BlockData holds, in a pool buffer.
absl::StatusOr<BlockRef> ParseBlockData(const grpc::ByteBuffer& response,
                                        uint64_t max_bytes) {
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) {
    return absl::DataLossError("unreadable answer");
  }
  SliceReader reader(slices);
  if (reader.AtEnd()) return CopyBlock({});  // An empty block.
  uint8_t tag;
  uint64_t size;
  if (!reader.Byte(&tag) || tag != ((1 << 3) | 2) || !reader.Varint(&size)) {
    return absl::DataLossError("the answer is not a BlockData");
  }
  if (size > max_bytes) {
    return absl::DataLossError(absl::StrCat(
        "the answer holds ", size, " bytes, over the block size ", max_bytes));
  }
  Buffer buffer = BufferPool::Default().Allocate(size);
  if (!reader.Copy(buffer.data(), size) || !reader.AtEnd()) {
    return absl::DataLossError("the answer is cut short or too long");
  }
  return MakeBlock(std::move(buffer), size);
}

}  // namespace

struct GrpcPeerClient::Call {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  ReadCallback done;
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
    : options_(std::move(options)), credentials_(std::move(credentials)) {}

GrpcPeerClient::~GrpcPeerClient() {
  absl::MutexLock lock(&mu_);
  for (Call* call : calls_) call->context.TryCancel();
  mu_.Await(absl::Condition(
      +[](absl::flat_hash_set<Call*>* calls) { return calls->empty(); },
      &calls_));
}

grpc::GenericStub* GrpcPeerClient::StubFor(const std::string& address) {
  absl::MutexLock lock(&mu_);
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
                               absl::Duration timeout, ReadCallback done) {
  grpc::GenericStub* stub = StubFor(address);
  auto* call = new Call;
  call->done = std::move(done);
  call->address = address;
  call->id = id;
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!options_.token.empty()) {
    call->context.AddMetadata("authorization",
                              absl::StrCat("Bearer ", options_.token));
  }
  v1::ReadBlockRequest request;
  request.set_block_id(id.ToByteString());
  bool own_buffer = false;
  (void)grpc::SerializationTraits<v1::ReadBlockRequest>::Serialize(
      request, &call->request, &own_buffer);
  {
    absl::MutexLock lock(&mu_);
    calls_.insert(call);
  }
  stub->UnaryCall(
      &call->context, kReadBlockMethod, grpc::StubOptions(), &call->request,
      &call->response, [this, call](grpc::Status status) {
        absl::StatusOr<BlockRef> block =
            status.ok()
                ? ParseBlockData(call->response, options_.max_block_bytes)
                : absl::StatusOr<BlockRef>(absl::Status(
                      static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message()));
        if (!block.ok()) {
          block = absl::Status(
              block.status().code(),
              absl::StrCat("peer ", call->address, ": block ", call->id.ToHex(),
                           ": ", block.status().message()));
        }
        ReadCallback done = std::move(call->done);
        {
          absl::MutexLock lock(&mu_);
          calls_.erase(call);
        }
        delete call;
        std::move(done)(std::move(block));
      });
}

}  // namespace pstore
