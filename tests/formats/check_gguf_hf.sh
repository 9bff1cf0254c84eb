#!/bin/sh
# Checks our GGUF writer and reader against Hugging Face's GGUF code (npm
# @huggingface/gguf) in both directions, and, when a ggml library is at hand,
# against ggml's own reader (gguf_init_from_file in libggml-base.so). Also
# reads the fixtures in $PSTORE_FIXTURES_DIR/gguf when present.
#
# Usage: check_gguf_hf.sh TOOL CHECK_SCRIPT_MJS
#
# The package lives outside the repository, in $PSTORE_NPM_PREFIX (default
# /var/tmp/pstore-npm), and is installed there on first use
# (tests/testing/npm_package.sh). The ggml library
# is $PSTORE_GGML_LIB, else the first libggml-base.so under the prefix (npm
# node-llama-cpp ships one); without one that part is left out with a note.
# Exits 77 (ctest SKIP_RETURN_CODE) when node is missing or too old, or when
# the package is absent and cannot be installed (e.g. offline).

set -u
tool=$1
script=$2
prefix=${PSTORE_NPM_PREFIX:-/var/tmp/pstore-npm}

sh "$(dirname "$0")/../testing/npm_package.sh" @huggingface/gguf 0 20 || exit $?

out=$(mktemp -d "${TMPDIR:-/tmp}/pstore-gguf-check-XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT

"$tool" write "$out" || { echo "FAIL: $tool could not write the samples"; exit 1; }

fixtures="${PSTORE_FIXTURES_DIR:-}/gguf"
set --
if [ -n "${PSTORE_FIXTURES_DIR:-}" ] && [ -d "$fixtures" ]; then
  for f in "$fixtures"/*.gguf; do
    [ -f "$f" ] && set -- "$@" "$f"
  done
fi
[ $# -eq 0 ] && echo "note: no fixtures in '$fixtures'; checking our samples only"

status=0
PSTORE_NPM_PREFIX=$prefix node "$script" "$tool" "$out" "$@" || status=1

# The check script has added files written by @huggingface/gguf to $out.
lib=${PSTORE_GGML_LIB:-}
if [ -z "$lib" ]; then
  lib=$(find "$prefix/node_modules" -name libggml-base.so -type f 2>/dev/null | head -n 1)
fi
if [ -n "$lib" ] && [ -f "$lib" ]; then
  echo "ggml: $lib"
  "$tool" ggml "$lib" "$out"/*.gguf "$@" || status=1
else
  echo "note: no libggml-base.so (set PSTORE_GGML_LIB); ggml's reader not checked"
fi
exit $status
