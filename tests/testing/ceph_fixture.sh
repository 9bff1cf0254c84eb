#!/usr/bin/env bash
# ctest's `ceph` fixture (tests/CMakeLists.txt): `start DIR` replaces any
# cluster a killed run left in DIR with a new one; `stop DIR` stops it.
set -euo pipefail
scripts=$(cd "$(dirname "$0")/../../scripts" && pwd)
case "$1" in
  start)
    "$scripts/ceph.sh" stop "$2"
    "$scripts/ceph.sh" start "$2"
    ;;
  stop) "$scripts/ceph.sh" stop "$2" ;;
  *) echo "usage: ceph_fixture.sh start|stop DIR" >&2; exit 2 ;;
esac
