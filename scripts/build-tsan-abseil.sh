#!/usr/bin/env bash
# Builds the Abseil that Debian's libabsl-dev comes from (its source
# package, Debian's patches applied) with ThreadSanitizer, as shared
# libraries with Debian's SONAMEs (libabsl_*.so.20220623), and prints the
# directory holding them on the last line of stdout. Put that directory
# first on LD_LIBRARY_PATH and every Abseil user in the process loads these
# instead of the packaged ones: our code, and gRPC's .so files too, so that
# TSan sees every absl::Mutex (Debian's build is not instrumented, and TSan
# reports races on data that an absl::Mutex guards).
#
# The result is cached in $PSTORE_CACHE_DIR (default /var/cache/pstore)
# under a name made of the package version and a hash of the compiler and
# flags, so a machine builds it once (about 3 minutes on 2 cores). A
# missing deb-src entry is added (a copy of Debian's `deb` entries in
# /etc/apt/sources.list.d/pstore-deb-src.sources). Run as root or with sudo
# (apt), like scripts/setup.sh, which must have run first.
#
# Usage: scripts/build-tsan-abseil.sh
# Environment: PSTORE_CACHE_DIR, JOBS (default 2), CC and CXX (default
# clang and clang++: the pstore build that loads these must use the same
# compiler's TSan runtime).
set -euo pipefail
cd "$(dirname "$0")/.."

cache_root=${PSTORE_CACHE_DIR:-/var/cache/pstore}
jobs=${JOBS:-2}
cc=${CC:-clang}
cxx=${CXX:-clang++}
flags="-fsanitize=thread -O1 -gline-tables-only -fno-omit-frame-pointer"

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

version=$(dpkg-query -W -f='${Version}' libabsl-dev)
soversion=$(dpkg-query -W -f='${Version}' libabsl-dev | cut -d. -f1)
key=$( (echo "$version"; echo "$flags"; "$cxx" --version | head -1) |
  sha256sum | cut -c1-12)
dest=$cache_root/abseil-$version-tsan-$key
lib=$dest/lib

if [[ -f "$dest/.complete" ]]; then
  echo "tsan-abseil: cached in $dest" >&2
  echo "$lib"
  exit 0
fi

"${sudo_cmd[@]}" mkdir -p "$cache_root"
"${sudo_cmd[@]}" chown "$(id -u):$(id -g)" "$cache_root"
# One build at a time; a second caller waits and then finds it cached.
exec 9>"$cache_root/abseil.lock"
flock 9
if [[ -f "$dest/.complete" ]]; then
  echo "$lib"
  exit 0
fi

# apt-get source needs a deb-src entry; Debian's image has only `deb` ones.
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list \
  /etc/apt/sources.list.d/; then
  echo "tsan-abseil: adding deb-src entries for apt-get source" >&2
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed -E 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
      "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/pstore-deb-src.sources \
        >/dev/null
  else
    sed -nE 's/^deb (.*)/deb-src \1/p' /etc/apt/sources.list |
      "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/pstore-deb-src.list \
        >/dev/null
  fi
  "${sudo_cmd[@]}" apt-get update -qq
fi

work=$cache_root/work-abseil-$key
rm -rf "$work" "$dest"
mkdir -p "$work"
echo "tsan-abseil: fetching the source of abseil $version" >&2
(cd "$work" && apt-get source -qq "abseil=$version" >&2)
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'abseil-*' | head -1)

# Debian's shared build (debian/rules) with TSan flags instead of Debian's.
echo "tsan-abseil: building into $dest ($flags)" >&2
start=$SECONDS
CC=$cc CXX=$cxx cmake -S "$src" -B "$work/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_INSTALL_PREFIX="$dest" -DCMAKE_INSTALL_LIBDIR=lib >&2
cmake --build "$work/build" -j "$jobs" >&2
cmake --install "$work/build" >/dev/null

# Our code and gRPC were compiled against the packaged headers: these
# libraries are only a drop-in if they came from the same ones.
if ! diff -rq "$dest/include/absl" /usr/include/absl >&2; then
  echo "tsan-abseil: the headers differ from libabsl-dev's" >&2
  exit 1
fi
soname=$(objdump -p "$lib/libabsl_synchronization.so" | awk '/SONAME/ {print $2}')
if [[ "$soname" != "libabsl_synchronization.so.$soversion" ]]; then
  echo "tsan-abseil: SONAME $soname is not Debian's" >&2
  exit 1
fi
rm -rf "$work"
touch "$dest/.complete"
echo "tsan-abseil: built in $((SECONDS - start)) s" >&2
echo "$lib"
