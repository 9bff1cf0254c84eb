// Small helpers of pstore-bench: deterministic random bytes, timing of
// calls from several threads, minor page faults of a timed run, the OS
// page cache, pre-touched buffers, a description of the machine, and the
// temporary directories removed on exit or on a signal.
//
// Thread-safe unless noted.

#ifndef PSTORE_BENCH_BENCH_UTIL_H_
#define PSTORE_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/minor_faults.h"
#include "bench/results.h"
#include "pstore/v1/pstore.pb.h"

namespace pstore::bench {

// Fills `out` with pseudo-random bytes (SplitMix64), the same for the same
// `seed`; several GB/s, so fresh bytes cost little.
void FillRandom(uint64_t seed, std::span<uint8_t> out);

// A heap buffer whose pages are all touched (no page faults while timed).
// Children forked meanwhile do not inherit it (MADV_DONTFORK): a fork
// neither copies its page tables nor makes its pages copy-on-write, which
// would fault them again in this process.
class TouchedBuffer {
 public:
  TouchedBuffer() = default;
  explicit TouchedBuffer(uint64_t bytes);
  ~TouchedBuffer();
  TouchedBuffer(TouchedBuffer&& other) noexcept;
  TouchedBuffer& operator=(TouchedBuffer&& other) noexcept;

  std::span<uint8_t> span() const { return {data_, size_}; }
  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Returns a pull's allocate callback (PullCallbacks::allocate) that lays
// the tensors one after another in `arena`, from `*used` bytes in (the
// caller sets it to 0 before each pull), adding each tensor's bytes to
// `*used`. FailedPrecondition when a tensor does not fit.
std::function<absl::StatusOr<std::span<uint8_t>>(const v1::TensorInfo& info)>
ArenaAllocator(TouchedBuffer& arena, uint64_t* used);

// Returns seconds since `start` on the steady clock.
double SecondsSince(std::chrono::steady_clock::time_point start);

// Runs `requests` calls of `call(thread, index)` on `threads` threads that
// start together and take indices in order; returns every call's latency
// in microseconds, by index. The first error stops every thread.
absl::StatusOr<std::vector<double>> TimeCalls(
    int threads, size_t requests,
    const std::function<absl::Status(int thread, size_t index)>& call);

// Runs `fn(thread)` on `threads` threads and waits; returns the first
// error.
absl::Status RunThreads(int threads,
                        const std::function<absl::Status(int thread)>& fn);

// --- Minor page faults ---
//
// A minor fault is one served without I/O: the first touch of a fresh
// anonymous page, a copy-on-write, a page the kernel took back and gives
// again. How dear one is depends on the machine (several times dearer
// under a paravirtualized guest); how many a run takes does not.

// Returns the minor faults so far of process `pid`, every thread's
// (/proc/PID/stat field 10, minflt); nullopt if it cannot be read (no such
// process).
std::optional<uint64_t> ProcessMinorFaults(pid_t pid);

// CPU seconds (user + system, every thread) process `pid` has used so far,
// from /proc/PID/stat; 0 if it is gone.
double ProcessCpuSeconds(pid_t pid);

// Returns `pid` and the processes whose parent it is (/proc/*/stat field
// 4): nginx's master and its workers.
std::vector<pid_t> ProcessAndChildren(pid_t pid);

// Counts the minor page faults of one timed run, per GiB moved: of the
// processes that serve the bytes (by process id, summed: pstored, nginx's
// master and worker, redis-server, grpc-ceiling) and of the process that
// reads them (this one, or a program it ran and waited for).
//
// Start and Stop bracket the timed part only; neither allocates, so the
// meter adds no faults of its own to this process's count.
class FaultMeter {
 public:
  enum class Reader {
    kSelf,      // This process (getrusage RUSAGE_SELF).
    kChildren,  // The children reaped between Start and Stop
                // (RUSAGE_CHILDREN): a program the run started and waited
                // for.
  };
  // `servers` may be empty: the bytes come from no other process (fio, an
  // in-process peer); `server_name` then is ignored.
  FaultMeter(std::string server_name, std::vector<pid_t> servers,
             std::string reader_name, Reader reader);

  void Start();
  void Stop();
  // Adds the faults between Start and Stop, per GiB of `bytes`, to
  // `series` (server_faults and client_faults) and names the processes.
  // A serving process that could not be read adds no server figure.
  void AddTo(Series& series, uint64_t bytes) const;

 private:
  std::optional<uint64_t> ServerFaults() const;
  uint64_t ReaderFaults() const;

  std::string server_name_;
  std::vector<pid_t> servers_;
  std::string reader_name_;
  Reader reader_;
  std::optional<uint64_t> server_before_, server_after_;
  uint64_t reader_before_ = 0, reader_after_ = 0;
};

// Returns whether files `a` and `b` hold the same bytes (read in 4 MiB
// pieces). ErrnoToStatus codes if either cannot be read.
absl::StatusOr<bool> SameFileContents(const std::string& a,
                                      const std::string& b);

// Syncs and drops the OS page cache (echo 3 > /proc/sys/vm/drop_caches).
// PermissionDenied (or the errno's code) when the kernel refuses.
absl::Status DropPageCache();

// Waits until process `pid` has written nothing to disk for `quiet`
// (/proc/PID/io write_bytes), at most `timeout`; returns false on timeout
// or when the counter cannot be read.
bool WaitForDiskQuiet(pid_t pid, absl::Duration quiet, absl::Duration timeout);

// Returns the 1, 5 and 15 minute load averages ("1.20 0.80 0.50").
std::string LoadAverage();

// Describes this machine: CPUs, memory, kernel, and the disk holding `dir`.
Machine DescribeMachine(const std::string& dir);

// Creates a directory "<parent>/<prefix>XXXXXX" with mode `mode`,
// registered for removal by RemoveTempDirs.
absl::StatusOr<std::string> MakeTempDir(const std::string& parent,
                                        const std::string& prefix,
                                        unsigned mode = 0700);
// Removes every directory MakeTempDir made (and forgets them).
void RemoveTempDirs();

// Returns a / b, or NaN when b is 0.
double SafeRatio(double a, double b);

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_BENCH_UTIL_H_
