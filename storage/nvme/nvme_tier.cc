#include "storage/nvme/nvme_tier.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "spdlog/spdlog.h"
#include "storage/buffer_pool.h"
#include "storage/nvme/device.h"
#include "storage/nvme/nvme_format.h"
#include "util/status.h"

namespace pstore {
namespace {

using nvme_format::EntryBytes;
using nvme_format::kPageBytes;

constexpr uint32_t kNoRegion = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kMinRegionBytes = uint64_t{1} << 20;
// Region file names have six digits.
constexpr uint64_t kMaxRegions = 999'999;

// Where a block's bytes are.
struct Location {
  uint32_t region = 0;
  uint64_t offset = 0;  // Of the data, just past the entry header page.
  uint64_t length = 0;  // Bytes of the block, before padding.
};

// What the writer knows of one region.
struct RegionMeta {
  // Generation of the region header; 0 if the region has no valid header.
  uint64_t generation = 0;
  // Offset where the next entry goes.
  uint64_t head = kPageBytes;
  // Ids of the entries written since the generation began (some may have
  // been erased or rewritten elsewhere since).
  std::vector<BlockId> ids;
};

// Returns true if every byte of `bytes` is zero.
bool AllZero(std::span<const uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(),
                     [](uint8_t b) { return b == 0; });
}

absl::Status CheckOptions(const NvmeTierOptions& options) {
  if (options.dir.empty() && options.device == nullptr) {
    return absl::InvalidArgumentError("nvme: dir is required");
  }
  if (options.region_bytes < kMinRegionBytes ||
      options.region_bytes % kPageBytes != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("nvme: region_bytes ", options.region_bytes,
                     " must be a multiple of 4 KiB and at least 1 MiB"));
  }
  uint64_t regions = options.capacity_bytes / options.region_bytes;
  if (regions < 2 || regions > kMaxRegions) {
    return absl::InvalidArgumentError(
        absl::StrCat("nvme: capacity_bytes ", options.capacity_bytes, " holds ",
                     regions, " regions of ", options.region_bytes,
                     " bytes; need 2 to ", kMaxRegions));
  }
  if (options.queue_depth == 0) {
    return absl::InvalidArgumentError("nvme: queue_depth must be positive");
  }
  if (options.sync_io_threads < 1) {
    return absl::InvalidArgumentError("nvme: sync_io_threads must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

class NvmeTier::Impl {
 public:
  explicit Impl(std::unique_ptr<Device> device)
      : num_regions_(device->num_regions()),
        region_bytes_(device->region_bytes()),
        max_block_bytes_(region_bytes_ - 2 * kPageBytes),
        device_(std::move(device)),
        pool_(BufferPool::Default()),
        header_page_(pool_.Allocate(kPageBytes)),
        regions_(num_regions_),
        in_flight_reads_(num_regions_, 0) {
    stats_.capacity_bytes = uint64_t{num_regions_} * region_bytes_;
  }

  ~Impl() {
    // Makes the entries survive a machine restart, not only a process one.
    absl::Status status = device_->Sync();
    if (!status.ok()) {
      spdlog::warn("event=nvme_sync_failed status=\"{}\"", status.ToString());
    }
    // Waits for reads in flight, whose callbacks use the members below.
    device_.reset();
  }

  bool using_io_uring() const { return device_->uses_io_uring(); }

  // Reads every region header and scans the entry headers of the valid
  // regions to rebuild the index. Called once, before any other method.
  absl::Status Recover() {
    absl::MutexLock write_lock(&write_mu_);
    // One batch of reads for all region headers.
    std::vector<Buffer> pages(num_regions_);
    std::vector<absl::Status> statuses(num_regions_);
    {
      absl::BlockingCounter pending(static_cast<int>(num_regions_));
      std::vector<DeviceRead> reads;
      reads.reserve(num_regions_);
      for (uint32_t r = 0; r < num_regions_; ++r) {
        pages[r] = pool_.Allocate(kPageBytes);
        reads.push_back(
            DeviceRead{.region = r,
                       .offset = 0,
                       .dest = {pages[r].data(), kPageBytes},
                       .done = [&statuses, &pending, r](absl::Status status) {
                         statuses[r] = std::move(status);
                         pending.DecrementCount();
                       }});
      }
      device_->ReadAsync(std::move(reads));
      pending.Wait();
    }
    for (uint32_t r = 0; r < num_regions_; ++r) {
      if (!statuses[r].ok()) {
        return Annotate(statuses[r],
                        absl::StrCat("nvme: read header of region ", r));
      }
      std::span<const uint8_t> page(pages[r].data(), kPageBytes);
      std::string problem;
      absl::StatusOr<nvme_format::RegionHeader> header =
          nvme_format::DecodeRegionHeader(page);
      if (!header.ok()) {
        // A new file is all zeros: nothing to warn about.
        if (!AllZero(page)) problem = std::string(header.status().message());
      } else if (header->version != nvme_format::kFormatVersion) {
        problem = absl::StrCat("format version ", header->version,
                               ", expected ", nvme_format::kFormatVersion);
      } else if (header->region_bytes != region_bytes_) {
        problem = absl::StrCat("written with region_bytes ",
                               header->region_bytes, ", now ", region_bytes_);
      } else if (header->region != r) {
        problem = absl::StrCat("header names region ", header->region);
      } else if (header->generation == 0) {
        problem = "generation 0";
      } else {
        regions_[r].generation = header->generation;
      }
      if (!problem.empty()) {
        spdlog::warn(
            "event=nvme_region_discarded region={} file={} reason=\"{}\"", r,
            RegionFileName(r), problem);
      }
    }
    ScanRegions();
    BuildIndex();
    return absl::OkStatus();
  }

  bool Contains(const BlockId& id) const {
    absl::MutexLock lock(&mu_);
    return index_.contains(id);
  }

  absl::StatusOr<BlockRef> Read(const BlockId& id) {
    absl::Notification finished;
    absl::StatusOr<BlockRef> result;
    ReadAsync(id, [&](absl::StatusOr<BlockRef> block) {
      result = std::move(block);
      finished.Notify();
    });
    finished.WaitForNotification();
    return result;
  }

  void ReadAsync(const BlockId& id, ReadCallback done) {
    Location location;
    bool found = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = index_.find(id);
      if (it == index_.end()) {
        ++stats_.misses;
      } else {
        found = true;
        location = it->second;
        // Holds off the reclaim of the region until the read is done.
        ++in_flight_reads_[location.region];
      }
    }
    if (!found) {
      std::move(done)(absl::NotFoundError(
          absl::StrCat("nvme: block ", id.ToHex(), " not found")));
      return;
    }
    uint64_t padded = AlignUp(location.length);
    Buffer buffer = pool_.Allocate(padded);
    if (padded == 0) {
      FinishRead(id, location, std::move(buffer), absl::OkStatus(),
                 std::move(done));
      return;
    }
    std::span<uint8_t> dest(buffer.data(), padded);
    device_->ReadAsync(location.region, location.offset, dest,
                       [this, id, location, buffer = std::move(buffer),
                        done = std::move(done)](absl::Status status) mutable {
                         FinishRead(id, location, std::move(buffer),
                                    std::move(status), std::move(done));
                       });
  }

  absl::Status Write(const BlockId& id, const BlockRef& block) {
    if (block == nullptr) {
      return absl::InvalidArgumentError("nvme: write of a null block");
    }
    if (block->size() > max_block_bytes_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nvme: block ", id.ToHex(), " of ", block->size(),
          " bytes exceeds the largest that fits a region, ", max_block_bytes_));
    }
    if (Contains(id)) return absl::OkStatus();  // Spares the hashing.
    if (BlockId::Of(block->bytes()) != id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nvme: the bytes of block ", id.ToHex(), " do not hash to its id"));
    }
    absl::MutexLock write_lock(&write_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (index_.contains(id)) return absl::OkStatus();
    }
    const uint64_t entry_bytes = EntryBytes(block->size());
    if (active_ == kNoRegion ||
        region_bytes_ - regions_[active_].head < entry_bytes) {
      PSTORE_RETURN_IF_ERROR(MoveToNextRegion());
    }
    const uint32_t region = active_;
    RegionMeta& meta = regions_[region];
    nvme_format::EncodeEntryHeader(
        nvme_format::EntryHeader{
            .generation = meta.generation, .id = id, .length = block->size()},
        header_page_.span().first(kPageBytes));
    const std::span<const uint8_t> spans[] = {{header_page_.data(), kPageBytes},
                                              block->aligned_bytes()};
    absl::Status status = device_->Write(region, meta.head, spans);
    if (!status.ok()) {
      absl::MutexLock lock(&mu_);
      ++stats_.io_errors;
      return Annotate(status, absl::StrCat("nvme: write block ", id.ToHex()));
    }
    Location location{.region = region,
                      .offset = meta.head + kPageBytes,
                      .length = block->size()};
    meta.head += entry_bytes;
    meta.ids.push_back(id);
    absl::MutexLock lock(&mu_);
    index_[id] = location;
    stats_.used_bytes += entry_bytes;
    ++stats_.writes;
    stats_.write_bytes += block->size();
    return absl::OkStatus();
  }

