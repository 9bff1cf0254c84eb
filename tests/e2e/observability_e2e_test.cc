// End-to-end tests of what operators see of a real pstored: /metrics after
// a known amount of traffic (counters move by exactly that, and the text is
// valid Prometheus exposition format), /healthz, /readyz and the gRPC health
// service, and how they change on SIGTERM while a pull is still running.

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/pstore_client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::TempDir;

// One sample of a scrape: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses `text` as the Prometheus text exposition format (version 0.0.4),
// failing the test on any line that breaks it: HELP/TYPE comments before
// their samples, metric and label names of the allowed characters, quoted
// and escaped label values, counters named *_total, histogram buckets
// cumulative up to +Inf == _count.
std::vector<Sample> ParseExposition(const std::string& text) {
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([^ ]+)( -?[0-9]+)?$)");
  static const std::regex kLabel(
      R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)")re");
  std::map<std::string, std::string> types;
  std::vector<Sample> samples;
  std::smatch match;
  for (absl::string_view piece : absl::StrSplit(text, '\n')) {
    std::string line(piece);
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (std::regex_match(line, match, kType)) {
        EXPECT_EQ(types.count(match[1]), 0u) << "TYPE twice: " << line;
        types[match[1]] = match[2];
        if (match[2] == "counter") {
          EXPECT_TRUE(absl::EndsWith(std::string(match[1]), "_total")) << line;
        }
      } else {
        EXPECT_TRUE(std::regex_match(line, match, kHelp)) << line;
      }
      continue;
    }
    if (!std::regex_match(line, match, kSample)) {
      ADD_FAILURE() << "not a sample line: " << line;
      continue;
    }
    Sample sample;
    sample.name = match[1];
    std::string labels = match[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), end;
         it != end; ++it) {
      sample.labels[(*it)[1]] = (*it)[2];
    }
    std::string value = match[4];
    if (value == "+Inf") {
      sample.value = INFINITY;
    } else {
      EXPECT_TRUE(absl::SimpleAtod(value, &sample.value)) << line;
    }
    std::string family = sample.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!types.count(family) && absl::EndsWith(family, suffix)) {
        family = family.substr(0, family.size() - strlen(suffix));
      }
    }
    EXPECT_TRUE(types.count(family)) << "no TYPE before " << line;
    samples.push_back(std::move(sample));
  }
  // Histogram buckets: cumulative, +Inf equals _count.
  std::map<std::string, std::vector<const Sample*>> buckets;
  for (const Sample& sample : samples) {
    if (!absl::EndsWith(sample.name, "_bucket")) continue;
    std::map<std::string, std::string> series = sample.labels;
    series.erase("le");
    std::string key = sample.name;
    for (const auto& [k, v] : series) absl::StrAppend(&key, ",", k, "=", v);
    buckets[key].push_back(&sample);
  }
  for (const auto& [key, series] : buckets) {
    for (size_t i = 1; i < series.size(); ++i) {
      EXPECT_LE(series[i - 1]->value, series[i]->value) << key;
    }
    EXPECT_EQ(series.back()->labels.at("le"), "+Inf") << key;
  }
  return samples;
}

// Returns the value of `name` with exactly `labels`, or -1.
double Value(const std::vector<Sample>& samples, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  for (const Sample& sample : samples) {
    if (sample.name == name && sample.labels == labels) return sample.value;
  }
  return -1;
}

class ObservabilityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PstoredProcess>(
        dir_.Sub("data"),
        std::vector<std::string>{"--block_bytes=1MiB", "--drain_seconds=30"});
    ASSERT_OK(server_->Start());
    ASSERT_GT(server_->metrics_port(), 0);
    ClientOptions options;
    options.address = server_->address();
    options.max_attempts = 1;
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(options));
    http_ =
        std::make_unique<httplib::Client>("127.0.0.1", server_->metrics_port());
    http_->set_read_timeout(10, 0);
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "pstored's log:\n" << server_->Log();
  }

  std::vector<Sample> Scrape() {
    httplib::Result result = http_->Get("/metrics");
    EXPECT_TRUE(result) << "no answer from /metrics";
    if (!result) return {};
    EXPECT_EQ(result->status, 200);
    return ParseExposition(result->body);
  }

  TempDir dir_;
  std::unique_ptr<PstoredProcess> server_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(ObservabilityE2eTest, CountersMoveByTheTrafficSent) {
  std::vector<uint8_t> bytes = RandomBytes(6 << 20, 1);
  std::vector<Sample> before = Scrape();
  ASSERT_OK(
      client_->PutTensor("m@v1/w", "U8", std::vector<int64_t>{6 << 20}, bytes)
          .status());
  for (int i = 0; i < 3; ++i) ASSERT_OK(client_->GetTensor("m@v1/w").status());
  EXPECT_FALSE(client_->StatTensor("m@v1/missing").ok());
  std::vector<Sample> after = Scrape();

  auto delta = [&](const std::string& name,
                   const std::map<std::string, std::string>& labels) {
    double was = Value(before, name, labels);
    return Value(after, name, labels) - (was < 0 ? 0 : was);
  };
  EXPECT_EQ(delta("pstore_rpc_requests_total",
                  {{"method", "PutTensor"}, {"code", "OK"}}),
            1);
  EXPECT_EQ(delta("pstore_rpc_requests_total",
                  {{"method", "GetTensor"}, {"code", "OK"}}),
            3);
  EXPECT_EQ(delta("pstore_rpc_requests_total",
                  {{"method", "StatTensor"}, {"code", "NOT_FOUND"}}),
            1);
  EXPECT_EQ(delta("pstore_received_bytes_total", {}), 6 << 20);
  EXPECT_EQ(delta("pstore_sent_bytes_total", {}), 3 * (6 << 20));
  // 6 blocks of 1 MiB, read 3 times from DRAM (the put left them there).
  EXPECT_EQ(delta("pstore_tier_reads_served_total", {{"tier", "dram"}}), 18);
  EXPECT_EQ(delta("pstore_block_read_seconds_count", {{"tier", "dram"}}), 18);
  EXPECT_EQ(delta("pstore_tier_written_bytes_total", {{"tier", "cold"}}),
            6 << 20);
  EXPECT_EQ(
      delta("pstore_rpc_duration_seconds_count", {{"method", "GetTensor"}}), 3);
  EXPECT_EQ(Value(after, "pstore_tier_blocks", {{"tier", "dram"}}), 6);
  EXPECT_EQ(Value(after, "pstore_streams_in_flight", {{"kind", "read"}}), 0);
  EXPECT_EQ(Value(after, "pstore_nvme_io_uring"), 1);
  EXPECT_EQ(Value(after, "pstore_draining"), 0);
  bool build_info = false;
  for (const Sample& sample : after) {
    if (sample.name == "pstore_build_info") {
      build_info = sample.labels.count("version") == 1 && sample.value == 1;
    }
  }
  EXPECT_TRUE(build_info);

  // Reads from NVMe and cold are counted and timed by tier.
  ASSERT_OK(client_->Prefetch("m@v1", v1::TIER_NVME).status());
  ASSERT_OK(client_->DropCache(v1::TIER_DRAM));
  ASSERT_OK(client_->GetTensor("m@v1/w").status());
  ASSERT_OK(client_->DropCache(v1::TIER_DRAM));
  ASSERT_OK(client_->DropCache(v1::TIER_NVME));
  ASSERT_OK(client_->GetTensor("m@v1/w").status());
  std::vector<Sample> tiers = Scrape();
  EXPECT_EQ(Value(tiers, "pstore_tier_reads_served_total", {{"tier", "nvme"}}),
            6);
  EXPECT_EQ(Value(tiers, "pstore_tier_reads_served_total", {{"tier", "cold"}}),
            6);
  EXPECT_EQ(Value(tiers, "pstore_block_read_seconds_count", {{"tier", "cold"}}),
            6);
}

