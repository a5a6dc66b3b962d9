#!/usr/bin/env bash
# A throwaway PostgreSQL 15 on loopback for tests (Debian's postgresql
# package; scripts/setup.sh installs it).
#
#   tests/services/postgres.sh run -- CMD [ARGS...]
#       starts a server, runs CMD with
#       ANALYTICS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/analytics_test,
#       stops the server, removes its directory, exits with CMD's status.
#   tests/services/postgres.sh start
#       starts a server and prints "DIR URL" (export the URL yourself).
#   tests/services/postgres.sh stop DIR
#       stops the server started in DIR and removes DIR.
#
# PostgreSQL refuses to run as root: as root the server runs as the postgres
# user (runuser), otherwise as the current user. Trust authentication, only
# on 127.0.0.1 and a unix socket in the data directory. Exits 1 with a clear
# message when the server cannot be started.
set -euo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"

usage() {
  echo "usage: $0 run -- CMD [ARGS...] | start | stop DIR" >&2
  exit 2
}

as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Below the ephemeral port range (see scripts/free_port.py).
free_port() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/../../scripts/free_port.py"
}

# start: sets DIR and URL, or exits 1.
start() {
  if [[ ! -x "$PGBIN/initdb" || ! -x "$PGBIN/pg_ctl" ]]; then
    echo "postgres.sh: PostgreSQL 15 not found in $PGBIN; install the Debian" \
      "package postgresql (scripts/setup.sh does)" >&2
    exit 1
  fi
  if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
    echo "postgres.sh: running as root but there is no 'postgres' user" >&2
    exit 1
  fi
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/analytics-pg.XXXXXX")"
  chmod 700 "$DIR"
  [[ "$(id -u)" == 0 ]] && chown postgres: "$DIR"
  if ! as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres \
    -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1; then
    echo "postgres.sh: initdb failed:" >&2
    cat "$DIR/initdb.log" >&2
    rm -rf "$DIR"
    exit 1
  fi
  local port=""
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    if as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" \
      -o "-p $port -k $DIR -c listen_addresses=127.0.0.1 -c fsync=on" \
      -w -t 60 start >/dev/null 2>&1; then
      PORT="$port"
      break
    fi
    port=""
  done
  if [[ -z "$port" ]]; then
    echo "postgres.sh: PostgreSQL did not start; its log:" >&2
    cat "$DIR/server.log" >&2 2>/dev/null || true
    rm -rf "$DIR"
    exit 1
  fi
  if ! as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE analytics_test" >&2; then
    echo "postgres.sh: cannot create database analytics_test" >&2
    stop "$DIR"
    exit 1
  fi
  URL="postgres://postgres@127.0.0.1:$PORT/analytics_test"
}

stop() {
  local dir="$1"
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start)
    start
    echo "$DIR $URL"
    ;;
  stop)
    [[ -n "${2:-}" ]] || usage
    stop "$2"
    ;;
  run)
    shift
    [[ "${1:-}" == "--" ]] && shift
    (($# > 0)) || usage
    DIR=""
    trap '[[ -n "$DIR" ]] && stop "$DIR"' EXIT
    trap 'exit 130' INT TERM
    start
    export ANALYTICS_TEST_POSTGRES_URL="$URL"
    echo "postgres.sh: PostgreSQL on port $PORT, data in $DIR" >&2
    set +e
    "$@"
    status=$?
    set -e
    exit "$status"
    ;;
  *) usage ;;
esac
