// _pstore: the C++ half of the pstore Python package, over pstore::Client
// and the model-directory calls (client/model_dir.h). The pure-Python
// package (client/python/pstore/) wraps it in the API users see; nothing
// here is meant to be called directly.
//
// Bytes move with the GIL released. Memory handed to Python (flat numpy
// arrays of uint8) is allocated here, written once by the client, and freed
// when the last array (or torch tensor made from one) that uses it is gone;
// buffers of 4 MiB and more are their own 2 MiB-aligned mappings backed by
// transparent huge pages where the kernel grants them, so that first
// touching them faults once per 2 MiB. Long calls (a pull, a read) run on a
// thread of their own while the calling thread waits with the GIL released,
// waking every 50 ms to report progress and to let Python's signal handlers
// run: a KeyboardInterrupt cancels the call's streams (pstore::Canceller)
// and is raised once they have stopped. Errors become the exception classes
// of pstore._errors, chosen by the status code.
//
// Messages come back as dicts (field name to value, by protobuf
// reflection): enums by name, except an entry's kind, which is "tensor",
// "file" or "shard-header".

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/model_dir.h"
#include "client/pstore_client.h"
#include "codec/dtype.h"
#include "codec/encoding.h"
#include "codec/encoding_plan.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"
#include "pstore/v1/pstore.pb.h"
#include "pybind11/numpy.h"
#include "pybind11/pybind11.h"
#include "pybind11/stl.h"
#include "util/host_buffer.h"

namespace pstore::python {
namespace {

namespace py = pybind11;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// How often a waiting call wakes to report progress and run signal
// handlers.
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);
// Column slices: a row's columns are read as a ranged call of their own
// when they are at least this many bytes; below, whole rows stream and the
// columns are kept.
constexpr uint64_t kRangedColumnBytes = 64 << 10;
constexpr int kColumnReadThreads = 4;

// --- Errors ---

// Returns `text` as a Python str, undecodable bytes replaced (a server's
// message or metadata need not be UTF-8). REQUIRES: the GIL is held.
py::str Text(const std::string& text) {
  PyObject* decoded = PyUnicode_DecodeUTF8(
      text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
  if (decoded == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(decoded);
}

// Raises the pstore._errors exception for `status` (not OK). REQUIRES: the
// GIL is held.
[[noreturn]] void Raise(const absl::Status& status) {
  py::object from_status =
      py::module_::import("pstore._errors").attr("from_status");
  py::object error = from_status(static_cast<int>(status.code()),
                                 Text(std::string(status.message())));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())),
                  error.ptr());
  throw py::error_already_set();
}

void Check(const absl::Status& status) {
  if (!status.ok()) Raise(status);
}

template <typename T>
T Check(absl::StatusOr<T> value) {
  if (!value.ok()) Raise(value.status());
  return *std::move(value);
}

// --- Memory handed to Python ---

// Tensor memory given back by Python (the last array using it gone), kept
// for the next read of the same size: a model loaded again (a worker that
// swaps models, a reload) gets memory that is mapped and faulted in
// already, as a pull into pre-touched memory does, instead of fresh pages
// the kernel must fault in and zero (7% of a 1 GiB load here, more where
// faults are dear). Only buffers of 4 MiB and more (their own mappings);
// at most `capacity` bytes in all (default 2 GiB, $PSTORE_POOL_BYTES, 0
// keeps none), a buffer that would pass it is freed. Process-wide;
// thread-safe. Never destroyed (capsules may free into it at exit).
class BufferPool {
 public:
  static BufferPool& Get() {
    static BufferPool* pool = new BufferPool();
    return *pool;
  }

  // Returns a pooled buffer of exactly `size` bytes, or null.
  std::unique_ptr<HostBuffer> Take(size_t size) {
    absl::MutexLock lock(&mu_);
    auto it = free_.find(size);
    if (it == free_.end()) return nullptr;
    std::unique_ptr<HostBuffer> buffer = std::move(it->second);
    free_.erase(it);
    held_ -= size;
    return buffer;
  }

  // Keeps `buffer` if it is large and fits in the capacity, else frees it.
  void Give(std::unique_ptr<HostBuffer> buffer) {
    const size_t size = buffer->size();
    if (size < kPooledBytes) return;
    absl::MutexLock lock(&mu_);
    if (held_ + size > capacity_) return;
    held_ += size;
    free_.emplace(size, std::move(buffer));
  }

