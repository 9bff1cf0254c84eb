#!/usr/bin/env bash
# Builds pstore with AddressSanitizer and UndefinedBehaviorSanitizer (gcc,
# Debug, benchmarks off) into $BUILD_DIR (default: build-asan/) and runs the
# whole test suite under them. Any sanitizer report fails the test that hit
# it. Prints how long the build and the run took. Extra arguments go to
# ctest (e.g. -R codec_test).
#
# Usage: scripts/test-sanitizers.sh [CTEST_ARGS...]
# Environment: BUILD_DIR, JOBS (default 2), TEST_TIMEOUT (seconds per test,
# default 1800), EXCLUDE_TESTS (a ctest -E regex; default: the deployment
# check of the binaries' shared libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${BUILD_DIR:-build-asan}
jobs=${JOBS:-2}

build_start=$SECONDS
CC=${CC:-gcc} CXX=${CXX:-g++} BUILD_DIR="$build_dir" BUILD_TYPE=Debug \
  JOBS="$jobs" scripts/build.sh \
  -DPSTORE_SANITIZE=address,undefined -DPSTORE_BUILD_BENCHMARKS=OFF
build_seconds=$((SECONDS - build_start))
echo "test-sanitizers: build took ${build_seconds} s"

# Tests write their temporary files here; it must be on a filesystem that
# supports O_DIRECT (not tmpfs), which /var/tmp is on Debian.
export TEST_TMPDIR=${TEST_TMPDIR:-/var/tmp}
# Every child (pstored, pstore-cli, the npm checks' helpers) inherits these.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Tests that check what a binary links cannot pass with libasan and
# libubsan linked in: left out unless EXCLUDE_TESTS says otherwise.
exclude=${EXCLUDE_TESTS-^deploy_runtime_libs\$}
exclude_args=()
if [[ -n "$exclude" ]]; then exclude_args=(-E "$exclude"); fi

test_start=$SECONDS
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" \
  --timeout "${TEST_TIMEOUT:-1800}" "${exclude_args[@]}" "$@" || status=$?
test_seconds=$((SECONDS - test_start))
echo "test-sanitizers: build ${build_seconds} s, tests ${test_seconds} s," \
  "ctest exit ${status}"
exit "$status"
