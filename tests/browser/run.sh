#!/usr/bin/env bash
# Runs one headless-Chromium test of analyticsd (Debian Chromium driven by
# playwright-core; no browser is downloaded).
#   tests/browser/run.sh path/to/analyticsd [TEST.mjs]
# TEST.mjs defaults to browser_test.mjs (tracker ingestion); the dashboard test
# is dashboard_test.mjs. Installs the pinned npm packages into
# tests/browser/node_modules when missing (under a lock: both tests share the
# directory and CTest runs them in parallel), then runs the test with node.
# Missing tools are a failure, never a skip.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 path/to/analyticsd [browser_test.mjs|dashboard_test.mjs]" >&2
  exit 2
fi
BIN="$(realpath "$1")"
TEST="${2:-browser_test.mjs}"
if [[ ! -f "$HERE/$TEST" ]]; then
  echo "FAIL: no test $HERE/$TEST" >&2
  exit 2
fi
for cmd in node npm flock; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "FAIL: '$cmd' not found: install Debian's nodejs, npm and util-linux (scripts/setup.sh)" >&2
    exit 1
  fi
done
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "FAIL: Chromium not found at $CHROMIUM: install Debian's chromium (scripts/setup.sh) or set CHROMIUM" >&2
  exit 1
fi
export CHROMIUM
cd "$HERE"
(
  flock 9
  want_pw="$(node -p 'require("./package.json").devDependencies["playwright-core"]')"
  have_pw="$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch (e) { "" }')"
  if [[ "$want_pw" != "$have_pw" ||
        ! -f node_modules/@plausible-analytics/tracker/plausible.js ]]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  fi
) 9>"${TMPDIR:-/tmp}/analytics-browser-npm.lock"
exec node "$TEST" "$BIN"
