#!/usr/bin/env bash
# Log-import benchmark: `analytics import` into a fresh SQLite store vs
# GoAccess on the same generated combined-format log, same run.
#
#   bench/import/run.sh [LINES] [BUILD_DIR]     # defaults: 1000000, build
#
# The log (bench/import/gen_log.py) holds only lines both tools count the same
# way: GET, status 200, HTML pages without query strings, browser user
# agents. So GoAccess's "requests" panel (hits per URL) must equal our
# pageviews per page; the script checks the top 10 and exits 1 on a mismatch.
# Reports wall-clock and CPU (user+sys) lines/s of both, and their ratio.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LINES="${1:-1000000}"
BUILD="${2:-$ROOT/build}"
ANALYTICS="$BUILD/bin/analytics"
[[ -x "$ANALYTICS" ]] || { echo "no $ANALYTICS (build the analytics target)" >&2; exit 2; }
command -v goaccess >/dev/null || { echo "goaccess not installed (scripts/setup.sh)" >&2; exit 2; }

WORK="$(mktemp -d /tmp/import_bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
LOG="$WORK/access.log"
STORE="sqlite://$WORK/a.db"

echo "generating $LINES lines..." >&2
python3 "$ROOT/bench/import/gen_log.py" "$LINES" > "$LOG"
BYTES=$(stat -c %s "$LOG")
"$ANALYTICS" sites add --store "$STORE" example.com > /dev/null
# Warm the page cache for both runs alike.
cat "$LOG" > /dev/null

# timed NAME CMD...: runs CMD, prints "wall user sys" seconds to $WORK/NAME.t
timed() {
  local name="$1"; shift
  /usr/bin/time -f "%e %U %S" -o "$WORK/$name.t" "$@"
}

echo "analytics import --dry-run (parse and filter only)..." >&2
DRY="sqlite://$WORK/dry.db"
"$ANALYTICS" sites add --store "$DRY" example.com > /dev/null
timed parse "$ANALYTICS" import --store "$DRY" --site example.com \
  --format combined --dry-run "$LOG" > /dev/null 2>&1
echo "analytics import..." >&2
timed analytics "$ANALYTICS" import --store "$STORE" --site example.com \
  --format combined "$LOG" > "$WORK/import.txt" 2> "$WORK/import.err"
echo "goaccess..." >&2
timed goaccess goaccess "$LOG" --log-format=COMBINED --no-query-string \
  --ignore-crawlers --no-progress -o "$WORK/ga.json" > /dev/null 2>&1

"$ANALYTICS" query --store "$STORE" '{"site_id":"example.com","date_range":"all",
  "metrics":["pageviews"],"dimensions":["event:page"],
  "order_by":[["pageviews","desc"]],"pagination":{"limit":10}}' > "$WORK/top.json"

python3 - "$WORK" "$LINES" "$BYTES" <<'PY'
import json, sys
work, lines, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def t(name):
    wall, user, sys_ = map(float, open(f"{work}/{name}.t").read().split())
    return wall, user + sys_
aw, ac = t("analytics")
gw, gc = t("goaccess")
pw, pc = t("parse")
summary = open(f"{work}/import.txt").read()
imported = int(summary.split("imported ")[1].split()[0])
ours = [(r["dimensions"][0], r["metrics"][0])
        for r in json.load(open(f"{work}/top.json"))["results"]]
ga = json.load(open(f"{work}/ga.json"))["requests"]["data"]
theirs = sorted(((d["data"], d["hits"]["count"]) for d in ga),
                key=lambda x: (-x[1], x[0]))[:10]
ours_sorted = sorted(ours, key=lambda x: (-x[1], x[0]))
print(f"log: {lines} lines, {size / 1e6:.0f} MB")
print(f"analytics import: {imported} pageviews, {aw:.2f} s wall "
      f"({lines / aw:,.0f} lines/s), {ac:.2f} s CPU ({lines / ac:,.0f} lines/CPU-s)")
print(f"goaccess:         {gw:.2f} s wall ({lines / gw:,.0f} lines/s), "
      f"{gc:.2f} s CPU ({lines / gc:,.0f} lines/CPU-s)")
print(f"ratio (ours/goaccess lines/s): wall {gw / aw:.2f}x, CPU {gc / ac:.2f}x")
print(f"parse+filter only (--dry-run): {pw:.2f} s wall ({lines / pw:,.0f} lines/s), "
      f"{pc:.2f} s CPU; vs goaccess: wall {gw / pw:.1f}x, CPU {gc / max(pc, 0.01):.1f}x")
print("top 10 pages (ours | goaccess):")
ok = imported == lines and ours_sorted == theirs
for (p, n), (q, m) in zip(ours_sorted, theirs):
    print(f"  {p:<20} {n:>8} | {q:<20} {m:>8} {'ok' if (p, n) == (q, m) else 'MISMATCH'}")
print("counts match" if ok else "COUNTS DIFFER")
sys.exit(0 if ok else 1)
PY