TEST_F(ObservabilityE2eTest, HealthAndReadinessAnswer) {
  httplib::Result healthz = http_->Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  httplib::Result readyz = http_->Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200);
  auto channel = grpc::CreateChannel(server_->address(),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(ObservabilityE2eTest, SigtermTurnsNotReadyWhileAPullFinishes) {
  std::vector<uint8_t> bytes = RandomBytes(24 << 20, 2);
  ASSERT_OK(
      client_
          ->PutTensor("big@v1/w", "U8", std::vector<int64_t>{24 << 20}, bytes)
          .status());
  ASSERT_OK(client_->PublishRevision("big@v1").status());

  // A slow reader: 1 MiB chunks, 50 ms per MiB, and a stop after the second
  // MiB until the checks below are done, so that they run while the pull
  // does. The server has written the last bytes long before this reader
  // takes them in: the shutdown must wait for it.
  ClientOptions slow_options;
  slow_options.address = server_->address();
  slow_options.chunk_bytes = 1 << 20;
  slow_options.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Client> slow,
                       Client::Create(slow_options));
  std::atomic<int> chunks{0};
  absl::Notification checks_done;
  absl::StatusOr<v1::TensorInfo> pulled;
  std::vector<uint8_t> received;
  std::thread reader([&] {
    pulled = slow->GetTensorTo(
        "big/w", GetOptions(),
        [&](const v1::TensorInfo&, std::span<const uint8_t> piece) {
          // The sink sees a chunk in several pieces: counts and sleeps per
          // MiB received.
          const size_t before = received.size() >> 20;
          received.insert(received.end(), piece.begin(), piece.end());
          if ((received.size() >> 20) != before) {
            if (++chunks == 2) {
              checks_done.WaitForNotificationWithTimeout(absl::Seconds(60));
            }
            absl::SleepFor(absl::Milliseconds(50));
          }
          return absl::OkStatus();
        });
  });
  // Lets the reader go on and waits for it, also when an assertion ends the
  // test early.
  absl::Cleanup finish_reader = [&] {
    if (!checks_done.HasBeenNotified()) checks_done.Notify();
    reader.join();
  };
  for (int i = 0; i < 1000 && chunks.load() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GE(chunks.load(), 2);
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);

  // Readiness and health flip while the pull still runs.
  bool not_ready = false;
  for (int i = 0; i < 400 && !not_ready; ++i) {
    httplib::Result readyz = http_->Get("/readyz");
    not_ready = readyz && readyz->status == 503;
    if (!not_ready) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(not_ready);
  auto channel = grpc::CreateChannel(server_->address(),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status checked = health->Check(&context, request, &response);
  EXPECT_TRUE(!checked.ok() ||
              response.status() ==
                  grpc::health::v1::HealthCheckResponse::NOT_SERVING)
      << checked.error_message();
  // New calls are refused while draining.
  absl::StatusOr<v1::TensorInfo> refused = client_->StatTensor("big/w");
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(chunks.load(), 2) << "the pull went on during the checks";

  std::move(finish_reader).Invoke();
  ASSERT_OK(pulled.status());
  EXPECT_TRUE(received == bytes);
  // The process then exits cleanly.
  absl::StatusOr<int> exit_status = server_->Stop(SIGTERM, absl::Seconds(30));
  ASSERT_OK(exit_status.status());
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0);
  EXPECT_NE(server_->Log().find("event=store_closed"), std::string::npos);
}

}  // namespace
}  // namespace pstore
