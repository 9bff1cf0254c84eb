// TimerQueue: runs closures at or after given times, on one thread of its
// own, in time order. For short closures that must not block (hedging
// deadlines, periodic checks); a closure that blocks delays every later one.
//
// Thread-safe: Schedule may be called from any thread, including from a
// closure. Stop (and the destructor) lets the closure running finish, drops
// every other one unrun, and joins the thread; closures scheduled after
// that are dropped too.

#ifndef PSTORE_UTIL_TIMER_QUEUE_H_
#define PSTORE_UTIL_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pstore {

class TimerQueue {
 public:
  // Starts the thread, named `name` (for debuggers).
  explicit TimerQueue(std::string name);
  ~TimerQueue();

  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `task` on the queue's thread at `when` or soon after (at once if
  // `when` has passed).
  void Schedule(absl::Time when, std::function<void()> task);

  // Closures scheduled and not yet run.
  size_t size() const;

  // Stops the thread (see the header comment). Idempotent.
  void Stop();

 private:
  void Run();

  const std::string name_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  // By time, then by order of scheduling.
  std::map<std::pair<absl::Time, uint64_t>, std::function<void()>> tasks_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace pstore

#endif  // PSTORE_UTIL_TIMER_QUEUE_H_
