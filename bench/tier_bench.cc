// In-process read throughput and latency of each tier, for 64 KiB and 4 MiB
// blocks (Google Benchmark). Each benchmark writes a working set into one
// tier, then reads random blocks of it; NVMe reads use O_DIRECT, so they hit
// the disk. Counters: bytes_per_second (throughput), p50_us and p99_us
// (latency of one Read), minflt_per_gib (minor page faults of the process
// per GiB read, serial reads only).
//
//   build/bench/tier_bench --benchmark_min_time=2
//       --benchmark_out=tier_bench.json --benchmark_out_format=json
//
// PSTORE_BENCH_DIR picks the directory for NVMe and cold files (default
// /var/tmp): point it at the disk you want to measure.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "bench/minor_faults.h"
#include "benchmark/benchmark.h"
#include "storage/cold/block_files.h"
#include "storage/cold/cold_database.h"
#include "storage/cold/cold_tier.h"
#include "storage/dram/dram_tier.h"
#include "storage/nvme/device.h"
#include "storage/nvme/nvme_tier.h"

namespace pstore {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// Bytes written into the tier under test: larger than the disk's cache
// effects for NVMe, within memory for DRAM.
constexpr uint64_t kWorkingSetBytes = 512 * kMiB;

std::string BenchDir() {
  const char* dir = std::getenv("PSTORE_BENCH_DIR");
  std::string base = dir != nullptr && *dir != '\0' ? dir : "/var/tmp";
  std::string path = base + "/pstore-tier-bench";
  std::filesystem::create_directories(path);
  return path;
}

std::vector<std::pair<BlockId, BlockRef>> MakeBlocks(size_t block_bytes,
                                                     size_t count) {
  std::vector<std::pair<BlockId, BlockRef>> blocks;
  std::mt19937_64 rng(block_bytes);
  for (size_t i = 0; i < count; ++i) {
    Buffer buffer = BufferPool::Default().Allocate(block_bytes);
    auto* words = reinterpret_cast<uint64_t*>(buffer.data());
    for (size_t w = 0; w < block_bytes / 8; ++w) words[w] = rng();
    BlockRef block = MakeBlock(std::move(buffer), block_bytes);
    blocks.emplace_back(BlockId::Of(block->bytes()), std::move(block));
  }
  return blocks;
}

// Reads random blocks of `ids` from `tier`, one at a time, and reports
// throughput and per-read latency percentiles.
void RunSerialReads(benchmark::State& state, Tier& tier,
                    const std::vector<BlockId>& ids, size_t block_bytes) {
  std::mt19937 rng(1);
  std::vector<double> latencies;
  latencies.reserve(100000);
  uint64_t faults_before = bench::SelfMinorFaults();
  for (auto _ : state) {
    const BlockId& id = ids[rng() % ids.size()];
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<BlockRef> block = tier.Read(id);
    auto end = std::chrono::steady_clock::now();
    if (!block.ok()) {
      state.SkipWithError(block.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize((*block)->data());
    latencies.push_back(
        std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    return latencies.empty()
               ? 0.0
               : latencies[std::min(latencies.size() - 1,
                                    static_cast<size_t>(p * latencies.size()))];
  };
  state.SetBytesProcessed(state.iterations() * block_bytes);
  state.counters["minflt_per_gib"] =
      bench::FaultsPerGiB(bench::SelfMinorFaults() - faults_before,
                          state.iterations() * block_bytes);
  state.counters["p50_us"] = percentile(0.50);
  state.counters["p99_us"] = percentile(0.99);
}

// Reads random blocks with `depth` reads in flight through ReadAsync.
void RunParallelReads(benchmark::State& state, Tier& tier,
                      const std::vector<BlockId>& ids, size_t block_bytes,
                      int depth) {
  struct Window {
    absl::Mutex mu;
    int in_flight = 0;
    int depth = 0;
    int failed = 0;
    bool HasRoom() const { return in_flight < depth; }
    bool Empty() const { return in_flight == 0; }
  };
  std::mt19937 rng(2);
  constexpr int kBatch = 64;
  for (auto _ : state) {
    Window window;
    window.depth = depth;
    for (int i = 0; i < kBatch; ++i) {
      {
        absl::MutexLock lock(&window.mu);
        window.mu.Await(absl::Condition(&window, &Window::HasRoom));
        ++window.in_flight;
      }
      tier.ReadAsync(ids[rng() % ids.size()],
                     [&window](absl::StatusOr<BlockRef> block) {
                       absl::MutexLock lock(&window.mu);
                       if (!block.ok()) ++window.failed;
                       --window.in_flight;
                     });
    }
    absl::MutexLock lock(&window.mu);
    window.mu.Await(absl::Condition(&window, &Window::Empty));
    if (window.failed > 0) {
      state.SkipWithError("a read failed");
      return;
    }
  }
  state.SetBytesProcessed(state.iterations() * kBatch * block_bytes);
}

std::vector<BlockId> Fill(Tier& tier, size_t block_bytes) {
  size_t count = kWorkingSetBytes / block_bytes;
  std::vector<BlockId> ids;
  for (auto& [id, block] : MakeBlocks(block_bytes, count)) {
    if (!tier.Write(id, block).ok()) std::abort();
    ids.push_back(id);
  }
  return ids;
}

void BM_DramRead(benchmark::State& state) {
  size_t block_bytes = state.range(0);
  DramTierOptions options;
  options.capacity_bytes = 2 * kWorkingSetBytes;
  auto tier = *DramTier::Open(options);
  std::vector<BlockId> ids = Fill(*tier, block_bytes);
  RunSerialReads(state, *tier, ids, block_bytes);
}

std::unique_ptr<NvmeTier> OpenNvme(bool io_uring) {
  std::string dir = BenchDir() + "/nvme";
  std::filesystem::remove_all(dir);
  NvmeTierOptions options;
  options.dir = dir;
  options.capacity_bytes = 2 * kWorkingSetBytes;
  options.region_bytes = 64 * kMiB;
  options.use_io_uring = io_uring;
  return *NvmeTier::Open(std::move(options));
}

void BM_NvmeRead(benchmark::State& state) {
  size_t block_bytes = state.range(0);
  auto tier = OpenNvme(state.range(1) != 0);
  std::vector<BlockId> ids = Fill(*tier, block_bytes);
  RunSerialReads(state, *tier, ids, block_bytes);
}

void BM_NvmeReadDepth(benchmark::State& state) {
  size_t block_bytes = state.range(0);
  auto tier = OpenNvme(true);
  std::vector<BlockId> ids = Fill(*tier, block_bytes);
  RunParallelReads(state, *tier, ids, block_bytes, state.range(1));
}

// Cold layouts: block values inline in RocksDB SST files, in RocksDB blob
// files (BlobDB), or one file per block beside the catalog (BlockFileTier,
// what pstored runs).
enum ColdLayout : int64_t { kInline = 0, kBlobFiles = 1, kBlockFiles = 2 };

// Opens the cold tier of `layout` under BenchDir()/cold, emptied first when
// `fresh`.
std::unique_ptr<Tier> OpenCold(int64_t layout, bool direct, bool fresh) {
  std::string dir = BenchDir() + "/cold";
  if (fresh) std::filesystem::remove_all(dir);
  ColdTierOptions options;
  options.dir = dir;
  options.blob_files = layout == kBlobFiles;
  options.block_files = layout == kBlockFiles;
  options.direct_reads = direct;
  options.direct_block_reads = direct;
  options.sync_commits = false;
  if (layout != kBlockFiles) return *ColdTier::Open(std::move(options));
  return *BlockFileTier::Open(*ColdDatabase::Open(std::move(options)));
}

void BM_ColdRead(benchmark::State& state) {
  size_t block_bytes = state.range(0);
  std::vector<BlockId> ids;
  {
    auto tier = OpenCold(state.range(1), false, true);
    ids = Fill(*tier, block_bytes);
    // Closing flushes, so that reads come from SST (or blob) files, not the
    // memtable.
  }
  // Written back, so that an O_DIRECT read does not first write the dirty
  // pages of its file (block files are written without sync here).
  sync();
  // Reopen, with O_DIRECT reads when asked, keeping the data.
  auto tier = OpenCold(state.range(1), state.range(2) != 0, false);
  RunSerialReads(state, *tier, ids, block_bytes);
}

void BM_ColdWrite(benchmark::State& state) {
  size_t block_bytes = state.range(0);
  auto tier = OpenCold(state.range(1), false, true);
  auto blocks = MakeBlocks(block_bytes, kWorkingSetBytes / block_bytes);
  size_t next = 0;
  for (auto _ : state) {
    if (next == blocks.size()) {
      state.PauseTiming();
      tier.reset();
      tier = OpenCold(state.range(1), false, true);
      next = 0;
      state.ResumeTiming();
    }
    auto& [id, block] = blocks[next++];
    if (!tier->Write(id, block).ok()) std::abort();
  }
  state.SetBytesProcessed(state.iterations() * block_bytes);
}

constexpr int64_t k64KiB = 64 << 10;
constexpr int64_t k4MiB = 4 << 20;

BENCHMARK(BM_DramRead)->Arg(k64KiB)->Arg(k4MiB)->UseRealTime();
BENCHMARK(BM_NvmeRead)
    ->ArgNames({"block", "io_uring"})
    ->Args({k64KiB, 1})
    ->Args({k4MiB, 1})
    ->Args({k64KiB, 0})
    ->Args({k4MiB, 0})
    ->UseRealTime();
BENCHMARK(BM_NvmeReadDepth)
    ->ArgNames({"block", "depth"})
    ->Args({k64KiB, 32})
    ->Args({k4MiB, 4})
    ->Args({k4MiB, 16})
    ->UseRealTime();
BENCHMARK(BM_ColdRead)
    ->ArgNames({"block", "layout", "direct"})
    ->Args({k64KiB, kInline, 0})
    ->Args({k4MiB, kInline, 0})
    ->Args({k4MiB, kBlobFiles, 0})
    ->Args({k64KiB, kBlockFiles, 0})
    ->Args({k4MiB, kBlockFiles, 0})
    ->Args({k64KiB, kInline, 1})
    ->Args({k4MiB, kInline, 1})
    ->Args({k4MiB, kBlobFiles, 1})
    ->Args({k64KiB, kBlockFiles, 1})
    ->Args({k4MiB, kBlockFiles, 1})
    ->UseRealTime();
BENCHMARK(BM_ColdWrite)
    ->ArgNames({"block", "layout"})
    ->Args({k4MiB, kInline})
    ->Args({k4MiB, kBlobFiles})
    ->Args({k4MiB, kBlockFiles})
    ->UseRealTime();

}  // namespace
}  // namespace pstore

BENCHMARK_MAIN();
