#!/usr/bin/env bash
# A throwaway single-node Ceph for tests and try-outs: one monitor, one OSD
# (BlueStore on a sparse file, so the OSD can be stopped and started again
# with its objects), a replicated pool of size 1; loopback only, every file
# under one directory, nothing in /etc or /var/lib. Needs the packages of
# `scripts/setup.sh` (ceph-mon, ceph-osd, ceph-common).
#
# Usage:
#   scripts/ceph.sh start DIR [POOL]  creates and starts a cluster in DIR
#                                     (default pool: pstore), waits until a
#                                     probe object can be written (at most
#                                     CEPH_START_SECONDS, default 90), and
#                                     prints the conf path: DIR/ceph.conf
#   scripts/ceph.sh stop DIR          stops its daemons and removes DIR
#   scripts/ceph.sh stop-osd DIR      stops the OSD only (a degraded cluster)
#   scripts/ceph.sh start-osd DIR     starts it again, waits until writable
#   scripts/ceph.sh status DIR        `ceph -s` of the cluster
#
# The monitor listens on a free port of 127.0.0.1 (msgr2 only); the OSD binds
# in a range just above it. Clients need only DIR/ceph.conf, which names the
# admin keyring in DIR. Logs: DIR/log/.
set -euo pipefail

die() {
  echo "ceph.sh: $*" >&2
  exit 1
}

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || die "usage: ceph.sh start|stop|stop-osd|start-osd|status DIR [POOL]"
start_seconds=${CEPH_START_SECONDS:-90}

# Waits (bounded) for the OSD to take a write to the pool.
wait_writable() {
  local pool=$1 probe="$dir/probe" deadline=$((SECONDS + start_seconds))
  echo probe >"$probe"
  until timeout 10 rados -c "$dir/ceph.conf" -p "$pool" put probe "$probe" \
    2>/dev/null; do
    ((SECONDS < deadline)) ||
      die "the pool '$pool' took no write within ${start_seconds} s (logs in $dir/log)"
    sleep 0.5
  done
}

# Stops the daemon whose pid file is DIR/run/NAME.pid (bounded wait).
stop_daemon() {
  local pid_file="$dir/run/$1.pid" pid i
  [[ -f "$pid_file" ]] || return 0
  pid=$(cat "$pid_file")
  if kill "$pid" 2>/dev/null; then
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}

start_osd() {
  ceph-osd -c "$dir/ceph.conf" -i 0 --pid-file "$dir/run/osd.0.pid" \
    >>"$dir/log/osd.0.out" 2>&1
}

case "$cmd" in
  start)
    pool=${3:-pstore}
    [[ ! -e "$dir/ceph.conf" ]] || die "$dir already holds a cluster (stop it first)"
    for tool in ceph-mon ceph-osd ceph ceph-authtool monmaptool rados; do
      command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh"
    done
    mkdir -p "$dir"/{mon,osd,run,log}
    dir=$(cd "$dir" && pwd)
    # A free port for the monitor, and twenty above it for the OSD.
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$port
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
ms_bind_ipv6 = false
ms_bind_port_min = $((port + 1))
ms_bind_port_max = $((port + 20))
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = $dir/keyring
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
pid_file = $dir/run/\$name.pid
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_mgr_mkfs_grace = 31536000
mon_allow_pool_delete = true
mon_data_avail_warn = 1
mon_data_avail_crit = 0
mon_warn_on_insecure_global_id_reclaim_allowed = false
# Several 4 MiB reads in flight per client handle.
objecter_inflight_op_bytes = 1073741824
objecter_inflight_ops = 4096

[mon]
mon_data = $dir/mon/\$name
keyring = $dir/mon/\$name/keyring

[osd]
osd_data = $dir/osd/\$name
keyring = $dir/osd/\$name/keyring
osd_objectstore = bluestore
bluestore_block_path = $dir/osd/block
bluestore_block_create = true
bluestore_block_size = 17179869184
bluestore_cache_size = 268435456
osd_memory_target = 1073741824
osd_max_object_size = 134217728
EOF
    ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. \
      --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring" >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" \
      "$dir/monmap" >/dev/null
    ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" \
      --keyring "$dir/mon.keyring" >"$dir/log/mkfs.out" 2>&1 ||
      die "ceph-mon --mkfs failed: $(tail -3 "$dir/log/mkfs.out")"
    ceph-mon -c "$dir/ceph.conf" -i a --pid-file "$dir/run/mon.a.pid" \
      >>"$dir/log/mon.a.out" 2>&1
    uuid=$(cat /proc/sys/kernel/random/uuid)
    secret=$(ceph-authtool --gen-print-key)
    mkdir -p "$dir/osd/osd.0"
    echo "{\"cephx_secret\": \"$secret\"}" |
      timeout 60 ceph -c "$dir/ceph.conf" osd new "$uuid" -i - >/dev/null ||
      die "ceph osd new failed (monitor log: $dir/log/mon.a.log)"
    ceph-authtool --create-keyring "$dir/osd/osd.0/keyring" --name osd.0 \
      --add-key "$secret" >/dev/null
    ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid" \
      >"$dir/log/osd-mkfs.out" 2>&1 ||
      die "ceph-osd --mkfs failed: $(tail -3 "$dir/log/osd-mkfs.out")"
    start_osd
    timeout 60 ceph -c "$dir/ceph.conf" osd pool create "$pool" 8 8 \
      replicated >/dev/null 2>&1 || die "pool create failed"
    timeout 60 ceph -c "$dir/ceph.conf" osd pool application enable "$pool" \
      rados >/dev/null 2>&1 || die "pool application enable failed"
    wait_writable "$pool"
    echo "$pool" >"$dir/pool"
    echo "$dir/ceph.conf"
    ;;
  stop)
    [[ -e "$dir/ceph.conf" ]] || exit 0
    stop_daemon osd.0
    stop_daemon mon.a
    rm -rf "$dir"
    ;;
  stop-osd)
    stop_daemon osd.0
    ;;
  start-osd)
    [[ ! -f "$dir/run/osd.0.pid" ]] || die "the OSD is running"
    start_osd
    wait_writable "$(cat "$dir/pool")"
    ;;
  status)
    ceph -c "$dir/ceph.conf" -s
    ;;
  *)
    die "unknown command '$cmd'"
    ;;
esac
