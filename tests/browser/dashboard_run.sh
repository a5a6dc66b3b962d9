#!/usr/bin/env bash
# Browser test of analyticsd's web dashboard (headless Debian Chromium driven
# by playwright-core; no browser is downloaded).
#   tests/browser/dashboard_run.sh path/to/analyticsd
# Installs the npm dependencies (package-lock.json) into
# tests/browser/node_modules when missing (under a lock, since
# tests/browser/run.sh shares the directory), then runs dashboard_test.mjs.
# Missing node, npm or Chromium fails (never skips).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -ne 1 ]]; then
  echo "usage: $0 path/to/analyticsd" >&2
  exit 2
fi
BIN="$(realpath "$1")"
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
  if [[ "$want_pw" != "$have_pw" ]]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  fi
) 9>"${TMPDIR:-/tmp}/analytics-browser-npm.lock"
exec node dashboard_test.mjs "$BIN"
