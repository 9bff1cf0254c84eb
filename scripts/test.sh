#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: every
# ctest test (unit, end-to-end against a real pstored, deployment checks,
# 20 crash-harness rounds), then each libFuzzer target for FUZZ_SECONDS
# (default 12) with its regression inputs (scripts/fuzz.sh), then a quick
# pass of the benchmark harness against its peers (bench/README.md) to
# prove it runs.
# This is the README's test command and what CI runs (.ci/run).
#
# Usage: scripts/test.sh [CTEST_ARGS...]
# With arguments, only ctest runs, with them (e.g. -R DramTier).
# Environment: BUILD_DIR (default build/), JOBS (default 2), FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/setup.sh --bench
scripts/build.sh
build_dir=${BUILD_DIR:-build}
echo "test: setup and build took $((SECONDS - start)) s"
# Tests write their temporary files here; it must be on a filesystem that
# supports O_DIRECT (not tmpfs), which /var/tmp is on Debian.
export TEST_TMPDIR=${TEST_TMPDIR:-/var/tmp}
stage=$SECONDS
ctest --test-dir "$build_dir" --output-on-failure -j "${JOBS:-2}" \
  --timeout 600 "$@"
echo "test: ctest took $((SECONDS - stage)) s"
if (($# > 0)); then exit 0; fi

stage=$SECONDS
scripts/fuzz.sh "${FUZZ_SECONDS:-12}"
echo "test: fuzzing took $((SECONDS - stage)) s"

# A smoke test of the benchmark harness: every workload runs, every peer
# starts or is skipped (peers come from `scripts/setup.sh --bench`); it
# never judges figures.
stage=$SECONDS
"$build_dir/bench/pstore-bench" --quick --out="$build_dir/pstore-bench-quick"
echo "test: pstore-bench --quick took $((SECONDS - stage)) s"
echo "test: all passed in $((SECONDS - start)) s"
