#!/bin/sh
# Makes sure Hugging Face's GGUF package (npm @huggingface/gguf) is in
# $PSTORE_NPM_PREFIX (default /var/tmp/pstore-npm), installing it there on
# first use, outside the repository. Exits 0 when it is there; 77 (ctest's
# SKIP_RETURN_CODE), saying why, when node is missing or older than 20, or
# the package is absent and cannot be installed (e.g. offline).
#
# Usage: sh npm_gguf.sh

set -u
prefix=${PSTORE_NPM_PREFIX:-/var/tmp/pstore-npm}

skip() {
  echo "SKIP: $*"
  exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  skip "node $(node --version) is older than 20, which @huggingface/gguf needs"

if [ ! -f "$prefix/node_modules/@huggingface/gguf/package.json" ]; then
  command -v npm >/dev/null 2>&1 ||
    skip "@huggingface/gguf is not in $prefix and npm is not installed"
  echo "installing @huggingface/gguf into $prefix"
  mkdir -p "$prefix" || skip "cannot create $prefix"
  log="$prefix/install-gguf.log"
  # Two installs at once (tests run in parallel) would trip over each
  # other: one at a time.
  if ! flock "$prefix/.install.lock" timeout 300 npm install --prefix "$prefix" \
      --no-audit --no-fund '@huggingface/gguf@0' >"$log" 2>&1; then
    tail -n 20 "$log"
    skip "cannot install @huggingface/gguf into $prefix (offline?)"
  fi
fi
exit 0
