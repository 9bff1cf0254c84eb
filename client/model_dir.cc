#include "client/model_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "codec/hash.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "formats/safetensors_index.h"
#include "util/file_io.h"
#include "util/status.h"

namespace pstore {
namespace {

namespace fs = std::filesystem;

// Bytes per message of a pull into a file. Each chunk is hashed whole,
// then hashed into its part and written piece by piece: a chunk small
// enough to stay in cache between the passes, and fewer bytes queued in
// gRPC's receive buffers at once. A 1 GiB pull into tmpfs, 4 streams,
// against nginx -> a 1 MiB-read client in the same run: 0.76x at 18,895
// minor faults per GiB with 4 MiB chunks, 0.84x at 10,368 with 1 MiB,
// 0.87x at 6,668 with 512 KiB, 0.65x with 16 MiB.
constexpr uint32_t kPullChunkBytes = 512 << 10;

// A resumed pull fetches what is missing in ranges of at most this many
// bytes, so that its streams share a large missing tensor.
constexpr uint64_t kRangeBytes = uint64_t{64} << 20;

// A pull with nothing in place is one PullModel call unless it would send
// more bytes that no file takes (kept in memory) than 1/64 of what it
// writes, at least this many and at most 32 times as many.
constexpr uint64_t kMaxUnplacedBytes = uint64_t{8} << 20;

// The file a revision of tensors only becomes in a directory pull.
constexpr absl::string_view kSingleFileName = "model.safetensors";

std::string TempPathOf(const std::string& path) { return path + ".tmp"; }

// Runs task(0) ... task(count - 1), each once, on up to `threads` threads
// (the calling one among them); once a task fails no other starts.
// Returns the first error.
absl::Status ForEachInParallel(
    size_t count, int threads,
    const std::function<absl::Status(size_t index)>& task) {
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  absl::Status first_error;
  auto worker = [&] {
    while (true) {
      {
        absl::MutexLock lock(&mu);
        if (!first_error.ok()) return;
      }
      const size_t index = next.fetch_add(1);
      if (index >= count) return;
      absl::Status status = task(index);
      if (!status.ok()) {
        absl::MutexLock lock(&mu);
        if (first_error.ok()) first_error = std::move(status);
      }
    }
  };
  std::vector<std::thread> workers;
  const size_t extra =
      std::min<size_t>(std::max(1, threads), std::max<size_t>(count, 1)) - 1;
  for (size_t i = 0; i < extra; ++i) workers.emplace_back(worker);
  worker();
  for (std::thread& thread : workers) thread.join();
  return first_error;
}

std::span<const uint8_t> BytesOf(absl::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// ---------------------------------------------------------------------------
// Pull plans: which bytes of which entry go where.

// One file a pull writes.
struct OutputFile {
  std::string path;  // Where it ends up.
  std::string name;  // For messages: its path in the pull's target.
  uint64_t size = 0;
  std::string literal;    // Bytes at offset 0 that no entry sends (a header).
  int fd = -1;            // Of path.tmp while the pull writes it.
  bool complete = false;  // Found whole and good at `path`: left as it is.
};

// Where an entry of the manifest goes.
struct Placement {
  int file = -1;        // Index in Plan::files; -1: the pull does not write it.
  uint64_t offset = 0;  // Of the entry's first byte in the file.
  Encoding encoding = Encoding::kRaw;  // What the pull sends of it.
  uint64_t length = 0;                 // Bytes the pull sends.
};

struct Plan {
  v1::Revision revision;  // Resolved, with blocks.
  std::string encoding;   // As the pull asks for it.
  std::vector<OutputFile> files;
  std::vector<Placement> placements;  // By manifest index.
};

// Returns what a pull in `requested` sends of `info`.
absl::StatusOr<Placement> SentOf(const v1::TensorInfo& info,
                                 Encoding requested) {
  PSTORE_ASSIGN_OR_RETURN(DType dtype, ParseDType(info.dtype()));
  std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
  Placement placement;
  placement.encoding = EncodingForPull(dtype, shape, requested);
  placement.length = placement.encoding == Encoding::kRaw
                         ? info.stored_byte_length()
                         : EncodedTensorBytes(dtype, shape, placement.encoding);
  return placement;
}

// Returns the dtype a tensor of `dtype` is written as when sent as
// `encoding` (a float conversion or raw).
DType DTypeSent(DType dtype, Encoding encoding) {
  switch (encoding) {
    case Encoding::kF32:
      return DType::kF32;
    case Encoding::kF16:
      return DType::kF16;
    case Encoding::kBF16:
      return DType::kBF16;
    default:
      return dtype;
  }
}

// Lays out the entries `tensors` (manifest indexes) of `revision` as one
// tensor file, GGUF or safetensors, with `metadata`: the file's header
// becomes its literal bytes, each tensor is placed in it.
absl::Status LayOutTensorFile(
    const v1::Revision& revision, std::vector<int> tensors, Encoding requested,
    bool gguf, const std::map<std::string, std::string>& metadata,
    const GgufHeader* source, int file_index, Plan* plan) {
  OutputFile& file = plan->files[file_index];
  std::map<std::string, uint64_t> offsets;
  if (gguf) {
    // From a GGUF file: its tensors in its order, each of its type (Q8_0
    // and Q4_0 are stored as their blocks), and its metadata with types.
    std::map<std::string, const GgufTensorInfo*> from_source;
    std::vector<GgufKeyValue> typed;
    std::string general_name = revision.model();
    if (source != nullptr) {
      for (const GgufTensorInfo& tensor : source->tensors) {
        from_source[tensor.name] = &tensor;
      }
      auto order = [&](int index) {
        auto found = from_source.find(revision.tensors(index).tensor());
        return found == from_source.end() ? UINT64_MAX : found->second->offset;
      };
      std::stable_sort(tensors.begin(), tensors.end(),
                       [&](int a, int b) { return order(a) < order(b); });
      for (const GgufKeyValue& pair : source->metadata) {
        if (pair.key == "general.alignment") continue;
        if (pair.key == "general.name" && pair.value.AsString() != nullptr) {
          general_name = *pair.value.AsString();
          continue;
        }
        typed.push_back(pair);
      }
    }
    std::vector<GgufTensorSpec> specs;
    for (int index : tensors) {
      const v1::TensorInfo& info = revision.tensors(index);
      PSTORE_ASSIGN_OR_RETURN(DType dtype, ParseDType(info.dtype()));
      std::vector<int64_t> shape(info.shape().begin(), info.shape().end());
      auto found = from_source.find(info.tensor());
      if (found != from_source.end() && dtype == DType::kU8 &&
          (found->second->type == GgmlType::kQ8_0 ||
           found->second->type == GgmlType::kQ4_0) &&
          found->second->byte_size == info.stored_byte_length()) {
        specs.push_back(GgufTensorSpec{info.tensor(), found->second->type,
                                       found->second->Shape()});
        continue;
      }
      const Encoding encoding = plan->placements[index].encoding;
      std::optional<GgmlType> type =
          encoding == Encoding::kQ8_0 ? GgmlType::kQ8_0
          : encoding == Encoding::kQ4_0
              ? GgmlType::kQ4_0
              : GgmlTypeFromDType(DTypeSent(dtype, encoding));
      if (!type.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat(info.name(), ": GGUF has no type for ", info.dtype(),
                         " tensors; pull to .safetensors instead"));
      }
      specs.push_back(GgufTensorSpec{info.tensor(), *type, shape});
    }
    PSTORE_ASSIGN_OR_RETURN(
        GgufLayout layout,
        ComputeGgufLayout(
            specs, general_name,
            source != nullptr ? std::map<std::string, std::string>() : metadata,
            typed));
    file.literal = std::move(layout.header_bytes);
    file.size = layout.file_size;
    for (const GgufTensorInfo& tensor : layout.tensors) {
      offsets[tensor.name] = tensor.file_offset;
    }
  } else {
    if (IsQuantized(requested)) {
      return absl::InvalidArgumentError(
          absl::StrCat("safetensors has no ", EncodingName(requested),
                       " type: pull to a .gguf file"));
    }
    std::vector<SafetensorsTensorSpec> specs;
    for (int index : tensors) {
      const v1::TensorInfo& info = revision.tensors(index);
      SafetensorsTensorSpec spec;
      spec.name = info.tensor();
      PSTORE_ASSIGN_OR_RETURN(DType dtype, ParseDType(info.dtype()));
      spec.dtype = DTypeSent(dtype, plan->placements[index].encoding);
      spec.shape.assign(info.shape().begin(), info.shape().end());
      specs.push_back(std::move(spec));
    }
    PSTORE_ASSIGN_OR_RETURN(SafetensorsLayout layout,
                            ComputeSafetensorsLayout(specs, metadata));
    file.literal = std::move(layout.header_bytes);
    file.size = layout.file_size;
    for (const SafetensorsTensor& tensor : layout.tensors) {
      offsets[tensor.name] = tensor.data_offset;
    }
  }
  for (int index : tensors) {
    Placement& placement = plan->placements[index];
    placement.file = file_index;
    placement.offset = offsets.at(revision.tensors(index).tensor());
  }
  return absl::OkStatus();
}

// Resolves `name` and fills plan->revision and each entry's encoding.
absl::Status StartPlan(Client& client, absl::string_view name,
                       const std::string& encoding, Plan* plan,
                       Encoding* requested) {
  PSTORE_ASSIGN_OR_RETURN(*requested, ParseEncoding(encoding));
  PSTORE_ASSIGN_OR_RETURN(plan->revision,
                          client.GetRevision(name, /*with_blocks=*/true));
  plan->encoding = encoding;
  plan->placements.reserve(plan->revision.tensors_size());
  for (const v1::TensorInfo& info : plan->revision.tensors()) {
    PSTORE_ASSIGN_OR_RETURN(Placement placement, SentOf(info, *requested));
    plan->placements.push_back(placement);
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> MetadataOf(const v1::Revision& revision) {
  return {revision.metadata().begin(), revision.metadata().end()};
}

// Reads and parses the header entry of a GGUF file.
absl::StatusOr<GgufHeader> FetchGgufHeader(Client& client,
                                           const v1::TensorInfo& info) {
  PSTORE_ASSIGN_OR_RETURN(auto read, client.GetTensor(info.name()));
  absl::StatusOr<GgufHeader> header = ParseGgufHeader(absl::string_view(
      reinterpret_cast<const char*>(read.second.data()), read.second.size()));
  if (!header.ok()) {
    return absl::DataLossError(absl::StrCat("GGUF header ", info.name(), ": ",
                                            header.status().message()));
  }
  return header;
}

absl::StatusOr<Plan> PlanFile(Client& client, absl::string_view name,
                              const std::string& path,
                              const PullToOptions& options) {
  Plan plan;
  Encoding requested;
  PSTORE_RETURN_IF_ERROR(
      StartPlan(client, name, options.encoding, &plan, &requested));
  std::vector<int> tensors;
  for (int i = 0; i < plan.revision.tensors_size(); ++i) {
    if (plan.revision.tensors(i).kind() == v1::ENTRY_TENSOR) {
      tensors.push_back(i);
    }
  }
  OutputFile file;
  file.path = path;
  file.name = path;
  plan.files.push_back(std::move(file));
  const bool gguf = absl::EndsWith(path, ".gguf");
  // A revision imported from a GGUF file goes back with that file's types
  // and metadata.
  std::optional<GgufHeader> source;
  for (const v1::TensorInfo& info : plan.revision.tensors()) {
    if (gguf && info.kind() == v1::ENTRY_SHARD_HEADER &&
        absl::EndsWith(info.tensor(), ".gguf")) {
      PSTORE_ASSIGN_OR_RETURN(source, FetchGgufHeader(client, info));
      break;
    }
  }
  PSTORE_RETURN_IF_ERROR(LayOutTensorFile(
      plan.revision, tensors, requested, gguf, MetadataOf(plan.revision),
      source.has_value() ? &*source : nullptr, 0, &plan));
  return plan;
}

// Places the GGUF file whose header is entry `header_index` of `revision`
// as file `file_index` of the plan: as it was (its header, then each tensor at
// the offset the header gives, the padding zeros), or written anew when the
// pull converts.
absl::Status PlanGgufFile(Client& client, const v1::Revision& revision,
                          int header_index, Encoding requested,
                          const std::map<std::string, int>& by_name,
                          int file_index, Plan* plan) {
  const v1::TensorInfo& info = revision.tensors(header_index);
  PSTORE_ASSIGN_OR_RETURN(GgufHeader header, FetchGgufHeader(client, info));
  std::vector<int> tensors;
  for (const GgufTensorInfo& tensor : header.tensors) {
    auto found = by_name.find(tensor.name);
    if (found == by_name.end() || plan->placements[found->second].file >= 0 ||
        revision.tensors(found->second).stored_byte_length() !=
            tensor.byte_size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "GGUF file ", info.tensor(), " of ", revision.name(),
          " names tensor ", tensor.name, ", which the revision lacks, holds ",
          "with another size, or puts in another file"));
    }
    tensors.push_back(found->second);
    if (requested == Encoding::kRaw) {
      plan->placements[found->second].file = file_index;
      plan->placements[found->second].offset = tensor.file_offset;
    }
  }
  if (requested != Encoding::kRaw) {
    plan->placements[header_index].file = -1;
    return LayOutTensorFile(revision, tensors, requested, /*gguf=*/true, {},
                            &header, file_index, plan);
  }
  plan->placements[header_index].file = file_index;
  plan->placements[header_index].offset = 0;
  plan->files[file_index].size = header.data_offset + header.data_size;
  return absl::OkStatus();
}

absl::StatusOr<Plan> PlanDirectory(Client& client, absl::string_view name,
                                   const std::string& dir,
                                   const PullToOptions& options) {
  Plan plan;
  Encoding requested;
  PSTORE_RETURN_IF_ERROR(
      StartPlan(client, name, options.encoding, &plan, &requested));
  if (IsQuantized(requested)) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors has no ", EncodingName(requested),
                     " type: pull ", name, " to a .gguf file"));
  }
  const v1::Revision& revision = plan.revision;
  std::map<std::string, int> by_name;  // Tensor entries.
  std::set<std::string> file_names;
  for (int i = 0; i < revision.tensors_size(); ++i) {
    const v1::TensorInfo& info = revision.tensors(i);
    if (info.kind() == v1::ENTRY_TENSOR) {
      by_name[info.tensor()] = i;
    } else {
      file_names.insert(info.tensor());
    }
  }
  auto add_file = [&](const std::string& file_name) {
    OutputFile file;
    file.path = (fs::path(dir) / file_name).string();
    file.name = file_name;
    plan.files.push_back(std::move(file));
    return static_cast<int>(plan.files.size()) - 1;
  };
  // Index files whose total_size the encoding changes, and the shards'
  // new data bytes, to fill in once the shards are laid out.
  std::vector<int> indexes;
  std::map<std::string, uint64_t> shard_data_bytes;
  for (int i = 0; i < revision.tensors_size(); ++i) {
    const v1::TensorInfo& info = revision.tensors(i);
    if (info.kind() == v1::ENTRY_FILE) {
      if (requested != Encoding::kRaw &&
          IsSafetensorsIndexName(info.tensor())) {
        indexes.push_back(i);
        plan.placements[i].file = -1;
        continue;
      }
      plan.placements[i].file = add_file(info.tensor());
      plan.placements[i].offset = 0;
      plan.files[plan.placements[i].file].size = info.stored_byte_length();
      continue;
    }
    if (info.kind() != v1::ENTRY_SHARD_HEADER) continue;
    if (absl::EndsWith(info.tensor(), ".gguf")) {
      PSTORE_RETURN_IF_ERROR(PlanGgufFile(client, revision, i, requested,
                                          by_name, add_file(info.tensor()),
                                          &plan));
      continue;
    }
    // The header names the shard's tensors and where each goes.
    PSTORE_ASSIGN_OR_RETURN(auto header_read, client.GetTensor(info.name()));
    const std::vector<uint8_t>& header = header_read.second;
    uint64_t length = 0;
    if (header.size() >= 8) std::memcpy(&length, header.data(), 8);
    if (header.size() < 8 || length != header.size() - 8) {
      return absl::DataLossError(absl::StrCat("shard header ", info.name(),
                                              " is not a safetensors header"));
    }
    absl::StatusOr<SafetensorsHeader> parsed = ParseSafetensorsHeader(
        absl::string_view(reinterpret_cast<const char*>(header.data()) + 8,
                          length),
        std::nullopt);
    if (!parsed.ok()) {
      return absl::DataLossError(absl::StrCat("shard header ", info.name(),
                                              ": ", parsed.status().message()));
    }
    const int file_index = add_file(info.tensor());
    std::vector<int> tensors;
    for (const SafetensorsTensor& tensor : parsed->tensors) {
      auto found = by_name.find(tensor.name);
      if (found == by_name.end() || plan.placements[found->second].file >= 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "shard ", info.tensor(), " of ", revision.name(), " names tensor ",
            tensor.name, ", which the revision ",
            found == by_name.end() ? "lacks" : "puts in another shard"));
      }
      const v1::TensorInfo& stored = revision.tensors(found->second);
      if (stored.dtype() != DTypeName(tensor.dtype) ||
          !std::equal(stored.shape().begin(), stored.shape().end(),
                      tensor.shape.begin(), tensor.shape.end())) {
        return absl::FailedPreconditionError(
            absl::StrCat("tensor ", stored.name(), " has another dtype or ",
                         "shape than shard ", info.tensor(), " says"));
      }
      tensors.push_back(found->second);
      plan.placements[found->second].file = file_index;
      plan.placements[found->second].offset = tensor.data_offset;
    }
    uint64_t data_bytes = 0;
    if (requested == Encoding::kRaw) {
      // The header as it was, then the tensors where it puts them.
      plan.placements[i].file = file_index;
      plan.placements[i].offset = 0;
      OutputFile& file = plan.files[file_index];
      file.size = parsed->data_offset;
      for (const SafetensorsTensor& tensor : parsed->tensors) {
        file.size =
            std::max(file.size, tensor.data_offset + tensor.byte_length);
        data_bytes += tensor.byte_length;
      }
    } else {
      plan.placements[i].file = -1;
      PSTORE_RETURN_IF_ERROR(LayOutTensorFile(
          revision, tensors, requested, /*gguf=*/false, parsed->metadata,
          /*source=*/nullptr, file_index, &plan));
      for (int index : tensors) data_bytes += plan.placements[index].length;
    }
    shard_data_bytes[info.tensor()] = data_bytes;
  }
  // Tensors in no shard: a revision put tensor by tensor, or imported from
  // one file.
  std::vector<int> loose;
  for (const auto& [tensor, index] : by_name) {
    if (plan.placements[index].file < 0) loose.push_back(index);
  }
  if (!loose.empty()) {
    if (file_names.contains(std::string(kSingleFileName))) {
      return absl::FailedPreconditionError(absl::StrCat(
          revision.name(), " has tensors in no shard and a file called ",
          kSingleFileName, " already: pull it to a file instead"));
    }
    const int file_index = add_file(std::string(kSingleFileName));
    PSTORE_RETURN_IF_ERROR(LayOutTensorFile(
        revision, loose, requested, /*gguf=*/false, MetadataOf(revision),
        /*source=*/nullptr, file_index, &plan));
  }
  // An index of shards written anew says how big they are now.
  for (int index : indexes) {
    const v1::TensorInfo& info = revision.tensors(index);
    PSTORE_ASSIGN_OR_RETURN(auto read, client.GetTensor(info.name()));
    absl::string_view json(reinterpret_cast<const char*>(read.second.data()),
                           read.second.size());
    PSTORE_ASSIGN_OR_RETURN(SafetensorsIndex parsed,
                            ParseSafetensorsIndex(json));
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : parsed.weight_map) shards.insert(shard);
    const fs::path index_dir = fs::path(info.tensor()).parent_path();
    uint64_t total = 0;
    for (const std::string& shard : shards) {
      auto found = shard_data_bytes.find(
          (index_dir / shard).lexically_normal().generic_string());
      if (found != shard_data_bytes.end()) total += found->second;
    }
    const int file_index = add_file(info.tensor());
    OutputFile& file = plan.files[file_index];
    PSTORE_ASSIGN_OR_RETURN(file.literal,
                            SetSafetensorsIndexTotalSize(json, total));
    file.size = file.literal.size();
  }
  std::set<std::string> paths;
  for (const OutputFile& file : plan.files) {
    if (!paths.insert(file.name).second) {
      return absl::FailedPreconditionError(
          absl::StrCat(revision.name(), " holds two entries that are both ",
                       file.name, " in a directory"));
    }
  }
  for (const std::string& path : paths) {
    // NAME.tmp is where NAME is written.
    if (paths.contains(TempPathOf(path))) {
      return absl::FailedPreconditionError(absl::StrCat(
          revision.name(), " holds both ", path, " and ", TempPathOf(path),
          ", which a pull writes ", path, " through"));
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------
// Pulling a plan.

// A run of an entry's bytes to fetch.
struct Range {
  int entry = 0;
  uint64_t offset = 0;
  uint64_t length = 0;  // 0: the whole entry as sent.
};

// Blocks of entry `info` as its byte ranges: block i is [i * block_bytes,
// ...). Empty when the server sent no ids.
uint64_t BlockLength(const v1::TensorInfo& info, int block) {
  const uint64_t start = uint64_t(block) * info.block_bytes();
  return std::min<uint64_t>(info.block_bytes(),
                            info.stored_byte_length() - start);
}

bool Checkable(const v1::TensorInfo& info, const Placement& placement) {
  return placement.encoding == Encoding::kRaw && info.block_bytes() > 0 &&
         info.stored_byte_length() > 0 && info.block_ids_size() > 0;
}

// Returns whether bytes [at, at + length) of `fd` hash to block id `id`.
absl::StatusOr<bool> BlockMatches(int fd, const std::string& path, uint64_t at,
                                  uint64_t length, const std::string& id,
                                  std::vector<uint8_t>* buffer) {
  buffer->resize(length);
  absl::Status read = ReadFully(fd, path, at, std::span<uint8_t>(*buffer));
  if (absl::IsDataLoss(read)) return false;  // The file ends first.
  PSTORE_RETURN_IF_ERROR(read);
  return BlockId::Of(std::span<const uint8_t>(*buffer)).ToByteString() == id;
}

class PlanPuller {
 public:
  PlanPuller(Client& client, Plan plan, const PullToOptions& options)
      : client_(client), plan_(std::move(plan)), options_(options) {
    for (int i = 0; i < plan_.revision.tensors_size(); ++i) {
      index_of_[plan_.revision.tensors(i).tensor()] = i;
    }
  }
  ~PlanPuller() {
    for (OutputFile& file : plan_.files) {
      if (file.fd >= 0) close(file.fd);
    }
  }

  absl::StatusOr<PullToResult> Run() {
    for (const OutputFile& file : plan_.files) total_ += file.size;
    PSTORE_RETURN_IF_ERROR(OpenAndCheck());
    Report(reused_);
    // One PullModel when nothing is in place and the pull would not send
    // much that no file takes (the files of a revision pulled into one
    // tensor file), else ranges of what is missing.
    uint64_t unplaced = 0;
    for (int i = 0; i < plan_.revision.tensors_size(); ++i) {
      if (plan_.placements[i].file < 0) {
        unplaced += plan_.placements[i].length;
      }
    }
    if (reused_ == 0 && !AnyComplete() &&
        unplaced <= std::clamp(total_ / 64, kMaxUnplacedBytes,
                               kMaxUnplacedBytes * 32)) {
      PSTORE_RETURN_IF_ERROR(PullWhole());
    } else {
      PSTORE_RETURN_IF_ERROR(FetchRanges());
    }
    PSTORE_RETURN_IF_ERROR(Commit());
    PullToResult result;
    result.revision = plan_.revision;
    result.files = static_cast<int>(plan_.files.size());
    result.bytes = total_;
    result.reused_bytes = reused_;
    result.fetched_bytes = fetched_.load();
    return result;
  }

 private:
  bool AnyComplete() const {
    for (const OutputFile& file : plan_.files) {
      if (file.complete) return true;
    }
    return false;
  }

  void Report(uint64_t added) {
    absl::MutexLock lock(&progress_mu_);
    done_ += added;
    if (options_.progress) options_.progress(std::min(done_, total_), total_);
  }

  // Opens each file's temporary and finds which blocks are in place, in
  // it or in the file itself.
  absl::Status OpenAndCheck() {
    missing_.assign(plan_.revision.tensors_size(), {});
    std::vector<std::vector<int>> entries_of(plan_.files.size());
    for (int i = 0; i < plan_.revision.tensors_size(); ++i) {
      const Placement& placement = plan_.placements[i];
      if (placement.file >= 0) entries_of[placement.file].push_back(i);
      const v1::TensorInfo& info = plan_.revision.tensors(i);
      // Every block missing until found; an entry that cannot be checked
      // is missing whole.
      missing_[i].assign(Checkable(info, placement) ? info.block_ids_size() : 1,
                         true);
    }
    std::vector<uint8_t> buffer;
    for (size_t f = 0; f < plan_.files.size(); ++f) {
      OutputFile& file = plan_.files[f];
      const std::string temp = TempPathOf(file.path);
      std::error_code error;
      fs::create_directories(fs::path(file.path).parent_path(), error);
      if (error) {
        return ErrnoToStatus(
            error.value(), absl::StrCat("create the directory of ", file.path));
      }
      PSTORE_RETURN_IF_ERROR(CheckReplaceable(file.path));
      PSTORE_RETURN_IF_ERROR(CheckReplaceable(temp));
      // What is there: the temporary of a pull that stopped, else the file
      // of an earlier pull.
      std::string base_path = temp;
      int base = open(temp.c_str(), O_RDWR | O_CLOEXEC);
      const bool base_is_temp = base >= 0;
      if (base < 0) {
        base_path = file.path;
        base = open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
      }
      FdCloser base_closer(base_is_temp ? -1 : base);
      if (base_is_temp) file.fd = base;
      uint64_t present = 0;
      bool whole = true;  // Every byte of the file checked good.
      if (base >= 0) {
        for (int entry : entries_of[f]) {
          const v1::TensorInfo& info = plan_.revision.tensors(entry);
          const Placement& placement = plan_.placements[entry];
          if (!Checkable(info, placement)) {
            whole = whole && placement.length == 0;
            continue;
          }
          for (int b = 0; b < info.block_ids_size(); ++b) {
            const uint64_t length = BlockLength(info, b);
            const uint64_t at =
                placement.offset + uint64_t(b) * info.block_bytes();
            PSTORE_ASSIGN_OR_RETURN(bool good,
                                    BlockMatches(base, base_path, at, length,
                                                 info.block_ids(b), &buffer));
            if (good) {
              missing_[entry][b] = false;
              present += length;
            } else {
              whole = false;
            }
          }
        }
        if (!file.literal.empty()) {
          buffer.resize(file.literal.size());
          absl::Status read =
              ReadFully(base, base_path, 0, std::span<uint8_t>(buffer));
          whole = whole && read.ok() &&
                  std::memcmp(buffer.data(), file.literal.data(),
                              buffer.size()) == 0;
        }
        struct stat st;
        whole =
            whole && fstat(base, &st) == 0 && uint64_t(st.st_size) == file.size;
        // Bytes no entry covers (a GGUF file's padding) must be zeros.
        for (const auto& [begin, end] : GapsOf(f, entries_of[f])) {
          if (!whole) break;
          buffer.assign(end - begin, 0);
          absl::Status read =
              ReadFully(base, base_path, begin, std::span<uint8_t>(buffer));
          whole = read.ok() && std::all_of(buffer.begin(), buffer.end(),
                                           [](uint8_t b) { return b == 0; });
        }
      }
      if (base >= 0 && !base_is_temp && whole) {
        // An earlier pull left this very file: nothing to write.
        file.complete = true;
        reused_ += file.size;
        continue;
      }
      if (file.fd < 0) {
        file.fd =
            open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (file.fd < 0) {
          return ErrnoToStatus(errno, absl::StrCat("create ", temp));
        }
        if (base >= 0 && present > 0) {
          PSTORE_RETURN_IF_ERROR(
              CopyPresent(base, base_path, entries_of[f], f, &buffer));
        }
      }
      PSTORE_RETURN_IF_ERROR(Size(file, temp));
      if (base_is_temp) {
        // What an earlier pull of something else left between the entries.
        for (const auto& [begin, end] : GapsOf(f, entries_of[f])) {
          buffer.assign(end - begin, 0);
          PSTORE_RETURN_IF_ERROR(WriteFullyAt(
              file.fd, temp, begin, std::span<const uint8_t>(buffer)));
        }
      }
      reused_ += present;
    }
    return absl::OkStatus();
  }

  // Returns the byte ranges [begin, end) of file `f` that neither its
  // literal bytes nor any of `entries` (those placed in it) cover.
  std::vector<std::pair<uint64_t, uint64_t>> GapsOf(
      size_t f, const std::vector<int>& entries) const {
    const OutputFile& file = plan_.files[f];
    std::vector<std::pair<uint64_t, uint64_t>> covered;
    covered.emplace_back(0, file.literal.size());
    for (int entry : entries) {
      const Placement& placement = plan_.placements[entry];
      covered.emplace_back(placement.offset,
                           placement.offset + placement.length);
    }
    std::sort(covered.begin(), covered.end());
    std::vector<std::pair<uint64_t, uint64_t>> gaps;
    uint64_t at = 0;
    for (const auto& [begin, end] : covered) {
      if (begin > at) gaps.emplace_back(at, std::min(begin, file.size));
      at = std::max(at, end);
    }
    if (at < file.size) gaps.emplace_back(at, file.size);
    return gaps;
  }

  // Copies the good blocks of file `f` from `base` (the finished file of
  // an earlier pull) into its new temporary.
  absl::Status CopyPresent(int base, const std::string& base_path,
                           const std::vector<int>& entries, size_t f,
                           std::vector<uint8_t>* buffer) {
    OutputFile& file = plan_.files[f];
    for (int entry : entries) {
      const v1::TensorInfo& info = plan_.revision.tensors(entry);
      const Placement& placement = plan_.placements[entry];
      if (!Checkable(info, placement)) continue;
      for (int b = 0; b < info.block_ids_size(); ++b) {
        if (missing_[entry][b]) continue;
        const uint64_t length = BlockLength(info, b);
        const uint64_t at = placement.offset + uint64_t(b) * info.block_bytes();
        buffer->resize(length);
        PSTORE_RETURN_IF_ERROR(
            ReadFully(base, base_path, at, std::span<uint8_t>(*buffer)));
        PSTORE_RETURN_IF_ERROR(WriteFullyAt(file.fd, TempPathOf(file.path), at,
                                            std::span<const uint8_t>(*buffer)));
      }
    }
    return absl::OkStatus();
  }

  // Gives the temporary its final size (space reserved: a full disk fails
  // the pull now) and its literal bytes.
  absl::Status Size(const OutputFile& file, const std::string& temp) {
    struct stat st;
    if (fstat(file.fd, &st) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("stat ", temp));
    }
    if (uint64_t(st.st_size) > file.size &&
        ftruncate(file.fd, static_cast<off_t>(file.size)) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("truncate ", temp));
    }
    if (file.size > 0) {
      if (int error = posix_fallocate(file.fd, 0, file.size); error != 0) {
        return ErrnoToStatus(error, absl::StrCat("allocate ", temp));
      }
    }
    return WriteFullyAt(file.fd, temp, 0, BytesOf(file.literal));
  }

  // Where byte `offset` of entry `info` goes, or nullptr for an entry the
  // pull does not write.
  // Returns where byte `offset` of entry `info` goes: the file, or nullptr
  // for an entry the pull does not write. Aborted if `info` is not the
  // entry the plan knows (an open revision changed during the pull).
  absl::StatusOr<const OutputFile*> FileOf(const v1::TensorInfo& info,
                                           uint64_t offset, uint64_t* at) {
    auto found = index_of_.find(info.tensor());
    const v1::TensorInfo* planned =
        found == index_of_.end() ? nullptr
                                 : &plan_.revision.tensors(found->second);
    if (planned == nullptr ||
        planned->stored_xxh3_64() != info.stored_xxh3_64() ||
        planned->stored_byte_length() != info.stored_byte_length()) {
      return absl::AbortedError(absl::StrCat(
          info.name(), " changed while it was pulled (the revision is open): ",
          "pull it again"));
    }
    const Placement& placement = plan_.placements[found->second];
    if (placement.file < 0) return nullptr;
    *at = placement.offset + offset;
    return &plan_.files[placement.file];
  }

  // Nothing in place: one PullModel of the whole revision.
  absl::Status PullWhole() {
    PullCallbacks callbacks;
    absl::Mutex unplaced_mu;
    // Entries the pull sends but no file takes (shard headers of an
    // encoded pull, files in a pull into one file): kept in memory, in
    // case the pull reads them back to check them.
    std::map<std::string, std::string> unplaced;
    callbacks.write = [&](const v1::TensorInfo& info, uint64_t offset,
                          std::span<const uint8_t> bytes) -> absl::Status {
      uint64_t at = 0;
      PSTORE_ASSIGN_OR_RETURN(const OutputFile* file,
                              FileOf(info, offset, &at));
      if (file == nullptr) {
        absl::MutexLock lock(&unplaced_mu);
        std::string& kept = unplaced[info.tensor()];
        kept.resize(info.byte_length());
        std::memcpy(kept.data() + offset, bytes.data(), bytes.size());
        return absl::OkStatus();
      }
      return WriteFullyAt(file->fd, TempPathOf(file->path), at, bytes);
    };
    callbacks.read_back = [&](const v1::TensorInfo& info, uint64_t offset,
                              std::span<uint8_t> out) -> absl::Status {
      uint64_t at = 0;
      PSTORE_ASSIGN_OR_RETURN(const OutputFile* file,
                              FileOf(info, offset, &at));
      if (file == nullptr) {
        absl::MutexLock lock(&unplaced_mu);
        const std::string& kept = unplaced[info.tensor()];
        if (offset + out.size() > kept.size()) {
          return absl::InternalError("read back past what arrived");
        }
        std::memcpy(out.data(), kept.data() + offset, out.size());
        return absl::OkStatus();
      }
      return ReadFully(file->fd, TempPathOf(file->path), at, out);
    };
    uint64_t last = 0;
    callbacks.progress = [&](uint64_t received, uint64_t) {
      fetched_.store(received);
      Report(received - last);
      last = received;
    };
    PullOptions pull;
    pull.encoding = plan_.encoding;
    pull.streams = std::max(1, options_.streams);
    pull.chunk_bytes = kPullChunkBytes;
    PSTORE_ASSIGN_OR_RETURN(
        PullResult result,
        client_.PullModel(plan_.revision.name(), pull, callbacks));
    fetched_.store(result.bytes);
    return absl::OkStatus();
  }

  // Some bytes in place: fetches the rest in ranges, each checked as it
  // arrives and, where block ids allow, against them once written.
  absl::Status FetchRanges() {
    std::vector<Range> ranges;
    for (int i = 0; i < plan_.revision.tensors_size(); ++i) {
      const Placement& placement = plan_.placements[i];
      if (placement.file < 0 || plan_.files[placement.file].complete ||
          placement.length == 0) {
        continue;
      }
      const v1::TensorInfo& info = plan_.revision.tensors(i);
      if (!Checkable(info, placement)) {
        ranges.push_back(Range{i, 0, 0});
        continue;
      }
      const std::vector<bool>& missing = missing_[i];
      for (int b = 0; b < static_cast<int>(missing.size());) {
        if (!missing[b]) {
          ++b;
          continue;
        }
        Range range{i, uint64_t(b) * info.block_bytes(), 0};
        while (b < static_cast<int>(missing.size()) && missing[b] &&
               range.length + BlockLength(info, b) <= kRangeBytes) {
          range.length += BlockLength(info, b);
          ++b;
        }
        if (range.length == 0) {  // A block larger than kRangeBytes.
          range.length = BlockLength(info, b);
          ++b;
        }
        ranges.push_back(range);
      }
    }
    return ForEachInParallel(
        ranges.size(), options_.streams,
        [&](size_t index) { return Fetch(ranges[index]); });
  }

  absl::Status Fetch(const Range& range) {
    const v1::TensorInfo& info = plan_.revision.tensors(range.entry);
    const Placement& placement = plan_.placements[range.entry];
    const OutputFile& file = plan_.files[placement.file];
    const std::string temp = TempPathOf(file.path);
    GetOptions get;
    get.encoding = plan_.encoding;
    if (placement.encoding == Encoding::kRaw) get.encoding = "raw";
    get.offset = range.offset;
    get.length = range.length;
    get.chunk_bytes = kPullChunkBytes;
    // Raw bytes are checked against the blocks' ids as they arrive (the
    // range starts on a block boundary), as a pull checks a tensor's hash.
    const bool checkable = Checkable(info, placement);
    Xxh3_128Hasher hasher;
    int block =
        checkable ? static_cast<int>(range.offset / info.block_bytes()) : 0;
    uint64_t in_block = 0;  // Bytes of `block` hashed.
    auto check = [&](std::span<const uint8_t> bytes) -> absl::Status {
      while (!bytes.empty()) {
        const uint64_t take = std::min<uint64_t>(
            bytes.size(), BlockLength(info, block) - in_block);
        hasher.Update(bytes.first(take));
        bytes = bytes.subspan(take);
        in_block += take;
        if (in_block < BlockLength(info, block)) continue;
        if (BlockId(hasher.Digest()).ToByteString() != info.block_ids(block)) {
          return absl::DataLossError(
              absl::StrCat(info.name(), ": block ", block,
                           " as received does not hash to its id"));
        }
        hasher.Reset();
        in_block = 0;
        ++block;
      }
      return absl::OkStatus();
    };
    uint64_t written = 0;
    PSTORE_RETURN_IF_ERROR(
        client_
            .GetTensorTo(
                info.name(), get,
                [&](const v1::TensorInfo& sent,
                    std::span<const uint8_t> bytes) -> absl::Status {
                  // The tensor the plan knows: checked once per call.
                  if (written == 0) {
                    uint64_t unused = 0;
                    PSTORE_RETURN_IF_ERROR(FileOf(sent, 0, &unused).status());
                  }
                  if (checkable) PSTORE_RETURN_IF_ERROR(check(bytes));
                  PSTORE_RETURN_IF_ERROR(WriteFullyAt(
                      file.fd, temp, placement.offset + range.offset + written,
                      bytes));
                  written += bytes.size();
                  fetched_.fetch_add(bytes.size());
                  Report(bytes.size());
                  return absl::OkStatus();
                })
            .status());
    if (checkable && (in_block != 0 || written != range.length)) {
      return absl::DataLossError(absl::StrCat(info.name(), ": the range at ",
                                              range.offset, " ended early"));
    }
    return absl::OkStatus();
  }

  // Syncs every temporary and renames it over its file.
  absl::Status Commit() {
    std::set<std::string> dirs;
    for (OutputFile& file : plan_.files) {
      if (file.complete) continue;
      const std::string temp = TempPathOf(file.path);
      if (fsync(file.fd) != 0) {
        return ErrnoToStatus(errno, absl::StrCat("sync ", temp));
      }
      close(file.fd);
      file.fd = -1;
      if (rename(temp.c_str(), file.path.c_str()) != 0) {
        return ErrnoToStatus(errno, absl::StrCat("rename ", temp));
      }
      dirs.insert(fs::path(file.path).parent_path().string());
    }
    for (const std::string& dir : dirs) {
      int fd = open(dir.empty() ? "." : dir.c_str(),
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) continue;
      fsync(fd);
      close(fd);
    }
    return absl::OkStatus();
  }

  Client& client_;
  Plan plan_;
  const PullToOptions& options_;
  uint64_t total_ = 0;
  uint64_t reused_ = 0;
  std::atomic<uint64_t> fetched_{0};
  absl::Mutex progress_mu_;
  uint64_t done_ ABSL_GUARDED_BY(progress_mu_) = 0;
  std::map<std::string, int> index_of_;  // Entry name -> manifest index.
  // By entry: whether each block (or the whole entry) is still missing.
  std::vector<std::vector<bool>> missing_;
};

