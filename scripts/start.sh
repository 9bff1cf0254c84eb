#!/usr/bin/env bash
# Installs what is missing, builds, and starts pstored in the foreground on
# its defaults (127.0.0.1:7070, data in ./pstore-data). Extra arguments go
# to pstored (see `build/server/pstored --help`). Ctrl-C drains and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec "${BUILD_DIR:-build}/server/pstored" "$@"
