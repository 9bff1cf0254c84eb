#!/usr/bin/env bash
# Runs shellcheck on the shell scripts of tests/deploy/.
#
# Usage: check_shellcheck.sh
# Exits 77 (skip) when shellcheck is missing (Debian package: shellcheck).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "SKIP: shellcheck is not installed (Debian package: shellcheck)"
  exit 77
fi
shellcheck --version | sed -n 's/^version: /shellcheck /p'
shellcheck --shell=bash "$here"/*.sh
echo "OK: $(find "$here" -maxdepth 1 -name '*.sh' | wc -l) scripts"
