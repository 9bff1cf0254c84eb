#!/bin/sh
# Proves our q8_0/q4_0 blocks and f16/bf16 conversions bit-identical to
# ggml's: runs GGML_COMPAT_TEST against the libggml-base.so that npm
# @node-llama-cpp/linux-x64@3.21.1 ships (a prebuilt llama.cpp/ggml for
# x86-64 Linux).
#
# Usage: check_ggml.sh GGML_COMPAT_TEST [gtest flags...]
#
# The package lives outside the repository, in $PSTORE_NPM_PREFIX (default
# /var/tmp/pstore-npm), and is installed there on first use. Exits 77 (ctest
# SKIP_RETURN_CODE) when this is not x86-64 Linux, or when the package is
# absent and cannot be installed (no npm, or offline).

set -u
test_binary=$1
shift
prefix=${PSTORE_NPM_PREFIX:-/var/tmp/pstore-npm}
package='@node-llama-cpp/linux-x64'
version='3.21.1'
package_dir="$prefix/node_modules/$package"

skip() {
  echo "SKIP: $*"
  exit 77
}

[ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] ||
  skip "the ggml binaries of $package are for x86-64 Linux"

installed_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$package_dir/package.json" \
    2>/dev/null | head -n 1
}

if [ "$(installed_version)" != "$version" ]; then
  command -v npm >/dev/null 2>&1 ||
    skip "$package@$version is not in $prefix and npm is not installed"
  echo "installing $package@$version into $prefix"
  mkdir -p "$prefix" || skip "cannot create $prefix"
  log="$prefix/install-ggml.log"
  if ! timeout 600 npm install --prefix "$prefix" --no-audit --no-fund \
      "$package@$version" >"$log" 2>&1; then
    tail -n 20 "$log"
    skip "cannot install $package@$version into $prefix (offline?)"
  fi
fi

library=$(find "$package_dir" -name libggml-base.so -type f 2>/dev/null |
  head -n 1)
[ -n "$library" ] || {
  echo "FAIL: no libggml-base.so under $package_dir"
  exit 1
}
echo "ggml library: $library"

PSTORE_LIBGGML=$library PSTORE_LIBGGML_REQUIRED=1 exec "$test_binary" "$@"
