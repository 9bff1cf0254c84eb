// The python workload of pstore-bench: pstore.Client.load of a
// DRAM-resident model into torch tensors (bench/python_load.py, a child
// process per repetition) beside the C++ client's pull of the same model
// into memory, and against torch.load of the same tensors from a file on
// tmpfs. See bench/README.md.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/harness.h"
#include "codec/dtype.h"
#include "nlohmann/json.hpp"
#include "util/file_io.h"
#include "util/host_buffer.h"
#include "util/status.h"

namespace pstore::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Reader = FaultMeter::Reader;
using Allocate = std::function<absl::StatusOr<std::span<uint8_t>>(
    const v1::TensorInfo& info)>;

constexpr char kSelf[] = "pstore-bench";
// The script's exit code when the interpreter lacks torch or the package.
constexpr int kScriptMissingModule = 3;

// Pulls revision `model` as stored with `streams` streams, each tensor into
// the memory `allocate` returns; returns the seconds from the call to its
// return. Internal if the bytes received are not `expected_bytes`.
absl::StatusOr<double> PullInto(Client& client, const std::string& model,
                                int streams, const Allocate& allocate,
                                uint64_t expected_bytes) {
  PullCallbacks callbacks;
  callbacks.allocate = allocate;
  PullOptions options;
  options.streams = streams;
  options.encoding = "raw";
  auto start = Clock::now();
  PSTORE_ASSIGN_OR_RETURN(PullResult result,
                          client.PullModel(model, options, callbacks));
  double seconds = SecondsSince(start);
  if (result.bytes != expected_bytes) {
    return absl::InternalError(
        absl::StrCat("pulled ", result.bytes, " bytes of ", expected_bytes));
  }
  return seconds;
}

// Reads `doc[section][key]`, an array of numbers, into `out`; false if it
// is missing or holds anything else.
bool ReadNumbers(const nlohmann::json& doc, const char* section,
                 const char* key, std::vector<double>* out) {
  if (!doc.contains(section) || !doc[section].is_object()) return false;
  const nlohmann::json& part = doc[section];
  if (!part.contains(key) || !part[key].is_array()) return false;
  for (const nlohmann::json& value : part[key]) {
    if (!value.is_number()) return false;
    out->push_back(value.get<double>());
  }
  return true;
}

// Returns what bench/python_load.py printed: the last line of `output`
// that starts with '{' is its JSON object. Internal if there is none or it
// lacks a figure.
absl::StatusOr<PythonRun> ParsePythonOutput(const std::string& output) {
  std::string line;
  for (absl::string_view piece : absl::StrSplit(output, '\n')) {
    if (absl::StartsWith(piece, "{")) line = std::string(piece);
  }
  nlohmann::json doc = nlohmann::json::parse(line, nullptr,
                                             /*allow_exceptions=*/false);
  if (line.empty() || doc.is_discarded() || !doc.is_object()) {
    return absl::InternalError("python_load.py printed no JSON object");
  }
  PythonRun run;
  auto count = [&doc](const char* key, uint64_t* out) {
    if (!doc.contains(key) || !doc[key].is_number_unsigned()) return false;
    *out = doc[key].get<uint64_t>();
    return true;
  };
  uint64_t tensors = 0;
  bool ok =
      count("tensors", &tensors) && count("bytes", &run.bytes) &&
      count("file_bytes", &run.file_bytes) &&
      ReadNumbers(doc, "load", "seconds", &run.load_seconds) &&
      ReadNumbers(doc, "load", "faults", &run.load_faults) &&
      ReadNumbers(doc, "load", "server_faults", &run.load_server_faults) &&
      ReadNumbers(doc, "first_load", "seconds", &run.first_load_seconds) &&
      ReadNumbers(doc, "first_load", "faults", &run.first_load_faults) &&
      ReadNumbers(doc, "torch_load", "seconds", &run.torch_load_seconds) &&
      ReadNumbers(doc, "torch_load", "faults", &run.torch_load_faults);
  if (!ok || run.load_seconds.size() != run.load_faults.size() ||
      run.torch_load_seconds.size() != run.torch_load_faults.size()) {
    return absl::InternalError(
        absl::StrCat("python_load.py printed an unexpected object: ", line));
  }
  run.tensors = static_cast<int>(tensors);
  if (doc.contains("versions") && doc["versions"].is_string()) {
    run.versions = doc["versions"].get<std::string>();
  }
  return run;
}

