// StreamAdmission: what a streaming call holds from its admission to its
// end: one of the server's slots for its kind of stream, given back when
// the call finishes (so that a client's next call is not refused for this
// one), and its entry in the CallGate, given back when the reactor is done
// with the store (at destruction). The one way GetTensor, PullModel and
// PutTensor are admitted.
//
// Move-only. ReleaseSlot may race with the destructor's release of the
// slot: the slot is given back exactly once.

#ifndef PSTORE_SERVER_STREAM_ADMISSION_H_
#define PSTORE_SERVER_STREAM_ADMISSION_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/call_gate.h"

namespace pstore {

class StreamAdmission {
 public:
  // Takes a slot of `slots` if fewer than `limit` are taken, then enters
  // `gate`. ResourceExhausted when every slot is taken (the message names
  // `kind` and the limit); Unavailable when the gate is closed (the server
  // drains). Neither pointer is owned; both outlive the admission.
  static absl::StatusOr<StreamAdmission> Admit(std::atomic<uint64_t>* slots,
                                               int limit,
                                               absl::string_view kind,
                                               CallGate* gate);

  StreamAdmission(StreamAdmission&& other) noexcept = default;
  StreamAdmission& operator=(StreamAdmission&& other) noexcept = default;
  // Gives back the slot, if still held, and leaves the gate.
  ~StreamAdmission();

  // Gives back the stream slot, once; later calls do nothing.
  void ReleaseSlot();

 private:
  // Releases what an admission holds; shared by its moves' last owner.
  struct Held {
    std::atomic<uint64_t>* slots = nullptr;
    CallGate* gate = nullptr;
    std::atomic<bool> slot_held{true};
    ~Held();
  };
  explicit StreamAdmission(std::unique_ptr<Held> held)
      : held_(std::move(held)) {}

  std::unique_ptr<Held> held_;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_STREAM_ADMISSION_H_
