#include "storage/tiered_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/cold/cold_tier.h"
#include "storage/dram/dram_tier.h"
#include "storage/nvme/nvme_tier.h"
#include "tests/testing/catalog_matchers.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::EqualsMeta;
using ::pstore::testing::MetaOrWouldBlock;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::pstore::testing::WouldBlock;
using ::testing::AnyOf;

constexpr uint64_t kMiB = uint64_t{1} << 20;

std::span<const uint8_t> AsSpan(const std::vector<uint8_t>& bytes) {
  return {bytes.data(), bytes.size()};
}

std::string AsString(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TensorName Name(const std::string& text) { return *ParseTensorName(text); }
RevisionName Revision(const std::string& text) {
  return *ParseRevisionName(text);
}

class TieredStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    store_.reset();
    TieredStoreOptions options = options_;
    options.cold_dir = dir_.Sub("cold");
    options.nvme_dir = dir_.Sub("nvme");
    absl::StatusOr<std::unique_ptr<TieredStore>> store =
        TieredStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Puts `bytes` as tensor `name`, sent in `chunk`-byte appends.
  absl::StatusOr<TensorMeta> Put(const std::string& name, DType dtype,
                                 std::vector<int64_t> shape,
                                 const std::vector<uint8_t>& bytes,
                                 size_t chunk = 1 << 20) {
    PutTensorSpec spec;
    spec.name = Name(name);
    spec.dtype = dtype;
    spec.shape = std::move(shape);
    absl::StatusOr<std::unique_ptr<TensorWriter>> writer =
        store_->PutTensor(std::move(spec));
    if (!writer.ok()) return writer.status();
    for (size_t i = 0; i < bytes.size(); i += chunk) {
      absl::Status status = (*writer)->Append(
          {bytes.data() + i, std::min(chunk, bytes.size() - i)});
      if (!status.ok()) return status;
    }
    return (*writer)->Commit();
  }

  TieredStoreOptions options_ = [] {
    TieredStoreOptions options;
    options.dram_bytes = 64 * kMiB;
    options.nvme_bytes = 128 * kMiB;
    options.nvme_region_bytes = 16 * kMiB;
    options.block_bytes = 1 * kMiB;
    options.sync_commits = false;
    options.cold_min_free_bytes = 16 * kMiB;
    return options;
  }();
  TempDir dir_;
  std::unique_ptr<TieredStore> store_;
};

TEST_F(TieredStoreTest, RoundTripsEveryDtypeIncludingScalarAndEmpty) {
  uint64_t seed = 0;
  for (DType dtype : AllDTypes()) {
    std::string base = std::string("m@r/") + std::string(DTypeName(dtype));
    std::vector<std::pair<std::string, std::vector<int64_t>>> cases = {
        {base + ".matrix", {37, 1000}},
        {base + ".scalar", {}},
        {base + ".empty", {4, 0}},
    };
    for (const auto& [name, shape] : cases) {
      uint64_t length = *TensorByteLength(dtype, shape);
      std::vector<uint8_t> bytes = RandomBytes(length, ++seed);
      ASSERT_OK_AND_ASSIGN(TensorMeta meta, Put(name, dtype, shape, bytes));
      EXPECT_EQ(meta.byte_length, length);
      ASSERT_OK_AND_ASSIGN(TensorMeta stat, store_->StatTensor(Name(name)));
      EXPECT_EQ(stat.dtype, dtype);
      EXPECT_EQ(stat.shape, shape);
      EXPECT_EQ(stat.xxh3_64, Xxh3_64(bytes));
      ASSERT_OK_AND_ASSIGN(std::string read, store_->ReadTensor(Name(name)));
      EXPECT_EQ(read, AsString(bytes)) << name;
    }
  }
}

