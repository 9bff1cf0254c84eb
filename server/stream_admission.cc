#include "server/stream_admission.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace pstore {

absl::StatusOr<StreamAdmission> StreamAdmission::Admit(
    std::atomic<uint64_t>* slots, int limit, absl::string_view kind,
    CallGate* gate) {
  // Take the slot first, so that concurrent calls cannot all pass the check.
  if (slots->fetch_add(1) >= static_cast<uint64_t>(limit)) {
    slots->fetch_sub(1);
    return absl::ResourceExhaustedError(
        absl::StrCat("pstored already serves ", limit, " ", kind,
                     " streams, its limit; retry with backoff"));
  }
  if (!gate->Enter()) {
    slots->fetch_sub(1);
    return CallGate::ClosedError();
  }
  auto held = std::make_unique<Held>();
  held->slots = slots;
  held->gate = gate;
  return StreamAdmission(std::move(held));
}

StreamAdmission::~StreamAdmission() = default;

StreamAdmission::Held::~Held() {
  if (slot_held.exchange(false)) slots->fetch_sub(1);
  gate->Leave();
}

void StreamAdmission::ReleaseSlot() {
  if (held_ != nullptr && held_->slot_held.exchange(false)) {
    held_->slots->fetch_sub(1);
  }
}

}  // namespace pstore
