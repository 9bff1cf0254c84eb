#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang, RelWithDebInfo,
# PSTORE_FUZZ=ON, tests and benchmarks off) into $BUILD_DIR (default:
# build-fuzz/), runs each for SECONDS_PER_TARGET seconds (default 12) on a
# copy of its seed corpus tests/fuzz/corpus/<target>/ (the repository's
# corpus is never written), then runs every input under
# tests/fuzz/regressions/<target>/ once. Prints, per target, executions,
# executions per second and the corpus size at the end.
#
# Exits non-zero if any target crashed (a sanitizer report, a broken
# invariant, a leak, a timeout or running out of memory) or any regression
# input fails; the input that did it is left in $BUILD_DIR/crashes/<target>/
# and the target's output in $BUILD_DIR/fuzz-logs/<target>.log.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Environment: BUILD_DIR, JOBS (default 2), FUZZ_ARGS (more libFuzzer
# flags, e.g. "-fork=1 -ignore_crashes=1" to go on after a crash),
# FUZZ_KEEP_CORPUS=1 (go on from the corpus a previous run left in
# $BUILD_DIR/fuzz-corpus/ instead of a fresh copy of the seeds).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-12}
shift || true
all_targets=(fuzz_safetensors_header fuzz_gguf fuzz_request_validation
             fuzz_nvme_header fuzz_codec)
if (($# > 0)); then targets=("$@"); else targets=("${all_targets[@]}"); fi
build_dir=${BUILD_DIR:-build-fuzz}
jobs=${JOBS:-2}

build_start=$SECONDS
CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSTORE_FUZZ=ON \
  -DPSTORE_BUILD_TESTS=OFF -DPSTORE_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs" --target pstore_fuzzers
echo "fuzz: build took $((SECONDS - build_start)) s"

if command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer)}
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

fuzz_dir=tests/fuzz
logs=$build_dir/fuzz-logs
mkdir -p "$logs"
failed=()
summary=()

# Prints the lines of a log that say what went wrong.
show_report() {
  grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant broken|Check failed|Attempting to fetch value|deadly signal|==ERROR' \
    "$1" | head -60 || tail -40 "$1"
}

# Returns the value of libFuzzer's final statistic $2 in log $1.
stat_of() {
  sed -n "s/^stat::$2: *//p" "$1" | tail -1
}

for target in "${targets[@]}"; do
  binary=$build_dir/tests/fuzz/$target
  corpus=$build_dir/fuzz-corpus/$target
  crashes=$build_dir/crashes/$target
  log=$logs/$target.log
  if [[ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then rm -rf "$corpus"; fi
  mkdir -p "$corpus" "$crashes"
  cp -n "$fuzz_dir/corpus/$target"/* "$corpus"/ 2>/dev/null || true
  dict=()
  if [[ -f "$fuzz_dir/$target.dict" ]]; then
    dict=(-dict="$fuzz_dir/$target.dict")
  fi
  echo "fuzz: $target for ${seconds} s ($(find "$corpus" -maxdepth 1 -type f | wc -l) seeds)"
  status=0
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags.
  "$binary" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 \
    -artifact_prefix="$crashes/" "${dict[@]}" ${FUZZ_ARGS:-} "$corpus" \
    >"$log" 2>&1 || status=$?
  runs=$(stat_of "$log" number_of_executed_units)
  rate=$(stat_of "$log" average_exec_per_sec)
  added=$(stat_of "$log" new_units_added)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  size=$(find "$corpus" -maxdepth 1 -type f | wc -l)
  line=$(printf '%-26s %10s execs %7s exec/s  corpus %5s (+%s new)  %s' \
    "$target" "${runs:-?}" "${rate:-?}" "$size" "${added:-?}" "$cov")
  if ((status != 0)); then
    line+="  CRASH (exit $status)"
    failed+=("$target")
    echo "fuzz: $target failed (exit $status); its input is in $crashes/:"
    # shellcheck disable=SC2012  # libFuzzer names them crash-<sha1>.
    ls -t "$crashes" | head -5 | sed "s|^|  $crashes/|"
    show_report "$log"
  fi
  summary+=("$line")
done

# Every regression input, once.
for target in "${targets[@]}"; do
  dir=$fuzz_dir/regressions/$target
  [[ -d "$dir" ]] || continue
  for input in "$dir"/*; do
    [[ -f "$input" ]] || continue
    log=$logs/$target.regression.$(basename "$input").log
    if "$build_dir/tests/fuzz/$target" "$input" >"$log" 2>&1; then
      summary+=("$(printf '%-26s regression %s: ok' "$target" \
        "$(basename "$input")")")
    else
      summary+=("$(printf '%-26s regression %s: FAILS' "$target" \
        "$(basename "$input")")")
      failed+=("$target:$(basename "$input")")
      echo "fuzz: regression input $input fails:"
      show_report "$log"
    fi
  done
done

echo
echo "fuzz: summary (${seconds} s per target)"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: no crashes"
