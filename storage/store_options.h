// TieredStoreOptions: what TieredStore::Open builds a store from, each
// field with its default.

#ifndef PSTORE_STORAGE_STORE_OPTIONS_H_
#define PSTORE_STORAGE_STORE_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "storage/peers/peer_client.h"
#include "storage/rados/rados_options.h"
#include "storage/tier.h"

namespace pstore {

struct TieredStoreOptions {
  // RocksDB directory of the cold tier. Default: none (required unless
  // `rados` is set).
  std::string cold_dir;

  // With a value, the durable half of the store (catalog and blocks) lives
  // in this Ceph pool (storage/rados/) instead of under cold_dir, shared by
  // every store opened on it. Default: none.
  std::optional<RadosOptions> rados;

  // Directory of the NVMe tier's region files; empty disables the tier.
  // Default: none.
  std::string nvme_dir;

  // DRAM budget. Default: 1 GiB.
  uint64_t dram_bytes = uint64_t{1} << 30;

  // Bytes pins may hold; at most dram_bytes. Default: 0, meaning
  // PinBudgetBytes(dram_bytes, 0) (storage/dram_cache.h): 3/4 of it.
  uint64_t pin_budget_bytes = 0;

  // Disk the NVMe tier may use. Default: 16 GiB.
  uint64_t nvme_bytes = uint64_t{16} << 30;

  // Size of one NVMe region file. Default: 256 MiB, or nvme_bytes / 4 when
  // that is smaller (rounded down to 1 MiB).
  uint64_t nvme_region_bytes = 0;

  // Use io_uring for the NVMe tier where the kernel allows. Default: true.
  bool use_io_uring = true;

  // Size of a block: a multiple of 4 KiB in [64 KiB, 256 MiB].
  // Default: 4 MiB.
  uint64_t block_bytes = uint64_t{4} << 20;

  // Largest tensor a put may store; past it RESOURCE_EXHAUSTED.
  // Default: 1 TiB.
  uint64_t max_tensor_bytes = uint64_t{1} << 40;

  // Threads reading the cold tier. Default: 4.
  int cold_read_threads = 4;

  // Blocks waiting to spill to NVMe; past it evicted blocks are not
  // spilled (they stay in cold). Default: 32.
  size_t spill_queue_blocks = 32;

  // Sync commits to disk (see ColdTierOptions). Default: true.
  bool sync_commits = true;

  // Keep new block values in block files beside the catalog's RocksDB
  // (ColdTierOptions::block_files); false keeps them in RocksDB.
  // Default: true.
  bool cold_block_files = true;

  // Free space the cold tier keeps on its disk (ColdTierOptions).
  // Default: 256 MiB.
  uint64_t cold_min_free_bytes = uint64_t{256} << 20;

  // Re-pin, in the background after Open, the revisions pinned before the
  // last shutdown. Default: true.
  bool repin_on_open = true;

  // Threads encoding blocks (conversions, quantization) for reads.
  // Default: 0, meaning one per CPU.
  int encode_threads = 0;

  // Called for every block read served, with the tier that served it and
  // the time from the request to the bytes (a DRAM hit: the lookup). Runs
  // on the reading thread; must be cheap and thread-safe. Default: none.
  std::function<void(TierKind tier, absl::Duration latency)> on_block_read;

  // How often the store collects the garbage of a backend that sweeps
  // (RADOS; one node at a time, whichever gets the lock); zero: never
  // (only on request). Default: zero.
  absl::Duration gc_interval = absl::ZeroDuration();

  // Reads between the nodes of a store many share (storage/peers/): on
  // when `peer_client` is set, `peers.enabled` holds and the backend has
  // members (RADOS). Defaults: PeerOptions' own; no client.
  PeerOptions peers;
  std::shared_ptr<PeerClient> peer_client;
};

}  // namespace pstore

#endif  // PSTORE_STORAGE_STORE_OPTIONS_H_