// ---------------------------------------------------------------------------
// Importing a directory.

// One entry an import puts.
struct ImportItem {
  std::string name;  // In the revision.
  v1::EntryKind kind = v1::ENTRY_TENSOR;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t length = 0;
  // Where its bytes are: the first `length` bytes of the file at `path`
  // (a file, a header), or, for a tensor, what `read` reads: bytes
  // [offset, offset + out.size()) of it.
  std::string path;
  std::function<absl::Status(uint64_t offset, std::span<uint8_t> out)> read;
};

// Returns OK if pstored takes `name` (a path in a model directory) as an
// entry's name: 1-1024 bytes, no control characters, no empty, "." or ".."
// part. InvalidArgument saying why not.
absl::Status CheckEntryName(absl::string_view name) {
  if (name.empty() || name.size() > 1024) {
    return absl::InvalidArgumentError("the path is empty or over 1024 bytes");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "the path holds a control character, which no name may");
    }
  }
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          "the path has an empty, . or .. part, which no name may");
    }
  }
  return absl::OkStatus();
}

// Puts `items` into open revision `revision` over options.jobs threads:
// files and headers first (small; a pstored that predates them says so at
// once), then tensors, largest first so that the puts end together;
// `total` is their bytes.
absl::Status PutAll(Client& client, absl::string_view revision,
                    std::vector<ImportItem> items, uint64_t total,
                    const ImportOptions& options) {
  std::stable_sort(items.begin(), items.end(),
                   [](const ImportItem& a, const ImportItem& b) {
                     const bool a_tensor = a.kind == v1::ENTRY_TENSOR;
                     const bool b_tensor = b.kind == v1::ENTRY_TENSOR;
                     if (a_tensor != b_tensor) return b_tensor;
                     return a.length > b.length;
                   });
  absl::Mutex mu;
  uint64_t done = 0;
  return ForEachInParallel(
      items.size(), options.jobs, [&](size_t index) -> absl::Status {
        const ImportItem& item = items[index];
        PutOptions put;
        put.kind = item.kind;
        // A file is opened once for all the reads of its put.
        int fd = -1;
        if (!item.path.empty()) {
          fd = open(item.path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) {
            return ErrnoToStatus(errno, absl::StrCat("open ", item.path));
          }
        }
        FdCloser closer(fd);
        std::function<absl::Status(uint64_t, std::span<uint8_t>)> read =
            item.read;
        if (fd >= 0) {
          read = [&](uint64_t offset, std::span<uint8_t> out) {
            return ReadFully(fd, item.path, offset, out);
          };
        }
        PSTORE_RETURN_IF_ERROR(
            client
                .PutTensorFrom(absl::StrCat(revision, "/", item.name),
                               item.dtype, item.shape, item.length, read, put)
                .status());
        absl::MutexLock lock(&mu);
        done += item.length;
        if (options.progress) options.progress(done, total);
        return absl::OkStatus();
      });
}

