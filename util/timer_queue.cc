#include "util/timer_queue.h"

#include <pthread.h>

#include "absl/time/clock.h"

namespace pstore {

TimerQueue::TimerQueue(std::string name) : name_(std::move(name)) {
  thread_ = std::thread([this] { Run(); });
}

TimerQueue::~TimerQueue() { Stop(); }

void TimerQueue::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    woken_ = true;
  }
  thread_.join();
  absl::MutexLock lock(&mu_);
  tasks_.clear();
}

void TimerQueue::Schedule(absl::Time when, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  auto it =
      tasks_.emplace(std::make_pair(when, next_seq_++), std::move(task)).first;
  if (it == tasks_.begin()) woken_ = true;
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

void TimerQueue::Run() {
  // Linux limits a thread's name to 15 characters.
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (tasks_.empty() || tasks_.begin()->first.first > absl::Now()) {
      absl::Time wake =
          tasks_.empty() ? absl::InfiniteFuture() : tasks_.begin()->first.first;
      // Wakes at the first task's time, or earlier for a new first task
      // or to stop.
      woken_ = false;
      mu_.AwaitWithDeadline(absl::Condition(&woken_), wake);
      continue;
    }
    auto node = tasks_.extract(tasks_.begin());
    mu_.Unlock();
    node.mapped()();
    node = {};  // The closure's captures go before the lock is taken.
    mu_.Lock();
  }
}

}  // namespace pstore
