#include "tests/testing/test_ceph.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace pstore::testing {
namespace {

// $PSTORE_TEST_CEPH_CONF, else where the ctest fixture starts the suite's
// Ceph.
std::string Conf() {
  const char* conf = std::getenv("PSTORE_TEST_CEPH_CONF");
  return conf != nullptr && *conf != '\0' ? conf
                                          : PSTORE_TEST_CEPH_CONF_DEFAULT;
}

}  // namespace

bool TestCephConfigured(std::string* why) {
  const std::string conf = Conf();
  if (access(conf.c_str(), R_OK) == 0) return true;
  if (why != nullptr) {
    *why = absl::StrCat("no Ceph conf at ", conf,
                        ": run this test through ctest, which starts the "
                        "suite's Ceph first (scripts/ceph.sh), or set "
                        "PSTORE_TEST_CEPH_CONF");
  }
  return false;
}

RadosOptions TestRadosOptions() {
  static std::atomic<int> next{0};
  static const uint64_t run = std::random_device()();
  RadosOptions options;
  options.ceph_conf = Conf();
  const char* pool = std::getenv("PSTORE_TEST_CEPH_POOL");
  options.pool = pool != nullptr && *pool != '\0' ? pool : "pstore";
  options.name_space = absl::StrCat("test-", getpid(), "-", run % 1000000, "-",
                                    next.fetch_add(1));
  options.connect_timeout = absl::Seconds(20);
  options.op_timeout = absl::Seconds(20);
  return options;
}

std::vector<std::string> RadosNodeFlags(const RadosOptions& rados) {
  return {"--backend=rados", "--ceph_conf=" + rados.ceph_conf,
          "--rados_pool=" + rados.pool, "--rados_namespace=" + rados.name_space,
          "--rados_connect_timeout_seconds=20"};
}

}  // namespace pstore::testing
