// pstore-cli: the command line of pstore. `pstore-cli --help` and
// `pstore-cli COMMAND --help` list everything; README.md shows the common
// uses. Errors print one line naming the status code and what to do, and
// exit 1; usage errors exit 2.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/model_dir.h"
#include "client/progress.h"
#include "client/pstore_client.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "util/file_io.h"
#include "util/status.h"
#include "util/units.h"

namespace pstore {
namespace {

// `get -o FILE` writes through a buffer this large: the client hands the
// sink pieces of at most gRPC's slice size (64 KiB).
constexpr size_t kGetBufferBytes = size_t{1} << 20;

// The temporary file (PATH.tmp) a command is writing, if any: the handler
// of the signals that end pstore-cli removes it, so that an interrupted
// get or raw safetensors export leaves nothing behind (a pull, or an export
// through one, keeps its NAME.tmp files: the next one resumes from them).
// A lock-free atomic, which a signal handler may read.
std::atomic<const char*> g_temp_file{nullptr};
static_assert(std::atomic<const char*>::is_always_lock_free);

// Removes the temporary file being written, then dies of `signal` as
// without the handler (the shell sees the cause). Async-signal-safe.
extern "C" void RemoveTempFileAndDie(int signal) {
  const char* path = g_temp_file.exchange(nullptr);
  if (path != nullptr) unlink(path);
  struct sigaction action = {};
  action.sa_handler = SIG_DFL;
  sigaction(signal, &action, nullptr);
  raise(signal);
}

// Makes SIGINT, SIGTERM and SIGHUP remove the temporary file being
// written before pstore-cli dies of them.
void RemoveTempFileOnSignals() {
  struct sigaction action = {};
  action.sa_handler = RemoveTempFileAndDie;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    sigaction(signal, &action, nullptr);
  }
}

// Names the temporary file a signal handler removes, from Arm until the
// guard is destroyed. Declare it before the file's owner, so that it
// outlives the file: once the owner has committed or removed the file,
// the handler has nothing left to remove.
class TempFileGuard {
 public:
  TempFileGuard() = default;
  ~TempFileGuard() { g_temp_file.store(nullptr); }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;

  void Arm(std::string temp_path) {
    path_ = std::move(temp_path);
    g_temp_file.store(path_.c_str());
  }

 private:
  std::string path_;
};

// What a FAILED_PRECONDITION of the command means: the state of a
// revision (writing a published one), of a tier (disabled, or cold, which
// cannot be dropped), or nothing the command can say more of.
enum class Precondition { kUnknown, kPublishedRevision, kTier };

// What to do about an error of each code, for the one-line message.
std::string Advice(absl::StatusCode code, const std::string& address,
                   Precondition precondition) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return absl::StrCat(
          "retry later; if it persists, check that pstored runs at ", address,
          " (--addr, $PSTORE_ADDR) and read its log");
    case absl::StatusCode::kNotFound:
      return "check the name with `pstore-cli ls`";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "fix the arguments; see `pstore-cli COMMAND --help`";
    case absl::StatusCode::kFailedPrecondition:
      switch (precondition) {
        case Precondition::kPublishedRevision:
          return "published revisions are immutable: write to a new revision";
        case Precondition::kTier:
          return "see the server's tiers with `pstore-cli status`";
        case Precondition::kUnknown:
          break;
      }
      return "see the pstored log";
    case absl::StatusCode::kAlreadyExists:
      return "use another name, or delete the existing one first";
    case absl::StatusCode::kResourceExhausted:
      return "free space or budget on the server (see `pstore-cli status`)";
    case absl::StatusCode::kDataLoss:
      return "bytes failed their checksum; retry, and report it if it stays";
    case absl::StatusCode::kDeadlineExceeded:
      return "the call took too long; retry or raise --timeout";
    case absl::StatusCode::kUnauthenticated:
      return "set $PSTORE_TOKEN (or --token) to a token pstored knows";
    case absl::StatusCode::kPermissionDenied:
      return "use a token with the scope and model this needs";
    default:
      return "see the pstored log";
  }
}

int Fail(const absl::Status& status, const std::string& address,
         Precondition precondition = Precondition::kUnknown) {
  std::fprintf(stderr, "pstore-cli: %s: %s (%s)\n",
               absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str(),
               Advice(status.code(), address, precondition).c_str());
  return 1;
}

absl::StatusOr<std::vector<int64_t>> ParseShape(const std::string& text) {
  std::vector<int64_t> shape;
  if (text.empty() || text == "scalar") return shape;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t dim = 0;
    if (!absl::SimpleAtoi(part, &dim) || dim < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad --shape '", text, "': want dims like 1024,4096 (or 'scalar')"));
    }
    shape.push_back(dim);
  }
  return shape;
}

v1::Tier ParseTier(const std::string& text) {
  if (text == "dram") return v1::TIER_DRAM;
  if (text == "nvme") return v1::TIER_NVME;
  if (text == "cold") return v1::TIER_COLD;
  return v1::TIER_UNSPECIFIED;
}

