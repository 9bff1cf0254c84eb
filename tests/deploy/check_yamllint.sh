#!/usr/bin/env bash
# Lints every YAML file under deploy/ with yamllint (settings in
# yamllint.yaml beside this script); warnings fail too (--strict).
#
# Usage: check_yamllint.sh SOURCE_DIR
# Exits 77 (skip) when yamllint is missing: it is Debian's `yamllint`
# package (apt-get install yamllint), not installed by scripts/setup.sh.
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 SOURCE_DIR" >&2
  exit 2
fi
source_dir=$1
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v yamllint >/dev/null 2>&1; then
  echo "SKIP: yamllint is not installed (Debian package: yamllint)"
  exit 77
fi

mapfile -t files < <(find "$source_dir/deploy" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
((${#files[@]} > 0)) || { echo "FAIL: no YAML files under $source_dir/deploy"; exit 1; }
yamllint --version
yamllint --strict -f parsable -c "$here/yamllint.yaml" "${files[@]}"
echo "OK: ${#files[@]} YAML files"
