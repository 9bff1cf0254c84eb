#!/usr/bin/env bash
# Builds pstore with AddressSanitizer and UndefinedBehaviorSanitizer (clang,
# -O1 with line tables, asserts on, benchmarks off) into $BUILD_DIR
# (default: build-asan/) and runs the ctest suite under them, without the
# deployment checks (label deploy: they check files and what the binaries
# link, not our code's behaviour). The same build is the thread-safety gate:
# clang checks every ABSL_GUARDED_BY (-Wthread-safety) and PSTORE_WERROR
# makes any warning an error.
#
# Every sanitizer report, from a test binary or from a pstored or pstore-cli
# it starts, goes to a file under $BUILD_DIR/sanitizer-logs/; any report
# fails the run and is printed, even one from a process whose exit status
# no test looks at.
#
# Usage: scripts/test-sanitizers.sh [--build-only|--test-only] [CTEST_ARGS...]
# Environment: BUILD_DIR, JOBS (default 2), TEST_TIMEOUT (seconds per test,
# default 900), JUNIT (a path: ctest writes its JUnit report there).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build-asan}
jobs=${JOBS:-2}
mode=all
if [[ "${1:-}" == --build-only || "${1:-}" == --test-only ]]; then
  mode=${1#--}
  shift
fi

if [[ "$mode" != test-only ]]; then
  start=$SECONDS
  CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
    -DPSTORE_SANITIZE=address,undefined -DPSTORE_BUILD_BENCHMARKS=OFF \
    -DPSTORE_WERROR="${PSTORE_WERROR:-ON}" >/dev/null
  cmake --build "$build_dir" -j "$jobs"
  echo "test-sanitizers: build took $((SECONDS - start)) s"
fi
if [[ "$mode" == build-only ]]; then exit 0; fi

# Tests write their temporary files here; it must be on a filesystem that
# supports O_DIRECT (not tmpfs), which /var/tmp is on Debian.
export TEST_TMPDIR=${TEST_TMPDIR:-/var/tmp}
logs=$PWD/$build_dir/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# Every child (pstored, pstore-cli, the npm checks' helpers) inherits these.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
if command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi

junit_args=()
if [[ -n "${JUNIT:-}" ]]; then
  junit_args=(--output-junit "$(realpath -m "$JUNIT")"
              --test-output-size-passed 262144)
fi
start=$SECONDS
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" \
  --timeout "${TEST_TIMEOUT:-900}" -LE deploy "${junit_args[@]}" "$@" ||
  status=$?
echo "test-sanitizers: tests took $((SECONDS - start)) s, ctest exit $status"

reports=("$logs"/*)
if [[ -e "${reports[0]}" ]]; then
  echo "test-sanitizers: ${#reports[@]} process(es) reported (logs in $logs):"
  for report in "${reports[@]}"; do
    echo "=== $report"
    head -80 "$report"
  done
  exit 1
fi
echo "test-sanitizers: no sanitizer reports"
exit "$status"
