#include "bench/bench_util.h"

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
  // MAP_POPULATE maps the pages; writing makes sure each is private.
  for (uint64_t i = 0; i < bytes; i += 4096) data_[i] = 1;
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
