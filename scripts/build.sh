#!/usr/bin/env bash
# Configures and builds pstore (Release unless BUILD_TYPE says otherwise)
# into $BUILD_DIR (default: build/). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-Release}
jobs=${JOBS:-2}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" "$@"
cmake --build "$build_dir" -j "$jobs"
