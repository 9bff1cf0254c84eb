// CallGate counts the calls that use the store and closes for shutdown.
// Every call Enters before it touches the store and Leaves once it never
// will again; after Close, Enter fails, so that once the count reaches zero
// after Close it stays zero and the store may be closed.
//
// Thread-safe. Enter and Close use sequentially consistent atomics: a call
// that Enters while another thread Closes either sees the gate closed or is
// counted by the closer.

#ifndef PSTORE_SERVER_CALL_GATE_H_
#define PSTORE_SERVER_CALL_GATE_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace pstore {

class CallGate {
 public:
  // Returns true and counts the call, or false if the gate is closed.
  bool Enter() {
    calls_.fetch_add(1);
    if (closed_.load()) {
      calls_.fetch_sub(1);
      return false;
    }
    return true;
  }

  // Uncounts a call that Entered.
  void Leave() { calls_.fetch_sub(1); }

  // Returns the status of a call refused because the gate is closed.
  static absl::Status ClosedError() {
    return absl::UnavailableError(
        "pstored is shutting down; retry on another replica or after "
        "restart");
  }

  // Refuses every later Enter.
  void Close() { closed_.store(true); }
  bool closed() const { return closed_.load(); }

  int64_t in_flight() const { return calls_.load(); }

  // Waits until no call is counted or `deadline` passes; returns true if
  // none is.
  bool WaitIdle(absl::Time deadline) const {
    while (calls_.load() > 0) {
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

 private:
  std::atomic<int64_t> calls_{0};
  std::atomic<bool> closed_{false};
};

}  // namespace pstore

#endif  // PSTORE_SERVER_CALL_GATE_H_