  // Sets the capacity, freeing what no longer fits.
  void SetCapacity(size_t bytes) {
    std::vector<std::unique_ptr<HostBuffer>> freed;
    absl::MutexLock lock(&mu_);
    capacity_ = bytes;
    while (held_ > capacity_ && !free_.empty()) {
      auto last = std::prev(free_.end());
      held_ -= last->first;
      freed.push_back(std::move(last->second));
      free_.erase(last);
    }
  }

  size_t held() const {
    absl::MutexLock lock(&mu_);
    return held_;
  }
  size_t capacity() const {
    absl::MutexLock lock(&mu_);
    return capacity_;
  }

 private:
  static constexpr size_t kPooledBytes = size_t{4} << 20;

  BufferPool() {
    const char* text = std::getenv("PSTORE_POOL_BYTES");
    uint64_t bytes = 0;
    capacity_ = text != nullptr && absl::SimpleAtoi(text, &bytes)
                    ? static_cast<size_t>(bytes)
                    : size_t{2} << 30;
  }

  mutable absl::Mutex mu_;
  std::multimap<size_t, std::unique_ptr<HostBuffer>> free_ ABSL_GUARDED_BY(mu_);
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;
  size_t capacity_ ABSL_GUARDED_BY(mu_) = 0;
};

// Returns a flat uint8 numpy array over `buffer` that owns it: the buffer
// goes back to the BufferPool with the last array (or torch tensor) using
// it. REQUIRES: the GIL is held.
py::array ToArray(std::unique_ptr<HostBuffer> buffer) {
  HostBuffer* raw = buffer.release();
  py::capsule owner(raw, [](void* p) {
    BufferPool::Get().Give(
        std::unique_ptr<HostBuffer>(static_cast<HostBuffer*>(p)));
  });
  return py::array(py::dtype::of<uint8_t>(),
                   {static_cast<py::ssize_t>(raw->size())}, {1}, raw->data(),
                   owner);
}

// Returns a HostBuffer of `size` bytes for `what` (a tensor's name): a
// pooled one if the pool has that size, else fresh memory; ResourceExhausted
// naming `what` if there is none.
absl::StatusOr<std::unique_ptr<HostBuffer>> AllocateFor(absl::string_view what,
                                                        size_t size) {
  if (std::unique_ptr<HostBuffer> pooled = BufferPool::Get().Take(size)) {
    return pooled;
  }
  absl::StatusOr<std::unique_ptr<HostBuffer>> buffer =
      HostBuffer::Allocate(size);
  if (!buffer.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": no memory for its ", size,
                     " bytes: ", buffer.status().message()));
  }
  return buffer;
}

// --- Messages as dicts ---

py::object FieldValue(const Message& message, const FieldDescriptor* field,
                      int index);

py::dict ToDict(const Message& message) {
  py::dict out;
  const google::protobuf::Descriptor* descriptor = message.GetDescriptor();
  const Reflection* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    py::str key(field->name());
    if (field->is_map()) {
      py::dict map;
      for (int j = 0; j < reflection->FieldSize(message, field); ++j) {
        const Message& entry =
            reflection->GetRepeatedMessage(message, field, j);
        const google::protobuf::Descriptor* entry_type = entry.GetDescriptor();
        map[FieldValue(entry, entry_type->field(0), -1)] =
            FieldValue(entry, entry_type->field(1), -1);
      }
      out[key] = std::move(map);
    } else if (field->is_repeated()) {
      py::list list;
      for (int j = 0; j < reflection->FieldSize(message, field); ++j) {
        list.append(FieldValue(message, field, j));
      }
      out[key] = std::move(list);
    } else if (field->has_presence() && !reflection->HasField(message, field)) {
      out[key] = py::none();
    } else {
      out[key] = FieldValue(message, field, -1);
    }
  }
  return out;
}

