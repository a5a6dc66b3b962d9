#!/usr/bin/env bash
# End-to-end test of the `analytics` CLI and `analyticsd`:
#   cli_test.sh path/to/analytics path/to/analyticsd
# Runs in a temp dir with its own SQLite store and a free loopback port, and
# stops what it started.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 ANALYTICS_BIN ANALYTICSD_BIN" >&2
  exit 2
fi
CLI="$(realpath "$1")"
DAEMON="$(realpath "$2")"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"
unset ANALYTICS_STORE ANALYTICS_LISTEN ANALYTICS_GEOIP

STORE="sqlite://$TMP/analytics.db"
STEP=""
step() {
  STEP="$*"
  echo "--- $STEP"
}
fail() {
  echo "FAIL [$STEP]: $*" >&2
  if [[ -f server.err ]]; then
    echo "--- analyticsd stderr:" >&2
    cat server.err >&2
  fi
  exit 1
}
# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
  [[ "$2" == "$3" ]] || fail "$1: got '$2', want '$3'"
}
expect_line() {  # expect_line FILE LINE: FILE has exactly this line
  grep -qxF -- "$2" "$1" || {
    echo "--- $1:" >&2
    cat "$1" >&2
    fail "missing line '$2' in $1"
  }
}
# json_get FILE PYTHON_EXPR: evaluates EXPR with `d` = the parsed JSON.
json_get() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" ||
    fail "cannot read $2 from $1: $(cat "$1")"
}
# Index of each metric in a v2 query answer, so the order is what we asked.
pageviews_of() { json_get "$1" 'd["results"][0]["metrics"][0]'; }
visitors_of() { json_get "$1" 'd["results"][0]["metrics"][1]'; }

QUERY='{"site_id":"example.com","date_range":"all","metrics":["pageviews","visitors"]}'

# ---------------------------------------------------------------- CLI ---
step "usage errors exit 2"
set +e
"$CLI" >/dev/null 2>&1
rc1=$?
"$CLI" bogus >/dev/null 2>&1
rc2=$?
"$CLI" ingest --store "$STORE" --no-such-flag >/dev/null 2>&1
rc3=$?
set -e
expect_eq "no command" "$rc1" 2
expect_eq "unknown command" "$rc2" 2
expect_eq "unknown flag" "$rc3" 2
"$CLI" --help >/dev/null || fail "--help failed"
"$CLI" ingest --help | grep -q "usage: analytics ingest" || fail "ingest --help"
"$CLI" query --help | grep -q "usage: analytics query" || fail "query --help"
"$CLI" sites --help | grep -q "analytics sites add" || fail "sites --help"

step "sites add"
"$CLI" sites add --store "$STORE" example.com --timezone UTC >site.json ||
  fail "sites add exited $?"
expect_eq "domain" "$(json_get site.json 'd["domain"]')" "example.com"
expect_eq "timezone" "$(json_get site.json 'd["timezone"]')" "UTC"
[[ -n "$(json_get site.json 'd["short_id"]')" ]] || fail "empty short_id"
"$CLI" sites add --store "$STORE" other.org >/dev/null || fail "sites add 2"

step "sites list / remove"
"$CLI" sites list --store "$STORE" >sites.json || fail "sites list exited $?"
expect_eq "site count" "$(json_get sites.json 'len(d)')" 2
ANALYTICS_STORE="$STORE" "$CLI" sites remove other.org ||
  fail "sites remove (store from env) exited $?"
"$CLI" sites list --store "$STORE" >sites.json
expect_eq "sites after remove" "$(json_get sites.json '[s["domain"] for s in d]')" "['example.com']"

step "ingest"
# Yesterday 01:00 UTC: in the past, and all events on one UTC day (one salt).
NOW="$(date +%s)"
T0=$((NOW / 86400 * 86400 - 86400 + 3600))
UA_FF="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
UA_BOT="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ev() {  # ev LINE_OFFSET PATH IP UA
  printf '{"site":"example.com","name":"pageview","url":"https://example.com%s","ts":%d,"ip":"%s","user_agent":"%s","referrer":"https://news.ycombinator.com/"}\n' \
    "$2" $((T0 + $1 * 60)) "$3" "$4"
}
{
  ev 1 / 203.0.113.1 "$UA_FF"        # line 1
  ev 2 /pricing 203.0.113.1 "$UA_FF" # line 2
  ev 3 / 203.0.113.2 "$UA_FF"        # line 3
  ev 4 /docs 203.0.113.3 "$UA_FF"    # line 4
  echo ""                            # line 5: blank, ignored
  ev 5 / 66.249.66.1 "$UA_BOT"       # line 6: bot, dropped
  echo '{"site":"example.com","url":' # line 7: invalid JSON, rejected
  ev 6 /blog 203.0.113.4 "$UA_FF"    # line 8
} >events.jsonl
"$CLI" ingest --store "$STORE" events.jsonl >ingest.out 2>ingest.err ||
  fail "ingest exited $?: $(cat ingest.err)"
cat ingest.out
expect_line ingest.out "accepted 5"
expect_line ingest.out "dropped 1"
expect_line ingest.out "rejected 1"
grep -qE '^  line 7: .+' ingest.out || fail "rejected line 7 not reported"
grep -qE '^  bot' ingest.out || fail "no bot drop reason"

step "ingest from stdin, unknown site without/with --create-sites"
printf '{"site":"new.example","url":"https://new.example/","ts":%d,"ip":"203.0.113.5","user_agent":"%s"}\n' \
  "$T0" "$UA_FF" >new.jsonl