// Returns OK if `package_dir` holds a built pstore package (pstore/ with
// __init__.py and the extension _pstore*.so); FailedPrecondition naming
// what is missing else.
absl::Status CheckPackage(const std::string& package_dir) {
  const std::string dir = package_dir + "/pstore";
  std::error_code error;
  bool module = false;
  if (std::filesystem::is_directory(dir, error)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
      std::string name = entry.path().filename().string();
      if (absl::StartsWith(name, "_pstore") && absl::EndsWith(name, ".so")) {
        module = true;
      }
    }
  }
  if (!module || !std::filesystem::exists(dir + "/__init__.py", error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the pstore Python package is not built: no ", dir,
        "/__init__.py and _pstore*.so (build the target _pstore: CMake "
        "option PSTORE_BUILD_PYTHON, which needs python3-dev and "
        "pybind11-dev; or pass --python_path=the directory holding "
        "pstore/)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PythonRun> Bench::RunPythonScript(int repetitions) {
  const std::string log =
      absl::StrCat(work_dir_, "/python-load.", ++python_runs_, ".log");
  std::string python_path = flags_.python_path;
  if (const char* inherited = std::getenv("PYTHONPATH");
      inherited != nullptr && *inherited != '\0') {
    absl::StrAppend(&python_path, ":", inherited);
  }
  std::vector<std::string> argv = {
      "/usr/bin/env",  "PYTHONPATH=" + python_path,
      flags_.python,   flags_.python_script,
      "--addr",        address_,
      "--model",       python_model_,
      "--streams",     absl::StrCat(config_.python_streams),
      "--repetitions", absl::StrCat(repetitions),
      "--tmp_dir",     shm_dir_};
  std::vector<pid_t> pids = PstoredPids();
  if (!pids.empty()) {
    argv.push_back("--server_pid");
    argv.push_back(absl::StrCat(pids.front()));
  }
  ChildProcess script("python_load.py", argv, log);
  PSTORE_RETURN_IF_ERROR(script.Start());
  PSTORE_ASSIGN_OR_RETURN(int status, script.Wait(absl::Minutes(10)));
  PSTORE_ASSIGN_OR_RETURN(std::string output, ReadFileToString(log));
  if (status != 0) {
    // The script says what is missing in lines of its own; else the tail.
    std::vector<std::string> said;
    for (absl::string_view line : absl::StrSplit(output, '\n')) {
      if (absl::StartsWith(line, "python_load.py: ")) {
        said.emplace_back(line);
      }
    }
    std::string why =
        said.empty() ? script.LogTail(2000) : absl::StrJoin(said, "; ");
    std::string text =
        absl::StrCat(flags_.python, " ", flags_.python_script, " ended with ",
                     DescribeWaitStatus(status), ": ", why);
    bool missing =
        WIFEXITED(status) && WEXITSTATUS(status) == kScriptMissingModule;
    return missing ? absl::FailedPreconditionError(text)
                   : absl::InternalError(text);
  }
  return ParsePythonOutput(output);
}

absl::Status Bench::RunPython() {
  PSTORE_RETURN_IF_ERROR(PreparePythonModel());
  PSTORE_RETURN_IF_ERROR(
      client_->Prefetch(python_model_, v1::TIER_DRAM).status());
  const int streams = config_.python_streams;
  const uint64_t bytes = python_model_bytes_;
  PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<Client> client, NewClient(streams));

  // The C++ pulls: into one pre-touched buffer, as the pull line does, and
  // into fresh memory per tensor, as a load into new tensors must.
  TouchedBuffer arena(bytes);
  uint64_t cursor = 0;
  Allocate into_arena = ArenaAllocator(arena, &cursor);
  std::vector<std::unique_ptr<HostBuffer>> fresh;
  Allocate into_fresh =
      [&](const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
    // Allocated as the Python module allocates a tensor's memory
    // (util/host_buffer.h), so that both take the same page faults.
    PSTORE_ASSIGN_OR_RETURN(std::unique_ptr<HostBuffer> memory,
                            HostBuffer::Allocate(info.byte_length()));
    fresh.push_back(std::move(memory));
    return fresh.back()->span();
  };
  // Warm-up: connections.
  PSTORE_RETURN_IF_ERROR(
      PullInto(*client, python_model_, streams, into_arena, bytes).status());

  // The Python side is left out, as a peer that fails is, when its
  // interpreter, script or package is missing; the C++ figures stand.
  bool python = true;
  absl::Status ready = absl::OkStatus();
  if (flags_.python.empty() || access(flags_.python.c_str(), X_OK) != 0) {
    ready = absl::FailedPreconditionError(
        absl::StrCat("no Python interpreter at '", flags_.python,
                     "' (pass --python=PATH; the build's default is CMake's "
                     "PSTORE_PYTHON)"));
  } else if (flags_.python_script.empty() ||
             access(flags_.python_script.c_str(), R_OK) != 0) {
    ready = absl::FailedPreconditionError(absl::StrCat(
        "no python_load.py at '", flags_.python_script,
        "' (pass --python_script=PATH: bench/python_load.py of the source "
        "tree)"));
  } else {
    ready = CheckPackage(flags_.python_path);
  }
  if (!ready.ok()) {
    Fail("python: pstore.Client.load", ready);
    python = false;
  }

  const TransformerShape& shape = config_.python_model;
  std::string model_what =
      absl::StrCat(python_model_tensors_, " tensors, ", ShortBytes(bytes), ", ",
                   shape.layers, " layers ", DTypeName(shape.dtype));
  std::string streams_what =
      absl::StrCat(streams, " stream", streams > 1 ? "s" : "");
  Series load = MakeSeries(
      "python/pstore-load", "python",
      absl::StrCat("client.load (Python) of ", model_what, ", ", streams_what),
      "pstore", "MB/s",
      absl::StrCat(
          "bench/python_load.py under ", flags_.python,
          " (PYTHONPATH=", flags_.python_path,
          "), a process per repetition: pstore.Client(channels=N), one "
          "warm-up load, then one client.load(model, streams=N) of the "
          "DRAM-resident model into torch tensors timed with "
          "time.perf_counter; every dict dropped with del and gc.collect() "
          "outside the timed part. The script counts the faults: "
          "getrusage(RUSAGE_SELF) of its process (every thread, the C++ "
          "client's included) and pstored's /proc/PID/stat"),
      "python");
  load.bar_label = "pstore Python load";
  Series pull = MakeSeries(
      "python/cpp-pull", "python",
      absl::StrCat("PullModel into pre-touched memory, ", streams_what),
      "C++ client", "MB/s",
      "PullModel of the same model by the C++ client in pstore-bench into "
      "pre-allocated, pre-touched memory, N streams over N channels, every "
      "chunk and tensor XXH3-checked (as the pull line)",
      "python");
  pull.bar_label = "C++ pre-touched";
  Series pull_fresh = MakeSeries(
      "python/cpp-pull-fresh", "python",
      absl::StrCat("PullModel into fresh memory, ", streams_what), "C++ client",
      "MB/s",
      "the same PullModel into fresh memory per tensor, allocated in the "
      "pull's allocate callback (timed) as the Python module allocates it: a "
      "2 MiB-aligned anonymous mapping with MADV_HUGEPAGE from 4 MiB up, "
      "aligned_alloc below; freed after the pull, outside the timed part",
      "python");
  pull_fresh.bar_label = "C++ fresh";
  Series first_load = MakeSeries(
      "python/pstore-load-first", "python",
      absl::StrCat("client.load, the process's first (fresh memory), ",
                   streams_what),
      "pstore, first load", "MB/s",
      "the warm-up load of the same python_load.py process, timed the same "
      "way: its tensors' memory fresh from the kernel (the timed load after "
      "it gets that memory back from the module's buffer pool, as a "
      "process that loads again does)",
      "python");
  first_load.bar_label = "Python first load";
  first_load.client_process = "python3";
  Series torch_load = MakeSeries(
      "python/torch-load-tmpfs", "python",
      "the same tensors from a torch.save file on tmpfs", "torch.load", "MB/s",
      "in the same Python process after its loads: torch.save of the loaded "
      "dict to a file on tmpfs (--shm_dir), then torch.load(path) timed "
      "with time.perf_counter (CPU tensors; the first compared with the "
      "loaded dict bit for bit), dropped outside the timed part; the file "
      "removed at the end. MB/s of the tensors' bytes",
      "python");
  torch_load.bar_label = "torch.load tmpfs";
  torch_load.client_process = "python3";

  FaultMeter meter("pstored", PstoredPids(), kSelf, Reader::kSelf);
  std::vector<std::pair<Counters, Counters>> pull_counters, fresh_counters,
      python_counters;
  uint64_t file_bytes = 0;
  std::string versions;
  for (int rep = 0; rep < config_.repetitions; ++rep) {
    PSTORE_ASSIGN_OR_RETURN(Counters before, ReadCounters());
    cursor = 0;
    meter.Start();
    PSTORE_ASSIGN_OR_RETURN(
        double seconds,
        PullInto(*client, python_model_, streams, into_arena, bytes));
    meter.Stop();
    PSTORE_ASSIGN_OR_RETURN(Counters after, ReadCounters());
    pull_counters.emplace_back(before, after);
    pull.samples.push_back(bytes / seconds / 1e6);
    meter.AddTo(pull, bytes);

    PSTORE_ASSIGN_OR_RETURN(before, ReadCounters());
    fresh.reserve(python_model_tensors_);
    meter.Start();
    PSTORE_ASSIGN_OR_RETURN(
        seconds, PullInto(*client, python_model_, streams, into_fresh, bytes));
    meter.Stop();
    fresh.clear();
    PSTORE_ASSIGN_OR_RETURN(after, ReadCounters());
    fresh_counters.emplace_back(before, after);
    pull_fresh.samples.push_back(bytes / seconds / 1e6);
    meter.AddTo(pull_fresh, bytes);

    if (!python) continue;
    PSTORE_ASSIGN_OR_RETURN(before, ReadCounters());
    absl::StatusOr<PythonRun> run = RunPythonScript(1);
    PSTORE_ASSIGN_OR_RETURN(after, ReadCounters());
    // Forking the script left the pages this process had written
    // copy-on-write, and each faults again on its next write: one untimed
    // pull takes those faults, so that the next timed pulls do not pay for
    // the fork.
    cursor = 0;
    PSTORE_RETURN_IF_ERROR(
        PullInto(*client, python_model_, streams, into_arena, bytes).status());
    if (run.ok() &&
        (run->bytes != bytes || run->tensors != python_model_tensors_ ||
         run->load_seconds.size() != 1 ||
         run->torch_load_seconds.size() != 1)) {
      run = absl::InternalError(
          absl::StrCat("python_load.py loaded ", run->tensors, " tensors of ",
                       run->bytes, " bytes in ", run->load_seconds.size(),
                       " timed loads; the model "
                       "has ",
                       python_model_tensors_, " of ", bytes));
    }
    if (!run.ok()) {
      Fail("python: pstore.Client.load", run.status());
      python = false;
      continue;
    }
    python_counters.emplace_back(before, after);
    load.samples.push_back(bytes / run->load_seconds[0] / 1e6);
    load.client_process = "python3";
    load.client_faults.push_back(
        FaultsPerGiB(static_cast<uint64_t>(run->load_faults[0]), bytes));
    if (run->load_server_faults.size() == 1) {
      load.server_process = "pstored";
      load.server_faults.push_back(FaultsPerGiB(
          static_cast<uint64_t>(run->load_server_faults[0]), bytes));
    }
    if (run->first_load_seconds.size() == 1 &&
        run->first_load_faults.size() == 1) {
      first_load.samples.push_back(bytes / run->first_load_seconds[0] / 1e6);
      first_load.client_faults.push_back(FaultsPerGiB(
          static_cast<uint64_t>(run->first_load_faults[0]), bytes));
    }
    torch_load.samples.push_back(bytes / run->torch_load_seconds[0] / 1e6);
    torch_load.client_faults.push_back(
        FaultsPerGiB(static_cast<uint64_t>(run->torch_load_faults[0]), bytes));
    file_bytes = run->file_bytes;
    versions = run->versions;
  }

  std::string what = absl::StrCat(model_what, ", ", streams_what);
  Isolation(absl::StrCat("python (C++ PullModel into pre-touched memory, ",
                         what, ")"),
            "dram", python_model_blocks_, pull_counters);
  Isolation(
      absl::StrCat("python (C++ PullModel into fresh memory, ", what, ")"),
      "dram", python_model_blocks_, fresh_counters);
  if (!python_counters.empty()) {
    // Each run of the script loads twice: its warm-up and the timed load.
    Isolation(absl::StrCat("python (python_load.py: a warm-up and a timed "
                           "client.load, ",
                           what, ")"),
              "dram", 2 * python_model_blocks_, python_counters);
  }
  if (!versions.empty()) {
    Note(absl::StrCat("python: ", versions, " (", flags_.python,
                      "); torch.save wrote a ", ShortBytes(file_bytes),
                      " file for the ", ShortBytes(bytes), " of tensors."));
  }
  if (!load.samples.empty()) {
    PrintSeries(load);
    results_.Add(load);
  }
  for (Series* peer : {&pull, &pull_fresh, &first_load, &torch_load}) {
    if (peer->samples.empty()) continue;
    PrintSeries(*peer);
    results_.Add(*peer);
    if (!load.samples.empty()) results_.Compare(load.id, peer->id);
  }
  // The first load against the C++ pull into fresh memory: like for like.
  if (!first_load.samples.empty() && !pull_fresh.samples.empty()) {
    results_.Compare(first_load.id, pull_fresh.id);
  }
  return absl::OkStatus();
}

}  // namespace pstore::bench
