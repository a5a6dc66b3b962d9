#!/usr/bin/env bash
# Browser end-to-end test of analyticsd (headless Debian Chromium driven by
# playwright-core; no browser is downloaded).
#   tests/browser/run.sh path/to/analyticsd
# Installs the npm dependencies (package-lock.json) into
# tests/browser/node_modules when missing, then runs browser_test.mjs.
# Missing node, npm or Chromium fails (never skips).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -ne 1 ]]; then
  echo "usage: $0 path/to/analyticsd" >&2
  exit 2
fi
BIN="$(realpath "$1")"
for cmd in node npm; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "FAIL: '$cmd' not found: install Debian's nodejs and npm (scripts/setup.sh)" >&2
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
want_pw="$(node -p 'require("./package.json").devDependencies["playwright-core"]')"
have_pw="$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch (e) { "" }')"
if [[ "$want_pw" != "$have_pw" ||
      ! -f node_modules/@plausible-analytics/tracker/plausible.js ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
exec node browser_test.mjs "$BIN"
