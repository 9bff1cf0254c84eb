// Small helpers of pstore-bench: deterministic random bytes, timing of
// calls from several threads, the OS page cache, pre-touched buffers, a
// description of the machine, and the temporary directories removed on
// exit or on a signal.
//
// Thread-safe unless noted.

#ifndef PSTORE_BENCH_BENCH_UTIL_H_
#define PSTORE_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/results.h"

namespace pstore::bench {

// Fills `out` with pseudo-random bytes (SplitMix64), the same for the same
// `seed`; several GB/s, so fresh bytes cost little.
void FillRandom(uint64_t seed, std::span<uint8_t> out);

// A heap buffer whose pages are all touched (no page faults while timed).
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
