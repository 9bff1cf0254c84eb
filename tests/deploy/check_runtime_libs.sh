#!/usr/bin/env bash
# Checks the container image's runtime stage against the binaries it ships,
# since Docker cannot run here to build and start the image:
#   - every shared library `ldd` lists for each BINARY comes from a Debian
#     package (`dpkg -S`) that the Dockerfile's runtime stage installs, or
#     from one of the few packages the base image already has (BASE_PACKAGES
#     below; each must be in the Depends/Pre-Depends closure of the
#     Priority: required packages, which is what debian:bookworm-slim holds);
#   - no library is "not found";
#   - every package the runtime stage names exists in the apt lists, and none
#     is a -dev package;
#   - the runtime stage installs with --no-install-recommends and removes
#     /var/lib/apt/lists in the same RUN, runs as a non-root numeric USER,
#     has pstored as ENTRYPOINT, and the build stage builds with
#     scripts/setup.sh and scripts/build.sh with tests and benchmarks off.
# Runtime packages no binary needs are reported as a note, not a failure.
#
# Usage: check_runtime_libs.sh DOCKERFILE BINARY...
# Exits 77 (skip) when dpkg, ldd or apt-cache are missing (not Debian).
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 DOCKERFILE BINARY..." >&2
  exit 2
fi
dockerfile=$1
shift
binaries=("$@")

# Packages debian:bookworm-slim already holds that the binaries load. Keep
# this list short: anything else goes into the Dockerfile's runtime stage.
BASE_PACKAGES=(libc6 libgcc-s1 libstdc++6 zlib1g libzstd1 liblz4-1 libbz2-1.0)

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
skip() {
  echo "SKIP: $*"
  exit 77
}

for tool in dpkg dpkg-query ldd apt-cache awk; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
[[ -f "$dockerfile" ]] || { echo "FAIL: no Dockerfile at $dockerfile"; exit 1; }
for binary in "${binaries[@]}"; do
  [[ -x "$binary" ]] || { echo "FAIL: $binary is not an executable"; exit 1; }
done