TEST_F(TieredStoreTest, RoundTripsA64MiBTensorAndByteRanges) {
  std::vector<uint8_t> bytes = RandomBytes(64 * kMiB, 42);
  ASSERT_OK_AND_ASSIGN(
      TensorMeta meta,
      Put("big@v1/w", DType::kF32, {4096, 4096}, bytes, 3 * kMiB + 17));
  EXPECT_EQ(meta.blocks.size(), 64u);
  ASSERT_OK_AND_ASSIGN(std::string read, store_->ReadTensor(Name("big@v1/w")));
  EXPECT_EQ(read, AsString(bytes));
  // Ranges inside a block, across blocks, and at the end.
  for (auto [offset, length] :
       std::vector<std::pair<uint64_t, uint64_t>>{{0, 1},
                                                  {kMiB - 3, 10},
                                                  {5 * kMiB + 7, 3 * kMiB},
                                                  {64 * kMiB - 1, 1},
                                                  {123456, 0}}) {
    ASSERT_OK_AND_ASSIGN(std::string part,
                         store_->ReadTensor(Name("big@v1/w"), offset, length));
    uint64_t expected = length == 0 ? 64 * kMiB - offset : length;
    EXPECT_EQ(part, AsString(bytes).substr(offset, expected));
  }
  EXPECT_THAT(store_->ReadTensor(Name("big@v1/w"), 64 * kMiB - 1, 2),
              StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(TieredStoreTest, BlocksFallOnMultiplesOf256Elements) {
  for (DType dtype : {DType::kF64, DType::kF16, DType::kU8}) {
    std::string name = "m@r/t" + std::string(DTypeName(dtype));
    int64_t elements = 3 * kMiB / DTypeSize(dtype) + 5;
    ASSERT_OK_AND_ASSIGN(TensorMeta meta,
                         Put(name, dtype, {elements},
                             RandomBytes(elements * DTypeSize(dtype), 3)));
    EXPECT_EQ(meta.block_bytes % (256 * DTypeSize(dtype)), 0u);
    EXPECT_EQ(meta.blocks.size(), 4u);
  }
}

TEST_F(TieredStoreTest, RefusesBadPuts) {
  EXPECT_THAT(Put("m/t", DType::kF32, {1}, RandomBytes(4, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Put("m@r/t", DType::kF32, {-1}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      Put("m@r/t", DType::kF32, {1, 1, 1, 1, 1, 1, 1, 1, 1}, RandomBytes(4, 1)),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Put("m@r/t", DType::kF32, {int64_t{1} << 62}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Too few and too many bytes.
  EXPECT_THAT(Put("m@r/t", DType::kF32, {10}, RandomBytes(39, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Put("m@r/t", DType::kF32, {10}, RandomBytes(41, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->StatTensor(Name("m@r/t")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(TieredStoreTest, AWrongHashCommitsNothingAndLeavesNoBlocks) {
  std::vector<uint8_t> bytes = RandomBytes(3 * kMiB, 9);
  PutTensorSpec spec;
  spec.name = Name("m@r/t");
  spec.dtype = DType::kU8;
  spec.shape = {static_cast<int64_t>(bytes.size())};
  spec.expected_xxh3_64 = Xxh3_64(bytes) ^ 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorWriter> writer,
                       store_->PutTensor(spec));
  ASSERT_OK(writer->Append(AsSpan(bytes)));
  EXPECT_THAT(writer->Commit(), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(store_->StatTensor(Name("m@r/t")),
              StatusIs(absl::StatusCode::kNotFound));
  for (size_t i = 0; i < 3; ++i) {
    BlockId id =
        BlockId::Of(std::span<const uint8_t>(bytes).subspan(i * kMiB, kMiB));
    EXPECT_FALSE(store_->cold()->Contains(id));
    EXPECT_FALSE(store_->dram()->Contains(id));
  }
}

TEST_F(TieredStoreTest, AnAbandonedPutLeavesNoBlocks) {
  std::vector<uint8_t> bytes = RandomBytes(2 * kMiB, 10);
  {
    PutTensorSpec spec;
    spec.name = Name("m@r/t");
    spec.dtype = DType::kU8;
    spec.shape = {static_cast<int64_t>(bytes.size())};
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TensorWriter> writer,
                         store_->PutTensor(spec));
    ASSERT_OK(writer->Append({bytes.data(), kMiB + 5}));
  }  // Destroyed without Commit: a stream cut mid-way.
  BlockId first = BlockId::Of(std::span<const uint8_t>(bytes).subspan(0, kMiB));
  EXPECT_FALSE(store_->cold()->Contains(first));
  EXPECT_THAT(store_->StatTensor(Name("m@r/t")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(TieredStoreTest, PublishedRevisionsAreImmutableAndServeLatest) {
  ASSERT_OK(Put("m@v1/t", DType::kU8, {3}, {1, 2, 3}).status());
  ASSERT_OK(store_->PublishRevision(Revision("m@v1")));
  EXPECT_THAT(Put("m@v1/t", DType::kU8, {3}, {4, 5, 6}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store_->DeleteTensor(Name("m@v1/t")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(Put("m@v2/t", DType::kU8, {3}, {7, 8, 9}).status());
  EXPECT_EQ(*store_->ReadTensor(Name("m/t")), std::string("\1\2\3"));
  ASSERT_OK(store_->PublishRevision(Revision("m@v2")));
  EXPECT_EQ(*store_->ReadTensor(Name("m/t")), std::string("\7\10\11"));
}

TEST_F(TieredStoreTest, RepeatedTensorsAddNoBlockBytesInCold) {
  std::vector<uint8_t> a = RandomBytes(5 * kMiB, 1);
  std::vector<uint8_t> b = RandomBytes(3 * kMiB, 2);
  ASSERT_OK(Put("m@v1/a", DType::kU8, {5 * int64_t{kMiB}}, a).status());
  ASSERT_OK(Put("m@v1/b", DType::kU8, {3 * int64_t{kMiB}}, b).status());
  uint64_t cold_writes = store_->cold()->Stats().writes;
  ASSERT_OK(Put("m@v2/a", DType::kU8, {5 * int64_t{kMiB}}, a).status());
  ASSERT_OK(Put("m@v2/b", DType::kU8, {3 * int64_t{kMiB}}, b).status());
  ASSERT_OK(Put("m@v2/a-copy", DType::kU8, {5 * int64_t{kMiB}}, a).status());
  StoreStats stats = store_->Stats();
  EXPECT_EQ(store_->cold()->Stats().writes, cold_writes);
  EXPECT_EQ(stats.dedup_blocks, 13u);
  TensorMeta meta = *store_->StatTensor(Name("m@v2/a"));
  EXPECT_EQ(*store_->RefCount(meta.blocks[0]), 3u);
  EXPECT_EQ(*store_->ReadTensor(Name("m@v2/a-copy")), AsString(a));
}

TEST_F(TieredStoreTest, DeletingARevisionKeepsSharedBlocksAndErasesTheRest) {
  std::vector<uint8_t> shared = RandomBytes(2 * kMiB, 1);
  std::vector<uint8_t> own = RandomBytes(2 * kMiB, 2);
  ASSERT_OK(
      Put("m@v1/shared", DType::kU8, {2 * int64_t{kMiB}}, shared).status());
  ASSERT_OK(Put("m@v1/own", DType::kU8, {2 * int64_t{kMiB}}, own).status());
  ASSERT_OK(
      Put("m@v2/shared", DType::kU8, {2 * int64_t{kMiB}}, shared).status());
  TensorMeta own_meta = *store_->StatTensor(Name("m@v1/own"));
  TensorMeta shared_meta = *store_->StatTensor(Name("m@v1/shared"));
  // Put copies of v1's own blocks in NVMe too.
  ASSERT_OK(store_->Prefetch(Revision("m@v1"), TierKind::kNvme).status());
  for (const BlockId& id : own_meta.blocks) {
    ASSERT_TRUE(store_->nvme()->Contains(id));
    ASSERT_TRUE(store_->dram()->Contains(id));
  }

  ASSERT_OK(store_->DeleteRevision(Revision("m@v1")));
  for (const BlockId& id : own_meta.blocks) {
    EXPECT_FALSE(store_->dram()->Contains(id));
    EXPECT_FALSE(store_->nvme()->Contains(id));
    EXPECT_FALSE(store_->cold()->Contains(id));
  }
  for (const BlockId& id : shared_meta.blocks) {
    EXPECT_TRUE(store_->cold()->Contains(id));
    EXPECT_EQ(*store_->RefCount(id), 1u);
  }
  EXPECT_EQ(*store_->ReadTensor(Name("m@v2/shared")), AsString(shared));
  EXPECT_EQ(store_->Stats().collected_blocks, 2u);
}

TEST_F(TieredStoreTest, ReadsFallThroughTiersAndCountWhereTheyCameFrom) {
  std::vector<uint8_t> bytes = RandomBytes(4 * kMiB, 5);
  ASSERT_OK(Put("m@v1/t", DType::kU8, {4 * int64_t{kMiB}}, bytes).status());
  ASSERT_OK(store_->PublishRevision(Revision("m@v1")));
  StoreStats before = store_->Stats();
  ASSERT_OK(store_->ReadTensor(Name("m/t")).status());
  StoreStats after = store_->Stats();
  EXPECT_EQ(after.reads_from[0] - before.reads_from[0], 4u);  // DRAM

  ASSERT_OK(store_->Prefetch(Revision("m@v1"), TierKind::kNvme).status());
  ASSERT_OK(store_->DropCache(TierKind::kDram));
  before = store_->Stats();
  EXPECT_EQ(*store_->ReadTensor(Name("m/t")), AsString(bytes));
  after = store_->Stats();
  EXPECT_EQ(after.reads_from[1] - before.reads_from[1], 4u);  // NVMe

  ASSERT_OK(store_->DropCache(TierKind::kDram));
  ASSERT_OK(store_->DropCache(TierKind::kNvme));
  before = store_->Stats();
  EXPECT_EQ(*store_->ReadTensor(Name("m/t")), AsString(bytes));
  after = store_->Stats();
  EXPECT_EQ(after.reads_from[2] - before.reads_from[2], 4u);  // Cold
  EXPECT_THAT(store_->DropCache(TierKind::kCold),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(TieredStoreTest, EvictionsSpillToNvme) {
  // 96 MiB through a 64 MiB DRAM tier: the oldest blocks spill.
  std::vector<uint8_t> bytes = RandomBytes(96 * kMiB, 6);
  ASSERT_OK(Put("m@v1/t", DType::kU8, {96 * int64_t{kMiB}}, bytes).status());
  // Spills run on a background thread; wait for them (bounded).
  for (int i = 0; i < 500 && store_->Stats().spills == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  StoreStats stats = store_->Stats();
  EXPECT_GT(stats.spills, 0u);
  EXPECT_GT(stats.dram.evictions, 0u);
  EXPECT_LE(stats.dram.used_bytes, 64 * kMiB);
  EXPECT_EQ(*store_->ReadTensor(Name("m@v1/t")), AsString(bytes));
}

TEST_F(TieredStoreTest, CorruptNvmeEntriesAreHealedFromCold) {
  std::vector<uint8_t> bytes = RandomBytes(8 * kMiB, 7);
  ASSERT_OK(Put("m@v1/t", DType::kU8, {8 * int64_t{kMiB}}, bytes).status());
  ASSERT_OK(store_->Prefetch(Revision("m@v1"), TierKind::kNvme).status());
  ASSERT_OK(store_->DropCache(TierKind::kDram));
  // Flip a byte in every 64 KiB of every region file, past its header.
  int flipped = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(dir_.Sub("nvme"))) {
    int fd = ::open(entry.path().c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    off_t size = std::filesystem::file_size(entry.path());
    for (off_t offset = 3 * 4096 + 100; offset < size; offset += 65536) {
      uint8_t byte;
      ASSERT_EQ(::pread(fd, &byte, 1, offset), 1);
      byte ^= 0x5a;
      ASSERT_EQ(::pwrite(fd, &byte, 1, offset), 1);
      ++flipped;
    }
    ::close(fd);
  }
  ASSERT_GT(flipped, 0);
  EXPECT_EQ(*store_->ReadTensor(Name("m@v1/t")), AsString(bytes));
  StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.nvme.checksum_failures, 8u);
  EXPECT_EQ(stats.reads_from[2], 8u);
}

TEST_F(TieredStoreTest, RestartKeepsDataPinsAndTheWarmCache) {
  std::vector<uint8_t> bytes = RandomBytes(6 * kMiB, 8);
  ASSERT_OK(Put("m@v1/t", DType::kU8, {6 * int64_t{kMiB}}, bytes).status());
  ASSERT_OK(store_->PublishRevision(Revision("m@v1")));
  ASSERT_OK(store_->Prefetch(Revision("m@v1"), TierKind::kNvme).status());
  ASSERT_OK(store_->Pin(Revision("m@v1")));
  Open();
  EXPECT_EQ(store_->nvme()->Stats().blocks, 6u);
  EXPECT_EQ(*store_->ReadTensor(Name("m/t")), AsString(bytes));
  // Re-pinning runs in the background; wait for it (bounded).
  for (int i = 0; i < 500 && store_->ListPins().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(store_->ListPins().size(), 1u);
  EXPECT_EQ(store_->ListPins()[0], "m@v1");
}

TEST_F(TieredStoreTest, PinsHoldAndAreRefusedPastTheBudget) {
  // Pin budget: 3/4 of 64 MiB = 48 MiB.
  ASSERT_OK(Put("small@v1/t", DType::kU8, {8 * int64_t{kMiB}},
                RandomBytes(8 * kMiB, 1))
                .status());
  ASSERT_OK(Put("large@v1/t", DType::kU8, {44 * int64_t{kMiB}},
                RandomBytes(44 * kMiB, 2))
                .status());
  ASSERT_OK(store_->Pin(Revision("small@v1")));
  EXPECT_EQ(store_->Stats().pinned_bytes, 8 * kMiB);
  EXPECT_THAT(store_->Pin(Revision("large@v1")),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(store_->Stats().pinned_bytes, 8 * kMiB);
  EXPECT_THAT(store_->Pin(Revision("small@v1")),
              StatusIs(absl::StatusCode::kAlreadyExists));
  // Stream 128 MiB through DRAM: the pinned revision stays.
  ASSERT_OK(Put("scan@v1/t", DType::kU8, {128 * int64_t{kMiB}},
                RandomBytes(128 * kMiB, 3))
                .status());
  TensorMeta small = *store_->StatTensor(Name("small@v1/t"));
  for (const BlockId& id : small.blocks) {
    EXPECT_TRUE(store_->dram()->Contains(id));
  }
  ASSERT_OK(store_->Unpin(Revision("small@v1")));
  EXPECT_EQ(store_->Stats().pinned_bytes, 0u);
  EXPECT_THAT(store_->Unpin(Revision("small@v1")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(TieredStoreTest, ConcurrentReadersAndWritersOnEightThreads) {
  constexpr int kTensors = 16;
  std::vector<std::vector<uint8_t>> contents;
  for (int i = 0; i < kTensors; ++i) {
    contents.push_back(RandomBytes((i + 1) * 700 * 1024 + i, 100 + i));
    if (i % 2 == 0) {
      ASSERT_OK(Put("m@v1/t" + std::to_string(i), DType::kU8,
                    {static_cast<int64_t>(contents[i].size())}, contents[i])
                    .status());
    }
  }
  std::atomic<int> wrong{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 12; ++round) {
        int i = (t + round * 3) % kTensors;
        std::string name = "m@v1/t" + std::to_string(i);
        if (t < 2 && i % 2 == 1) {
          absl::StatusOr<TensorMeta> put =
              Put(name, DType::kU8, {static_cast<int64_t>(contents[i].size())},
                  contents[i], 300000);
          if (!put.ok()) ++errors;
          continue;
        }
        absl::StatusOr<std::string> read = store_->ReadTensor(Name(name));
        if (read.ok()) {
          if (*read != AsString(contents[i])) ++wrong;
        } else if (!absl::IsNotFound(read.status()) || i % 2 == 0) {
          ++errors;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
}

TEST_F(TieredStoreTest, ConcurrentReadersOfAMissingBlockShareOneDiskRead) {
  std::vector<uint8_t> bytes = RandomBytes(kMiB, 11);
  ASSERT_OK(Put("m@v1/t", DType::kU8, {int64_t{kMiB}}, bytes).status());
  ASSERT_OK(store_->DropCache(TierKind::kDram));
  TensorMeta meta = *store_->StatTensor(Name("m@v1/t"));
  StoreStats before = store_->Stats();
  std::atomic<int> done{0};
  absl::Mutex mu;
  for (int i = 0; i < 16; ++i) {
    store_->ReadBlockAsync(meta.blocks[0], [&](absl::StatusOr<BlockRef> b) {
      if (b.ok() && (*b)->view() == AsString(bytes)) ++done;
    });
  }
  for (int i = 0; i < 1000 && done < 16; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(done.load(), 16);
  StoreStats after = store_->Stats();
  uint64_t disk_reads = (after.reads_from[1] - before.reads_from[1]) +
                        (after.reads_from[2] - before.reads_from[2]);
  uint64_t shared = after.coalesced_reads - before.coalesced_reads;
  uint64_t dram_hits = after.reads_from[0] - before.reads_from[0];
  EXPECT_EQ(disk_reads, 1u);
  EXPECT_EQ(disk_reads + shared + dram_hits, 16u);
}

TEST_F(TieredStoreTest, ListsTensorsAndModels) {
  ASSERT_OK(store_->CreateRevision(Revision("m@v1"), {{"source", "test"}}));
  for (int i = 0; i < 7; ++i) {
    ASSERT_OK(
        Put("m@v1/layer." + std::to_string(i), DType::kU8, {1}, {1}).status());
  }
  ASSERT_OK_AND_ASSIGN(TensorPage page,
                       store_->ListTensors(Revision("m@v1"), "layer.", 5, ""));
  EXPECT_EQ(page.tensors.size(), 5u);
  ASSERT_FALSE(page.next_page_token.empty());
  ASSERT_OK_AND_ASSIGN(page, store_->ListTensors(Revision("m@v1"), "layer.", 5,
                                                 page.next_page_token));
  EXPECT_EQ(page.tensors.size(), 2u);
  EXPECT_TRUE(page.next_page_token.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<ModelInfo> models, store_->ListModels());
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].revisions.size(), 1u);
  EXPECT_EQ(models[0].revisions[0].metadata.at("source"), "test");
}

TEST_F(TieredStoreTest, StatFromMemoryOnlyGivesWhatStatGivesOrWouldBlock) {
  ASSERT_OK(
      Put("m@v1/t", DType::kU8, {3000}, RandomBytes(3000, 1), 1000).status());
  ASSERT_OK(store_->PublishRevision(Revision("m@v1")));
  for (const char* name : {"m@v1/t", "m/t"}) {
    ASSERT_OK_AND_ASSIGN(TensorMeta any, store_->StatTensor(Name(name)));
    EXPECT_EQ(any.name, Name("m@v1/t"));
    EXPECT_THAT(store_->StatTensor(Name(name), CatalogRead::kMemoryOnly),
                MetaOrWouldBlock(any))
        << name;
  }
  for (const char* name : {"m@v1/absent", "m/absent", "absent/t"}) {
    EXPECT_THAT(store_->StatTensor(Name(name), CatalogRead::kMemoryOnly),
                AnyOf(StatusIs(absl::StatusCode::kNotFound), WouldBlock()))
        << name;
  }
}

TEST_F(TieredStoreTest, StatFromMemoryOnlyAfterRestartWouldBlockUntilOneStat) {
  // Re-pinning at open scans the catalog's pin records, which brings the
  // data block around them (here the whole small catalog) into RocksDB's
  // block cache: off, so that the restarted store's block cache is empty.
  options_.repin_on_open = false;
  Open();
  ASSERT_OK(Put("m@v1/t", DType::kU8, {64}, RandomBytes(64, 2)).status());
  ASSERT_OK(store_->PublishRevision(Revision("m@v1")));
  ASSERT_OK_AND_ASSIGN(TensorMeta expected, store_->StatTensor(Name("m/t")));

  // The cold tier flushes its memtables on close: the records are now in
  // SST files only, and no block of them is cached.
  Open();
  EXPECT_THAT(store_->StatTensor(Name("m@v1/t"), CatalogRead::kMemoryOnly),
              WouldBlock());
  EXPECT_THAT(store_->StatTensor(Name("m/t"), CatalogRead::kMemoryOnly),
              WouldBlock());
  ASSERT_OK_AND_ASSIGN(TensorMeta any, store_->StatTensor(Name("m/t")));
  EXPECT_THAT(any, EqualsMeta(expected));
  for (const char* name : {"m/t", "m@v1/t"}) {
    ASSERT_OK_AND_ASSIGN(
        TensorMeta cached,
        store_->StatTensor(Name(name), CatalogRead::kMemoryOnly));
    EXPECT_THAT(cached, EqualsMeta(expected)) << name;
  }
}

}  // namespace
}  // namespace pstore
