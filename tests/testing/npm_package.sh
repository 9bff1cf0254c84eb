#!/bin/sh
# Makes sure an npm package is in $PSTORE_NPM_PREFIX (default
# /var/tmp/pstore-npm), installing it there on first use, outside the
# repository (the Hugging Face readers the format checks compare against).
# Exits 0 when it is there; 77 (ctest's SKIP_RETURN_CODE), saying why, when
# node is missing or older than NODE_MAJOR, or the package is absent and
# cannot be installed (e.g. offline).
#
# Usage: sh npm_package.sh PACKAGE VERSION_RANGE NODE_MAJOR
#   e.g. sh npm_package.sh @huggingface/gguf 0 20

set -u
package=$1
range=$2
node_major=$3
prefix=${PSTORE_NPM_PREFIX:-/var/tmp/pstore-npm}

skip() {
  echo "SKIP: $*"
  exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed"
node -e "process.exit(Number(process.versions.node.split('.')[0]) >= $node_major ? 0 : 1)" ||
  skip "node $(node --version) is older than $node_major, which $package needs"

if [ ! -f "$prefix/node_modules/$package/package.json" ]; then
  command -v npm >/dev/null 2>&1 ||
    skip "$package is not in $prefix and npm is not installed"
  echo "installing $package into $prefix"
  mkdir -p "$prefix" || skip "cannot create $prefix"
  log="$prefix/install-$(basename "$package").log"
  # Two installs at once (tests run in parallel) would trip over each
  # other: one at a time.
  if ! flock "$prefix/.install.lock" timeout 300 npm install --prefix "$prefix" \
      --no-audit --no-fund "$package@$range" >"$log" 2>&1; then
    tail -n 20 "$log"
    skip "cannot install $package into $prefix (offline?)"
  fi
fi
exit 0