// Creates revision `revision` with `metadata`, puts `items` (`total`
// bytes) into it, and publishes it if asked. Returns the revision.
absl::StatusOr<v1::Revision> StoreRevision(
    Client& client, absl::string_view revision,
    const std::map<std::string, std::string>& metadata,
    std::vector<ImportItem> items, uint64_t total,
    const ImportOptions& options) {
  PSTORE_ASSIGN_OR_RETURN(v1::Revision created,
                          client.CreateRevision(revision, metadata));
  PSTORE_RETURN_IF_ERROR(
      PutAll(client, revision, std::move(items), total, options));
  if (options.publish) return client.PublishRevision(revision);
  return created;
}

// Returns OK if an import can go into `revision`: it names one, MODEL@REV.
// InvalidArgument saying so else.
absl::Status CheckImportRevision(absl::string_view revision) {
  if (revision.find('@') == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "import into '", revision, "': name a revision, MODEL@REV"));
  }
  return absl::OkStatus();
}

// Returns a GGUF metadata value as revision metadata: strings as they are,
// numbers in decimal, booleans as true or false; nullopt for arrays (they
// stay in the file's header entry, with every type).
std::optional<std::string> MetadataText(const GgufValue& value) {
  if (const std::string* text = value.AsString()) return *text;
  if (const bool* flag = std::get_if<bool>(&value.value)) {
    return *flag ? "true" : "false";
  }
  if (value.type == GgufValueType::kFloat32) {
    return absl::StrFormat("%.9g", *value.AsDouble());
  }
  if (value.type == GgufValueType::kFloat64) {
    return absl::StrFormat("%.17g", *value.AsDouble());
  }
  if (auto number = value.AsUint64()) return absl::StrCat(*number);
  if (auto number = value.AsInt64()) return absl::StrCat(*number);
  return std::nullopt;
}

}  // namespace

