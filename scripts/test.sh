#!/usr/bin/env bash
# Installs what is missing, builds, and runs every check, cheapest first.
# This is the README's test command and what CI runs (.ci/run). Stages:
#
#   setup       scripts/setup.sh --bench: the Debian packages
#   format      scripts/check-format.sh: clang-format over every tracked
#               .cc and .h
#   build       gcc Release build with PSTORE_WERROR (build/)
#   asan-build  clang -O1 build with ASan and UBSan, -Wthread-safety and
#               PSTORE_WERROR (build-asan/; scripts/test-sanitizers.sh)
#   ctest       every ctest test on build/: unit suites, end-to-end against
#               a real pstored, deployment checks, 20 crash-harness rounds
#   asan        the ctest suite under ASan and UBSan, without the
#               deployment checks
#   fuzz        each libFuzzer target for FUZZ_SECONDS (default 12), then
#               its regression inputs (scripts/fuzz.sh)
#   tsan-build  Abseil with TSan (cached), then the TSan build of the tests
#               that run under it (build-tsan/; scripts/test-tsan.sh)
#   tsan        util, codec, storage, server-flag, client and end-to-end
#               tests (against build/'s pstored) under TSan
#   bench       pstore-bench --quick: the benchmark harness runs, every peer
#               starts or is skipped (it never judges figures)
#
# At the end it prints each stage's time and every test that skipped, with
# its reason. Under CI=true a skip that .ci/allowed-skips does not list
# fails the run: it is a check CI is meant to run.
#
# Usage: scripts/test.sh [CTEST_ARGS...]
# With arguments, only setup, build and ctest run, ctest with them (e.g.
# -R DramTier).
# Environment: BUILD_DIR (default build/), JOBS (default 2), FUZZ_SECONDS,
# STAGES (the stages to run, e.g. STAGES="format build ctest"), CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export JOBS=${JOBS:-2}
build_dir=${BUILD_DIR:-build}
# Tests write their temporary files here; it must be on a filesystem that
# supports O_DIRECT (not tmpfs), which /var/tmp is on Debian.
export TEST_TMPDIR=${TEST_TMPDIR:-/var/tmp}

all_stages=(setup format build asan-build ctest asan fuzz tsan-build tsan
            bench)
if (($# > 0)); then
  read -ra stages <<<"setup build ctest"
else
  read -ra stages <<<"${STAGES:-${all_stages[*]}}"
fi
for s in "${stages[@]}"; do
  [[ " ${all_stages[*]} " == *" $s "* ]] || {
    echo "test: unknown stage '$s' (stages: ${all_stages[*]})"
    exit 2
  }
done

reports=$PWD/$build_dir/test-reports
rm -rf "$reports"
mkdir -p "$reports"
ci=()
if [[ "${CI:-}" == true ]]; then ci=(--ci); fi

run_start=$SECONDS
done_stages=()
failed_stage=

# Prints each stage's time and the skipped tests; sets the exit status.
summary() {
  local status=$?
  echo
  echo "test: stage times"
  local line
  for line in "${done_stages[@]}"; do echo "  $line"; done
  if ! python3 scripts/report-skips.py "${ci[@]}" \
    --allowed .ci/allowed-skips ctest="$reports/ctest.xml" \
    asan="$reports/asan.xml" tsan="$reports/tsan.xml"; then
    ((status != 0)) || status=1
  fi
  if ((status == 0)); then
    echo "test: all passed in $((SECONDS - run_start)) s"
  else
    echo "test: FAILED${failed_stage:+ in stage $failed_stage} after" \
      "$((SECONDS - run_start)) s"
  fi
  exit "$status"
}
trap summary EXIT

# Sets cpu to the CPU seconds (user + system) that this shell's finished
# children used so far. `times` runs in this shell: in a subshell it would
# count the subshell's children only.
children_cpu() {
  times >"$reports/times"
  cpu=$(tail -1 "$reports/times" | awk '{
    split($1, u, "m"); split($2, s, "m")
    printf "%d\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
}

# Runs stage $1 if it was asked for: the command after it, timed (wall
# clock, and CPU time, which other work on the machine disturbs less).
stage() {
  local name=$1
  shift
  [[ " ${stages[*]} " == *" $name "* ]] || return 0
  echo "=== test: $name"
  local start=$SECONDS cpu status=0
  children_cpu
  local cpu_start=$cpu
  "$@" || status=$?
  children_cpu
  local took=$((SECONDS - start))
  cpu=$((cpu - cpu_start))
  local line
  line=$(printf '%-11s %5d s wall %6d s CPU' "$name" "$took" "$cpu")
  if ((status != 0)); then
    done_stages+=("$line  FAILED (exit $status)")
    failed_stage=$name
    exit "$status"
  fi
  done_stages+=("$line")
  echo "test: $name took $took s ($cpu s CPU)"
}

run_ctest() {
  ctest --test-dir "$build_dir" --output-on-failure -j "$JOBS" \
    --timeout 600 --output-junit "$reports/ctest.xml" \
    --test-output-size-passed 262144 "$@"
}

stage setup scripts/setup.sh --bench
stage format scripts/check-format.sh
stage build env BUILD_DIR="$build_dir" scripts/build.sh -DPSTORE_WERROR=ON
stage asan-build scripts/test-sanitizers.sh --build-only
stage ctest run_ctest "$@"
stage asan env JUNIT="$reports/asan.xml" scripts/test-sanitizers.sh --test-only
stage fuzz scripts/fuzz.sh "${FUZZ_SECONDS:-12}"
stage tsan-build scripts/test-tsan.sh --build-only
stage tsan env JUNIT="$reports/tsan.xml" \
  TSAN_PSTORED="${TSAN_PSTORED:-$build_dir/server/pstored}" \
  scripts/test-tsan.sh --test-only
stage bench "$build_dir/bench/pstore-bench" --quick \
  --out="$build_dir/pstore-bench-quick"
