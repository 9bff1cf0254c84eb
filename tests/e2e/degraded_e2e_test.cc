// Degraded mode of the RADOS backend: a Ceph cluster of the test's own
// (scripts/ceph.sh; the suite's cluster is shared with tests running
// beside this one) whose only OSD is stopped while a real pstored serves,
// then started again.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/pstore_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/testing/pstored_process.h"
#include "tests/testing/random_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "util/child_process.h"
#include "util/status.h"
#include "util/units.h"

namespace pstore {
namespace {

using ::pstore::testing::PstoredProcess;
using ::pstore::testing::RandomBytes;
using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;

// Runs scripts/ceph.sh with `args`; returns its exit status.
absl::StatusOr<int> CephScript(const std::vector<std::string>& args,
                               const std::string& log) {
  std::vector<std::string> argv = {PSTORE_SOURCE_DIR "/scripts/ceph.sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess script("ceph.sh", argv, log);
  PSTORE_RETURN_IF_ERROR(script.Start());
  return script.Wait(absl::Minutes(3));
}

class DegradedE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ceph_dir_ = dir_.Sub("ceph");
    ASSERT_OK_AND_ASSIGN(
        int started, CephScript({"start", ceph_dir_}, dir_.Sub("ceph.log")));
    ASSERT_EQ(started, 0) << "scripts/ceph.sh start failed; see "
                          << dir_.Sub("ceph.log");
    cluster_up_ = true;
    server_ = std::make_unique<PstoredProcess>(
        dir_.Sub("node"),
        std::vector<std::string>{
            "--backend=rados", "--ceph_conf=" + ceph_dir_ + "/ceph.conf",
            "--rados_pool=pstore", "--rados_op_timeout_seconds=5",
            "--dram_bytes=256MiB", "--nvme_bytes=0",
            "--metrics_listen=127.0.0.1:0"});
    ASSERT_OK(server_->Start());
    ClientOptions options;
    options.address = server_->address();
    options.call_timeout = absl::Seconds(60);
    ASSERT_OK_AND_ASSIGN(client_, Client::Create(options));
    http_ =
        std::make_unique<httplib::Client>("127.0.0.1", server_->metrics_port());
  }

  void TearDown() override {
    server_.reset();
    if (cluster_up_) {
      (void)CephScript({"stop", ceph_dir_}, dir_.Sub("ceph-stop.log"));
    }
  }

  std::string Readyz() {
    httplib::Result result = http_->Get("/readyz");
    return result ? absl::StrCat(result->status, " ", result->body) : "none";
  }

  // Polls /readyz (bounded) until its answer contains `text`.
  bool WaitForReadyz(absl::string_view text) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      if (absl::StrContains(Readyz(), text)) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  absl::Status Put(const std::string& name, const std::vector<uint8_t>& bytes) {
    return client_
        ->PutTensor(name, "U8",
                    std::vector<int64_t>{static_cast<int64_t>(bytes.size())},
                    bytes)
        .status();
  }

  TempDir dir_;
  std::string ceph_dir_;
  bool cluster_up_ = false;
  std::unique_ptr<PstoredProcess> server_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(DegradedE2eTest, CachedTensorsServeWhileCephIsDownAndAllRecovers) {
  std::vector<uint8_t> cached = RandomBytes(6 * kMiB, 1);
  std::vector<uint8_t> uncached = RandomBytes(5 * kMiB, 2);
  ASSERT_OK(Put("m@v1/cached", cached));
  ASSERT_OK(Put("m@v1/uncached", uncached));
  ASSERT_OK(client_->PublishRevision("m@v1").status());
  ASSERT_OK(client_->DropCache(v1::TIER_DRAM));
  ASSERT_OK_AND_ASSIGN(auto warm, client_->GetTensor("m@v1/cached"));
  ASSERT_TRUE(warm.second == cached);
  EXPECT_EQ(Readyz(), "200 ready\n");

  ASSERT_OK_AND_ASSIGN(int stopped, CephScript({"stop-osd", ceph_dir_},
                                               dir_.Sub("ceph-osd.log")));
  ASSERT_EQ(stopped, 0);
  ASSERT_TRUE(WaitForReadyz("degraded")) << Readyz();
  EXPECT_THAT(Readyz(), ::testing::StartsWith("200 degraded: "));

  // Cached: served. Not cached, and writes: UNAVAILABLE, at once.
  ASSERT_OK_AND_ASSIGN(auto got, client_->GetTensor("m@v1/cached"));
  EXPECT_TRUE(got.second == cached);
  const absl::Time start = absl::Now();
  EXPECT_THAT(client_->GetTensor("m@v1/uncached"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Put("m@v2/new", cached),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(server_->Running());

  ASSERT_OK_AND_ASSIGN(int restarted, CephScript({"start-osd", ceph_dir_},
                                                 dir_.Sub("ceph-osd.log")));
  ASSERT_EQ(restarted, 0);
  ASSERT_TRUE(WaitForReadyz("ready")) << Readyz();
  ASSERT_OK_AND_ASSIGN(auto back, client_->GetTensor("m@v1/uncached"));
  EXPECT_TRUE(back.second == uncached);
  ASSERT_OK(Put("m@v2/new", cached));
  ASSERT_OK_AND_ASSIGN(auto fresh, client_->GetTensor("m@v2/new"));
  EXPECT_TRUE(fresh.second == cached);
}

}  // namespace
}  // namespace pstore
