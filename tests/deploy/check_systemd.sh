#!/usr/bin/env bash
# Checks deploy/systemd/pstored.service:
#   - the sandboxing and resource directives the deployment relies on are
#     there (ProtectSystem=strict, ReadWritePaths, NoNewPrivileges, ...);
#   - TimeoutStopSec is longer than the drain (PSTORE_DRAIN_SECONDS), and
#     MemoryMax is above the expected peak RSS (PSTORE_DRAM_BYTES x 1.2 +
#     256 MiB, + 5%);
#   - the data directories are writable under ProtectSystem=strict;
#   - systemd-sysusers accepts pstore.sysusers, which creates the unit's
#     user as 10001:10001 (the container image's uid/gid);
#   - `systemd-analyze verify` accepts the unit (on a copy whose ExecStart
#     points at the built PSTORED, since verify wants the binary to exist),
#     and `systemd-analyze security --offline` rates its exposure at most
#     $PSTORE_SYSTEMD_MAX_EXPOSURE (default 2.0 on its 0-10 scale; "OK").
#
# Usage: check_systemd.sh SOURCE_DIR PSTORED
# Exits 77 (skip) when systemd-analyze is missing, after the static checks.
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 SOURCE_DIR PSTORED" >&2
  exit 2
fi
unit=$1/deploy/systemd/pstored.service
pstored=$(readlink -f "$2")
max_exposure=${PSTORE_SYSTEMD_MAX_EXPOSURE:-2.0}
# --threshold counts tenths: 2.0 is 20.
threshold=$(awk -v e="$max_exposure" 'BEGIN { printf "%d\n", e * 10 + 0.5 }')

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# The last value of KEY= in the unit (systemd: later assignments win).
value_of() {
  sed -n "s/^$1=//p" "$unit" | tail -n 1
}
# The value of Environment=NAME=... in the unit.
env_of() {
  sed -n "s/^Environment=\(.* \)\{0,1\}$1=\([^ ]*\).*/\2/p" "$unit" | tail -n 1
}

declare -A want=(
  [ProtectSystem]=strict
  [NoNewPrivileges]=yes
  [PrivateTmp]=yes
  [ProtectHome]=yes
  [ProtectKernelTunables]=yes
  [RestrictAddressFamilies]="AF_INET AF_INET6 AF_UNIX"
  [KillSignal]=SIGTERM
  [User]=pstore
)
for key in "${!want[@]}"; do
  got=$(value_of "$key")
  [[ $got == "${want[$key]}" ]] || fail "$key=${got:-(unset)}, want ${want[$key]}"
done
for key in ReadWritePaths StateDirectory MemoryMax LimitNOFILE TimeoutStopSec ExecStart; do
  [[ -n $(value_of "$key") ]] || fail "$key is not set"
done

# TimeoutStopSec (seconds, or with s/min units) above the drain.
drain=$(env_of PSTORE_DRAIN_SECONDS)
[[ -n $drain ]] || fail "no Environment=PSTORE_DRAIN_SECONDS"
stop=$(value_of TimeoutStopSec)
case $stop in
  *min) stop_seconds=$((${stop%min} * 60)) ;;
  *s) stop_seconds=${stop%s} ;;
  *) stop_seconds=$stop ;;
esac
if [[ $stop_seconds =~ ^[0-9]+$ && ${drain%.*} =~ ^[0-9]+$ ]]; then
  # After the drain pstored waits up to 10 s for cancelled calls, then
  # closes RocksDB.
  ((stop_seconds >= ${drain%.*} + 15)) ||
    fail "TimeoutStopSec=$stop is not at least PSTORE_DRAIN_SECONDS=$drain + 15 s"
else
  fail "cannot compare TimeoutStopSec=$stop with PSTORE_DRAIN_SECONDS=$drain"
fi

# MemoryMax above DRAM x 1.2 + 256 MiB, + 5% (all in MiB).
to_mib() {
  awk -v v="$1" 'BEGIN {
    if (match(v, /^[0-9.]+/) == 0) { print -1; exit }
    n = substr(v, 1, RLENGTH); u = substr(v, RLENGTH + 1)
    f["B"] = 1 / 1048576; f[""] = 1 / 1048576
    f["K"] = f["KiB"] = 1 / 1024; f["M"] = f["MiB"] = 1; f["G"] = f["GiB"] = 1024
    f["T"] = f["TiB"] = 1048576
    if (!(u in f)) { print -1; exit }
    printf "%d\n", n * f[u] }'
}
dram=$(env_of PSTORE_DRAM_BYTES)
memory_max=$(value_of MemoryMax)
dram_mib=$(to_mib "$dram")
max_mib=$(to_mib "$memory_max")
if ((dram_mib < 0 || max_mib < 0)); then
  fail "cannot read PSTORE_DRAM_BYTES=$dram or MemoryMax=$memory_max"
else
  peak_mib=$(awk -v d="$dram_mib" 'BEGIN { printf "%d\n", d * 1.2 + 256 }')
  echo "memory: PSTORE_DRAM_BYTES=$dram, expected peak ${peak_mib} MiB, MemoryMax=$memory_max (${max_mib} MiB)"
  awk -v p="$peak_mib" -v m="$max_mib" 'BEGIN { exit !(p * 1.05 <= m) }' ||
    fail "MemoryMax=$memory_max is below the expected peak RSS ${peak_mib} MiB + 5%"
fi

# The data directories must be writable under ProtectSystem=strict.
read_write=$(value_of ReadWritePaths)
for dir_var in PSTORE_NVME_DIR PSTORE_COLD_DIR; do
  dir=$(env_of "$dir_var")
  covered=""
  for path in $read_write; do
    path=${path#-}
    [[ $dir == "$path" || $dir == "$path"/* ]] && covered=1
  done
  [[ -n $covered ]] || fail "$dir_var=$dir is not under ReadWritePaths=$read_write"
done

if ! command -v systemd-analyze >/dev/null 2>&1; then
  ((failures == 0)) || { echo "$failures check(s) failed"; exit 1; }
  echo "SKIP: static checks pass; systemd-analyze is not installed, so the unit was not verified"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pstore-systemd-XXXXXX")
trap 'rm -rf "$work"' EXIT
sed "s#^ExecStart=/usr/local/bin/pstored#ExecStart=$pstored#" "$unit" >"$work/pstored.service"
if out=$(systemd-analyze verify "$work/pstored.service" 2>&1); then
  echo "systemd-analyze verify: ok${out:+ ($out)}"
else
  fail "systemd-analyze verify: $out"
fi
# The sysusers.d entry creates the unit's user with the image's uid/gid.
sysusers=$(readlink -f "$(dirname "$unit")/pstore.sysusers")
if command -v systemd-sysusers >/dev/null 2>&1; then
  mkdir -p "$work/root/etc"
  touch "$work/root/etc/passwd" "$work/root/etc/group"
  if out=$(systemd-sysusers --dry-run --root="$work/root" "$sysusers" 2>&1); then
    grep -q "user '$(value_of User)' .* UID 10001 and GID 10001" <<<"$out" ||
      fail "$sysusers does not create user $(value_of User) as 10001:10001: $out"
  else
    fail "systemd-sysusers rejects $sysusers: $out"
  fi
fi
if out=$(systemd-analyze security --offline=true --threshold="$threshold" \
  --no-pager "$work/pstored.service" 2>&1); then
  grep 'Overall exposure level' <<<"$out" || true
else
  grep -E '✗|Overall' <<<"$out" || echo "$out"
  fail "systemd-analyze security: exposure above $max_exposure"
fi

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "OK: $unit"
