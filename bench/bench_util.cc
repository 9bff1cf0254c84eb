#include "bench/bench_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <latch>
#include <limits>
#include <sstream>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "util/status.h"

namespace pstore::bench {
namespace {

class TempDirs {
 public:
  void Add(const std::string& path) {
    absl::MutexLock lock(&mu_);
    paths_.push_back(path);
  }
  std::vector<std::string> Take() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> paths;
    paths.swap(paths_);
    return paths;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> paths_ ABSL_GUARDED_BY(mu_);
};

TempDirs& Dirs() {
  static TempDirs* dirs = new TempDirs();
  return *dirs;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

void FillRandom(uint64_t seed, std::span<uint8_t> out) {
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    uint64_t word = next();
    std::memcpy(out.data() + i, &word, 8);
  }
  if (i < out.size()) {
    uint64_t word = next();
    std::memcpy(out.data() + i, &word, out.size() - i);
  }
}

TouchedBuffer::TouchedBuffer(uint64_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (memory == MAP_FAILED) {
    std::fprintf(stderr, "pstore-bench: cannot map %llu bytes: %s\n",
                 static_cast<unsigned long long>(bytes), std::strerror(errno));
    std::abort();
  }
  data_ = static_cast<uint8_t*>(memory);
  // Best effort: without it a fork only costs more.
  (void)madvise(data_, bytes, MADV_DONTFORK);
  // MAP_POPULATE maps the pages; writing makes sure each is private.
  for (uint64_t i = 0; i < bytes; i += 4096) data_[i] = 1;
}

std::function<absl::StatusOr<std::span<uint8_t>>(const v1::TensorInfo& info)>
ArenaAllocator(TouchedBuffer& arena, uint64_t* used) {
  return [&arena, used](
             const v1::TensorInfo& info) -> absl::StatusOr<std::span<uint8_t>> {
    if (*used + info.byte_length() > arena.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the pull outgrew its ", arena.size(),
                       "-byte buffer at ", info.name()));
    }
    std::span<uint8_t> span = arena.span().subspan(*used, info.byte_length());
    *used += info.byte_length();
    return span;
  };
}

TouchedBuffer::~TouchedBuffer() {
  if (data_ != nullptr) munmap(data_, size_);
}

TouchedBuffer::TouchedBuffer(TouchedBuffer&& other) noexcept
    : data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