  absl::Status Erase(const BlockId& id) {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(id);
    if (it == index_.end()) return absl::OkStatus();
    stats_.used_bytes -= EntryBytes(it->second.length);
    index_.erase(it);
    ++stats_.erases;
    return absl::OkStatus();
  }

  absl::Status Clear() {
    absl::MutexLock write_lock(&write_mu_);
    {
      absl::MutexLock lock(&mu_);
      index_.clear();
      stats_.used_bytes = 0;
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return std::all_of(in_flight_reads_.begin(), in_flight_reads_.end(),
                           [](uint32_t n) { return n == 0; });
      };
      mu_.Await(absl::Condition(&idle));
    }
    // Until every header is rewritten, no region may take appends: a
    // failure part way leaves the next Write to start a fresh region.
    active_ = kNoRegion;
    for (RegionMeta& meta : regions_) {
      meta.ids.clear();
      meta.head = kPageBytes;
    }
    // Region 0 gets the newest generation, so it is the one appended to
    // after a restart too; the others follow in order of generation.
    for (uint32_t i = 1; i <= num_regions_; ++i) {
      uint32_t r = i % num_regions_;
      PSTORE_RETURN_IF_ERROR(StartGeneration(r));
    }
    active_ = 0;
    return absl::OkStatus();
  }

  TierStats Stats() const {
    absl::MutexLock lock(&mu_);
    TierStats stats = stats_;
    stats.blocks = index_.size();
    stats.io_uring = device_->uses_io_uring();
    return stats;
  }

 private:
  // One region's entry headers as found by ScanRegions.
  struct ScannedEntry {
    BlockId id;
    Location location;
  };

  // Reads the entry headers of every region with a valid header, one page
  // per region per round (one batch of reads per round), and sets each
  // region's head where its valid entries end.
  void ScanRegions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    struct Scan {
      uint32_t region;
      uint64_t offset = kPageBytes;
      bool done = false;
      Buffer page;
      absl::Status status = absl::OkStatus();
    };
    std::vector<Scan> scans;
    for (uint32_t r = 0; r < num_regions_; ++r) {
      if (regions_[r].generation == 0) continue;
      scans.push_back(Scan{.region = r, .page = pool_.Allocate(kPageBytes)});
    }
    scanned_.assign(num_regions_, {});
    // Each round moves every unfinished scan forward by one entry of at
    // least one page, so there are at most region_bytes / 4 KiB rounds.
    while (true) {
      std::vector<Scan*> open;
      for (Scan& scan : scans) {
        if (!scan.done) open.push_back(&scan);
      }
      if (open.empty()) break;
      absl::BlockingCounter pending(static_cast<int>(open.size()));
      std::vector<DeviceRead> reads;
      reads.reserve(open.size());
      for (Scan* scan : open) {
        reads.push_back(
            DeviceRead{.region = scan->region,
                       .offset = scan->offset,
                       .dest = {scan->page.data(), kPageBytes},
                       .done = [scan, &pending](absl::Status status) {
                         scan->status = std::move(status);
                         pending.DecrementCount();
                       }});
      }
      device_->ReadAsync(std::move(reads));
      pending.Wait();
      for (Scan* scan : open) ScanStep(*scan);
    }
  }

  // Takes in the entry header just read by `scan`, or ends the scan.
  template <typename Scan>
  void ScanStep(Scan& scan) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    RegionMeta& meta = regions_[scan.region];
    if (!scan.status.ok()) {
      spdlog::warn("event=nvme_scan_stopped region={} offset={} status=\"{}\"",
                   scan.region, scan.offset, scan.status.ToString());
      scan.done = true;
    } else {
      absl::StatusOr<nvme_format::EntryHeader> header =
          nvme_format::DecodeEntryHeader({scan.page.data(), kPageBytes});
      // An invalid header, or one left from an older generation, marks the
      // end of the region's entries: the write head.
      if (!header.ok() || header->version != nvme_format::kFormatVersion ||
          header->generation != meta.generation ||
          header->length > region_bytes_ ||
          EntryBytes(header->length) > region_bytes_ - scan.offset) {
        scan.done = true;
      } else {
        scanned_[scan.region].push_back(
            ScannedEntry{.id = header->id,
                         .location = {.region = scan.region,
                                      .offset = scan.offset + kPageBytes,
                                      .length = header->length}});
        scan.offset += EntryBytes(header->length);
        if (region_bytes_ - scan.offset < kPageBytes) scan.done = true;
      }
    }
    if (scan.done) meta.head = scan.offset;
  }

  // Fills the index from the scanned entries, oldest region first so that
  // the newest copy of a block wins, and picks the active region.
  void BuildIndex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    // (generation, region) pairs, sorted: the comparison reads no guarded
    // member, so it needs no lock of its own.
    std::vector<std::pair<uint64_t, uint32_t>> order;
    for (uint32_t r = 0; r < num_regions_; ++r) {
      if (regions_[r].generation != 0) {
        order.emplace_back(regions_[r].generation, r);
      }
    }
    std::sort(order.begin(), order.end());
    absl::MutexLock lock(&mu_);
    for (const auto& [generation, r] : order) {
      for (const ScannedEntry& entry : scanned_[r]) {
        auto [it, inserted] = index_.try_emplace(entry.id, entry.location);
        if (!inserted) {
          stats_.used_bytes -= EntryBytes(it->second.length);
          it->second = entry.location;
        }
        stats_.used_bytes += EntryBytes(entry.location.length);
        regions_[r].ids.push_back(entry.id);
      }
      max_generation_ = std::max(max_generation_, generation);
    }
    active_ = order.empty() ? kNoRegion : order.back().second;
    scanned_.clear();
    scanned_.shrink_to_fit();
  }

  // Makes another region the active one: an empty region if there is one,
  // else the one with the oldest generation, whose blocks leave the index.
  absl::Status MoveToNextRegion() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    uint32_t next = kNoRegion;
    for (uint32_t r = 0; r < num_regions_; ++r) {
      if (r == active_) continue;
      if (next == kNoRegion ||
          std::make_tuple(regions_[r].head > kPageBytes, regions_[r].generation,
                          r) < std::make_tuple(regions_[next].head > kPageBytes,
                                               regions_[next].generation,
                                               next)) {
        next = r;
      }
    }
    if (regions_[next].head > kPageBytes) ReclaimRegion(next);
    PSTORE_RETURN_IF_ERROR(StartGeneration(next));
    active_ = next;
    return absl::OkStatus();
  }

  // Drops the blocks of region `r` from the index, marks it empty and waits
  // for the reads of it in flight.
  void ReclaimRegion(uint32_t r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    RegionMeta& meta = regions_[r];
    absl::MutexLock lock(&mu_);
    ++stats_.reclaimed_regions;
    for (const BlockId& id : meta.ids) {
      auto it = index_.find(id);
      if (it == index_.end() || it->second.region != r) continue;
      stats_.used_bytes -= EntryBytes(it->second.length);
      index_.erase(it);
      ++stats_.evictions;
    }
    meta.ids.clear();
    meta.head = kPageBytes;
    auto idle = [this, r]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return in_flight_reads_[r] == 0;
    };
    mu_.Await(absl::Condition(&idle));
  }

  // Writes a region header with the next generation to region `r`, which
  // holds no indexed entries, and sets its head to the start.
  absl::Status StartGeneration(uint32_t r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    const uint64_t generation = max_generation_ + 1;
    nvme_format::EncodeRegionHeader(
        nvme_format::RegionHeader{.region = r,
                                  .region_bytes = region_bytes_,
                                  .generation = generation},
        header_page_.span().first(kPageBytes));
    const std::span<const uint8_t> spans[] = {
        {header_page_.data(), kPageBytes}};
    absl::Status status = device_->Write(r, 0, spans);
    if (!status.ok()) {
      absl::MutexLock lock(&mu_);
      ++stats_.io_errors;
      return Annotate(status, absl::StrCat("nvme: write header of region ", r));
    }
    max_generation_ = generation;
    regions_[r].generation = generation;
    regions_[r].head = kPageBytes;
    return absl::OkStatus();
  }

  // Verifies a finished read and passes the outcome to `done`.
  void FinishRead(const BlockId& id, const Location& location, Buffer buffer,
                  absl::Status status, ReadCallback done) {
    absl::StatusOr<BlockRef> result;
    bool drop = false;
    bool io_error = false;
    if (!status.ok()) {
      if (absl::IsDataLoss(status)) {
        drop = true;
        result =
            Annotate(status, absl::StrCat("nvme: read block ", id.ToHex()));
      } else {
        // Whatever the device said, for the caller this is a transient
        // fault of this tier: the next tier has the block.
        io_error = true;
        result = absl::UnavailableError(absl::StrCat(
            "nvme: read block ", id.ToHex(), ": ", status.ToString()));
      }
    } else if (Xxh3_128(buffer.data(), location.length) != id.hash()) {
      drop = true;
      result = absl::DataLossError(absl::StrCat(
          "nvme: block ", id.ToHex(), " read from region ", location.region,
          " at ", location.offset, " does not match its checksum"));
    } else {
      result = MakeBlock(std::move(buffer), location.length);
    }
    {
      absl::MutexLock lock(&mu_);
      if (drop) {
        ++stats_.checksum_failures;
        auto it = index_.find(id);
        if (it != index_.end() && it->second.region == location.region &&
            it->second.offset == location.offset) {
          stats_.used_bytes -= EntryBytes(it->second.length);
          index_.erase(it);
        }
      } else if (io_error) {
        ++stats_.io_errors;
      } else {
        ++stats_.hits;
        stats_.read_bytes += location.length;
      }
      --in_flight_reads_[location.region];
    }
    std::move(done)(std::move(result));
  }

  const uint32_t num_regions_;
  const uint64_t region_bytes_;
  const uint64_t max_block_bytes_;
  std::unique_ptr<Device> device_;
  BufferPool& pool_;

  // Serializes appends, region changes and Clear. Taken before mu_.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  Buffer header_page_ ABSL_GUARDED_BY(write_mu_);
  std::vector<RegionMeta> regions_ ABSL_GUARDED_BY(write_mu_);
  uint32_t active_ ABSL_GUARDED_BY(write_mu_) = kNoRegion;
  uint64_t max_generation_ ABSL_GUARDED_BY(write_mu_) = 0;
  std::vector<std::vector<ScannedEntry>> scanned_ ABSL_GUARDED_BY(write_mu_);

  // Guards the index and the counters; never held across I/O.
  mutable absl::Mutex mu_;
  absl::flat_hash_map<BlockId, Location> index_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> in_flight_reads_ ABSL_GUARDED_BY(mu_);
  TierStats stats_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<NvmeTier>> NvmeTier::Open(
    NvmeTierOptions options) {
  PSTORE_RETURN_IF_ERROR(CheckOptions(options));
  const uint32_t num_regions =
      static_cast<uint32_t>(options.capacity_bytes / options.region_bytes);
  std::unique_ptr<Device> device = std::move(options.device);
  if (device == nullptr) {
    std::error_code error;
    std::filesystem::create_directories(options.dir, error);
    if (error) {
      return ErrnoToStatus(error.value(),
                           absl::StrCat("nvme: create ", options.dir));
    }
    PSTORE_ASSIGN_OR_RETURN(device,
                            OpenDevice(DeviceOptions{
                                .dir = options.dir,
                                .num_regions = num_regions,
                                .region_bytes = options.region_bytes,
                                .queue_depth = options.queue_depth,
                                .sync_io_threads = options.sync_io_threads,
                                .use_io_uring = options.use_io_uring,
                            }));
  } else if (device->num_regions() != num_regions ||
             device->region_bytes() != options.region_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nvme: the device has ", device->num_regions(), " regions of ",
        device->region_bytes(), " bytes; the options ask for ", num_regions,
        " of ", options.region_bytes));
  }
  auto impl = std::make_unique<Impl>(std::move(device));
  PSTORE_RETURN_IF_ERROR(impl->Recover());
  return std::unique_ptr<NvmeTier>(new NvmeTier(std::move(impl)));
}

NvmeTier::NvmeTier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NvmeTier::~NvmeTier() = default;

bool NvmeTier::Contains(const BlockId& id) const { return impl_->Contains(id); }

absl::StatusOr<BlockRef> NvmeTier::Read(const BlockId& id) {
  return impl_->Read(id);
}

void NvmeTier::ReadAsync(const BlockId& id, ReadCallback done) {
  impl_->ReadAsync(id, std::move(done));
}

absl::Status NvmeTier::Write(const BlockId& id, const BlockRef& block) {
  return impl_->Write(id, block);
}

absl::Status NvmeTier::Erase(const BlockId& id) { return impl_->Erase(id); }

absl::Status NvmeTier::Clear() { return impl_->Clear(); }

TierStats NvmeTier::Stats() const { return impl_->Stats(); }

bool NvmeTier::using_io_uring() const { return impl_->using_io_uring(); }

}  // namespace pstore
