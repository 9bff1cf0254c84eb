#!/usr/bin/env bash
# Renders the dev and prod overlays, the cluster shape (and prod with the optional ServiceMonitor
# component) with `kubectl kustomize`, then validates every object against
# the Kubernetes schemas (npm kubernetes-models) and cross-checks them
# against each other and against `pstored --help` (validate_k8s.mjs).
#
# Usage: check_k8s_validate.sh SOURCE_DIR PSTORED
#
# The npm packages live outside the repository, in $PSTORE_NPM_PREFIX
# (default /var/tmp/pstore-npm), shared with other tests (ctest:
# RESOURCE_LOCK pstore_npm_prefix), and are installed there on first use.
# Exits 77 (skip) when kubectl, node or npm are missing, or the packages are
# absent and cannot be installed (offline).
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 SOURCE_DIR PSTORED" >&2
  exit 2
fi
source_dir=$(cd "$1" && pwd)
pstored=$2
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PSTORE_NPM_PREFIX:-/var/tmp/pstore-npm}
packages=(kubernetes-models@4 yaml@2)

skip() {
  echo "SKIP: $*"
  exit 77
}
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not installed"
command -v node >/dev/null 2>&1 || skip "node is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
  skip "node $(node --version) is older than 18"

if [[ ! -f $prefix/node_modules/kubernetes-models/package.json ||
  ! -f $prefix/node_modules/yaml/package.json ]]; then
  command -v npm >/dev/null 2>&1 ||
    skip "kubernetes-models and yaml are not in $prefix and npm is not installed"
  echo "installing ${packages[*]} into $prefix"
  mkdir -p "$prefix" || skip "cannot create $prefix"
  log=$prefix/install-k8s.log
  if ! timeout 600 npm install --prefix "$prefix" --no-audit --no-fund \
    "${packages[@]}" >"$log" 2>&1; then
    tail -n 20 "$log"
    skip "cannot install ${packages[*]} into $prefix (offline?)"
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pstore-k8s-XXXXXX")
trap 'rm -rf "$work"' EXIT

"$pstored" --help | sed -n 's/^ *\(-[A-Za-z], *\)\{0,1\}--\([A-Za-z0-9_-]*\).*/\2/p' \
  >"$work/flags"
[[ -s $work/flags ]] || { echo "FAIL: no flags in $pstored --help"; exit 1; }

renders=()
for overlay in dev prod; do
  kubectl kustomize "$source_dir/deploy/k8s/overlays/$overlay" >"$work/$overlay.yaml" || {
    echo "FAIL: kubectl kustomize deploy/k8s/overlays/$overlay"
    exit 1
  }
  renders+=("$overlay=$work/$overlay.yaml")
done

# prod as an operator would enable the ServiceMonitor: a copy of deploy/k8s
# whose prod kustomization lists the component.
cp -r "$source_dir/deploy/k8s" "$work/k8s"
printf '\ncomponents:\n  - ../../components/servicemonitor\n' \
  >>"$work/k8s/overlays/prod/kustomization.yaml"
kubectl kustomize "$work/k8s/overlays/prod" >"$work/prod-sm.yaml" || {
  echo "FAIL: kubectl kustomize of prod with components/servicemonitor"
  exit 1
}
renders+=("prod+servicemonitor=$work/prod-sm.yaml")

# The cluster shape: a DaemonSet of cache nodes over Ceph.
kubectl kustomize "$source_dir/deploy/k8s/cluster" >"$work/cluster.yaml" || {
  echo "FAIL: kubectl kustomize deploy/k8s/cluster"
  exit 1
}
renders+=("cluster=$work/cluster.yaml")

node "$here/validate_k8s.mjs" "$prefix" "$work/flags" "${renders[@]}"
