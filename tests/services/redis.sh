#!/usr/bin/env bash
# Runs a command against a throwaway redis-server (Debian's redis-server
# package; scripts/setup.sh installs it).
#
#   tests/services/redis.sh run -- CMD [ARGS...]
#
# Starts redis-server on a free loopback port with AOF on (appendonly yes,
# appendfsync everysec) and no RDB snapshots, data in a temporary directory;
# runs CMD with ANALYTICS_TEST_REDIS_URL=redis://127.0.0.1:PORT/0; stops the
# server and removes its directory; exits with CMD's status. Exits 1 with a
# message when the server cannot be started.
set -euo pipefail

usage() {
  echo "usage: $0 run -- CMD [ARGS...]" >&2
  exit 2
}

[[ "${1:-}" == "run" ]] || usage
shift
[[ "${1:-}" == "--" ]] && shift
(($# > 0)) || usage

if ! command -v redis-server >/dev/null 2>&1 ||
  ! command -v redis-cli >/dev/null 2>&1; then
  echo "redis.sh: redis-server/redis-cli not found; install the Debian" \
    "package redis-server (scripts/setup.sh does)" >&2
  exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/analytics-redis.XXXXXX")"
PID=""
cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Below the ephemeral port range (see scripts/free_port.py).
free_port() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/../../scripts/free_port.py"
}

PORT=""
for attempt in 1 2 3 4 5; do
  port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
    --appendonly yes --appendfsync everysec --dir "$TMP" --save '' \
    --daemonize no --logfile "$TMP/redis.log" &
  PID=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$PID" 2>/dev/null; then break; fi
    if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]; then
      PORT="$port"
      break
    fi
    sleep 0.1
  done
  [[ -n "$PORT" ]] && break
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
done

if [[ -z "$PORT" ]]; then
  echo "redis.sh: redis-server did not start; its log:" >&2
  cat "$TMP/redis.log" >&2 2>/dev/null || true
  exit 1
fi

export ANALYTICS_TEST_REDIS_URL="redis://127.0.0.1:$PORT/0"
echo "redis.sh: redis-server $PORT (pid $PID), data in $TMP" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