std::string ShapeString(const v1::TensorInfo& info) {
  return absl::StrCat("[", absl::StrJoin(info.shape(), ", "), "]");
}

// --- Commands ---

absl::Status Put(Client& client, const std::string& name,
                 const std::string& path, const std::string& dtype,
                 const std::string& shape_text) {
  PSTORE_ASSIGN_OR_RETURN(DType parsed, ParseDType(dtype));
  PSTORE_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ParseShape(shape_text));
  PSTORE_ASSIGN_OR_RETURN(uint64_t expected, TensorByteLength(parsed, shape));
  std::vector<uint8_t> stdin_bytes;
  int fd = -1;
  uint64_t size = 0;
  if (path == "-") {
    stdin_bytes.assign(std::istreambuf_iterator<char>(std::cin),
                       std::istreambuf_iterator<char>());
    size = stdin_bytes.size();
  } else {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
    std::error_code error;
    size = std::filesystem::file_size(path, error);
  }
  FdCloser closer(fd);
  if (size != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds ", size, " bytes but ", dtype, " ",
                     shape_text, " makes ", expected));
  }
  ProgressBar progress(absl::StrCat("put ", name), 2 * size);
  auto read = [&](uint64_t offset, std::span<uint8_t> out) -> absl::Status {
    if (fd < 0) {
      std::memcpy(out.data(), stdin_bytes.data() + offset, out.size());
    } else {
      ssize_t got = pread(fd, out.data(), out.size(), offset);
      if (got < 0) return ErrnoToStatus(errno, absl::StrCat("read ", path));
      if (static_cast<size_t>(got) != out.size()) {
        return absl::DataLossError(absl::StrCat(path, " shrank while read"));
      }
    }
    progress.Add(out.size());
    return absl::OkStatus();
  };
  PSTORE_ASSIGN_OR_RETURN(v1::TensorInfo info,
                          client.PutTensorFrom(name, dtype, shape, size, read));
  std::printf("%s %s %s %s xxh3=%016lx\n", info.name().c_str(),
              info.dtype().c_str(), ShapeString(info).c_str(),
              FormatBytes(info.stored_byte_length()).c_str(),
              static_cast<unsigned long>(info.stored_xxh3_64()));
  return absl::OkStatus();
}

