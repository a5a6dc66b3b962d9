#!/usr/bin/env bash
# pip install --no-index ./bindings/python (the documented command) in a fresh
# venv (--system-site-packages: Debian's setuptools and pybind11 are visible),
# then import the installed package from outside the source tree.
#
#   pip_install_test.sh PYTHON REPO_DIR WORK_DIR
set -euo pipefail
PYTHON="$1" REPO="$2" WORK="$3"
rm -rf "$WORK/venv" "$WORK/run"
mkdir -p "$WORK/run"
"$PYTHON" -m venv --system-site-packages "$WORK/venv"
# The CMake build dir is kept between runs so a re-run only rebuilds what
# changed (the first run compiles the library: about a minute on 2 cores).
export ANALYTICS_PY_BUILD_DIR="$WORK/cmake-build"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The documented command, from the repository root (pip builds in place;
# setuptools' build/ and *.egg-info there are git-ignored).
cd "$REPO"
"$WORK/venv/bin/pip" install --no-index ./bindings/python
cd "$WORK/run"
"$WORK/venv/bin/python" - <<'PY'
import os, libanalytics
assert "site-packages" in libanalytics.__file__, libanalytics.__file__
pkg = os.path.dirname(libanalytics.__file__)
for f in ("__init__.pyi", "py.typed"):
    assert os.path.exists(os.path.join(pkg, f)), f
with libanalytics.Engine("memory://", auto_create_sites=True) as e:
    assert e.track(site="example.com", url="https://example.com/x", ip="203.0.113.1",
                   user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")["accepted"]
    r = e.query({"site_id": "example.com", "date_range": "day", "metrics": ["pageviews"]})
    assert r["results"][0]["metrics"] == [1], r
print("installed:", libanalytics.__file__)
PY
