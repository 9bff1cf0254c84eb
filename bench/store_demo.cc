// store_demo: puts a tensor into a TieredStore under ./pstore-data (or the
// directory given as the first argument), reads it back through each tier,
// and prints what the tiers hold. A stand-in for pstored until it lands.

#include <cstdio>
#include <string>
#include <vector>

#include "storage/tiered_store.h"
#include "util/units.h"

int main(int argc, char** argv) {
  using namespace pstore;
  std::string dir = argc > 1 ? argv[1] : "pstore-data";
  TieredStoreOptions options;
  options.cold_dir = dir + "/cold";
  options.nvme_dir = dir + "/nvme";
  options.dram_bytes = 256 * kMiB;
  options.nvme_bytes = 1 * kGiB;
  absl::StatusOr<std::unique_ptr<TieredStore>> store =
      TieredStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "store_demo: %s\n", store.status().ToString().c_str());
    return 1;
  }
  // A 1024 x 4096 F32 tensor: 16 MiB, four blocks.
  std::vector<float> values(1024 * 4096);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.001f * i;
  PutTensorSpec spec{*ParseTensorName("demo@v1/layer0.weight"),
                     DType::kF32,
                     {1024, 4096},
                     std::nullopt};
  absl::Status status = absl::OkStatus();
  // A second run finds the revision published already: nothing to put.
  if (!(*store)->StatTensor(spec.name).ok()) {
    auto writer = (*store)->PutTensor(spec);
    status = writer.status();
    if (status.ok()) {
      status =
          (*writer)->Append({reinterpret_cast<const uint8_t*>(values.data()),
                             values.size() * sizeof(float)});
    }
    if (status.ok()) status = (*writer)->Commit().status();
    if (status.ok()) {
      status = (*store)->PublishRevision(*ParseRevisionName("demo@v1"));
    }
  }
  if (!status.ok()) {
    std::fprintf(stderr, "store_demo: %s\n", status.ToString().c_str());
    return 1;
  }
  std::string expected(reinterpret_cast<const char*>(values.data()),
                       values.size() * sizeof(float));
  TensorName name = *ParseTensorName("demo/layer0.weight");
  for (TierKind tier : {TierKind::kDram, TierKind::kNvme, TierKind::kCold}) {
    if (tier != TierKind::kDram) {
      if (tier == TierKind::kNvme) {
        status =
            (*store)->Prefetch(*ParseRevisionName("demo@v1"), tier).status();
      } else {
        status = (*store)->DropCache(TierKind::kNvme);
      }
      if (status.ok()) status = (*store)->DropCache(TierKind::kDram);
    }
    absl::StatusOr<std::string> bytes = (*store)->ReadTensor(name);
    if (!status.ok() || !bytes.ok() || *bytes != expected) {
      std::fprintf(stderr, "store_demo: read from %s failed\n",
                   std::string(TierKindName(tier)).c_str());
      return 1;
    }
    StoreStats stats = (*store)->Stats();
    std::printf(
        "read demo/layer0.weight (%s), %s: block reads served by dram=%lu "
        "nvme=%lu cold=%lu\n",
        FormatBytes(bytes->size()).c_str(),
        tier == TierKind::kDram   ? "first read"
        : tier == TierKind::kNvme ? "after nvme prefetch, dram dropped"
                                  : "after nvme and dram dropped",
        static_cast<unsigned long>(stats.reads_from[0]),
        static_cast<unsigned long>(stats.reads_from[1]),
        static_cast<unsigned long>(stats.reads_from[2]));
  }
  std::printf("bytes equal on every tier; data in %s\n", dir.c_str());
  return 0;
}
