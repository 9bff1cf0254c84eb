#!/usr/bin/env bash
# Installs what is missing, builds, and runs the store demo on ./pstore-data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec "${BUILD_DIR:-build}/bench/store_demo" "${1:-pstore-data}"