# --- The Dockerfile, one logical instruction per line, tagged with its stage.
# Joins continued lines, drops comments and blank lines. Output lines:
#   STAGE_INDEX<TAB>INSTRUCTION ARGUMENTS...
instructions=$(awk '
  /^[[:space:]]*#/ { next }
  {
    line = $0
    continued = sub(/\\[[:space:]]*$/, "", line)
    text = text line (continued ? " " : "")
    if (continued) next
    gsub(/[[:space:]]+/, " ", text)
    sub(/^ /, "", text)
    if (text != "") {
      if (toupper(substr(text, 1, 5)) == "FROM ") stage++
      print stage "\t" text
    }
    text = ""
  }' "$dockerfile")

last_stage=$(printf '%s\n' "$instructions" | awk -F'\t' 'END { print $1 }')
((last_stage >= 2)) || fail "the Dockerfile is not multi-stage (one FROM)"
stage_of() { printf '%s\n' "$instructions" | awk -F'\t' -v s="$1" '$1 == s { print $2 }'; }
runtime=$(stage_of "$last_stage")
build=$(printf '%s\n' "$instructions" | awk -F'\t' -v s="$last_stage" '$1 < s { print $2 }')

# shellcheck disable=SC2016 # a literal ${DEBIAN_IMAGE}
grep -q '^FROM \(\${DEBIAN_IMAGE}\|debian:bookworm-slim\)' <<<"$runtime" ||
  fail "the runtime stage is not FROM debian:bookworm-slim"
grep -q '^ARG DEBIAN_IMAGE=debian:bookworm-slim$' "$dockerfile" ||
  grep -q '^FROM debian:bookworm-slim' <<<"$runtime" ||
  fail "DEBIAN_IMAGE does not default to debian:bookworm-slim"

# Build stage: the project's own scripts, tests and benchmarks off.
grep -q '^RUN .*scripts/setup\.sh' <<<"$build" ||
  fail "the build stage does not run scripts/setup.sh"
grep -q '^RUN .*scripts/build\.sh .*-DPSTORE_BUILD_TESTS=OFF' <<<"$build" ||
  fail "the build stage does not run scripts/build.sh -DPSTORE_BUILD_TESTS=OFF"
grep -q '^RUN .*scripts/build\.sh .*-DPSTORE_BUILD_BENCHMARKS=OFF' <<<"$build" ||
  fail "the build stage does not run scripts/build.sh -DPSTORE_BUILD_BENCHMARKS=OFF"

# Runtime stage: the packages of every `apt-get install` in its RUN lines.
runtime_packages=()
while IFS= read -r run; do
  # One shell command per line: split on && || ; and |.
  commands=$(sed -e 's/&&/\n/g; s/||/\n/g; s/;/\n/g; s/|/\n/g' <<<"${run#RUN }")
  if grep -q 'apt-get update' <<<"$commands" &&
    ! grep -q 'rm -rf /var/lib/apt/lists' <<<"$commands"; then
    fail "a runtime RUN runs apt-get update without removing /var/lib/apt/lists"
  fi
  while IFS= read -r command; do
    read -r -a words <<<"$command"
    install_at=-1
    for i in "${!words[@]}"; do
      if [[ ${words[i]} == install && $i -gt 0 &&
        ${words[i - 1]} =~ ^(apt-get|apt|-[a-z]+)$ ]]; then
        install_at=$i
        break
      fi
    done
    ((install_at >= 0)) || continue
    [[ " ${words[*]} " == *" apt-get "* || " ${words[*]} " == *" apt "* ]] ||
      continue
    [[ " ${words[*]} " == *" --no-install-recommends "* ]] ||
      fail "runtime apt-get install without --no-install-recommends: $command"
    for word in "${words[@]:install_at+1}"; do
      [[ $word == -* ]] && continue
      package=${word%%=*}   # drop =VERSION
      package=${package%%:*} # drop :ARCH
      runtime_packages+=("$package")
    done
  done <<<"$commands"
done < <(grep '^RUN ' <<<"$runtime" || true)

((${#runtime_packages[@]} > 0)) ||
  fail "the runtime stage installs no packages (expected apt-get install ...)"
declare -A known_to_apt=()
while IFS= read -r package; do known_to_apt[$package]=1; done < <(
  apt-cache show --no-all-versions "${runtime_packages[@]}" 2>/dev/null |
    sed -n 's/^Package: //p')
for package in "${runtime_packages[@]}"; do
  if [[ $package == *-dev ]]; then
    fail "the runtime stage installs a -dev package: $package"
  fi
  [[ -n ${known_to_apt[$package]:-} ]] ||
    fail "the runtime stage installs $package, which apt does not know (typo? no apt lists?)"
done

# Non-root numeric user, pstored as the entrypoint.
user=$(grep '^USER ' <<<"$runtime" | tail -n 1 | awk '{ print $2 }')
uid=${user%%:*}
if [[ -z $user ]]; then
  fail "the runtime stage has no USER (it would run as root)"
elif [[ ! $uid =~ ^[0-9]+$ ]]; then
  fail "USER $user is not numeric (Kubernetes runAsNonRoot cannot check a name)"
elif ((uid == 0)); then
  fail "USER $user is root"
fi
grep -q '^ENTRYPOINT \[ *"[^"]*/pstored"' <<<"$runtime" ||
  fail "the runtime stage's ENTRYPOINT is not pstored (exec form)"

# --- Base-image packages must be in the closure of Priority: required.
# Roots: the Priority: required packages installed here (a Debian system has
# them all). Dependencies: Depends and Pre-Depends, first alternative only,
# as debootstrap resolves them.
mapfile -t roots < <(dpkg-query -W -f='${Package} ${Priority} ${Essential}\n' |
  awk '$2 == "required" || $3 == "yes" { print $1 }' | sort -u)
((${#roots[@]} > 0)) || skip "dpkg knows no Priority: required packages"
declare -A in_closure=()
frontier=("${roots[@]}")
for package in "${roots[@]}"; do in_closure[$package]=1; done
while ((${#frontier[@]} > 0)); do
  mapfile -t deps < <(apt-cache depends --important "${frontier[@]}" 2>/dev/null |
    awk '
      /^[^ ]/ { grouped = 0; next }
      /^ [ |](Pre)?Depends: / {
        pipe = substr($0, 2, 1) == "|"
        name = $2
        if (!grouped && name !~ /^</) { sub(/:.*/, "", name); print name }
        grouped = pipe
      }' | sort -u)
  frontier=()
  for package in "${deps[@]}"; do
    if [[ -z ${in_closure[$package]:-} ]]; then
      in_closure[$package]=1
      frontier+=("$package")
    fi
  done
done
for package in "${BASE_PACKAGES[@]}"; do
  [[ -n ${in_closure[$package]:-} ]] ||
    fail "$package is listed as provided by the base image but is not in the dependency closure of the Priority: required packages"
done
echo "base-image packages (in the closure of ${#roots[@]} Priority: required packages, ${#in_closure[@]} in all): ${BASE_PACKAGES[*]}"

# --- Every library each binary loads, and the package it comes from.
declare -A allowed=() used=()
for package in "${runtime_packages[@]}"; do allowed[$package]="runtime stage"; done
for package in "${BASE_PACKAGES[@]}"; do
  [[ -n ${allowed[$package]:-} ]] || allowed[$package]="base image"
done

# Every path a library may be known to dpkg by: as ldd prints it, resolved,
# and each with and without the /usr prefix (merged /usr).
spellings_of() {
  local path=$1 real p
  real=$(readlink -f "$path" 2>/dev/null || echo "$path")
  for p in "$path" "$real"; do
    echo "$p"
    if [[ $p == /usr/* ]]; then echo "${p#/usr}"; else echo "/usr$p"; fi
  done | awk '!seen[$0]++'
}

declare -A libs_of=()  # binary -> newline-separated library paths
all_spellings=()
for binary in "${binaries[@]}"; do
  ldd_out=$(ldd "$binary") || { fail "ldd $binary failed"; continue; }
  if grep -q 'not found' <<<"$ldd_out"; then
    fail "$binary: libraries not found: $(grep 'not found' <<<"$ldd_out" | awk '{ print $1 }' | tr '\n' ' ')"
  fi
  libs_of[$binary]=$(awk '
      $2 == "=>" && $3 ~ /^\// { print $3; next }
      $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
  while IFS= read -r path; do
    [[ -n $path ]] || continue
    mapfile -t -O "${#all_spellings[@]}" all_spellings < <(spellings_of "$path")
  done <<<"${libs_of[$binary]}"
done

# One dpkg -S for all of them: "pkg1:amd64, pkg2: /path" lines.
declare -A owners_at=()  # path -> space-separated packages
if ((${#all_spellings[@]} > 0)); then
  while IFS= read -r line; do
    [[ $line == diversion* || $line != *": /"* ]] && continue
    path=${line##*: }
    owners=$(sed -e 's/: \/.*//' -e 's/, /\n/g' <<<"$line" | sed -e 's/:.*//' | tr '\n' ' ')
    owners_at[$path]="${owners_at[$path]:-}$owners"
  done < <(dpkg -S "${all_spellings[@]}" 2>/dev/null || true)
fi

for binary in "${binaries[@]}"; do
  [[ -n ${libs_of[$binary]:-} ]] || continue
  declare -A by_package=()
  count=0
  while IFS= read -r path; do
    count=$((count + 1))
    owners=""
    while IFS= read -r spelling; do
      owners="$owners${owners_at[$spelling]:-}"
    done < <(spellings_of "$path")
    if [[ -z $owners ]]; then
      fail "$binary: $path belongs to no Debian package (built by hand? vendored?)"
      continue
    fi
    ok=""
    for owner in $owners; do
      if [[ -n ${allowed[$owner]:-} ]]; then
        ok=$owner
        break
      fi
    done
    if [[ -n $ok ]]; then
      used[$ok]=1
      by_package[$ok]="${by_package[$ok]:-} $(basename "$path")"
    else
      fail "$binary: $path comes from $(tr ' ' '\n' <<<"$owners" | sed '/^$/d' | sort -u | paste -sd, -), which the runtime stage does not install"
    fi
  done <<<"${libs_of[$binary]}"
  echo "== $binary: $count libraries"
  for package in $(printf '%s\n' "${!by_package[@]}" | sort); do
    printf '  %-26s %-14s%s\n' "$package" "(${allowed[$package]})" "${by_package[$package]}"
  done
  unset by_package
done

for package in "${runtime_packages[@]}"; do
  [[ -n ${used[$package]:-} ]] ||
    echo "note: the runtime stage installs $package, which none of these binaries loads"
done

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "OK: ${#runtime_packages[@]} runtime packages cover every library of ${binaries[*]}"