absl::StatusOr<ImportResult> ImportGguf(Client& client, const std::string& path,
                                        absl::string_view revision,
                                        const ImportOptions& options) {
  PSTORE_RETURN_IF_ERROR(CheckImportRevision(revision));
  PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  ImportResult result;
  std::vector<ImportItem> items;
  // Every type is checked before anything is stored.
  for (const GgufTensorInfo& tensor : file->tensors()) {
    ImportItem item;
    item.name = tensor.name;
    item.length = tensor.byte_size;
    item.read = [gguf = file.get(), &tensor](uint64_t offset,
                                             std::span<uint8_t> out) {
      return gguf->ReadAt(tensor, offset, out);
    };
    if (std::optional<DType> dtype = DTypeFromGgmlType(tensor.type)) {
      item.dtype = std::string(DTypeName(*dtype));
      item.shape = tensor.Shape();
    } else if (tensor.type == GgmlType::kQ8_0 ||
               tensor.type == GgmlType::kQ4_0) {
      // Its blocks as they are; the header entry records the type.
      item.dtype = "U8";
      item.shape = {static_cast<int64_t>(tensor.byte_size)};
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor ", tensor.name, " has ggml type ",
          GgmlTypeName(tensor.type), ", which pstore does not store (it ",
          "stores F32, F16, BF16, F64, I8, I16, I32, I64, Q8_0 and Q4_0)"));
    }
    items.push_back(std::move(item));
    ++result.tensors;
  }
  // The header (magic to the data section) as it was: metadata with its
  // types, each tensor's type, dims and offset.
  ImportItem header;
  header.name = fs::path(path).filename().string();
  header.kind = v1::ENTRY_SHARD_HEADER;
  header.dtype = "U8";
  header.length = file->data_offset();
  header.shape = {static_cast<int64_t>(header.length)};
  header.path = path;
  if (file->FindTensor(header.name) != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a tensor has the name of the file, ", header.name));
  }
  items.push_back(std::move(header));
  result.shards = 1;
  result.bytes = file->data_offset();
  for (const GgufTensorInfo& tensor : file->tensors()) {
    result.bytes += tensor.byte_size;
  }

  std::map<std::string, std::string> metadata;
  for (const GgufKeyValue& pair : file->metadata()) {
    if (std::optional<std::string> text = MetadataText(pair.value)) {
      metadata[pair.key] = *std::move(text);
    }
  }
  PSTORE_ASSIGN_OR_RETURN(
      result.revision, StoreRevision(client, revision, metadata,
                                     std::move(items), result.bytes, options));
  return result;
}

