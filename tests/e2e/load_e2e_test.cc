// Load test of a real pstored: 64 concurrent clients pulling and putting for
// a bounded time. Every byte read is checked (each tensor's XXH3-64 against
// the bytes put), the only errors allowed are the documented backpressure
// (RESOURCE_EXHAUSTED when stream limits are reached, retried after a
// pause), and the daemon's peak RSS must stay within its DRAM budget plus
// 20% plus 256 MiB. The figures are printed for the record.
//
// PSTORE_LOAD_SECONDS sets the duration (default 15).

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/pstore_client.h"
#include "codec/hash.h"
#include "gtest/gtest.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kDramBytes = 256 * kMiB;
constexpr int kClients = 64;
constexpr int kPutters = 16;
constexpr int kTensors = 32;
constexpr uint64_t kTensorBytes = 12 * kMiB;  // 384 MiB in all: > DRAM.

// Returns the value in KiB of `field` ("VmRSS", "VmHWM") of process `pid`.
uint64_t ProcStatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      uint64_t kib = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits.push_back(c);
      }
      if (absl::SimpleAtoi(digits, &kib)) return kib;
    }
  }
  return 0;
}

TEST(LoadTest, SixtyFourClientsPullAndPutWithinTheMemoryBound) {
  int seconds = 15;
  if (const char* env = std::getenv("PSTORE_LOAD_SECONDS")) {
    (void)absl::SimpleAtoi(env, &seconds);
  }
  TempDir dir;
  PstoredProcess server(dir.Sub("data"),
                        {absl::StrCat("--dram_bytes=", kDramBytes),
                         "--nvme_bytes=512MiB", "--block_bytes=1MiB"});
  ASSERT_OK(server.Start());

  // The shared model, and what every tensor must hash to.
  std::vector<uint64_t> hashes(kTensors);
  {
    ClientOptions options;
    options.address = server.address();
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> client,
                         Client::Create(options));
    for (int i = 0; i < kTensors; ++i) {
      std::vector<uint8_t> bytes = RandomBytes(kTensorBytes, 1000 + i);
      hashes[i] = Xxh3_64(bytes);
      ASSERT_OK(client
                    ->PutTensor(absl::StrCat("load@v1/t", i), "U8",
                                std::vector<int64_t>{
                                    static_cast<int64_t>(kTensorBytes)},
                                bytes)
                    .status());
    }
    ASSERT_OK(client->PublishRevision("load@v1").status());
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, read_bytes{0}, puts{0}, put_bytes{0};
  std::atomic<uint64_t> backpressure{0}, wrong{0};
  std::mutex errors_mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(errors_mu);
    if (errors.size() < 20) errors.push_back(what);
  };
  // Returns true if `status` is fine or documented backpressure.
  auto judge = [&](const absl::Status& status, const std::string& what) {
    if (status.ok()) return true;
    if (absl::IsResourceExhausted(status)) {
      ++backpressure;
      absl::SleepFor(absl::Milliseconds(20));
      return false;
    }
    fail(absl::StrCat(what, ": ", status.ToString()));
    return false;
  };

  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      ClientOptions options;
      options.address = server.address();
      options.max_attempts = 1;
      options.call_timeout = absl::Seconds(120);
      std::unique_ptr<Client> client = *Client::Create(options);
      std::mt19937_64 rng(c);
      int round = 0;
      while (!stop) {
        if (c < kPutters) {
          // Put a fresh tensor, read it back, delete its revision.
          uint64_t size = (1 + rng() % 8) * kMiB + rng() % 4096;
          std::vector<uint8_t> bytes = RandomBytes(size, rng());
          std::string revision = absl::StrCat("putter", c, "@r", round++);
          std::string name = revision + "/w";
          if (!judge(client
                         ->PutTensor(
                             name, "U8",
                             std::vector<int64_t>{static_cast<int64_t>(size)},
                             bytes)
                         .status(),
                     "put " + name)) {
            continue;
          }
          ++puts;
          put_bytes += size;
          absl::StatusOr<std::pair<v1::TensorInfo, std::vector<uint8_t>>> got =
              client->GetTensor(name);
          if (judge(got.status(), "read back " + name) &&
              got->second != bytes) {
            ++wrong;
          }
          judge(client->DeleteRevision(revision), "delete " + revision);
        } else if (c % 4 == 0) {
          // A whole-model pull over one stream. Tensors arrive in manifest
          // order, so two buffers taken in turn hold them; each is checked
          // against what was put when it is complete.
          std::vector<uint8_t> buffers[2];
          PullCallbacks callbacks;
          callbacks.allocate = [&](const v1::TensorInfo& info)
              -> absl::StatusOr<std::span<uint8_t>> {
            int index = std::stoi(info.tensor().substr(1));
            std::vector<uint8_t>& buffer = buffers[index % 2];
            buffer.resize(info.byte_length());
            return std::span<uint8_t>(buffer);
          };
          callbacks.done = [&](const v1::TensorInfo& info) {
            int index = std::stoi(info.tensor().substr(1));
            ++reads;
            read_bytes += info.byte_length();
            if (info.xxh3_64() != hashes[index]) ++wrong;
          };
          judge(client->PullModel("load", PullOptions(), callbacks).status(),
                "pull load");
        } else {
          int index = static_cast<int>(rng() % kTensors);
          absl::StatusOr<std::pair<v1::TensorInfo, std::vector<uint8_t>>> got =
              client->GetTensor(absl::StrCat("load/t", index));
          if (!judge(got.status(), "get t" + std::to_string(index))) continue;
          ++reads;
          read_bytes += got->second.size();
          if (Xxh3_64(got->second) != hashes[index]) ++wrong;
        }
      }
    });
  }

  uint64_t peak_sampled_kib = 0;
  absl::Time end = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < end) {
    peak_sampled_kib =
        std::max(peak_sampled_kib, ProcStatusKiB(server.pid(), "VmRSS"));
    absl::SleepFor(absl::Milliseconds(100));
  }
  stop = true;
  for (std::thread& client : clients) client.join();
  uint64_t hwm_kib = ProcStatusKiB(server.pid(), "VmHWM");
  uint64_t bound = kDramBytes + kDramBytes / 5 + 256 * kMiB;

  std::printf(
      "load: %d clients for %d s: %lu reads (%.2f GiB), %lu puts (%.2f GiB), "
      "%lu backpressure retries, %lu wrong, %zu errors; pstored peak RSS "
      "%.1f MiB (VmHWM; sampled %.1f MiB), bound %.1f MiB (DRAM %lu MiB "
      "+ 20%% + 256 MiB)\n",
      kClients, seconds, static_cast<unsigned long>(reads.load()),
      read_bytes.load() / double(1 << 30),
      static_cast<unsigned long>(puts.load()),
      put_bytes.load() / double(1 << 30),
      static_cast<unsigned long>(backpressure.load()),
      static_cast<unsigned long>(wrong.load()), errors.size(), hwm_kib / 1024.0,
      peak_sampled_kib / 1024.0, bound / double(kMiB),
      static_cast<unsigned long>(kDramBytes / kMiB));
  for (const std::string& error : errors) {
    std::printf("  error: %s\n", error.c_str());
  }
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(puts.load(), 0u);
  // ASan's shadow memory and quarantine are not pstored's.
  if (!::pstore::testing::kAddressSanitizer) {
    EXPECT_LE(hwm_kib * 1024, bound);
  }
  EXPECT_TRUE(server.Running());
}

}  // namespace
}  // namespace pstore
