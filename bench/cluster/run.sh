#!/usr/bin/env bash
# Ingestion through HAProxy (TLS) against 1, 2 and then 3 analyticsd workers on
# PostgreSQL (store) + Redis (coordinator), side by side in one run, plus a
# single-process SQLite analyticsd without a balancer as the reference.
#
#   bench/cluster/run.sh [BIN_DIR]      # default build/bin
#   DURATION=10 CONNECTIONS=48 WRK_THREADS=2 bench/cluster/run.sh
#
# Uses deploy/local-cluster in a temporary state directory (so the cluster
# is exactly what `deploy/local-cluster up` gives), with per-IP and per-site
# rate limits off. "1 worker" = workers 2 and 3 stopped and marked down by
# HAProxy's health checks; "2 workers" = worker3 stopped; "3 workers" = all
# three up. Each phase: a 2 s
# warm-up, then wrk -tWRK_THREADS -cCONNECTIONS -dDURATION. Prints events/s
# (2xx answers per second), non-2xx answers, and the rows PostgreSQL gained
# (every 2xx must be one stored row: durable acknowledgements).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="$(realpath "${1:-$ROOT/build/bin}")"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-48}"
WRK_THREADS="${WRK_THREADS:-2}"
LUA="$ROOT/bench/cluster/post_event.lua"

command -v wrk >/dev/null || { echo "wrk not found (scripts/setup.sh installs it)" >&2; exit 1; }
[[ -x "$BIN_DIR/analyticsd" ]] || { echo "no $BIN_DIR/analyticsd" >&2; exit 1; }

STATE="$(mktemp -d "${TMPDIR:-/tmp}/analytics-bench-cluster.XXXXXX")"
chmod 755 "$STATE"
SQLITE_PID=""
export LOCAL_CLUSTER_DIR="$STATE/cluster" LOCAL_CLUSTER_PORT=0
export ANALYTICS_BIN_DIR="$BIN_DIR"
export ANALYTICS_RATE_LIMIT=0 ANALYTICS_SITE_RATE_LIMIT=0
LC="$ROOT/deploy/local-cluster"
cleanup() {
  [[ -n "$SQLITE_PID" ]] && kill "$SQLITE_PID" 2>/dev/null && wait "$SQLITE_PID" 2>/dev/null
  "$LC" down >/dev/null 2>&1 || true
  head -n 5 "$STATE/psql.err" >&2 2>/dev/null || true
  rm -rf "$STATE"
}
trap cleanup EXIT

"$LC" up --lb haproxy >"$STATE/up.log"
# shellcheck disable=SC1091
source "$LOCAL_CLUSTER_DIR/cluster.env"
TOKEN="$(cat "$ADMIN_TOKEN_FILE")"
curl -fsS --cacert "$CA_CERT" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d '{"domain":"bench.example","timezone":"UTC"}' \
  "$URL/api/v1/sites" >/dev/null

rows() {
  psql "$POSTGRES_URL" -tAc "SELECT count(*) FROM events" 2>>"$STATE/psql.err" || echo 0
}

# run_wrk LABEL URL: prints one result line and appends it to $STATE/results.
run_wrk() {
  local label="$1" url="$2" before after out rps total non2xx ok
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s -s "$LUA" "$url/api/event" >/dev/null 2>&1 || true
  before="$(rows)"
  out="$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" "$url/api/event")"
  after="$(rows)"
  echo "$out" >"$STATE/wrk-$label.txt"
  total="$(awk '/requests in/ {print $1}' <<<"$out")"
  non2xx="$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$out")"
  non2xx="${non2xx:-0}"
  ok=$((total - non2xx))
  rps="$(awk -v ok="$ok" -v d="$DURATION" 'BEGIN {printf "%.0f", ok / d}')"
  local p50 p99
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  local stored="-"
  [[ -n "$before" ]] && stored=$((after - before))
  printf '%-34s %10s %8s %8s %8s %12s\n' "$label" "$rps" "$non2xx" "$p50" "$p99" \
    "$stored" | tee -a "$STATE/results"
  # Durable acknowledgements: every 2xx is a stored row (the warm-up's
  # stragglers may add a few more).
  if [[ "$stored" != "-" ]] && ((stored < ok)); then
    echo "FAIL: $label: $ok events acknowledged, only $stored stored" >&2
    exit 1
  fi
  echo "$rps" >"$STATE/rps-$label"
}

wait_lb_servers() {  # wait_lb_servers N: until HAProxy counts N servers UP
  local want="$1" n up
  for ((n = 0; n < 100; n++)); do
    up="$(python3 - "$LOCAL_CLUSTER_DIR/run/haproxy.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
rows = [l.split(",") for l in data.decode().splitlines() if l.startswith("analyticsd,worker")]
print(sum(1 for r in rows if r[17] == "UP"))
PY
)"
    [[ "$up" == "$want" ]] && return 0
    sleep 0.5
  done
  echo "HAProxy never counted $want workers UP (last: $up)" >&2
  exit 1
}

echo "cluster bench: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %8s %8s %8s %12s\n' setup "events/s" "non-2xx" p50 p99 "rows stored"

"$LC" stop worker2
"$LC" stop worker3
wait_lb_servers 1
run_wrk "haproxy+1 worker (pg+redis)" "$URL"

"$LC" start worker2
wait_lb_servers 2
sleep 6  # slowstart 5s: full weight for the new worker
run_wrk "haproxy+2 workers (pg+redis)" "$URL"

"$LC" start worker3
wait_lb_servers 3
sleep 6  # slowstart 5s: full weight for the new workers
run_wrk "haproxy+3 workers (pg+redis)" "$URL"

# Reference: one analyticsd on SQLite, no balancer, plain HTTP.
SQLITE_PORT="$(python3 "$ROOT/scripts/free_port.py")"
ANALYTICS_LISTEN="127.0.0.1:$SQLITE_PORT" ANALYTICS_STORE="sqlite://$STATE/sqlite.db" \
  ANALYTICS_ADMIN_TOKEN="$TOKEN" ANALYTICS_TRUSTED_PROXIES=127.0.0.1 \
  "$BIN_DIR/analyticsd" >"$STATE/sqlite.log" 2>&1 &
SQLITE_PID=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$SQLITE_PORT/health" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"domain":"bench.example","timezone":"UTC"}' \
  "http://127.0.0.1:$SQLITE_PORT/api/v1/sites" >/dev/null
rows() { echo ""; }  # no PostgreSQL here
run_wrk "1 process, SQLite, no balancer" "http://127.0.0.1:$SQLITE_PORT"

one="$(cat "$STATE/rps-haproxy+1 worker (pg+redis)")"
two="$(cat "$STATE/rps-haproxy+2 workers (pg+redis)")"
three="$(cat "$STATE/rps-haproxy+3 workers (pg+redis)")"
sqlite="$(cat "$STATE/rps-1 process, SQLite, no balancer")"
awk -v a="$one" -v b="$two" -v c="$three" -v s="$sqlite" 'BEGIN {
  printf "2 workers / 1 worker = %.2fx\n", (a > 0 ? b / a : 0)
  printf "3 workers / 1 worker = %.2fx\n", (a > 0 ? c / a : 0)
  printf "1 worker / SQLite    = %.2fx\n", (s > 0 ? a / s : 0)
  printf "3 workers / SQLite   = %.2fx\n", (s > 0 ? c / s : 0)
}'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