absl::StatusOr<ImportResult> ImportSafetensors(Client& client,
                                               const std::string& path,
                                               absl::string_view revision,
                                               const ImportOptions& options) {
  PSTORE_RETURN_IF_ERROR(CheckImportRevision(revision));
  PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                          SafetensorsFile::Open(path));
  ImportResult result;
  std::vector<ImportItem> items;
  uint64_t total = 0;
  for (const SafetensorsTensor& tensor : file->tensors()) {
    ImportItem item;
    item.name = tensor.name;
    item.dtype = std::string(DTypeName(tensor.dtype));
    item.shape = tensor.shape;
    item.length = tensor.byte_length;
    item.read = [safetensors = file.get(), &tensor](uint64_t offset,
                                                    std::span<uint8_t> out) {
      return safetensors->ReadAt(tensor, offset, out);
    };
    items.push_back(std::move(item));
    total += tensor.byte_length;
  }
  result.tensors = static_cast<int>(file->tensors().size());
  result.bytes = total;
  PSTORE_ASSIGN_OR_RETURN(result.revision,
                          StoreRevision(client, revision, file->metadata(),
                                        std::move(items), total, options));
  return result;
}

absl::StatusOr<ImportResult> ImportPath(Client& client, const std::string& path,
                                        absl::string_view revision,
                                        const ImportOptions& options) {
  std::error_code error;
  if (fs::is_directory(path, error)) {
    return ImportDirectory(client, path, revision, options);
  }
  if (absl::EndsWith(path, ".gguf")) {
    return ImportGguf(client, path, revision, options);
  }
  return ImportSafetensors(client, path, revision, options);
}

