#!/usr/bin/env bash
# End-to-end test of `analytics import`:
#   tests/import/import_test.sh path/to/analytics
# A small combined log with known pages -> summary and stats API numbers;
# a second run adds nothing; an interrupted import (a partial file cut
# mid-line, then the full file) resumes; .gz input; stdin;
# include.imports=false answers zero.
set -euo pipefail

ANALYTICS="${1:?usage: import_test.sh ANALYTICS_BINARY}"
WORK="$(mktemp -d /tmp/import_test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
FAILS=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
check() {  # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: want '$2', got '$3'"; fi
}

# The log: /a x15, /b x10, /c x5 (30 pageviews) plus lines to skip.
python3 - > "$WORK/access.log" <<'PY'
ua = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/122.0.0.0 Safari/537.36")
bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
def line(i, req, status=200, agent=ua, ref="-"):
    m, s = divmod(i, 60)
    return (f'198.51.100.{i % 50 + 1} - - [01/Mar/2024:10:{m:02d}:{s:02d} +0100] '
            f'"{req}" {status} 512 "{ref}" "{agent}"')
out = []
pages = ["/a"] * 15 + ["/b"] * 10 + ["/c"] * 5
for i, p in enumerate(pages):
    out.append(line(i, f"GET {p} HTTP/1.1", ref="https://www.google.com/"))
    if i % 8 == 0:
        out.append(line(i, "GET /static/site.css HTTP/1.1"))   # 4 assets
    if i % 15 == 0:
        out.append(line(i, "POST /a HTTP/1.1"))                # 2 POST
    if i % 10 == 0:
        out.append(line(i, "GET /missing HTTP/1.1", 404))      # 3 status
out.insert(5, line(5, "HEAD / HTTP/1.1"))                      # 1 method
out.insert(7, line(6, "GET /a HTTP/1.1", agent=bot))           # 1 bot
out.insert(9, line(7, "GET /b HTTP/1.1", agent=bot))           # 1 bot
out.insert(11, 'this line is not a log line')                  # malformed
print("\n".join(out))
PY
LINES=$(wc -l < "$WORK/access.log")

new_store() {
  local s="sqlite://$WORK/$1.db"
  "$ANALYTICS" sites add --store "$s" example.com > /dev/null
  echo "$s"
}
summary() { grep -E "^ *$2 " "$1" | head -1 | awk '{print $2}'; }
pageviews() {  # pageviews STORE [INCLUDE_JSON]
  "$ANALYTICS" query --store "$1" "{\"site_id\":\"example.com\",
    \"date_range\":\"all\",\"metrics\":[\"pageviews\"]${2:-}}" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["results"];
print(r[0]["metrics"][0] if r else 0)'
}
pages() {
  "$ANALYTICS" query --store "$1" '{"site_id":"example.com","date_range":"all",
    "metrics":["pageviews"],"dimensions":["event:page"],
    "order_by":[["pageviews","desc"]]}' |
    python3 -c 'import json,sys
rows = json.load(sys.stdin)["results"]
print(" ".join("%s=%d" % (r["dimensions"][0], r["metrics"][0]) for r in rows))'
}

# 1. Import and check the summary and the stats.
S1=$(new_store one)
"$ANALYTICS" import --store "$S1" --site example.com "$WORK/access.log" \
  > "$WORK/run1.txt" 2> "$WORK/run1.err"
cat "$WORK/run1.txt"
check "lines read" "$LINES" "$(summary "$WORK/run1.txt" lines)"
check "imported" 30 "$(summary "$WORK/run1.txt" imported)"
check "skipped asset" 4 "$(summary "$WORK/run1.txt" asset)"
check "skipped method" 3 "$(summary "$WORK/run1.txt" method)"
check "skipped status" 3 "$(summary "$WORK/run1.txt" status)"
check "skipped bot" 2 "$(summary "$WORK/run1.txt" bot:crawler)"
check "malformed" 1 "$(summary "$WORK/run1.txt" malformed)"
check "malformed line number" "12:" "$(grep -A1 '^malformed' "$WORK/run1.txt" | tail -1 | awk '{print $2}')"
check "format detected" 1 "$(grep -c ': combined' "$WORK/run1.err")"
check "pageviews" 30 "$(pageviews "$S1")"
check "pages" "/a=15 /b=10 /c=5" "$(pages "$S1")"
check "include.imports=false" 0 "$(pageviews "$S1" ',"include":{"imports":false}')"
check "include.imports=true" 30 "$(pageviews "$S1" ',"include":{"imports":true}')"