absl::Status Get(Client& client, const std::string& name,
                 const std::string& output, const GetOptions& options) {
  int fd = STDOUT_FILENO;
  TempFileGuard guard;
  std::unique_ptr<ReplacingFile> file;
  if (IsSpecialFile(output)) {
    // /dev/null, a FIFO: written in place, never renamed over.
    fd = open(output.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", output));
  } else if (!output.empty() && output != "-") {
    guard.Arm(ReplacingFile::TempPathOf(output));  // Before it exists.
    PSTORE_ASSIGN_OR_RETURN(file,
                            ReplacingFile::Create(output, kGetBufferBytes));
  }
  FdCloser closer(fd == STDOUT_FILENO ? -1 : fd);
  std::unique_ptr<ProgressBar> progress;
  absl::StatusOr<v1::TensorInfo> info = client.GetTensorTo(
      name, options,
      [&](const v1::TensorInfo& tensor, std::span<const uint8_t> bytes) {
        if (progress == nullptr) {
          progress = std::make_unique<ProgressBar>(
              absl::StrCat("get ", tensor.name()), tensor.byte_length());
        }
        progress->Add(bytes.size());
        if (file != nullptr) return file->Write(bytes);
        return WriteFully(fd, output.empty() ? "stdout" : output, bytes);
      });
  if (!info.ok()) return info.status();  // `file` removes its temporary.
  return file != nullptr ? file->Commit() : absl::OkStatus();
}

absl::Status Stat(Client& client, const std::string& name) {
  PSTORE_ASSIGN_OR_RETURN(v1::TensorInfo info, client.StatTensor(name));
  std::printf(
      "name: %s\ndtype: %s\nshape: %s\nbytes: %lu\nxxh3_64: %016lx\n"
      "created: %s\n",
      info.name().c_str(), info.dtype().c_str(), ShapeString(info).c_str(),
      static_cast<unsigned long>(info.stored_byte_length()),
      static_cast<unsigned long>(info.stored_xxh3_64()),
      absl::FormatTime(absl::FromUnixMicros(info.created_unix_micros()),
                       absl::UTCTimeZone())
          .c_str());
  return absl::OkStatus();
}

absl::Status List(Client& client, const std::string& prefix) {
  if (prefix.empty()) {
    PSTORE_ASSIGN_OR_RETURN(std::vector<v1::Model> models, client.ListModels());
    for (const v1::Model& model : models) {
      for (const v1::Revision& revision : model.revisions()) {
        std::printf("%s\t%s%s\n", revision.name().c_str(),
                    revision.published() ? "published" : "open",
                    revision.latest() ? "\tlatest" : "");
      }
    }
    return absl::OkStatus();
  }
  std::string revision = prefix;
  std::string tensor_prefix;
  size_t slash = prefix.find('/');
  if (slash != std::string::npos) {
    revision = prefix.substr(0, slash);
    tensor_prefix = prefix.substr(slash + 1);
  }
  PSTORE_ASSIGN_OR_RETURN(std::vector<v1::TensorInfo> tensors,
                          client.ListTensors(revision, tensor_prefix));
  for (const v1::TensorInfo& info : tensors) {
    // Files and shard headers of a model directory are bytes: no shape.
    const bool tensor = info.kind() == v1::ENTRY_TENSOR;
    std::printf("%s\t%s\t%s\t%lu\n", info.name().c_str(),
                tensor                                  ? info.dtype().c_str()
                : info.kind() == v1::ENTRY_SHARD_HEADER ? "shard-header"
                                                        : "file",
                tensor ? ShapeString(info).c_str() : "-",
                static_cast<unsigned long>(info.stored_byte_length()));
  }
  return absl::OkStatus();
}

bool IsGgufPath(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0;
}

// Imports `path` as new revision `revision`: a model directory, a GGUF
// file, or else a safetensors file.
absl::Status Import(Client& client, const std::string& path,
                    const std::string& revision, bool publish, int jobs) {
  std::unique_ptr<ProgressBar> progress;
  ImportOptions options;
  options.publish = publish;
  options.jobs = jobs;
  options.progress = [&](uint64_t done, uint64_t total) {
    if (progress == nullptr) {
      progress = std::make_unique<ProgressBar>(
          absl::StrCat("import ", revision), total);
    }
    progress->Update(done);
  };
  std::error_code error;
  const bool directory = std::filesystem::is_directory(path, error);
  absl::StatusOr<ImportResult> result =
      ImportPath(client, path, revision, options);
  progress.reset();
  PSTORE_RETURN_IF_ERROR(result.status());
  if (!directory) {
    std::printf("imported %d tensors (%s) from %s into %s%s\n", result->tensors,
                FormatBytes(result->bytes).c_str(), path.c_str(),
                result->revision.name().c_str(), publish ? ", published" : "");
    return absl::OkStatus();
  }
  std::printf(
      "imported %s (%d shards, %d tensors, %d other files, %s) into %s%s\n",
      path.c_str(), result->shards, result->tensors, result->files,
      FormatBytes(result->bytes).c_str(), result->revision.name().c_str(),
      publish ? ", published" : "");
  for (const std::string& skipped : result->skipped) {
    std::printf("left out %s\n", skipped.c_str());
  }
  return absl::OkStatus();
}

// Returns the writer specs of a manifest.
std::vector<SafetensorsTensorSpec> SpecsOf(const v1::Revision& revision) {
  std::vector<SafetensorsTensorSpec> specs;
  for (const v1::TensorInfo& info : revision.tensors()) {
    // Files and shard headers of a model directory are no tensors of it.
    if (info.kind() != v1::ENTRY_TENSOR) continue;
    SafetensorsTensorSpec spec;
    spec.name = info.tensor();
    // The server only stores valid dtypes.
    spec.dtype = *ParseDType(info.dtype());
    spec.shape.assign(info.shape().begin(), info.shape().end());
    specs.push_back(std::move(spec));
  }
  return specs;
}

absl::Status Export(Client& client, const std::string& name,
                    const std::string& path) {
  PSTORE_ASSIGN_OR_RETURN(v1::Revision revision, client.GetRevision(name));
  std::map<std::string, std::string> metadata(revision.metadata().begin(),
                                              revision.metadata().end());
  std::vector<SafetensorsTensorSpec> specs = SpecsOf(revision);
  TempFileGuard guard;
  guard.Arm(ReplacingFile::TempPathOf(path));  // Before it exists.
  PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsWriter> writer,
                          SafetensorsWriter::Create(path, specs, metadata));
  uint64_t tensor_bytes = 0;
  for (const SafetensorsTensor& tensor : writer->layout().tensors) {
    tensor_bytes += tensor.byte_length;
  }
  ProgressBar progress(absl::StrCat("export ", revision.name()), tensor_bytes);
  for (const SafetensorsTensor& tensor : writer->layout().tensors) {
    std::string tensor_name = absl::StrCat(revision.name(), "/", tensor.name);
    PSTORE_ASSIGN_OR_RETURN(
        v1::TensorInfo info,
        client.GetTensorTo(
            tensor_name, GetOptions{},
            [&](const v1::TensorInfo&, std::span<const uint8_t> bytes) {
              progress.Add(bytes.size());
              return writer->Append(bytes);
            }));
    (void)info;
  }
  PSTORE_RETURN_IF_ERROR(writer->Finish());
  std::printf("exported %s (%zu tensors, %s) to %s\n", revision.name().c_str(),
              writer->layout().tensors.size(),
              FormatBytes(tensor_bytes).c_str(), path.c_str());
  return absl::OkStatus();
}

