#!/usr/bin/env bash
# Builds the storage, codec, util, server, client and end-to-end tests with
# ThreadSanitizer (clang, -O1, benchmarks off) into $BUILD_DIR (default
# build-tsan/) and runs them, with an Abseil built with TSan
# (scripts/build-tsan-abseil.sh, cached) first on LD_LIBRARY_PATH: Debian's
# libabsl is not instrumented, so TSan would not see absl::Mutex and would
# report races on every member it guards. The TSan libraries carry Debian's
# SONAMEs, so gRPC's .so files load them too and the process holds one
# Abseil.
#
# The end-to-end tests and pstore-cli run under TSan against the Release
# build's pstored ($TSAN_PSTORED, default build/server/pstored), not a TSan
# one: gRPC's C++ layer is header code compiled into pstored (instrumented)
# whose hand-overs between threads happen in libgrpc (not instrumented), so
# a TSan pstored reports races between StartRead/StartWrite on a worker and
# the reaction on a gRPC thread, on our reactors' members and on gRPC's own
# call objects, that no suppression could hide without hiding our reactors
# (README.md, Testing). TSAN_PSTORED=tsan runs the TSan build's pstored.
#
# Every TSan report, from a test binary or from a pstored or pstore-cli it
# starts, goes to a file under $BUILD_DIR/tsan-logs/; any report fails the
# run and is printed. tests/tsan.supp holds the suppressions, each with
# why.
#
# Usage: scripts/test-tsan.sh [--build-only|--test-only] [CTEST_ARGS...]
# Environment: BUILD_DIR, JOBS (default 2), PSTORE_CACHE_DIR (where the
# TSan Abseil is kept), TSAN_PSTORED, TEST_TIMEOUT (seconds per test,
# default 900), JUNIT (a path: ctest writes its JUnit report there).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build-tsan}
jobs=${JOBS:-2}
mode=all
if [[ "${1:-}" == --build-only || "${1:-}" == --test-only ]]; then
  mode=${1#--}
  shift
fi

# The test binaries that run under TSan (labels: tests/CMakeLists.txt names
# each test after its binary) and the targets they need. Left out: the load
# test and the hostile-input corpus (minutes of the same client paths), the
# crash harness (it kills pstored on purpose) and the npm checks.
tests=(util_test codec_test storage_block_test storage_test
       tier_conformance_test cold_tier_test dram_tier_test nvme_tier_test
       flags_test raw_chunk_test hostile_server_test safetensors_test
       gguf_test server_e2e_test cli_e2e_test encoding_e2e_test
       faults_e2e_test security_e2e_test observability_e2e_test peers_test
       model_dir_e2e_test)
labels="^($(IFS='|'; echo "${tests[*]}"))\$"
targets=("${tests[@]}" pstored pstore-cli)

abseil_lib=$(scripts/build-tsan-abseil.sh | tail -1)

if [[ "$mode" != test-only ]]; then
  start=$SECONDS
  CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
    -DPSTORE_SANITIZE=thread -DPSTORE_BUILD_BENCHMARKS=OFF \
    -DPSTORE_WERROR="${PSTORE_WERROR:-ON}" >/dev/null
  cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}"
  echo "test-tsan: build took $((SECONDS - start)) s"
fi
if [[ "$mode" == build-only ]]; then exit 0; fi

pstored=${TSAN_PSTORED:-build/server/pstored}
if [[ "$pstored" == tsan ]]; then pstored=$build_dir/server/pstored; fi
if [[ ! -x "$pstored" ]]; then
  echo "test-tsan: no pstored at $pstored for the end-to-end tests" \
    "(scripts/build.sh builds one; TSAN_PSTORED names another)"
  exit 1
fi
if [[ "$pstored" == "$build_dir/server/pstored" ]]; then
  export PSTORED_PATH=$PWD/$pstored
else
  # An uninstrumented pstored must not load the TSan Abseil (it needs the
  # TSan runtime): it runs without our LD_LIBRARY_PATH.
  export PSTORED_PATH=$PWD/$build_dir/pstored-uninstrumented
  printf '#!/bin/sh\nunset LD_LIBRARY_PATH TSAN_OPTIONS\nexec %q "$@"\n' \
    "$(realpath "$pstored")" >"$PSTORED_PATH"
  chmod +x "$PSTORED_PATH"
fi
echo "test-tsan: end-to-end tests against $pstored"

export TEST_TMPDIR=${TEST_TMPDIR:-/var/tmp}
logs=$PWD/$build_dir/tsan-logs
rm -rf "$logs"
mkdir -p "$logs"
export LD_LIBRARY_PATH=$abseil_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# ignore_noninstrumented_modules: gRPC, protobuf and the rest of Debian's
# shared libraries are not built with TSan, so TSan cannot see the atomics
# that order their threads' work, and would report every memcpy, free,
# sendmsg or recvmsg they call (its interceptors check those) against the
# thread that allocated the buffer. With it, TSan checks the interceptors
# only when our (instrumented) code calls them.
export TSAN_OPTIONS="log_path=$logs/tsan suppressions=$PWD/tests/tsan.supp ignore_noninstrumented_modules=1 second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}"

# Proof that a test process holds the TSan Abseil only: gRPC's dependencies
# resolve to it too.
probe=$build_dir/tests/client/hostile_server_test
if ldd "$probe" | grep -E 'libabsl_' | grep -vq "$abseil_lib"; then
  echo "test-tsan: $probe would load an Abseil from outside $abseil_lib:"
  ldd "$probe" | grep -E 'libabsl_' | grep -v "$abseil_lib"
  exit 1
fi

junit_args=()
if [[ -n "${JUNIT:-}" ]]; then
  junit_args=(--output-junit "$(realpath -m "$JUNIT")"
              --test-output-size-passed 262144)
fi
start=$SECONDS
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" \
  --timeout "${TEST_TIMEOUT:-900}" -L "$labels" "${junit_args[@]}" "$@" ||
  status=$?
echo "test-tsan: tests took $((SECONDS - start)) s, ctest exit $status"

reports=("$logs"/tsan.*)
if [[ -e "${reports[0]}" ]]; then
  echo "test-tsan: ${#reports[@]} process(es) reported (logs in $logs):"
  for report in "${reports[@]}"; do
    echo "=== $report"
    head -80 "$report"
  done
  exit 1
fi
echo "test-tsan: no ThreadSanitizer reports"
exit "$status"
