#!/usr/bin/env bash
# Installs what the build, the tests and `make run` need on Debian 12, and
# fetches the CC0 country database. Idempotent: when everything is present it
# only runs a few dpkg-query calls and returns.
#
#   scripts/setup.sh            # install missing packages (root) + fetch mmdb
#   SKIP_MMDB=1 scripts/setup.sh  # packages only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages. Add new dependencies here (one list, one place).
PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libabsl-dev libcpp-httplib-dev rapidjson-dev libsqlite3-dev libre2-dev
  libmaxminddb-dev libgtest-dev libgmock-dev libbenchmark-dev libpq-dev
  libhiredis-dev libcurl4-openssl-dev libxxhash-dev pybind11-dev tzdata
  clang-format
  python3 curl nodejs npm chromium wrk nginx redis-server postgresql
  zlib1g-dev liblz4-dev goaccess haproxy caddy openssl python3-yaml systemd
  python3-dev python3-pybind11 python3-setuptools python3-pip python3-wheel
  python3-venv python3-pytest python3-matplotlib python3-aiosmtpd
  clang-14 libclang-rt-14-dev
)

# Packages whose job is already done when a command exists, e.g. NodeSource's
# `nodejs` ships npm itself and Conflicts: with Debian's `npm` package.
declare -A PROVIDED_BY_COMMAND=([npm]=npm)

# The country database (CC0, from the ip-location-db project, via npm).
MMDB_PACKAGE="@ip-location-db/geo-whois-asn-country-mmdb"
MMDB_DIR="$ROOT/third_party/mmdb"
MMDB_FILE="geo-whois-asn-country.mmdb"

missing_packages() {
  local p status
  for p in "${PACKAGES[@]}"; do
    if [[ -n "${PROVIDED_BY_COMMAND[$p]:-}" ]] &&
      command -v "${PROVIDED_BY_COMMAND[$p]}" >/dev/null 2>&1; then
      continue
    fi
    status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    if [[ "$status" != "installed" ]]; then
      echo "$p"
    fi
  done
}

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  local cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ "$(id -u)" != "0" ]]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root:" >&2
    echo "  $cmd" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"
}

# Downloads the country database into third_party/mmdb/. A failure is only a
# warning: country then comes from CDN headers and browser time zones.
fetch_mmdb() {
  if [[ -n "${SKIP_MMDB:-}" || -s "$MMDB_DIR/$MMDB_FILE" ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: warning: npm not found; skipping the country database" >&2
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  echo "setup: fetching $MMDB_PACKAGE (country database, CC0)" >&2
  if (cd "$tmp" && timeout 180 npm pack --silent --fetch-retries=1 \
    --fetch-timeout=60000 "$MMDB_PACKAGE" >"$tmp/npm.log" 2>&1) &&
    tar -xzf "$tmp"/*.tgz -C "$tmp" 2>/dev/null &&
    [[ -s "$tmp/package/$MMDB_FILE" ]]; then
    mkdir -p "$MMDB_DIR"
    cp "$tmp/package/$MMDB_FILE" "$MMDB_DIR/$MMDB_FILE.tmp"
    mv "$MMDB_DIR/$MMDB_FILE.tmp" "$MMDB_DIR/$MMDB_FILE"
    for f in README.md NRO_LICENSE package.json; do
      [[ -f "$tmp/package/$f" ]] && cp "$tmp/package/$f" "$MMDB_DIR/"
    done
    echo "setup: country database at third_party/mmdb/$MMDB_FILE" >&2
  else
    echo "setup: warning: could not fetch $MMDB_PACKAGE; country will come" \
      "from CDN headers and time zones only. npm said:" >&2
    grep -v '^npm ERR! *$' "$tmp/npm.log" 2>/dev/null | head -n 5 | sed 's/^/setup:   /' >&2 || true
  fi
  rm -rf "$tmp"
}

install_packages
fetch_mmdb