"$CLI" ingest --store "$STORE" - <new.jsonl >new.out 2>/dev/null ||
  fail "ingest of unknown site exited $?"
expect_line new.out "accepted 0"
expect_line new.out "rejected 1"
"$CLI" ingest --store "$STORE" --create-sites <new.jsonl >new.out 2>/dev/null ||
  fail "ingest --create-sites exited $?"
expect_line new.out "accepted 1"

step "query"
"$CLI" query --store "$STORE" "$QUERY" >q1.json || fail "query exited $?"
expect_eq "pageviews" "$(pageviews_of q1.json)" 5
expect_eq "visitors" "$(visitors_of q1.json)" 4
echo "$QUERY" | "$CLI" query --store "$STORE" - >q1b.json ||
  fail "query from stdin exited $?"
expect_eq "pageviews (stdin)" "$(pageviews_of q1b.json)" 5
if "$CLI" query --store "$STORE" '{"site_id":"nope.example","date_range":"all","metrics":["visitors"]}' \
  >/dev/null 2>q.err; then
  fail "query for an unknown site succeeded"
fi
[[ -s q.err ]] || fail "query error printed nothing on stderr"

# ------------------------------------------------------------- server ---
step "start analyticsd"
PORT="$(python3 "$REPO/scripts/free_port.py")"
BASE="http://127.0.0.1:$PORT"
ADMIN_TOKEN="adm_cli_test_0123456789abcdef"
ANALYTICS_ADMIN_TOKEN="$ADMIN_TOKEN" \
"$DAEMON" --listen "127.0.0.1:$PORT" --store "$STORE" --threads 4 \
  >server.out 2>server.err &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS "$BASE/health" >health.json 2>/dev/null; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || fail "analyticsd exited early"
  sleep 0.1
done
expect_eq "health" "$(json_get health.json 'd["status"]')" ok
grep -qF "analyticsd listening on $BASE" server.out || fail "no listening line: $(cat server.out)"
grep -qF "Dashboard: $BASE/" server.out || fail "no dashboard line"
if grep -qF "$ADMIN_TOKEN" server.out server.err; then fail "admin token in output"; fi

# http METHOD PATH BODY_FILE -> prints the status code, body in resp.json
http() {
  curl -sS -o resp.json -w '%{http_code}' -X "$1" \
    -H 'Content-Type: application/json' -H "User-Agent: $UA_FF" \
    -H "Authorization: Bearer $ADMIN_TOKEN" \
    --data-binary "@$3" "$BASE$2"
}

step "POST /api/track"
echo '{"site":"example.com","name":"pageview","url":"https://example.com/from-http"}' >track.json
expect_eq "track status" "$(http POST /api/track track.json)" 202
expect_eq "track accepted" "$(json_get resp.json 'd["accepted"]')" True

step "POST /api/track (bot)"
printf '{"site":"example.com","url":"https://example.com/","user_agent":"%s"}' "$UA_BOT" >bot.json
expect_eq "bot status" "$(http POST /api/track bot.json)" 202
expect_eq "bot accepted" "$(json_get resp.json 'd["accepted"]')" False
[[ -n "$(json_get resp.json 'd["dropped"]')" ]] || fail "no dropped reason"

step "POST /api/v2/query sees the new event"
echo "$QUERY" >query.json
expect_eq "query status" "$(http POST /api/v2/query query.json)" 200
expect_eq "pageviews after track" "$(pageviews_of resp.json)" 6

step "errors"
echo '{"site":"example.com",' >bad.json
expect_eq "invalid JSON" "$(http POST /api/track bad.json)" 400
json_get resp.json 'd["error"]' >/dev/null
echo '{"site":"unknown.example","url":"https://unknown.example/"}' >unknown.json
expect_eq "unknown site" "$(http POST /api/track unknown.json)" 404
python3 -c 'print("{\"site\":\"example.com\",\"url\":\"https://example.com/" + "a" * 70000 + "\"}")' >big.json
expect_eq "body too large" "$(http POST /api/track big.json)" 413
expect_eq "unknown route" "$(http POST /api/nope track.json)" 404

step "sites over HTTP"
echo '{"domain":"shop.example","timezone":"Europe/Berlin"}' >site_req.json
expect_eq "add site" "$(http POST /api/v1/sites site_req.json)" 201
expect_eq "new site tz" "$(json_get resp.json 'd["timezone"]')" "Europe/Berlin"
expect_eq "duplicate site (alias /api/sites)" "$(http POST /api/sites site_req.json)" 409
curl -fsS -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/v1/sites" >sites.json || fail "GET /api/sites"
expect_eq "sites over HTTP" "$(json_get sites.json 'sorted(s["domain"] for s in d)')" \
  "['example.com', 'new.example', 'shop.example']"

step "SIGTERM"
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
rc=$?
set -e
SERVER_PID=""
expect_eq "analyticsd exit code after SIGTERM" "$rc" 0

step "no IPs or user agents in the server log"
if grep -qE '203\.0\.113\.|127\.0\.0\.1[^:]|Firefox|Googlebot' server.err; then
  fail "server log leaks request data: $(cat server.err)"
fi

step "the data survived the restart"
"$CLI" query --store "$STORE" "$QUERY" >q2.json || fail "query exited $?"
expect_eq "pageviews after restart" "$(pageviews_of q2.json)" 6

echo "PASS cli_test"
