#!/bin/sh
# Writes sample safetensors files with our writer and has Hugging Face's own
# parser (npm @huggingface/hub, parseSafetensorsMetadata) read them, along
# with the fixtures in $PSTORE_FIXTURES_DIR/safetensors when present.
#
# Usage: check_safetensors_hf.sh WRITER_TOOL CHECK_SCRIPT_MJS
#
# The package lives outside the repository, in $PSTORE_NPM_PREFIX (default
# /var/tmp/pstore-npm), and is installed there on first use. Exits 77 (ctest
# SKIP_RETURN_CODE) when node is missing or too old, or when the package is
# absent and cannot be installed (e.g. offline).

set -u
tool=$1
script=$2
prefix=${PSTORE_NPM_PREFIX:-/var/tmp/pstore-npm}

skip() {
  echo "SKIP: $*"
  exit 77
}

command -v node >/dev/null 2>&1 || skip "node is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
  skip "node $(node --version) is older than 18, which @huggingface/hub needs"

if [ ! -f "$prefix/node_modules/@huggingface/hub/package.json" ]; then
  command -v npm >/dev/null 2>&1 ||
    skip "@huggingface/hub is not in $prefix and npm is not installed"
  echo "installing @huggingface/hub into $prefix"
  mkdir -p "$prefix" || skip "cannot create $prefix"
  log="$prefix/install.log"
  if ! timeout 300 npm install --prefix "$prefix" --no-audit --no-fund \
      '@huggingface/hub@2' >"$log" 2>&1; then
    tail -n 20 "$log"
    skip "cannot install @huggingface/hub into $prefix (offline?)"
  fi
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/pstore-hf-check-XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT

"$tool" "$out" || { echo "FAIL: $tool could not write the samples"; exit 1; }

set -- "$out"/*.safetensors
fixtures="${PSTORE_FIXTURES_DIR:-}/safetensors"
if [ -n "${PSTORE_FIXTURES_DIR:-}" ] && [ -d "$fixtures" ]; then
  set -- "$@" "$fixtures"/*.safetensors
else
  echo "note: no fixtures in '$fixtures'; checking our samples only"
fi

PSTORE_NPM_PREFIX=$prefix node "$script" "$@"