TouchedBuffer& TouchedBuffer::operator=(TouchedBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

absl::StatusOr<std::vector<double>> TimeCalls(
    int threads, size_t requests,
    const std::function<absl::Status(int thread, size_t index)>& call) {
  std::vector<double> latencies(requests, 0);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status first_error;
  std::latch start(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      while (!failed.load(std::memory_order_relaxed)) {
        size_t index = next.fetch_add(1, std::memory_order_relaxed);
        if (index >= requests) break;
        auto begin = std::chrono::steady_clock::now();
        absl::Status status = call(t, index);
        latencies[index] = SecondsSince(begin) * 1e6;
        if (!status.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = status;
          failed = true;
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  if (!first_error.ok()) return first_error;
  return latencies;
}

absl::Status RunThreads(int threads,
                        const std::function<absl::Status(int thread)>& fn) {
  absl::Mutex mu;
  absl::Status first_error;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      absl::Status status = fn(t);
      if (!status.ok()) {
        absl::MutexLock lock(&mu);
        if (first_error.ok()) first_error = status;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  return first_error;
}

namespace {

// Reads /proc/PID/stat into `buffer` without allocating; returns the
// fields after the command name (which may hold spaces and parentheses):
// field 3 (state) first. Empty if it cannot be read.
absl::string_view StatFieldsAfterName(pid_t pid, char (&buffer)[1024]) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  ssize_t got = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (got <= 0) return {};
  absl::string_view text(buffer, static_cast<size_t>(got));
  size_t paren = text.rfind(')');
  if (paren == absl::string_view::npos || paren + 2 > text.size()) return {};
  return text.substr(paren + 2);
}

// Returns field `index` (0: field 3, state) of `fields`.
std::optional<uint64_t> StatField(absl::string_view fields, int index) {
  for (int i = 0; i < index; ++i) {
    size_t space = fields.find(' ');
    if (space == absl::string_view::npos) return std::nullopt;
    fields.remove_prefix(space + 1);
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(fields.substr(0, fields.find(' ')), &value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<uint64_t> ProcessMinorFaults(pid_t pid) {
  char buffer[1024];
  absl::string_view fields = StatFieldsAfterName(pid, buffer);
  if (fields.empty()) return std::nullopt;
  return StatField(fields, 10 - 3);  // minflt
}

double ProcessCpuSeconds(pid_t pid) {
  char buffer[1024];
  absl::string_view fields = StatFieldsAfterName(pid, buffer);
  std::optional<uint64_t> user = StatField(fields, 14 - 3);    // utime
  std::optional<uint64_t> system = StatField(fields, 15 - 3);  // stime
  if (!user.has_value() || !system.has_value()) return 0;
  return static_cast<double>(*user + *system) / sysconf(_SC_CLK_TCK);
}

std::vector<pid_t> ProcessAndChildren(pid_t pid) {
  std::vector<pid_t> pids = {pid};
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = readdir(proc)) {
    int other = 0;
    if (!absl::SimpleAtoi(entry->d_name, &other) || other == pid) continue;
    char buffer[1024];
    absl::string_view fields = StatFieldsAfterName(other, buffer);
    std::optional<uint64_t> parent = StatField(fields, 4 - 3);  // ppid
    if (parent.has_value() && *parent == static_cast<uint64_t>(pid)) {
      pids.push_back(other);
    }
  }
  closedir(proc);
  return pids;
}

FaultMeter::FaultMeter(std::string server_name, std::vector<pid_t> servers,
                       std::string reader_name, Reader reader)
    : server_name_(std::move(server_name)),
      servers_(std::move(servers)),
      reader_name_(std::move(reader_name)),
      reader_(reader) {}

std::optional<uint64_t> FaultMeter::ServerFaults() const {
  if (servers_.empty()) return std::nullopt;
  uint64_t total = 0;
  for (pid_t pid : servers_) {
    std::optional<uint64_t> faults = ProcessMinorFaults(pid);
    if (!faults.has_value()) return std::nullopt;
    total += *faults;
  }
  return total;
}

uint64_t FaultMeter::ReaderFaults() const {
  return reader_ == Reader::kSelf ? SelfMinorFaults() : ChildrenMinorFaults();
}

void FaultMeter::Start() {
  server_before_ = ServerFaults();
  reader_before_ = ReaderFaults();
}

void FaultMeter::Stop() {
  reader_after_ = ReaderFaults();
  server_after_ = ServerFaults();
}

void FaultMeter::AddTo(Series& series, uint64_t bytes) const {
  if (!servers_.empty()) {
    series.server_process = server_name_;
    if (server_before_.has_value() && server_after_.has_value() &&
        *server_after_ >= *server_before_) {
      series.server_faults.push_back(
          FaultsPerGiB(*server_after_ - *server_before_, bytes));
    }
  }
  series.client_process = reader_name_;
  series.client_faults.push_back(
      FaultsPerGiB(reader_after_ - reader_before_, bytes));
}

absl::StatusOr<bool> SameFileContents(const std::string& a,
                                      const std::string& b) {
  std::error_code error;
  uint64_t size = std::filesystem::file_size(a, error);
  if (error) return ErrnoToStatus(error.value(), "stat " + a);
  if (std::filesystem::file_size(b, error) != size || error) {
    if (error) return ErrnoToStatus(error.value(), "stat " + b);
    return false;
  }
  struct File {
    explicit File(const std::string& path)
        : fd(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
    ~File() {
      if (fd >= 0) close(fd);
    }
    int fd;
  };
  File file_a(a), file_b(b);
  if (file_a.fd < 0) return ErrnoToStatus(errno, "open " + a);
  if (file_b.fd < 0) return ErrnoToStatus(errno, "open " + b);
  constexpr size_t kPiece = 4 << 20;
  std::vector<char> piece_a(kPiece), piece_b(kPiece);
  for (uint64_t offset = 0; offset < size; offset += kPiece) {
    size_t want =
        static_cast<size_t>(std::min<uint64_t>(kPiece, size - offset));
    for (auto [fd, piece, path] : {std::tuple<int, char*, const std::string*>{
                                       file_a.fd, piece_a.data(), &a},
                                   std::tuple<int, char*, const std::string*>{
                                       file_b.fd, piece_b.data(), &b}}) {
      ssize_t got = pread(fd, piece, want, static_cast<off_t>(offset));
      if (got != static_cast<ssize_t>(want)) {
        return ErrnoToStatus(got < 0 ? errno : EIO, "read " + *path);
      }
    }
    if (std::memcmp(piece_a.data(), piece_b.data(), want) != 0) return false;
  }
  return true;
}

absl::Status DropPageCache() {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open /proc/sys/vm/drop_caches");
  ssize_t written = write(fd, "3\n", 2);
  int error = errno;
  close(fd);
  if (written != 2) {
    return ErrnoToStatus(error, "write /proc/sys/vm/drop_caches");
  }
  return absl::OkStatus();
}

bool WaitForDiskQuiet(pid_t pid, absl::Duration quiet, absl::Duration timeout) {
  auto written = [pid]() -> int64_t {
    std::string io = ReadFile(absl::StrCat("/proc/", pid, "/io"));
    for (absl::string_view line : absl::StrSplit(io, '\n')) {
      if (absl::ConsumePrefix(&line, "write_bytes: ")) {
        int64_t value = 0;
        if (absl::SimpleAtoi(line, &value)) return value;
      }
    }
    return -1;
  };
  absl::Time deadline = absl::Now() + timeout;
  int64_t last = written();
  if (last < 0) return false;
  absl::Time since = absl::Now();
  while (absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    int64_t now = written();
    if (now < 0) return false;
    if (now != last) {
      last = now;
      since = absl::Now();
    } else if (absl::Now() - since >= quiet) {
      return true;
    }
  }
  return false;
}

std::string LoadAverage() {
  std::vector<std::string> fields =
      absl::StrSplit(ReadFile("/proc/loadavg"), ' ');
  if (fields.size() < 3) return "unknown";
  return absl::StrCat(fields[0], " ", fields[1], " ", fields[2]);
}

Machine DescribeMachine(const std::string& dir) {
  Machine machine;
  machine.cpus = absl::StrCat(sysconf(_SC_NPROCESSORS_ONLN));
  std::string cpuinfo = ReadFile("/proc/cpuinfo");
  for (absl::string_view line : absl::StrSplit(cpuinfo, '\n')) {
    if (absl::StartsWith(line, "model name")) {
      size_t colon = line.find(':');
      if (colon != absl::string_view::npos) {
        machine.cpu_model =
            std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
      break;
    }
  }
  std::string meminfo = ReadFile("/proc/meminfo");
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    if (absl::ConsumePrefix(&line, "MemTotal:")) {
      uint64_t kib = 0;
      absl::string_view number = absl::StripAsciiWhitespace(line);
      number = number.substr(0, number.find(' '));
      if (absl::SimpleAtoi(number, &kib)) {
        machine.memory =
            absl::StrFormat("%.1f GiB", static_cast<double>(kib) / (1 << 20));
      }
    }
  }
  utsname name{};
  if (uname(&name) == 0) machine.kernel = name.release;
  // The mount holding `dir`: the longest mount point that prefixes it.
  std::error_code error;
  std::string path = std::filesystem::canonical(dir, error).string();
  if (error) path = dir;
  std::string best_point, best_source, best_type;
  for (absl::string_view line :
       absl::StrSplit(ReadFile("/proc/self/mounts"), '\n')) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 3) continue;
    const std::string& point = fields[1];
    bool under = path == point || (absl::StartsWith(path, point) &&
                                   (point == "/" || path[point.size()] == '/'));
    if (under && point.size() >= best_point.size()) {
      best_point = point;
      best_source = fields[0];
      best_type = fields[2];
    }
  }
  struct statvfs fs {};
  std::string sizes;
  if (statvfs(dir.c_str(), &fs) == 0) {
    double total = static_cast<double>(fs.f_blocks) * fs.f_frsize;
    double avail = static_cast<double>(fs.f_bavail) * fs.f_frsize;
    sizes = absl::StrFormat(", %.0f GiB, %.0f GiB free", total / (1ull << 30),
                            avail / (1ull << 30));
  }
  machine.disk = absl::StrCat(dir, " on ", best_source, " (", best_type,
                              ", mounted on ", best_point, sizes, ")");
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", &tm);
  machine.date = date;
  return machine;
}

absl::StatusOr<std::string> MakeTempDir(const std::string& parent,
                                        const std::string& prefix,
                                        unsigned mode) {
  std::string templ = absl::StrCat(parent, "/", prefix, "XXXXXX");
  std::vector<char> buffer(templ.begin(), templ.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return ErrnoToStatus(errno, absl::StrCat("mkdtemp ", templ));
  }
  std::string path(buffer.data());
  Dirs().Add(path);
  if (chmod(path.c_str(), mode) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("chmod ", path));
  }
  return path;
}

void RemoveTempDirs() {
  for (const std::string& path : Dirs().Take()) {
    std::error_code error;
    std::filesystem::remove_all(path, error);
  }
}

double SafeRatio(double a, double b) {
  if (b == 0) return std::numeric_limits<double>::quiet_NaN();
  return a / b;
}

}  // namespace pstore::bench
