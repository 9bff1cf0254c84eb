// This process's minor page faults, and faults per GiB moved: the figure
// every benchmark reports beside its throughput (pstore-bench and
// tier_bench alike; bench/bench_util.h counts other processes' too).

#ifndef PSTORE_BENCH_MINOR_FAULTS_H_
#define PSTORE_BENCH_MINOR_FAULTS_H_

#include <sys/resource.h>

#include <cstdint>
#include <limits>

namespace pstore::bench {

// Returns this process's minor faults so far, every thread's
// (getrusage(RUSAGE_SELF).ru_minflt).
inline uint64_t SelfMinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<uint64_t>(usage.ru_minflt);
}

// Returns the minor faults so far of the children this process has waited
// for (getrusage(RUSAGE_CHILDREN).ru_minflt): a child's count is added
// when it is reaped.
inline uint64_t ChildrenMinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  return static_cast<uint64_t>(usage.ru_minflt);
}

// Returns `faults` per GiB (2^30 bytes) of `bytes`; NaN for no bytes.
inline double FaultsPerGiB(uint64_t faults, uint64_t bytes) {
  if (bytes == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(faults) * (uint64_t{1} << 30) /
         static_cast<double>(bytes);
}

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_MINOR_FAULTS_H_