// Returns whether a pull into `path` left temporary files (NAME.tmp) for
// the next one. Looks at no more than 10,000 entries of a directory.
bool KeepsTempFiles(const std::string& path, bool directory) {
  std::error_code error;
  if (!directory) return std::filesystem::exists(path + ".tmp", error);
  int seen = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, error);
       !error && it != std::filesystem::recursive_directory_iterator() &&
       ++seen < 10000;
       it.increment(error)) {
    if (it->path().extension() == ".tmp") return true;
  }
  return false;
}

// Pulls revision `name` in `encoding` over `streams` streams into `path`:
// a model directory (see IsPullDirectory) or one safetensors or GGUF file.
// What is already there and good (a pull that stopped left NAME.tmp) is
// kept; each file is written as NAME.tmp and renamed when all is in.
absl::Status Pull(Client& client, const std::string& name,
                  const std::string& path, int streams,
                  const std::string& encoding, const std::string& verb) {
  PSTORE_ASSIGN_OR_RETURN(v1::Revision revision, client.GetRevision(name));
  const bool directory = IsPullDirectory(path, revision);
  std::unique_ptr<ProgressBar> progress;
  absl::Mutex mu;
  PullToOptions options;
  options.streams = streams;
  options.encoding = encoding.empty() ? "raw" : encoding;
  options.progress = [&](uint64_t done, uint64_t total) {
    absl::MutexLock lock(&mu);
    if (progress == nullptr) {
      progress = std::make_unique<ProgressBar>(
          absl::StrCat(verb, " ", revision.name()), total);
    }
    progress->Update(done);
  };
  // The resolved name: a publish during the pull does not mix revisions.
  absl::StatusOr<PullToResult> result =
      directory ? PullToDirectory(client, revision.name(), path, options)
                : PullToFile(client, revision.name(), path, options);
  progress.reset();
  if (!result.ok()) {
    if (KeepsTempFiles(path, directory)) {
      std::fprintf(stderr,
                   "pstore-cli: what arrived is kept in %s: run the same %s "
                   "again to fetch only the rest\n",
                   directory ? absl::StrCat(path, "/**/*.tmp").c_str()
                             : absl::StrCat(path, ".tmp").c_str(),
                   verb.c_str());
    }
    return result.status();
  }
  // A file: its tensors, as before directories; a directory: its files.
  int count = result->files;
  if (!directory) {
    count = 0;
    for (const v1::TensorInfo& info : result->revision.tensors()) {
      count += info.kind() == v1::ENTRY_TENSOR;
    }
  }
  std::printf(
      "%s %s (%d %s, %s as %s, %d streams) to %s: %s reused, %s fetched\n",
      verb == "pull" ? "pulled" : "exported", result->revision.name().c_str(),
      count, directory ? "files" : "tensors",
      FormatBytes(result->bytes).c_str(), options.encoding.c_str(), streams,
      path.c_str(), FormatBytes(result->reused_bytes).c_str(),
      FormatBytes(result->fetched_bytes).c_str());
  return absl::OkStatus();
}

// Copies revision `name` (latest if no revision) from `from` to `to`:
// the revision with its metadata, each tensor the destination lacks (or
// holds with other bytes) read from the source in ranges (every chunk
// checked) and put on the destination, whose stored hash must equal the
// source's; then published if the source's is. Run again after a failure,
// it copies only what is missing. FailedPrecondition if the destination
// holds a published revision of that name with other tensors.
absl::Status Copy(Client& from, Client& to, const std::string& name,
                  const std::string& to_address) {
  PSTORE_ASSIGN_OR_RETURN(v1::Revision source, from.GetRevision(name));
  std::map<std::string, std::string> metadata(source.metadata().begin(),
                                              source.metadata().end());
  absl::StatusOr<v1::Revision> created =
      to.CreateRevision(source.name(), metadata);
  std::map<std::string, const v1::TensorInfo*> present;
  v1::Revision existing;
  if (absl::IsAlreadyExists(created.status())) {
    PSTORE_ASSIGN_OR_RETURN(existing, to.GetRevision(source.name()));
    for (const v1::TensorInfo& tensor : existing.tensors()) {
      present[tensor.tensor()] = &tensor;
    }
  } else if (!created.ok()) {
    return created.status();
  }
  auto same = [&](const v1::TensorInfo& tensor) {
    auto found = present.find(tensor.tensor());
    return found != present.end() &&
           found->second->stored_xxh3_64() == tensor.stored_xxh3_64() &&
           found->second->stored_byte_length() == tensor.stored_byte_length() &&
           found->second->kind() == tensor.kind();
  };
  if (existing.published()) {
    bool identical = existing.tensors_size() == source.tensors_size();
    for (const v1::TensorInfo& tensor : source.tensors()) {
      identical = identical && same(tensor);
    }
    if (!identical) {
      return absl::FailedPreconditionError(
          absl::StrCat(to_address, " holds a published ", source.name(),
                       " with other tensors"));
    }
  }
  uint64_t copied = 0, copied_bytes = 0, reused = 0;
  for (const v1::TensorInfo& tensor : source.tensors()) {
    if (same(tensor)) {
      ++reused;
      continue;
    }
    std::vector<int64_t> shape(tensor.shape().begin(), tensor.shape().end());
    PutOptions put_options;
    // One pass over the source: the stored hash is compared afterwards.
    put_options.send_hash = false;
    put_options.kind = tensor.kind();
    PSTORE_ASSIGN_OR_RETURN(
        v1::TensorInfo stored,
        to.PutTensorFrom(
            tensor.name(), tensor.dtype(), shape, tensor.stored_byte_length(),
            [&](uint64_t offset, std::span<uint8_t> out) -> absl::Status {
              GetOptions range;
              range.offset = offset;
              range.length = out.size();
              return from.GetTensor(tensor.name(), out, range).status();
            },
            put_options));
    if (stored.stored_xxh3_64() != tensor.stored_xxh3_64()) {
      return absl::DataLossError(absl::StrCat(
          tensor.name(), " hashes to ",
          absl::StrCat(absl::Hex(stored.stored_xxh3_64(), absl::kZeroPad16)),
          " on ", to_address, ", not ",
          absl::StrCat(absl::Hex(tensor.stored_xxh3_64(), absl::kZeroPad16)),
          " as at the source"));
    }
    ++copied;
    copied_bytes += tensor.stored_byte_length();
  }
  if (source.published()) {
    PSTORE_RETURN_IF_ERROR(to.PublishRevision(source.name()).status());
  }
  std::printf("copied %s to %s: %lu tensors (%s), %lu already there%s\n",
              source.name().c_str(), to_address.c_str(),
              static_cast<unsigned long>(copied),
              FormatBytes(copied_bytes).c_str(),
              static_cast<unsigned long>(reused),
              source.published() ? ", published" : "");
  return absl::OkStatus();
}

