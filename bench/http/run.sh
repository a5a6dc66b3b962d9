#!/usr/bin/env bash
# HTTP ingestion benchmark: wrk (keep-alive) against POST /api/event of
#   1. analyticsd on SQLite (every 202 is durable), rate limits off,
#   2. a bare cpp-httplib server answering 202 (bare_server.cc: same thread
#      pool size and socket settings as analyticsd): the HTTP layer's floor,
#   3. nginx `return 204`: the machine's reference,
# side by side in one run, loopback only; then the latency of analyticsd (and
# of the bare server) at half of analyticsd's peak rate, measured open-loop at
# a fixed rate by rate_client.cc (wrk2 is not packaged in Debian).
#
#   bench/http/run.sh [path/to/analyticsd]
# Environment: DURATION (s per wrk run, default 10, at most 20), THREADS
# (server pool, default 32), CONNECTIONS (wrk, default 32: cpp-httplib holds one pool thread per
# keep-alive connection, so more connections than THREADS would starve), WRK_THREADS
# (default 2), LAT_CONNECTIONS (rate_client, default 16).
# Needs wrk, nginx, g++ and libcpp-httplib-dev (scripts/setup.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BIN="${1:-}"
if [[ -z "$BIN" ]]; then
  for c in "$REPO/build/bin/analyticsd" "$REPO/build-browser/bin/analyticsd"; do
    [[ -x "$c" ]] && BIN="$c" && break
  done
fi
[[ -x "$BIN" ]] || { echo "usage: $0 path/to/analyticsd (Release build)" >&2; exit 2; }
DURATION="${DURATION:-10}"
((DURATION <= 20)) || { echo "DURATION must be <= 20" >&2; exit 2; }
THREADS="${THREADS:-32}"
CONNECTIONS="${CONNECTIONS:-32}"
WRK_THREADS="${WRK_THREADS:-2}"
LAT_CONNECTIONS="${LAT_CONNECTIONS:-16}"
for cmd in wrk nginx g++ curl python3; do
  command -v "$cmd" >/dev/null || { echo "missing $cmd (scripts/setup.sh installs it)" >&2; exit 1; }
done

TMP="$(mktemp -d -t http-bench-XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() {
  python3 "$REPO/scripts/free_port.py"
}
wait_up() {  # URL
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.05
  done
  echo "not answering: $1" >&2
  return 1
}

# Helpers, built here with one g++ line each.
g++ -O2 -std=c++20 "$HERE/bare_server.cc" -o "$TMP/bare_server" \
  $(pkg-config --cflags --libs cpp-httplib) -pthread
g++ -O2 -std=c++20 "$HERE/rate_client.cc" -o "$TMP/rate_client" -pthread

# analyticsd: SQLite store, rate limits off, fixed thread count.
TOKEN="bench_admin_token_0123456789"
A_PORT="$(free_port)"
ANALYTICS_LISTEN="127.0.0.1:$A_PORT" ANALYTICS_STORE="sqlite://$TMP/analytics.db" \
  ANALYTICS_ADMIN_TOKEN="$TOKEN" ANALYTICS_THREADS="$THREADS" \
  ANALYTICS_RATE_LIMIT=0 ANALYTICS_SITE_RATE_LIMIT=0 \
  "$BIN" >"$TMP/analyticsd.out" 2>"$TMP/analyticsd.err" &
PIDS+=($!)
wait_up "http://127.0.0.1:$A_PORT/health"
curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"domain":"bench.test","timezone":"UTC"}' "http://127.0.0.1:$A_PORT/api/v1/sites"

B_PORT="$(free_port)"
"$TMP/bare_server" "$B_PORT" "$THREADS" &
PIDS+=($!)
wait_up "http://127.0.0.1:$B_PORT/health"

N_PORT="$(free_port)"
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:$N_PORT;
    location / { return 204; }
  }
}
CONF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/stderr" &
PIDS+=($!)
wait_up "http://127.0.0.1:$N_PORT/"

WRK=(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$HERE/post.lua")
declare -A RPS
run_wrk() {  # NAME PORT
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s -s "$HERE/post.lua" \
    "http://127.0.0.1:$2/api/event" >/dev/null  # warm-up
  echo "== $1: ${WRK[*]} http://127.0.0.1:$2/api/event"
  "${WRK[@]}" "http://127.0.0.1:$2/api/event" | tee "$TMP/wrk_$1.txt"
  if grep -q 'Non-2xx' "$TMP/wrk_$1.txt"; then
    echo "FAIL: $1 answered non-2xx" >&2
    exit 1
  fi
  RPS[$1]="$(awk '/^Requests\/sec/ {print $2}' "$TMP/wrk_$1.txt")"
}
run_wrk analyticsd "$A_PORT"
run_wrk bare "$B_PORT"
run_wrk nginx "$N_PORT"

HALF="$(python3 -c "print(int(${RPS[analyticsd]} / 2))")"
echo "== latency at half of analyticsd's peak: $HALF req/s, $LAT_CONNECTIONS connections, ${DURATION} s (rate_client)"
LAT_A="$("$TMP/rate_client" 127.0.0.1 "$A_PORT" /api/event "$HALF" "$DURATION" "$LAT_CONNECTIONS")"
echo "analyticsd: $LAT_A"
LAT_B="$("$TMP/rate_client" 127.0.0.1 "$B_PORT" /api/event "$HALF" "$DURATION" "$LAT_CONNECTIONS")"
echo "bare:       $LAT_B"

# The events really are in the store.
STORED="$(curl -fs -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"site_id":"bench.test","date_range":"all","metrics":["pageviews"]}' \
  "http://127.0.0.1:$A_PORT/api/v2/query")"
echo "stored: $STORED"

python3 - "${RPS[analyticsd]}" "${RPS[bare]}" "${RPS[nginx]}" <<'PY'
import sys
a, b, n = map(float, sys.argv[1:])
print(f"\nSUMMARY requests/s: analyticsd {a:.0f}, bare cpp-httplib {b:.0f}, nginx {n:.0f}")
print(f"SUMMARY analyticsd/bare = {a / b * 100:.1f}% (goal >= 85%), analyticsd/nginx = {a / n * 100:.1f}%")
PY
