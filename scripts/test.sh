#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
# This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build_dir=${BUILD_DIR:-build}
# Tests write their temporary files here; it must be on a filesystem that
# supports O_DIRECT (not tmpfs), which /var/tmp is on Debian.
export TEST_TMPDIR=${TEST_TMPDIR:-/var/tmp}
ctest --test-dir "$build_dir" --output-on-failure -j "${JOBS:-2}" \
  --timeout 600 "$@"
