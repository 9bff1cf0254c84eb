// The throwaway Ceph of the test suite: ctest starts one before any test
// that needs it (the fixture `ceph` in tests/CMakeLists.txt, through
// scripts/ceph.sh) in build/ceph; $PSTORE_TEST_CEPH_CONF names another
// cluster's conf (its pool: $PSTORE_TEST_CEPH_POOL, default pstore). Each call
// of TestRadosOptions gives a namespace of its own in the pool, so tests
// (and ctest -j) never see each other's objects.

#ifndef PSTORE_TESTS_TESTING_TEST_CEPH_H_
#define PSTORE_TESTS_TESTING_TEST_CEPH_H_

#include <string>
#include <vector>

#include "storage/rados/rados_pool.h"

namespace pstore::testing {

// Returns true if the suite's Ceph is configured; else false and sets
// `why` (if not null) to a line that says how to get one.
bool TestCephConfigured(std::string* why = nullptr);

// Returns options for the suite's pool in a new, unique namespace.
// REQUIRES: TestCephConfigured().
RadosOptions TestRadosOptions();

// Returns the flags that start a pstored on the pool and namespace of
// `rados`, with a start-up timeout for a loaded machine.
std::vector<std::string> RadosNodeFlags(const RadosOptions& rados);

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_TEST_CEPH_H_
