#!/usr/bin/env bash
# Checks that every flag the deployment files pass to pstored is one that
# `pstored --help` lists: the Dockerfile's ENTRYPOINT/CMD, the systemd
# unit's ExecStart, and the args of every container in the rendered dev and
# prod overlays (kubectl kustomize). A renamed or removed flag would
# otherwise stop pstored at start-up with exit code 2.
#
# Usage: check_flags.sh SOURCE_DIR PSTORED
# Exits 77 (skip) when kubectl is missing.
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 SOURCE_DIR PSTORED" >&2
  exit 2
fi
source_dir=$1
pstored=$2
deploy=$source_dir/deploy

skip() {
  echo "SKIP: $*"
  exit 77
}
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not installed"

help=$("$pstored" --help) || { echo "FAIL: $pstored --help failed"; exit 1; }
mapfile -t known < <(sed -n 's/^ *\(-[A-Za-z], *\)\{0,1\}--\([A-Za-z0-9_-]*\).*/\2/p' <<<"$help" | sort -u)
((${#known[@]} > 5)) || { echo "FAIL: found no flags in $pstored --help"; exit 1; }
echo "pstored --help lists: ${known[*]}"
declare -A is_known=()
for flag in "${known[@]}"; do is_known[$flag]=1; done

failures=0
checked=0
# check_flags WHERE: reads candidate arguments, one per line, from stdin.
check_flags() {
  local where=$1 arg name count=0
  while IFS= read -r arg; do
    [[ $arg == --* ]] || continue
    name=${arg#--}
    name=${name%%=*}
    count=$((count + 1))
    if [[ -z ${is_known[$name]:-} ]]; then
      echo "FAIL: $where passes --$name, which pstored does not accept"
      failures=$((failures + 1))
    fi
  done
  if ((count == 0)); then
    echo "FAIL: found no pstored flags in $where"
    failures=$((failures + 1))
  else
    echo "checked $count flags in $where"
  fi
  checked=$((checked + count))
}

# Dockerfile: the quoted words of the exec-form ENTRYPOINT and CMD (joined
# over continuation lines).
dockerfile=$deploy/docker/Dockerfile
check_flags "$dockerfile (ENTRYPOINT/CMD)" < <(awk '
  /^[[:space:]]*#/ { next }
  { line = $0; continued = sub(/\\[[:space:]]*$/, "", line); text = text line
    if (continued) next
    if (text ~ /^(ENTRYPOINT|CMD)[[:space:]]*\[/) print text
    text = "" }' "$dockerfile" | grep -o '"[^"]*"' | tr -d '"')

# systemd: the words of ExecStart= (joined over continuation lines).
unit=$deploy/systemd/pstored.service
check_flags "$unit (ExecStart)" < <(awk '
  { line = $0; continued = sub(/\\[[:space:]]*$/, "", line); text = text line " "
    if (continued) next
    if (text ~ /^ExecStart=/) print text
    text = "" }' "$unit" | tr -s ' \t' '\n')

# Kubernetes: kubectl kustomize prints args as block sequences, one
# "- --flag=value" per line under "args:" (and "command:").
for overlay in overlays/dev overlays/prod cluster; do
  rendered=$(kubectl kustomize "$deploy/k8s/$overlay") || {
    echo "FAIL: kubectl kustomize $overlay failed"
    failures=$((failures + 1))
    continue
  }
  check_flags "deploy/k8s/$overlay (container args)" < <(awk '
    /^ *(- )?(args|command):$/ { inside = 1; match($0, /^ *(- )?/); indent = RLENGTH; next }
    inside && /^ *- / { match($0, /^ */); if (RLENGTH >= indent) { sub(/^ *- /, ""); gsub(/^"|"$/, ""); print; next } }
    { inside = 0 }' <<<"$rendered")
done

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "OK: all $checked flags are accepted by pstored"
