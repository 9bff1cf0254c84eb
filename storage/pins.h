// PinManager: whole revisions pinned in DRAM. A pin loads every block of a
// revision into DRAM and keeps it there, all or none, within the pin
// budget, and is recorded in the catalog so that it survives a restart: at
// open, the recorded pins are pinned again on a background thread.
//
// A pin racing the deletion of its revision ends with no pin at all: the
// record is added only while the revision exists (Catalog::AddPinRecord),
// and a delete drops the DRAM pin after the revision is gone.
//
// Thread-safe.

#ifndef PSTORE_STORAGE_PINS_H_
#define PSTORE_STORAGE_PINS_H_

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "storage/block_reader.h"
#include "storage/catalog.h"
#include "storage/dram_cache.h"
#include "storage/names.h"

namespace pstore {

class PinManager {
 public:
  // None of the pointers is owned; all outlive the manager.
  PinManager(Catalog* catalog, DramCache* dram, BlockReader* reader);
  // Stops re-pinning (see StopRepin).
  ~PinManager();

  // Pins every block of revision `name` (resolved through latest) in DRAM,
  // all or none, and records the pin. ResourceExhausted past the pin
  // budget; AlreadyExists if pinned; NotFound if the revision is absent or
  // deleted while the pin loads.
  absl::Status Pin(const RevisionName& name);

  // Unpins revision `name` (resolved through latest) and drops its record.
  // NotFound if it is not pinned.
  absl::Status Unpin(const RevisionName& name);

  // Drops the DRAM pin of `name` (a revision being deleted), if any.
  void DropPin(const RevisionName& name);

  // Returns the pinned revisions, "MODEL@REV", sorted.
  std::vector<std::string> ListPins() const;

  // Pins again, on a background thread, the revisions recorded as pinned.
  // Errors are logged per revision.
  absl::Status StartRepin();

  // Stops the re-pinning thread after the revision it is pinning.
  void StopRepin();

 private:
  // Pins the blocks of `name` in DRAM, without recording the pin.
  absl::Status PinBlocks(const RevisionName& name, RevisionName* resolved);
  void RepinLoop(std::vector<RevisionName> pins);

  Catalog* const catalog_;
  DramCache* const dram_;
  BlockReader* const reader_;
  std::atomic<bool> stopping_{false};
  std::thread repin_thread_;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_PINS_H_
