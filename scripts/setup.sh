#!/usr/bin/env bash
# Installs every Debian package pstore needs to build and test, skipping the
# ones already installed. Safe to run repeatedly. Run as root (or via sudo).
#
# Usage: scripts/setup.sh [--bench]
#   --bench  also installs the benchmark peers (fio, nginx, redis, gnuplot).
set -euo pipefail

packages=(
  # Toolchain.
  build-essential cmake ninja-build pkg-config ccache clang-format
  # Libraries.
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  grpc-proto libabsl-dev liburing-dev librocksdb-dev libxxhash-dev
  nlohmann-json3-dev libcpp-httplib-dev libspdlog-dev libcli11-dev
  prometheus-cpp-dev
  # The RADOS backend (librados) and the throwaway Ceph of its tests
  # (scripts/ceph.sh: a monitor and one OSD).
  librados-dev libradospp-dev ceph-mon ceph-osd ceph-common
  # Tests (python3: scripts/report-skips.py).
  libgtest-dev libgmock-dev libbenchmark-dev yamllint shellcheck
  fiu-utils openssl python3
  # The Python package (client/python) and its pytest suite: Debian's
  # Python with its headers, pybind11, numpy and PyTorch; venv, setuptools
  # and wheel for `pip install --no-build-isolation ./client/python`.
  python3-dev pybind11-dev python3-numpy python3-torch python3-pytest
  python3-venv python3-setuptools python3-wheel
  # Fuzzing, sanitizers and the thread-safety analysis (scripts/fuzz.sh,
  # test-sanitizers.sh, test-tsan.sh): clang with libFuzzer and the
  # sanitizer runtimes, llvm-symbolizer; dpkg-dev for `apt-get source
  # abseil` (scripts/build-tsan-abseil.sh).
  clang libclang-rt-14-dev llvm dpkg-dev
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(fio nginx-light redis-server gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