// Returns OK if every copy of every block of `name` checked out; prints
// each bad copy.
absl::Status Verify(Client& client, const std::string& name) {
  PSTORE_ASSIGN_OR_RETURN(v1::VerifyResponse report, client.Verify(name));
  std::vector<std::string> copies;
  for (const v1::VerifyResponse::TierCount& count : report.checked()) {
    copies.push_back(absl::StrCat(
        absl::AsciiStrToLower(v1::Tier_Name(count.tier()).substr(5)), "=",
        count.copies()));
  }
  std::printf(
      "verified %s: %lu blocks (%s), copies checked %s\n",
      report.revision().c_str(), static_cast<unsigned long>(report.blocks()),
      FormatBytes(report.bytes()).c_str(), absl::StrJoin(copies, " ").c_str());
  for (const v1::VerifyResponse::BadBlock& bad : report.bad()) {
    std::printf(
        "BAD %s block %lu (%s) in %s: %s\n", bad.tensor().c_str(),
        static_cast<unsigned long>(bad.block_index()), bad.block_id().c_str(),
        absl::AsciiStrToLower(v1::Tier_Name(bad.tier()).substr(5)).c_str(),
        bad.error().c_str());
  }
  if (report.bad_size() > 0) {
    return absl::DataLossError(absl::StrCat(
        report.bad_size(), " bad block copies in ", report.revision(),
        "; NVMe copies were dropped, cold ones need a re-import"));
  }
  std::printf("all copies good\n");
  return absl::OkStatus();
}

