#!/usr/bin/env bash
# Checks that every tracked .cc and .h file is formatted as .clang-format
# says (clang-format --dry-run -Werror). Prints what clang-format would
# change and exits non-zero if any file is off; `clang-format -i FILE`
# fixes one.
#
# Usage: scripts/check-format.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -d '' files < <(git ls-files -z -- '*.cc' '*.h')
if ! clang-format --dry-run -Werror "${files[@]}"; then
  echo "format: the files above are not clang-formatted (clang-format -i FILE)"
  exit 1
fi
echo "format: ${#files[@]} files clean ($(clang-format --version))"