# 2. The same import again adds nothing.
"$ANALYTICS" import --store "$S1" --site example.com "$WORK/access.log" \
  > "$WORK/run2.txt" 2> /dev/null
check "rerun imported" 0 "$(summary "$WORK/run2.txt" imported)"
check "rerun duplicate" "$LINES" "$(summary "$WORK/run2.txt" duplicate)"
check "rerun pageviews" 30 "$(pageviews "$S1")"

# 3. Interrupted import: the first half (cut mid-line), then the full file.
S2=$(new_store two)
SIZE=$(stat -c %s "$WORK/access.log")
head -c $((SIZE / 2)) "$WORK/access.log" > "$WORK/growing.log"
"$ANALYTICS" import --store "$S2" --site example.com "$WORK/growing.log" \
  > "$WORK/half.txt" 2> "$WORK/half.err"
HALF=$(summary "$WORK/half.txt" imported)
check "half: only line 12 malformed (not the cut line)" 1 "$(summary "$WORK/half.txt" malformed)"
check "half: partial line left" 1 "$(grep -c 'incomplete last line' "$WORK/half.err")"
if ((HALF > 0 && HALF < 30)); then pass "half imported ($HALF)"; else fail "half imported $HALF"; fi
cp "$WORK/access.log" "$WORK/growing.log"
"$ANALYTICS" import --store "$S2" --site example.com "$WORK/growing.log" \
  > "$WORK/rest.txt" 2> /dev/null
check "resume imported the rest" $((30 - HALF)) "$(summary "$WORK/rest.txt" imported)"
check "resume pageviews" 30 "$(pageviews "$S2")"
check "resume pages" "/a=15 /b=10 /c=5" "$(pages "$S2")"

# 4. gzip input; the plain log afterwards is the same file (nothing new).
S3=$(new_store three)
gzip -c "$WORK/access.log" > "$WORK/access.log.1.gz"
"$ANALYTICS" import --store "$S3" --site example.com "$WORK/access.log.1.gz" \
  > "$WORK/gz.txt" 2> /dev/null
check "gz imported" 30 "$(summary "$WORK/gz.txt" imported)"
"$ANALYTICS" import --store "$S3" --site example.com "$WORK/access.log" \
  > "$WORK/gz2.txt" 2> /dev/null
check "plain after gz imported" 0 "$(summary "$WORK/gz2.txt" imported)"
check "gz pageviews" 30 "$(pageviews "$S3")"

# 5. stdin (not remembered) and an explicit format.
S4=$(new_store four)
"$ANALYTICS" import --store "$S4" --site example.com --format nginx - \
  < "$WORK/access.log" > "$WORK/stdin.txt" 2> /dev/null
check "stdin imported" 30 "$(summary "$WORK/stdin.txt" imported)"
check "--include-assets" 4 "$("$ANALYTICS" import --store "$(new_store five)" \
  --site example.com --include-assets --status 200-299 "$WORK/access.log" 2>/dev/null |
  summary /dev/stdin imported | awk '{print $1 - 30}')"

# 6. Usage errors.
set +e
"$ANALYTICS" import --store "$S4" "$WORK/access.log" > /dev/null 2>&1
check "no --site: exit 2" 2 $?
"$ANALYTICS" import --store "$S4" --site example.com --format w3c "$WORK/access.log" > /dev/null 2>&1
check "bad --format: exit 2" 2 $?
"$ANALYTICS" import --store "$S4" --site example.com "$WORK/nope.log" > /dev/null 2>&1
check "missing file: exit 2" 2 $?
"$ANALYTICS" import --store "$S4" --site unknown.org "$WORK/access.log" > /dev/null 2>&1
check "unknown site: exit 1" 1 $?
set -e

if ((FAILS > 0)); then
  echo "$FAILS check(s) failed"
  exit 1
fi
echo "all import checks passed"