// Returns field `field` of `message` (element `index` of a repeated one, or
// -1) as a Python value.
py::object FieldValue(const Message& message, const FieldDescriptor* field,
                      int index) {
  const Reflection* r = message.GetReflection();
  const bool at = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return py::int_(at ? r->GetRepeatedInt32(message, field, index)
                         : r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return py::int_(at ? r->GetRepeatedInt64(message, field, index)
                         : r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return py::int_(at ? r->GetRepeatedUInt32(message, field, index)
                         : r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return py::int_(at ? r->GetRepeatedUInt64(message, field, index)
                         : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return py::float_(at ? r->GetRepeatedDouble(message, field, index)
                           : r->GetDouble(message, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return py::float_(at ? r->GetRepeatedFloat(message, field, index)
                           : r->GetFloat(message, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return py::bool_(at ? r->GetRepeatedBool(message, field, index)
                          : r->GetBool(message, field));
    case FieldDescriptor::CPPTYPE_ENUM:
      return py::str((at ? r->GetRepeatedEnum(message, field, index)
                         : r->GetEnum(message, field))
                         ->name());
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value = at ? r->GetRepeatedString(message, field, index)
                             : r->GetString(message, field);
      if (field->type() == FieldDescriptor::TYPE_BYTES) return py::bytes(value);
      return Text(value);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return ToDict(at ? r->GetRepeatedMessage(message, field, index)
                       : r->GetMessage(message, field));
  }
  return py::none();
}

const char* KindName(v1::EntryKind kind) {
  switch (kind) {
    case v1::ENTRY_FILE:
      return "file";
    case v1::ENTRY_SHARD_HEADER:
      return "shard-header";
    case v1::ENTRY_TENSOR:
      return "tensor";
    default:
      return "unknown";  // A kind of a later pstored: not a tensor.
  }
}

py::dict InfoDict(const v1::TensorInfo& info) {
  py::dict out = ToDict(info);
  out["kind"] = KindName(info.kind());
  out["shape"] = py::tuple(out["shape"]);
  return out;
}

py::dict RevisionDict(const v1::Revision& revision) {
  py::dict out = ToDict(revision);
  py::list tensors;
  for (const v1::TensorInfo& info : revision.tensors()) {
    tensors.append(InfoDict(info));
  }
  out["tensors"] = std::move(tensors);
  return out;
}

absl::StatusOr<v1::Tier> ParseTier(const std::string& tier) {
  if (tier == "dram") return v1::TIER_DRAM;
  if (tier == "nvme") return v1::TIER_NVME;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown tier '", tier, "': want dram or nvme"));
}

// --- Calls that take a while ---

// Runs `call` on a thread of its own while this thread waits with the GIL
// released, waking every kPollInterval to run Python's signal handlers and
// to call `progress` (if not None) with what `done` and `total` hold, once
// `total` is known, and once more when the call succeeded. If a handler or
// `progress` raises (KeyboardInterrupt, say), cancels the call through
// `canceller`, waits for it to end (every wait of a call given a Canceller
// ends on Cancel) and raises that exception. A C++ exception in `call`
// becomes its status (ResourceExhausted for bad_alloc, else Internal).
// REQUIRES: the GIL is held.
absl::Status RunWaiting(Canceller& canceller,
                        const std::function<absl::Status()>& call,
                        const py::object& progress = py::none(),
                        const std::atomic<uint64_t>* done = nullptr,
                        const std::atomic<uint64_t>* total = nullptr) {
  absl::Status status;
  absl::Notification finished;
  uint64_t reported = UINT64_MAX;
  // Calls `progress`; returns false, the Python error set, if it raised.
  auto report = [&](bool last) -> bool {
    if (progress.is_none() || done == nullptr) return true;
    const uint64_t all = total->load();
    const uint64_t now = done->load();
    if ((all == 0 && !last) || now == reported) return true;
    reported = now;
    try {
      progress(now, all);
    } catch (py::error_already_set& error) {
      error.restore();
      return false;
    }
    return true;
  };
  std::thread worker([&] {
    try {
      status = call();
    } catch (const std::bad_alloc&) {
      status = absl::ResourceExhaustedError("out of memory");
    } catch (const std::exception& error) {
      status = absl::InternalError(error.what());
    }
    finished.Notify();
  });
  bool raised = false;
  {
    py::gil_scoped_release release;
    while (!finished.WaitForNotificationWithTimeout(kPollInterval)) {
      py::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0 || !report(/*last=*/false)) {
        raised = true;
        canceller.Cancel();
        break;
      }
    }
    finished.WaitForNotification();
  }
  worker.join();
  if (raised) throw py::error_already_set();
  if (status.ok() && !report(/*last=*/true)) throw py::error_already_set();
  return status;
}

// The numpy array a read sink fills: allocated when the read's first piece
// says how many bytes it sends.
struct ReadTarget {
  std::unique_ptr<HostBuffer> buffer;
  uint64_t filled = 0;

  absl::Status Take(const v1::TensorInfo& info,
                    std::span<const uint8_t> bytes) {
    if (buffer == nullptr) {
      absl::StatusOr<std::unique_ptr<HostBuffer>> allocated =
          AllocateFor(info.name(), info.byte_length());
      if (!allocated.ok()) return allocated.status();
      buffer = *std::move(allocated);
    }
    if (filled + bytes.size() > buffer->span().size()) {
      return absl::DataLossError(
          absl::StrCat(info.name(), ": the read sent more bytes than the ",
                       info.byte_length(), " it announced"));
    }
    if (!bytes.empty()) {
      std::memcpy(buffer->span().data() + filled, bytes.data(), bytes.size());
    }
    filled += bytes.size();
    return absl::OkStatus();
  }
};

// --- The client ---

// Runs `call` (returning a StatusOr) with the GIL released, then returns
// its value converted by `convert` (GIL held) or raises its error.
// REQUIRES: the GIL is held.
template <typename Call, typename Convert>
auto Released(Call call, Convert convert) {
  decltype(call()) result = absl::UnknownError("not run");
  {
    py::gil_scoped_release release;
    result = call();
  }
  return convert(Check(std::move(result)));
}

class PyClient {
 public:
  PyClient(const std::string& address, const std::string& token,
           const std::string& tls_ca, const std::string& tls_cert,
           const std::string& tls_key, const std::string& tls_server_name,
           double timeout_seconds, int channels) {
    ClientOptions options;
    options.address = address;
    options.token = token;
    options.tls_ca_file = tls_ca;
    options.tls_cert_file = tls_cert;
    options.tls_key_file = tls_key;
    options.tls_server_name = tls_server_name;
    if (timeout_seconds > 0) {
      options.call_timeout = absl::Seconds(timeout_seconds);
    }
    options.channels = std::max(1, channels);
    client_ = Check(Client::Create(std::move(options)));
  }

  // Pulls revision `name` into fresh memory: returns (revision, [(info,
  // flat uint8 array)]) in manifest order.
  py::tuple Pull(const std::string& name, const std::string& encoding,
                 int streams, const py::object& progress) {
    std::vector<v1::TensorInfo> infos;
    std::vector<std::unique_ptr<HostBuffer>> buffers;
    std::map<std::string, size_t> index_of;
    std::atomic<uint64_t> done{0}, total{0};
    Canceller canceller;
    PullOptions options;
    options.encoding = encoding;
    options.streams = streams;
    options.canceller = &canceller;
    PullCallbacks callbacks;
    callbacks.allocate =
        [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
      absl::StatusOr<std::unique_ptr<HostBuffer>> buffer =
          AllocateFor(info.name(), info.byte_length());
      if (!buffer.ok()) return buffer.status();
      index_of[info.name()] = infos.size();
      infos.push_back(info);
      buffers.push_back(*std::move(buffer));
      return buffers.back()->span();
    };
    callbacks.done = [&](const v1::TensorInfo& info) {
      auto it = index_of.find(info.name());
      if (it != index_of.end()) infos[it->second] = info;
    };
    callbacks.progress = [&](uint64_t received, uint64_t all) {
      done = received;
      total = all;
    };
    std::optional<PullResult> result;
    Check(RunWaiting(
        canceller,
        [&]() -> absl::Status {
          absl::StatusOr<PullResult> pulled =
              client_->PullModel(name, options, callbacks);
          if (!pulled.ok()) return pulled.status();
          result = *std::move(pulled);
          done = result->bytes;
          total = result->bytes;
          return absl::OkStatus();
        },
        progress, &done, &total));
    py::list tensors;
    for (size_t i = 0; i < infos.size(); ++i) {
      tensors.append(
          py::make_tuple(InfoDict(infos[i]), ToArray(std::move(buffers[i]))));
    }
    result->revision.clear_tensors();
    return py::make_tuple(RevisionDict(result->revision), tensors);
  }

  // Reads `length` bytes (0: to the end) at `offset` of tensor `name` in
  // `encoding`: returns (info, flat uint8 array).
  py::tuple Read(const std::string& name, const std::string& encoding,
                 uint64_t offset, uint64_t length) {
    Canceller canceller;
    GetOptions options;
    options.encoding = encoding;
    options.offset = offset;
    options.length = length;
    options.canceller = &canceller;
    ReadTarget target;
    v1::TensorInfo info;
    Check(RunWaiting(canceller, [&]() -> absl::Status {
      absl::StatusOr<v1::TensorInfo> read = client_->GetTensorTo(
          name, options,
          [&](const v1::TensorInfo& got, std::span<const uint8_t> bytes) {
            return target.Take(got, bytes);
          });
      if (!read.ok()) return read.status();
      info = *std::move(read);
      // Every read passes through the sink at least once, an empty one too.
      if (target.buffer == nullptr) return target.Take(info, {});
      if (target.filled != info.byte_length()) {
        return absl::DataLossError(absl::StrCat(name, ": the read ended after ",
                                                target.filled, " of ",
                                                info.byte_length(), " bytes"));
      }
      return absl::OkStatus();
    }));
    return py::make_tuple(InfoDict(info), ToArray(std::move(target.buffer)));
  }

  // Reads columns [col_offset, col_offset + col_bytes) (in bytes) of rows
  // [row_begin, row_end) of 2-D tensor `name`, whose rows are `row_bytes`
  // long in `encoding`: returns them as one flat uint8 array, row after
  // row. Rows whose columns are kRangedColumnBytes or more are read as a
  // ranged call each, kColumnReadThreads at once; else the rows stream
  // whole and only the columns are kept.
  py::array ReadColumns(const std::string& name, const std::string& encoding,
                        uint64_t row_begin, uint64_t row_end,
                        uint64_t row_bytes, uint64_t col_offset,
                        uint64_t col_bytes) {
    if (row_end < row_begin || row_bytes == 0 ||
        col_offset + col_bytes > row_bytes) {
      Raise(absl::InvalidArgumentError(
          absl::StrCat(name, ": columns [", col_offset, ", ",
                       col_offset + col_bytes, ") of rows [", row_begin, ", ",
                       row_end, ") of ", row_bytes, " bytes do not fit")));
    }
    const uint64_t rows = row_end - row_begin;
    std::unique_ptr<HostBuffer> out =
        Check(AllocateFor(name, rows * col_bytes));
    Canceller canceller;
    uint8_t* const into = out->span().data();
    Check(RunWaiting(canceller, [&]() -> absl::Status {
      if (rows == 0 || col_bytes == 0) return absl::OkStatus();
      if (col_bytes >= kRangedColumnBytes) {
        return RangedColumns(name, encoding, row_begin, rows, row_bytes,
                             col_offset, col_bytes, canceller, into);
      }
      GetOptions options;
      options.encoding = encoding;
      options.offset = row_begin * row_bytes;
      options.length = rows * row_bytes;
      options.canceller = &canceller;
      uint64_t at = 0;  // Byte of the rows read, from the first.
      absl::StatusOr<v1::TensorInfo> read = client_->GetTensorTo(
          name, options,
          [&](const v1::TensorInfo& info, std::span<const uint8_t> bytes) {
            // The read must be the rows asked for, and stay in them.
            if (info.offset() != options.offset ||
                info.byte_length() != options.length ||
                at + bytes.size() > options.length) {
              return absl::DataLossError(absl::StrCat(
                  name, ": the read sent bytes other than the ", options.length,
                  " at ", options.offset, " asked for"));
            }
            // Keeps the part of `bytes` that falls in each row's columns.
            const uint64_t base = at;  // Where bytes[0] is in the rows.
            const uint64_t end = at + bytes.size();
            while (at < end) {
              const uint64_t row = at / row_bytes;
              const uint64_t row_start = row * row_bytes;
              const uint64_t segment_end = std::min(end, row_start + row_bytes);
              // This row's bytes in the piece, and the columns among them,
              // as offsets in the row.
              const uint64_t keep_begin = std::max(at - row_start, col_offset);
              const uint64_t keep_end =
                  std::min(segment_end - row_start, col_offset + col_bytes);
              if (keep_end > keep_begin) {
                std::memcpy(into + row * col_bytes + (keep_begin - col_offset),
                            bytes.data() + (row_start + keep_begin - base),
                            keep_end - keep_begin);
              }
              at = segment_end;
            }
            return absl::OkStatus();
          });
      if (!read.ok()) return read.status();
      if (at != rows * row_bytes) {
        return absl::DataLossError(absl::StrCat(name, ": the read ended after ",
                                                at, " of ", rows * row_bytes,
                                                " bytes"));
      }
      return absl::OkStatus();
    }));
    return ToArray(std::move(out));
  }

  py::dict PullTo(const std::string& name, const std::string& path,
                  const std::string& encoding, int streams) {
    PullToOptions options;
    options.encoding = encoding;
    options.streams = streams;
    absl::StatusOr<PullToResult> result;
    {
      py::gil_scoped_release release;
      // Resolved once, so that the decision and the pull see one revision.
      absl::StatusOr<v1::Revision> revision = client_->GetRevision(name);
      if (!revision.ok()) {
        result = revision.status();
      } else if (IsPullDirectory(path, *revision)) {
        result = PullToDirectory(*client_, revision->name(), path, options);
      } else {
        result = PullToFile(*client_, revision->name(), path, options);
      }
    }
    PullToResult pulled = Check(std::move(result));
    py::dict out;
    out["revision"] = pulled.revision.name();
    out["files"] = pulled.files;
    out["bytes"] = pulled.bytes;
    out["reused_bytes"] = pulled.reused_bytes;
    out["fetched_bytes"] = pulled.fetched_bytes;
    return out;
  }

  py::dict ImportPath(const std::string& path, const std::string& name,
                      bool publish, int jobs) {
    ImportOptions options;
    options.publish = publish;
    options.jobs = jobs;
    absl::StatusOr<ImportResult> result;
    {
      py::gil_scoped_release release;
      result = pstore::ImportPath(*client_, path, name, options);
    }
    ImportResult imported = Check(std::move(result));
    py::dict out;
    out["revision"] = imported.revision.name();
    out["shards"] = imported.shards;
    out["tensors"] = imported.tensors;
    out["files"] = imported.files;
    out["bytes"] = imported.bytes;
    return out;
  }

  // Stores `data` (a C-contiguous buffer of bytes) as `name`.
  py::dict Put(const std::string& name, const std::string& dtype,
               const std::vector<int64_t>& shape, const py::buffer& data) {
    py::buffer_info view = data.request();
    if (view.ndim > 1 || (view.ndim == 1 && view.strides[0] != view.itemsize)) {
      Raise(absl::InvalidArgumentError(absl::StrCat(
          "put ", name, ": takes a flat C-contiguous buffer of bytes")));
    }
    std::span<const uint8_t> bytes(
        static_cast<const uint8_t*>(view.ptr),
        static_cast<size_t>(view.size) * static_cast<size_t>(view.itemsize));
    absl::StatusOr<v1::TensorInfo> info;
    {
      py::gil_scoped_release release;
      info = client_->PutTensor(name, dtype, shape, bytes);
    }
    return InfoDict(Check(std::move(info)));
  }

  py::dict CreateRevision(const std::string& name,
                          const std::map<std::string, std::string>& metadata) {
    return Released([&] { return client_->CreateRevision(name, metadata); },
                    RevisionDict);
  }

  py::dict Publish(const std::string& name) {
    return Released([&] { return client_->PublishRevision(name); },
                    RevisionDict);
  }

  py::dict Revision(const std::string& name, bool with_blocks) {
    return Released([&] { return client_->GetRevision(name, with_blocks); },
                    RevisionDict);
  }

  py::dict Stat(const std::string& name) {
    return Released([&] { return client_->StatTensor(name); }, InfoDict);
  }

  py::list ListModels() {
    return Released([&] { return client_->ListModels(); },
                    [](const std::vector<v1::Model>& models) {
                      py::list out;
                      for (const v1::Model& model : models) {
                        out.append(ToDict(model));
                      }
                      return out;
                    });
  }

  uint64_t Pin(const std::string& name) {
    return Released([&] { return client_->Pin(name); },
                    [](uint64_t bytes) { return bytes; });
  }

  void Unpin(const std::string& name) {
    absl::Status status;
    {
      py::gil_scoped_release release;
      status = client_->Unpin(name);
    }
    Check(status);
  }

  py::dict Prefetch(const std::string& name, const std::string& tier) {
    v1::Tier parsed = Check(ParseTier(tier));
    return Released([&] { return client_->Prefetch(name, parsed); },
                    [](const v1::PrefetchResponse& r) { return ToDict(r); });
  }

  py::dict Status() {
    return Released([&] { return client_->GetServerStatus(); },
                    [](const v1::ServerStatus& s) { return ToDict(s); });
  }

  void DeleteRevision(const std::string& name) {
    absl::Status status;
    {
      py::gil_scoped_release release;
      status = client_->DeleteRevision(name);
    }
    Check(status);
  }

 private:
  // ReadColumns' ranged path: row r's columns as one GetTensor call each,
  // kColumnReadThreads threads taking rows in turn.
  absl::Status RangedColumns(const std::string& name,
                             const std::string& encoding, uint64_t row_begin,
                             uint64_t rows, uint64_t row_bytes,
                             uint64_t col_offset, uint64_t col_bytes,
                             Canceller& canceller, uint8_t* into) {
    std::atomic<uint64_t> next{0};
    const int threads =
        static_cast<int>(std::min<uint64_t>(kColumnReadThreads, rows));
    std::vector<absl::Status> failed(threads);
    auto worker = [&](int t) {
      for (uint64_t r = next++; r < rows; r = next++) {
        GetOptions options;
        options.encoding = encoding;
        options.offset = (row_begin + r) * row_bytes + col_offset;
        options.length = col_bytes;
        options.canceller = &canceller;
        absl::StatusOr<v1::TensorInfo> read = client_->GetTensor(
            name, std::span<uint8_t>(into + r * col_bytes, col_bytes), options);
        if (!read.ok()) {
          failed[t] = read.status();
          canceller.Cancel();  // The other rows are of no use now.
          return;
        }
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
    worker(0);
    for (std::thread& thread : pool) thread.join();
    // The first real failure, not the cancellations it caused.
    for (const absl::Status& status : failed) {
      if (!status.ok() && !absl::IsCancelled(status)) return status;
    }
    for (const absl::Status& status : failed) {
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  std::unique_ptr<Client> client_;
};

// Returns the encoding a whole-model pull asking for `encoding` gives a
// tensor of `dtype` and `shape` ("raw" where it does not apply).
std::string PullEncoding(const std::string& dtype,
                         const std::vector<int64_t>& shape,
                         const std::string& encoding) {
  DType parsed_dtype = Check(ParseDType(dtype));
  Encoding requested = Check(ParseEncoding(encoding));
  return std::string(
      EncodingName(EncodingForPull(parsed_dtype, shape, requested)));
}

}  // namespace
}  // namespace pstore::python

PYBIND11_MODULE(_pstore, m) {
  namespace py = pybind11;
  using pstore::python::PyClient;
  m.doc() = "The C++ half of the pstore package; use pstore.Client.";
  // Debian's Abseil keeps the Mutex deadlock detector on (no NDEBUG), and
  // gRPC's locks are Abseil's: a graph update on every lock. pstore-cli and
  // pstored turn it off; so does this module.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // pstore.Client's first construction calls it (see
  // KeepFreedBuffersOnHeap; PSTORE_MALLOC_DEFAULTS keeps glibc's settings).
  m.def("keep_freed_buffers_on_heap",
        [] { return pstore::KeepFreedBuffersOnHeap(size_t{256} << 20); });
  py::class_<PyClient>(m, "Client")
      .def(py::init<const std::string&, const std::string&, const std::string&,
                    const std::string&, const std::string&, const std::string&,
                    double, int>(),
           py::arg("address"), py::arg("token"), py::arg("tls_ca"),
           py::arg("tls_cert"), py::arg("tls_key"), py::arg("tls_server_name"),
           py::arg("timeout_seconds"), py::arg("channels"))
      .def("pull", &PyClient::Pull)
      .def("read", &PyClient::Read)
      .def("read_columns", &PyClient::ReadColumns)
      .def("pull_to", &PyClient::PullTo)
      .def("import_path", &PyClient::ImportPath)
      .def("put", &PyClient::Put)
      .def("create_revision", &PyClient::CreateRevision)
      .def("publish", &PyClient::Publish)
      .def("revision", &PyClient::Revision)
      .def("stat", &PyClient::Stat)
      .def("list_models", &PyClient::ListModels)
      .def("pin", &PyClient::Pin)
      .def("unpin", &PyClient::Unpin)
      .def("prefetch", &PyClient::Prefetch)
      .def("status", &PyClient::Status)
      .def("delete_revision", &PyClient::DeleteRevision);
  m.def("pull_encoding", &pstore::python::PullEncoding);
  m.def("set_pool_bytes", [](uint64_t bytes) {
    pstore::python::BufferPool::Get().SetCapacity(static_cast<size_t>(bytes));
  });
  m.def("pool_bytes", [] {
    pstore::python::BufferPool& pool = pstore::python::BufferPool::Get();
    return py::make_tuple(pool.held(), pool.capacity());
  });
}
