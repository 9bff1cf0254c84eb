#!/bin/bash
# Import and pull of a model directory (four safetensors shards, index,
# config, tokenizer: bench/make_model_dir.py) through a real pstored, beside
# `cp -r` of the same directory on the same file system (the floor; and cp
# then sync, as a pull syncs every file), then a pull killed mid-way and run
# again (resume). Every figure is wall time and the minor page faults of the
# command (GNU time), in one run, new random bytes each repetition.
#
# Usage: bench/model_dir.sh [BUILD_DIR] [WORK_DIR] [MIB] [REPS]
#   defaults: build /var/tmp/pstore-model-dir 1024 5
# WORK_DIR is removed at the end; it needs about (6 + 2 * REPS) * MIB of disk
# while it runs.
set -eu
build=$(realpath "${1:-build}")
work=${2:-/var/tmp/pstore-model-dir}
mib=${3:-1024}
reps=${4:-5}
here=$(dirname "$(realpath "$0")")
port=${PSTORE_BENCH_PORT:-17171}
cli=("$build/client/pstore-cli" "--addr=127.0.0.1:$port")

mkdir -p "$work"
cd "$work"
rm -rf src store out* cp* kill*
"$build/server/pstored" --listen="127.0.0.1:$port" --metrics_listen=127.0.0.1:0 \
  --cold_dir=store/cold --nvme_dir=store/nvme >pstored.log 2>&1 &
pid=$!
# The store keeps every repetition's revision: gigabytes, removed at the end.
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do "${cli[@]}" status >/dev/null 2>&1 && break; sleep 0.2; done

# Prints "SECONDS s, FAULTS minor faults" of a command, and its last line.
t() {
  /usr/bin/time -f "%e s, %R minor faults" "$@" >out.log 2>time.log || {
    cat out.log time.log
    exit 1
  }
  echo "$(tail -1 time.log) | $(tail -1 out.log)"
}

for r in $(seq "$reps"); do
  # New bytes each time: an import of bytes already stored adds records only.
  rm -rf src
  python3 "$here/make_model_dir.py" src "$mib" 4
  sync
  echo "rep $r: $(du -sb src | cut -f1) bytes"
  echo "rep $r: cp -r:               $(t cp -r src "cp$r")"
  # shellcheck disable=SC2016  # $1 is the inner shell's.
  echo "rep $r: cp -r, sync:         $(t sh -c 'cp -r src "$1" && sync' sh "cpsync$r")"
  echo "rep $r: import:              $(t "${cli[@]}" import src "m@v$r" --publish --jobs 4)"
  echo "rep $r: pull (DRAM, NVMe):   $(t "${cli[@]}" pull "m@v$r" "out$r" --streams 4)"
  diff -r src "out$r"
  "${cli[@]}" drop-cache --tier dram >/dev/null
  "${cli[@]}" drop-cache --tier nvme >/dev/null
  echo "rep $r: pull (cold):         $(t "${cli[@]}" pull "m@v$r" "outc$r" --streams 4)"
  echo "rep $r: pull again (in place): $(t "${cli[@]}" pull "m@v$r" "out$r" --streams 4)"
  # Killed after half of a whole pull's time, then run again.
  timeout -s KILL 0.8 "${cli[@]}" pull "m@v$r" "kill$r" --streams 4 >/dev/null 2>&1 || true
  echo "rep $r: resume after a kill: $(t "${cli[@]}" pull "m@v$r" "kill$r" --streams 4)"
  diff -r src "kill$r"
  rm -rf "cp$r" "cpsync$r" "out$r" "outc$r" "kill$r"
done
