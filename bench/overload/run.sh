#!/usr/bin/env bash
# Overload bench (issue #9): floods analyticsd (4 threads, --max-queued 8)
# with many concurrent clients; checks 503 + Retry-After shedding, bounded
# RSS, no acknowledged event lost, quick recovery. Larger than the CTest
# version (overload_test):
#   bench/overload/run.sh [build/bin/analyticsd] [clients] [seconds]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../build/bin/analyticsd}"
OVERLOAD_CLIENTS="${2:-400}" OVERLOAD_SECONDS="${3:-30}" \
  exec python3 "$here/../../tests/reliability/overload_test.py" "$bin"
