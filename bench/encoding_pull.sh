#!/usr/bin/env bash
# Pulls a DRAM-resident F16 model (a synthetic Llama-shaped transformer,
# about 1 GiB) raw, as q8_0 the first time (encoded while streaming) and as
# q8_0 again (derived blocks cached in DRAM), alternating in one session, and
# prints parameters per second with the ratios to raw. The model is pinned,
# so DropCache(dram) before each first q8_0 pull drops only derived blocks.
#
#   bench/encoding_pull.sh [REPETITIONS] [STREAMS] [LAYERS]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
streams=${2:-2}
layers=${3:-8}
build=${BUILD_DIR:-build}
work=$(mktemp -d /var/tmp/pstore-encoding-pull.XXXXXX)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$build/server/pstored" --listen 127.0.0.1:0 --port_file "$work/port" \
  --data_dir "$work/data" --dram_bytes 6GiB --pin_budget_bytes 3GiB \
  --nvme_bytes 0 --sync_commits=false --log_level warn 2> "$work/pstored.log" &
pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
addr="127.0.0.1:$(cat "$work/port")"
cli=("$build/client/pstore-cli" --addr "$addr")
bench=("$build/bench/pull_bench" --addr "$addr" --model llm@v1
       --streams "$streams" --repetitions 1)

"${bench[@]}" --create_layers "$layers" --create_dtype F16 > /dev/null
"${cli[@]}" pin llm@v1 > /dev/null

rate() { sed -n 's/.*; \([0-9.]*\) Gparams\/s.*/\1/p'; }
declare -a raw first cached
for rep in $(seq "$reps"); do
  "${cli[@]}" drop-cache --tier dram
  first+=("$("${bench[@]}" --encoding q8_0 | rate)")
  cached+=("$("${bench[@]}" --encoding q8_0 | rate)")
  raw+=("$("${bench[@]}" --encoding raw | rate)")
done
"${cli[@]}" status | tail -1

python3 - "${raw[*]}" "${first[*]}" "${cached[*]}" "$streams" <<'PY'
import statistics, sys
series = {"raw": sys.argv[1], "q8_0 first (encoded while sent)": sys.argv[2],
          "q8_0 cached (DRAM hit)": sys.argv[3]}
med = {}
print(f"F16 model, DRAM-resident, {sys.argv[4]} streams; Gparams/s")
for name, values in series.items():
    rates = [float(v) for v in values.split()]
    med[name] = statistics.median(rates)
    print(f"{name:34s} median {med[name]:.3f}  min {min(rates):.3f}  "
          f"max {max(rates):.3f}  runs {' '.join(f'{r:.3f}' for r in rates)}")
print(f"ratio cached q8_0 / raw : {med['q8_0 cached (DRAM hit)'] / med['raw']:.2f}")
print(f"ratio first q8_0 / raw  : "
      f"{med['q8_0 first (encoded while sent)'] / med['raw']:.2f}")
PY
