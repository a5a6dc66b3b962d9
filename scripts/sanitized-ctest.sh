#!/usr/bin/env bash
# Runs CTest in a sanitizer build (make test-asan / test-tsan) and fails when
# any process wrote a sanitizer report, including the analyticsd servers that
# the Python tests start and stop (a report there need not fail the test that
# started it, e.g. a leak found at exit after the test's checks passed).
#
#   scripts/sanitized-ctest.sh BUILD_DIR [ctest arguments...]
#
# ASAN_OPTIONS, UBSAN_OPTIONS and TSAN_OPTIONS from the caller are kept;
# log_path is added so every report lands in BUILD_DIR/sanitizer-reports/.
set -uo pipefail
dir="${1:?usage: scripts/sanitized-ctest.sh BUILD_DIR [ctest args]}"
shift
reports="$(cd "$dir" && pwd)/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$reports/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$reports/ubsan"
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$reports/tsan"
ctest --test-dir "$dir" "$@"
rc=$?
shopt -s nullglob
files=("$reports"/*)
if ((${#files[@]} > 0)); then
  for f in "${files[@]}"; do
    echo "===== $f"
    head -n 80 "$f"
  done
  echo "sanitized-ctest: ${#files[@]} sanitizer report(s) above, from test" \
       "processes or the servers they started" >&2
  exit 1
fi
exit "$rc"