bool IsPullDirectory(const std::string& path, const v1::Revision& revision) {
  std::error_code error;
  if (fs::is_directory(path, error) || absl::EndsWith(path, "/")) return true;
  return HoldsModelDirectory(revision) && !absl::EndsWith(path, ".gguf") &&
         !absl::EndsWith(path, ".safetensors") && !fs::exists(path, error);
}

bool HoldsModelDirectory(const v1::Revision& revision) {
  for (const v1::TensorInfo& info : revision.tensors()) {
    if (info.kind() != v1::ENTRY_TENSOR) return true;
  }
  return false;
}

absl::StatusOr<PullToResult> PullToDirectory(Client& client,
                                             absl::string_view name,
                                             const std::string& dir,
                                             const PullToOptions& options) {
  PSTORE_ASSIGN_OR_RETURN(Plan plan, PlanDirectory(client, name, dir, options));
  return PlanPuller(client, std::move(plan), options).Run();
}

absl::StatusOr<PullToResult> PullToFile(Client& client, absl::string_view name,
                                        const std::string& path,
                                        const PullToOptions& options) {
  PSTORE_ASSIGN_OR_RETURN(Plan plan, PlanFile(client, name, path, options));
  return PlanPuller(client, std::move(plan), options).Run();
}

absl::StatusOr<ImportResult> ImportDirectory(Client& client,
                                             const std::string& dir,
                                             absl::string_view revision,
                                             const ImportOptions& options) {
  PSTORE_RETURN_IF_ERROR(CheckImportRevision(revision));
  ImportResult result;
  std::error_code error;
  if (!fs::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat(dir, " is not a directory"));
  }
  // Every regular file, by its path in the directory.
  std::map<std::string, uint64_t> files;
  fs::recursive_directory_iterator walk(
      dir, fs::directory_options::follow_directory_symlink, error);
  for (; !error && walk != fs::recursive_directory_iterator();
       walk.increment(error)) {
    const fs::directory_entry& entry = *walk;
    // By the path as listed: a symbolic link (a Hugging Face cache's
    // snapshot links every file into its blobs) keeps its own name.
    const std::string relative =
        entry.path().lexically_relative(dir).generic_string();
    if (entry.is_directory(error)) {
      if (entry.path().filename() == ".git") {
        result.skipped.push_back(relative);
        walk.disable_recursion_pending();
      }
      continue;
    }
    if (!entry.is_regular_file(error)) {
      return absl::InvalidArgumentError(absl::StrCat(
          entry.path().string(), " is neither a regular file nor a directory"));
    }
    if (absl::EndsWith(relative, ".tmp")) {
      // What a pull that stopped left: NAME.tmp is where NAME is written.
      result.skipped.push_back(relative);
      continue;
    }
    absl::Status name = CheckEntryName(relative);
    if (!name.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(entry.path().string(), ": ", name.message()));
    }
    files[relative] = entry.file_size(error);
    if (error) break;
  }
  if (error) {
    return ErrnoToStatus(error.value(), absl::StrCat("list ", dir));
  }

  // Shards, read and checked before anything is stored.
  std::map<std::string, std::unique_ptr<SafetensorsFile>> shards;
  std::map<std::string, std::string> shard_of;  // Tensor -> shard.
  for (const auto& [relative, size] : files) {
    if (!absl::EndsWith(relative, ".safetensors")) continue;
    PSTORE_ASSIGN_OR_RETURN(
        std::unique_ptr<SafetensorsFile> shard,
        SafetensorsFile::Open((fs::path(dir) / relative).string()));
    for (const SafetensorsTensor& tensor : shard->tensors()) {
      auto [it, added] = shard_of.emplace(tensor.name, relative);
      if (!added) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor ", tensor.name, " is in both ", it->second,
                         " and ", relative));
      }
      if (files.contains(tensor.name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor ", tensor.name, " of ", relative,
                         " has the name of a file of the directory"));
      }
    }
    shards[relative] = std::move(shard);
  }
  for (const auto& [relative, size] : files) {
    if (!IsSafetensorsIndexName(relative)) continue;
    const std::string path = (fs::path(dir) / relative).string();
    PSTORE_ASSIGN_OR_RETURN(std::string json, ReadFileToString(path));
    absl::StatusOr<SafetensorsIndex> index = ParseSafetensorsIndex(json);
    if (!index.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", index.status().message()));
    }
    const fs::path index_dir = fs::path(relative).parent_path();
    std::set<std::string> named_shards;
    for (const auto& [tensor, shard_name] : index->weight_map) {
      const std::string shard =
          (index_dir / shard_name).lexically_normal().generic_string();
      auto found = shards.find(shard);
      if (found == shards.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, " puts tensor ", tensor, " in ", shard_name,
                         ", which is not a safetensors file of ", dir));
      }
      if (found->second->FindTensor(tensor) == nullptr) {
        auto elsewhere = shard_of.find(tensor);
        return absl::InvalidArgumentError(absl::StrCat(
            path, " puts tensor ", tensor, " in ", shard_name,
            ", which does not hold it",
            elsewhere == shard_of.end()
                ? " (no shard does)"
                : absl::StrCat(" (", elsewhere->second, " does)")));
      }
      named_shards.insert(shard);
    }
    for (const std::string& shard : named_shards) {
      for (const SafetensorsTensor& tensor : shards[shard]->tensors()) {
        if (!index->weight_map.contains(tensor.name)) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, " lacks tensor ", tensor.name, " of ", shard));
        }
      }
    }
  }

  std::vector<ImportItem> items;
  for (const auto& [relative, size] : files) {
    ImportItem item;
    item.name = relative;
    item.dtype = "U8";
    item.path = (fs::path(dir) / relative).string();
    auto shard = shards.find(relative);
    if (shard == shards.end()) {
      item.kind = v1::ENTRY_FILE;
      item.length = size;
      ++result.files;
    } else {
      item.kind = v1::ENTRY_SHARD_HEADER;
      item.length = shard->second->data_offset();
      ++result.shards;
      for (const SafetensorsTensor& tensor : shard->second->tensors()) {
        ImportItem put;
        put.name = tensor.name;
        put.dtype = std::string(DTypeName(tensor.dtype));
        put.shape = tensor.shape;
        put.length = tensor.byte_length;
        put.read = [file = shard->second.get(), &tensor](
                       uint64_t offset, std::span<uint8_t> out) {
          return file->ReadAt(tensor, offset, out);
        };
        items.push_back(std::move(put));
        ++result.tensors;
      }
    }
    item.shape = {static_cast<int64_t>(item.length)};
    result.bytes += size;
    items.push_back(std::move(item));
  }
  // The revision's metadata: the first shard's, as an import of that one
  // file would give (a pull into one file writes it back).
  std::map<std::string, std::string> metadata;
  if (!shards.empty()) metadata = shards.begin()->second->metadata();
  PSTORE_ASSIGN_OR_RETURN(
      result.revision, StoreRevision(client, revision, metadata,
                                     std::move(items), result.bytes, options));
  return result;
}

}  // namespace pstore
