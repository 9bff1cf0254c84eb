#!/usr/bin/env bash
# Streams a DRAM-resident 1 GiB model out of pstored with pstore-cli pull and
# with the C++ client (pull_bench), and the same bytes, as one file, out of
# nginx with curl, alternating runs in one session. Prints every run and the
# medians with their ratios. Needs nginx and curl (`scripts/setup.sh --bench`
# installs them) and a Release build in $BUILD_DIR (default build/).
#
#   bench/pull_vs_nginx.sh [REPETITIONS] [STREAMS]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
streams=${2:-4}
build=${BUILD_DIR:-build}
work=$(mktemp -d /var/tmp/pstore-pull-vs-nginx.XXXXXX)
shm=$(mktemp -d /dev/shm/pstore-pull-vs-nginx.XXXXXX)
# nginx workers run as an unprivileged user: let them read the model.
chmod 755 "$shm"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "$shm"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# pstored with a DRAM tier that holds the whole model; no NVMe tier.
"$build/server/pstored" --listen 127.0.0.1:0 --port_file "$work/port" \
  --data_dir "$work/data" --dram_bytes 3GiB --nvme_bytes 0 \
  --log_level warn 2> "$work/pstored.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
addr="127.0.0.1:$(cat "$work/port")"
cli=("$build/client/pstore-cli" --addr "$addr")

# A 1 GiB model: 16 tensors of 64 MiB of random F32 values.
for i in $(seq 0 15); do
  head -c $((64 << 20)) /dev/urandom > "$shm/t.bin"
  "${cli[@]}" put "llm@v1/layer.$i.weight" "$shm/t.bin" --dtype F32 \
    --shape 4096,4096 > /dev/null
done
rm -f "$shm/t.bin"
"${cli[@]}" publish llm@v1 > /dev/null
# The same bytes as one file for nginx; the export also leaves every block
# in DRAM.
"${cli[@]}" export llm "$shm/model.safetensors" > /dev/null
chmod 644 "$shm/model.safetensors"
bytes=$(stat -c %s "$shm/model.safetensors")

port=$(free_port)
mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:$port;
    root $shm;
  }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
sleep 0.5
url="http://127.0.0.1:$port/model.safetensors"
curl -sf -o /dev/null "$url"  # Warm up.

declare -a curl_null curl_shm cli_shm cpp_mem
for rep in $(seq "$reps"); do
  curl_null+=("$(curl -sf -o /dev/null -w '%{speed_download}' "$url")")
  rm -f "$shm/curl.out"
  curl_shm+=("$(curl -sf -o "$shm/curl.out" -w '%{speed_download}' "$url")")
  rm -f "$shm/curl.out" "$shm/pulled.safetensors"
  start=$(date +%s.%N)
  "${cli[@]}" pull llm "$shm/pulled.safetensors" --streams "$streams" > /dev/null
  end=$(date +%s.%N)
  cli_shm+=("$(python3 -c "print($bytes / ($end - $start))")")
  cmp -s "$shm/pulled.safetensors" "$shm/model.safetensors" ||
    { echo "pulled file differs" >&2; exit 1; }
  rm -f "$shm/pulled.safetensors"
  rate=$("$build/bench/pull_bench" --addr "$addr" --model llm \
    --streams "$streams" --repetitions 1 | sed -n 's/.* = \([0-9.]*\) GB\/s.*/\1/p')
  cpp_mem+=("$(python3 -c "print($rate * 1e9)")")
done

python3 - "$bytes" "${curl_null[*]}" "${curl_shm[*]}" "${cli_shm[*]}" \
  "${cpp_mem[*]}" "$streams" <<'PY'
import statistics, sys
size = int(sys.argv[1])
series = {
    "curl from nginx -> /dev/null": sys.argv[2],
    "curl from nginx -> tmpfs file": sys.argv[3],
    f"pstore-cli pull -> tmpfs file ({sys.argv[6]} streams)": sys.argv[4],
    f"C++ client pull -> memory ({sys.argv[6]} streams)": sys.argv[5],
}
med = {}
print(f"model: {size} bytes, DRAM-resident; GB/s = 1e9 bytes/s")
for name, values in series.items():
    rates = [float(v) / 1e9 for v in values.split()]
    med[name] = statistics.median(rates)
    print(f"{name:48s} median {med[name]:.2f}  min {min(rates):.2f}  "
          f"max {max(rates):.2f}  runs {' '.join(f'{r:.2f}' for r in rates)}")
names = list(series)
print(f"ratio pstore-cli / curl->tmpfs : {med[names[2]] / med[names[1]]:.2f}")
print(f"ratio C++ client / curl->null  : {med[names[3]] / med[names[0]]:.2f}")
PY
