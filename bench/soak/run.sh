#!/usr/bin/env bash
# Soak test (issue #9): one hour at half the peak rate by default.
#   bench/soak/run.sh [build/bin/analyticsd] [soak.py flags]
# e.g. bench/soak/run.sh build/bin/analyticsd --duration 600 --rate 300
# Flags: --duration S, --rate EV/S, --clients N, --interval S,
#        --rss-slope-kb KB/MIN, --fd-slope FD/MIN, --p99-ms MS, --store URL.
# The CI version (CTest soak_short_test) runs 75 s at 200 events/s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../build/bin/analyticsd}"
[[ $# -gt 0 ]] && shift
exec python3 "$here/soak.py" "$bin" "$@"
