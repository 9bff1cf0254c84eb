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

sh "$(dirname "$0")/../testing/npm_package.sh" @huggingface/hub 2 18 || exit $?

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
