#!/usr/bin/env bash
# Shows that check_runtime_libs.sh catches what it claims to: runs it on a
# copy of the Dockerfile with known faults (a runtime library's package
# dropped, a -dev package and an unknown package added, recommends allowed,
# root user, another entrypoint, tests built) and expects each one reported.
#
# Usage: check_runtime_libs_selftest.sh DOCKERFILE BINARY
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 DOCKERFILE BINARY" >&2
  exit 2
fi
dockerfile=$1
binary=$2
here=$(cd "$(dirname "$0")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/pstore-libs-selftest-XXXXXX")
trap 'rm -rf "$work"' EXIT

# The faults, each a sed expression, and what the check must then say.
faults=(
  '/^ *libssl3 \\$/d'
  's/^\( *\)liburing2 \\$/&\n\1libssl-dev \\\n\1libpstore-no-such-package9 \\/'
  's/ --no-install-recommends//'
  's/^USER .*/USER root/'
  's#^ENTRYPOINT .*#ENTRYPOINT ["/bin/sh"]#'
  's/-DPSTORE_BUILD_TESTS=OFF/-DPSTORE_BUILD_TESTS=ON/'
)
expected=(
  'libssl.so.3 comes from libssl3, which the runtime stage does not install'
  'the runtime stage installs a -dev package: libssl-dev'
  'the runtime stage installs libpstore-no-such-package9, which apt does not know'
  'runtime apt-get install without --no-install-recommends'
  'USER root is not numeric'
  "the runtime stage's ENTRYPOINT is not pstored"
  'the build stage does not run scripts/build.sh -DPSTORE_BUILD_TESTS=OFF'
)

sed_args=()
for fault in "${faults[@]}"; do sed_args+=(-e "$fault"); done
sed "${sed_args[@]}" "$dockerfile" >"$work/Dockerfile"
if cmp -s "$dockerfile" "$work/Dockerfile"; then
  echo "FAIL: the faults changed nothing in $dockerfile"
  exit 1
fi

status=0
out=$(bash "$here/check_runtime_libs.sh" "$work/Dockerfile" "$binary") || status=$?
missing=0
for message in "${expected[@]}"; do
  if grep -qF -- "$message" <<<"$out"; then
    echo "caught: $message"
  else
    echo "FAIL: not reported: $message"
    missing=$((missing + 1))
  fi
done
if ((status != 1)); then
  echo "FAIL: check_runtime_libs.sh exited $status on the faulty Dockerfile, want 1"
  missing=$((missing + 1))
fi
if ((missing > 0)); then
  echo "--- check_runtime_libs.sh said:"
  echo "$out"
  exit 1
fi
echo "OK: every fault reported"