absl::Status Status(Client& client) {
  PSTORE_ASSIGN_OR_RETURN(v1::ServerStatus status, client.GetServerStatus());
  std::printf("pstored %s, up %lds, io_uring %s, block %s\n",
              status.version().c_str(),
              static_cast<long>(status.uptime_seconds()),
              status.io_uring() ? "on" : "off",
              FormatBytes(status.block_bytes()).c_str());
  std::printf("%-5s %10s %10s %8s %10s %10s %10s %8s\n", "tier", "used",
              "capacity", "blocks", "hits", "misses", "served", "bad");
  for (const v1::TierStatus& tier : status.tiers()) {
    if (!tier.enabled()) {
      std::printf("%-5s disabled\n", tier.name().c_str());
      continue;
    }
    std::printf("%-5s %10s %10s %8lu %10lu %10lu %10lu %8lu\n",
                tier.name().c_str(), FormatBytes(tier.used_bytes()).c_str(),
                tier.capacity_bytes() == 0
                    ? "-"
                    : FormatBytes(tier.capacity_bytes()).c_str(),
                static_cast<unsigned long>(tier.blocks()),
                static_cast<unsigned long>(tier.hits()),
                static_cast<unsigned long>(tier.misses()),
                static_cast<unsigned long>(tier.reads_served()),
                static_cast<unsigned long>(tier.checksum_failures()));
  }
  std::printf(
      "pinned %s of %s: %s\n", FormatBytes(status.pinned_bytes()).c_str(),
      FormatBytes(status.pin_budget_bytes()).c_str(),
      status.pins().empty() ? "-" : absl::StrJoin(status.pins(), ", ").c_str());
  if (!status.nodes().empty()) {
    const int64_t now = absl::ToUnixMicros(absl::Now());
    std::printf("nodes %d:\n", status.nodes_size());
    for (const v1::NodeStatus& node : status.nodes()) {
      std::printf(
          "  %-21s up %lds, heartbeat %.1fs ago%s\n", node.address().c_str(),
          static_cast<long>((now - node.started_unix_micros()) / 1000000),
          (now - node.heartbeat_unix_micros()) / 1e6,
          node.self() ? " (this node)" : "");
    }
  }
  if (status.has_peers()) {
    const v1::PeerStatus& peers = status.peers();
    uint64_t durable_bytes = 0;
    for (const v1::TierStatus& tier : status.tiers()) {
      if (tier.tier() == v1::TIER_COLD) durable_bytes = tier.read_bytes();
    }
    std::printf(
        "peers %s, ring of %lu: from peers %s (%lu blocks), from the "
        "durable tier %s; served to peers %s (%lu blocks); peer errors %lu, "
        "bad blocks %lu, hedges %lu (won %lu)\n",
        peers.enabled() ? "on" : "off",
        static_cast<unsigned long>(peers.ring_nodes()),
        FormatBytes(peers.peer_bytes()).c_str(),
        static_cast<unsigned long>(peers.peer_blocks()),
        FormatBytes(durable_bytes).c_str(),
        FormatBytes(peers.served_bytes()).c_str(),
        static_cast<unsigned long>(peers.served_blocks()),
        static_cast<unsigned long>(peers.peer_errors()),
        static_cast<unsigned long>(peers.peer_bad_blocks()),
        static_cast<unsigned long>(peers.hedges()),
        static_cast<unsigned long>(peers.hedge_wins()));
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  CLI::App app(
      "pstore-cli: put, get, import, export and manage tensors in pstored",
      "pstore-cli");
  app.require_subcommand(1);
  std::string address;
  if (const char* env = std::getenv("PSTORE_ADDR"); env != nullptr && *env) {
    address = env;
  } else {
    address = "127.0.0.1:7070";
  }
  double timeout_seconds = 600;
  std::string token, tls_ca, tls_cert, tls_key, tls_server_name;
  if (const char* env = std::getenv("PSTORE_TOKEN"); env != nullptr) {
    token = env;
  }
  int channels = 4;
  app.add_option("--addr", address,
                 "pstored address (default $PSTORE_ADDR, "
                 "then 127.0.0.1:7070)");
  app.add_option("--token", token,
                 "bearer token (default $PSTORE_TOKEN; prefer the variable: "
                 "arguments show in `ps`)");
  app.add_option("--tls_ca", tls_ca,
                 "PEM CA of the server's certificate: turns TLS on");
  app.add_option("--tls_cert", tls_cert, "PEM client certificate (mutual TLS)");
  app.add_option("--tls_key", tls_key, "PEM key of --tls_cert");
  app.add_option("--tls_server_name", tls_server_name,
                 "name to check the server's certificate against");
  app.add_option("--timeout", timeout_seconds, "deadline of each call, seconds")
      ->check(CLI::PositiveNumber);

  std::string name, path, dtype, shape, output, encoding = "raw", tier;
  uint64_t offset = 0, length = 0;
  bool publish = false;
  int jobs = 2, streams = 4;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> meta_pairs;

  CLI::App* put = app.add_subcommand("put", "put a tensor from a raw file");
  put->add_option("name", name, "MODEL@REV/TENSOR")->required();
  put->add_option("file", path, "file of raw bytes ('-' for stdin)")
      ->required();
  put->add_option("--dtype", dtype,
                  "F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 "
                  "I16 I8 U8 BOOL")
      ->required();
  put->add_option("--shape", shape, "dims, e.g. 1024,4096 (or 'scalar')")
      ->required();

  CLI::App* get = app.add_subcommand("get", "get a tensor's bytes");
  get->add_option("name", name, "MODEL@REV/TENSOR or MODEL/TENSOR")->required();
  get->add_option("-o,--output", output, "file to write (default stdout)");
  get->add_option("--encoding", encoding, "raw f32 f16 bf16 q8_0 q4_0");
  get->add_option("--offset", offset, "first byte");
  get->add_option("--length", length, "bytes to read (0: to the end)");

  CLI::App* stat = app.add_subcommand("stat", "show a tensor's record");
  stat->add_option("name", name, "MODEL@REV/TENSOR or MODEL/TENSOR")
      ->required();

  CLI::App* ls = app.add_subcommand(
      "ls", "list revisions, or the tensors of MODEL[@REV][/PREFIX]");
  ls->add_option("prefix", name, "MODEL, MODEL@REV or MODEL@REV/PREFIX");

  CLI::App* rm = app.add_subcommand(
      "rm", "delete a tensor (MODEL@REV/TENSOR) or a revision (MODEL@REV)");
  rm->add_option("name", name, "MODEL@REV/TENSOR or MODEL@REV")->required();

  CLI::App* create = app.add_subcommand("create", "create an open revision");
  create->add_option("name", name, "MODEL@REV")->required();
  create->add_option("--meta", meta_pairs, "metadata KEY=VALUE (repeatable)");

  CLI::App* publish_cmd = app.add_subcommand(
      "publish", "publish a revision: immutable, and the model's latest");
  publish_cmd->add_option("name", name, "MODEL@REV")->required();

  CLI::App* import = app.add_subcommand(
      "import",
      "import a model directory, a safetensors file or a GGUF file as a new "
      "revision");
  import->add_option("path", path, "DIR, FILE.safetensors or FILE.gguf")
      ->required();
  import->add_option("name", name, "MODEL@REV")->required();
  import->add_flag("--publish", publish, "publish when imported");
  import->add_option("--jobs", jobs, "tensors put in parallel")
      ->check(CLI::Range(1, 64));

  CLI::App* export_cmd =
      app.add_subcommand("export", "export a revision to a safetensors file");
  export_cmd->add_option("name", name, "MODEL[@REV]")->required();
  export_cmd->add_option("file", path, "FILE.safetensors or FILE.gguf")
      ->required();
  export_cmd->add_option("--encoding", encoding,
                         "raw f32 f16 bf16 q8_0 q4_0 (q8_0/q4_0: .gguf only)");

  CLI::App* pull = app.add_subcommand(
      "pull",
      "pull a revision over parallel streams into a model directory or a "
      "safetensors or GGUF file, resuming from what is there");
  pull->add_option("name", name, "MODEL[@REV]")->required();
  pull->add_option("path", path,
                   "DIR (a model directory), FILE.safetensors or FILE.gguf")
      ->required();
  pull->add_option("--encoding", encoding,
                   "raw f32 f16 bf16 q8_0 q4_0 (q8_0/q4_0: .gguf only)");
  pull->add_option("--streams", streams, "parallel streams")
      ->check(CLI::Range(1, 64));

  CLI::App* pin = app.add_subcommand("pin", "pin a revision in DRAM");
  pin->add_option("name", name, "MODEL[@REV]")->required();
  CLI::App* unpin = app.add_subcommand("unpin", "unpin a revision");
  unpin->add_option("name", name, "MODEL[@REV]")->required();

  CLI::App* prefetch = app.add_subcommand(
      "prefetch", "load a revision into a tier ahead of use");
  prefetch->add_option("name", name, "MODEL[@REV]")->required();
  prefetch->add_option("--tier", tier, "dram or nvme")->required();

  CLI::App* drop = app.add_subcommand(
      "drop-cache", "drop a tier's cached blocks (cold keeps every block)");
  drop->add_option("--tier", tier, "dram or nvme")->required();

  CLI::App* status_cmd =
      app.add_subcommand("status", "show the server's tiers");

  CLI::App* verify = app.add_subcommand(
      "verify", "scrub a revision: check every block copy in every tier");
  verify->add_option("name", name, "MODEL[@REV]")->required();

  std::string to_address, to_token;
  CLI::App* copy = app.add_subcommand(
      "copy",
      "copy a revision, every byte checked, to another pstored (moving a "
      "store in)");
  copy->add_option("name", name, "MODEL[@REV]")->required();
  copy->add_option("--to", to_address, "HOST:PORT of the destination")
      ->required();
  copy->add_option("--to_token", to_token,
                   "bearer token at the destination (default "
                   "$PSTORE_TO_TOKEN, then --token); TLS options apply to "
                   "both ends");

  bool dry_run = false;
  CLI::App* gc = app.add_subcommand(
      "gc",
      "remove the blocks of a RADOS-backed store that no revision names "
      "(past the grace period)");
  gc->add_flag("--dry-run", dry_run, "count what would go, remove nothing");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }

  ClientOptions options;
  options.address = address;
  options.call_timeout = absl::Seconds(timeout_seconds);
  options.token = token;
  options.tls_ca_file = tls_ca;
  options.tls_cert_file = tls_cert;
  options.tls_key_file = tls_key;
  options.tls_server_name = tls_server_name;
  options.channels = pull->parsed() ? std::min(streams, 16) : 1;
  options.channels = std::max(1, std::min(options.channels, channels));
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  if (!client.ok()) return Fail(client.status(), address);
  Client& c = **client;

  absl::Status status;
  if (put->parsed()) {
    status = Put(c, name, path, dtype, shape);
  } else if (get->parsed()) {
    GetOptions get_options;
    get_options.encoding = encoding;
    get_options.offset = offset;
    get_options.length = length;
    status = Get(c, name, output, get_options);
  } else if (stat->parsed()) {
    status = Stat(c, name);
  } else if (ls->parsed()) {
    status = List(c, name);
  } else if (rm->parsed()) {
    status = name.find('/') == std::string::npos ? c.DeleteRevision(name)
                                                 : c.DeleteTensor(name);
  } else if (create->parsed()) {
    for (const std::string& pair : meta_pairs) {
      size_t equals = pair.find('=');
      if (equals == std::string::npos) {
        std::fprintf(stderr, "pstore-cli: --meta wants KEY=VALUE, got '%s'\n",
                     pair.c_str());
        return 2;
      }
      metadata[pair.substr(0, equals)] = pair.substr(equals + 1);
    }
    status = c.CreateRevision(name, metadata).status();
  } else if (publish_cmd->parsed()) {
    absl::StatusOr<v1::Revision> revision = c.PublishRevision(name);
    status = revision.status();
    if (status.ok()) std::printf("published %s\n", revision->name().c_str());
  } else if (import->parsed()) {
    status = Import(c, path, name, publish, jobs);
  } else if (export_cmd->parsed()) {
    // A raw safetensors export streams tensor by tensor through the
    // writer; anything else goes through a one-stream pull.
    status = !IsGgufPath(path) && (encoding.empty() || encoding == "raw")
                 ? Export(c, name, path)
                 : Pull(c, name, path, 1, encoding, "export");
  } else if (pull->parsed()) {
    status = Pull(c, name, path, streams, encoding, "pull");
  } else if (pin->parsed()) {
    absl::StatusOr<uint64_t> pinned = c.Pin(name);
    status = pinned.status();
    if (status.ok()) {
      std::printf("pinned %s; %s pinned in all\n", name.c_str(),
                  FormatBytes(*pinned).c_str());
    }
  } else if (unpin->parsed()) {
    status = c.Unpin(name);
  } else if (prefetch->parsed() || drop->parsed()) {
    v1::Tier wire_tier = ParseTier(tier);
    if (wire_tier == v1::TIER_UNSPECIFIED) {
      std::fprintf(stderr, "pstore-cli: --tier wants dram or nvme, got '%s'\n",
                   tier.c_str());
      return 2;
    }
    if (prefetch->parsed()) {
      absl::StatusOr<v1::PrefetchResponse> result = c.Prefetch(name, wire_tier);
      status = result.status();
      if (status.ok()) {
        std::printf("prefetched %lu blocks (%s) into %s; %lu were there\n",
                    static_cast<unsigned long>(result->blocks()),
                    FormatBytes(result->bytes()).c_str(), tier.c_str(),
                    static_cast<unsigned long>(result->already_present()));
      }
    } else {
      status = c.DropCache(wire_tier);
    }
  } else if (status_cmd->parsed()) {
    status = Status(c);
  } else if (verify->parsed()) {
    status = Verify(c, name);
  } else if (copy->parsed()) {
    ClientOptions to_options = options;
    to_options.address = to_address;
    const char* env_token = std::getenv("PSTORE_TO_TOKEN");
    if (!to_token.empty()) {
      to_options.token = to_token;
    } else if (env_token != nullptr && *env_token != '\0') {
      to_options.token = env_token;
    }
    absl::StatusOr<std::unique_ptr<Client>> to = Client::Create(to_options);
    status = to.ok() ? Copy(c, **to, name, to_address) : to.status();
  } else if (gc->parsed()) {
    absl::StatusOr<v1::CollectGarbageResponse> report =
        c.CollectGarbage(dry_run);
    status = report.status();
    if (report.ok()) {
      std::printf(
          "%s %lu unreferenced blocks (%s) of %lu; %lu referenced; kept "
          "%lu touched within the grace period, %lu reused during the "
          "sweep; %.1f s\n",
          report->dry_run() ? "would remove" : "removed",
          static_cast<unsigned long>(report->removed()),
          FormatBytes(report->removed_bytes()).c_str(),
          static_cast<unsigned long>(report->block_objects()),
          static_cast<unsigned long>(report->referenced_blocks()),
          static_cast<unsigned long>(report->kept_recent()),
          static_cast<unsigned long>(report->kept_raced()), report->seconds());
    }
  }
  if (!status.ok()) {
    Precondition precondition = Precondition::kUnknown;
    if (put->parsed() || rm->parsed() || import->parsed()) {
      precondition = Precondition::kPublishedRevision;
    } else if (prefetch->parsed() || drop->parsed()) {
      precondition = Precondition::kTier;
    }
    return Fail(status, address, precondition);
  }
  return 0;
}

}  // namespace
}  // namespace pstore

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which keeps the Mutex deadlock
  // detector on for every lock (gRPC's too); pstored turns it off as well.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  pstore::RemoveTempFileOnSignals();
  // pstore-cli's own allocator settings (an application's to choose; the
  // library never changes them by itself): gRPC's receive buffers stay on
  // the heap rather than being faulted in afresh for every pull (a pull of
  // 1 GiB into tmpfs took 51,000 minor faults per GiB without these,
  // 19,000 with them; 398,000 at e0763ac). PSTORE_MALLOC_DEFAULTS (or the
  // older PSTORE_CLI_MALLOC_DEFAULTS), any value, keeps glibc's defaults.
  if (getenv("PSTORE_CLI_MALLOC_DEFAULTS") == nullptr) {
    pstore::KeepFreedBuffersOnHeap(size_t{1} << 30);
  }
  return pstore::Main(argc, argv);
}
