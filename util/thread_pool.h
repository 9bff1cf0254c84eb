// A fixed-size pool of worker threads running closures in FIFO order.
//
// Used for blocking work (RocksDB reads, pread fallback, spills) so that
// callers on latency-sensitive threads never block. Thread-safe: Schedule may
// be called from any thread, including a worker. The destructor runs every
// closure already scheduled, then joins the workers.

#ifndef PSTORE_UTIL_THREAD_POOL_H_
#define PSTORE_UTIL_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace pstore {

class ThreadPool {
 public:
  // Starts `num_threads` (at least 1) workers named `name` (for debuggers).
  ThreadPool(std::string name, int num_threads);
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task` to run on a worker.
  void Schedule(std::function<void()> task);

  // Returns the number of closures queued and not yet started.
  size_t QueueLength() const;

 private:
  void WorkerLoop();

  const std::string name_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace pstore

#endif  // PSTORE_UTIL_THREAD_POOL_H_
