#include "storage/pins.h"

#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"
#include "storage/records.h"
#include "util/status.h"

namespace pstore {

PinManager::PinManager(Catalog* catalog, DramCache* dram, BlockReader* reader)
    : catalog_(catalog), dram_(dram), reader_(reader) {}

PinManager::~PinManager() { StopRepin(); }

absl::Status PinManager::PinBlocks(const RevisionName& name,
                                   RevisionName* resolved) {
  PSTORE_ASSIGN_OR_RETURN(Manifest manifest, catalog_->GetManifest(name));
  *resolved = manifest.revision.name;
  std::vector<SizedBlock> blocks = DistinctBlocks(manifest.tensors);
  return dram_->Pin(resolved->ToString(), blocks, [this](const BlockId& id) {
    return reader_->ReadBelowDram(id);
  });
}

absl::Status PinManager::Pin(const RevisionName& name) {
  RevisionName resolved;
  PSTORE_RETURN_IF_ERROR(PinBlocks(name, &resolved));
  if (absl::Status recorded = catalog_->AddPinRecord(resolved);
      !recorded.ok()) {
    // Undo: the pin is all or nothing. NotFound here: a delete of the
    // revision, which may already have dropped the DRAM pin.
    (void)dram_->Unpin(resolved.ToString());
    return recorded;
  }
  return absl::OkStatus();
}

absl::Status PinManager::Unpin(const RevisionName& name) {
  PSTORE_ASSIGN_OR_RETURN(RevisionName resolved, catalog_->Resolve(name));
  PSTORE_RETURN_IF_ERROR(dram_->Unpin(resolved.ToString()));
  return catalog_->RemovePinRecord(resolved);
}

void PinManager::DropPin(const RevisionName& name) {
  // NotFound: not pinned, the usual case.
  (void)dram_->Unpin(name.ToString());
}

std::vector<std::string> PinManager::ListPins() const {
  return dram_->ListPins();
}

absl::Status PinManager::StartRepin() {
  PSTORE_ASSIGN_OR_RETURN(std::vector<RevisionName> pins,
                          catalog_->ListPinRecords());
  if (pins.empty()) return absl::OkStatus();
  repin_thread_ = std::thread(
      [this, pins = std::move(pins)]() mutable { RepinLoop(std::move(pins)); });
  return absl::OkStatus();
}

void PinManager::StopRepin() {
  stopping_ = true;
  if (repin_thread_.joinable()) repin_thread_.join();
}

void PinManager::RepinLoop(std::vector<RevisionName> pins) {
  for (const RevisionName& name : pins) {
    if (stopping_) return;
    absl::Time start = absl::Now();
    RevisionName resolved;
    absl::Status status = PinBlocks(name, &resolved);
    if (status.ok()) {
      spdlog::info("event=repinned revision={} seconds={:.3f}", name.ToString(),
                   absl::ToDoubleSeconds(absl::Now() - start));
    } else {
      spdlog::warn("event=repin_failed revision={} status=\"{}\"",
                   name.ToString(), status.ToString());
    }
  }
}

}  // namespace pstore
