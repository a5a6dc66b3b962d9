#!/usr/bin/env python3
"""Generates a JSON-lines file, runs top_pages.py on it, checks the report
and the PNG chart.  usage: top_pages_test.py WORK_DIR"""
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
UAS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
]


def generate(path):
    rng = random.Random(7)
    now = time.time()
    pages = ["/"] * 5 + ["/pricing"] * 3 + ["/blog/hello"] * 2 + ["/about"]
    refs = ["", "", "https://www.google.com/", "https://news.ycombinator.com/item?id=1"]
    with open(path, "w") as f:
        for i in range(600):
            ts = now - rng.uniform(60, 29 * 86400)
            event = {
                "site": "example.com",
                "url": "https://example.com" + rng.choice(pages),
                "referrer": rng.choice(refs),
                "ts": round(ts, 3),
                "ip": f"198.51.100.{rng.randrange(1, 250)}",
                "user_agent": rng.choice(UAS),
            }
            f.write(json.dumps(event) + "\n")
        # Old events (outside the 30 days), a bot and an invalid line.
        f.write(json.dumps({"site": "example.com", "url": "https://example.com/old",
                            "ts": now - 60 * 86400, "ip": "198.51.100.1",
                            "user_agent": UAS[0]}) + "\n")
        f.write(json.dumps({"site": "example.com", "url": "https://example.com/",
                            "ip": "198.51.100.2",
                            "user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}) + "\n")
        f.write(json.dumps({"site": "example.com", "url": "https://example.com/",
                            "ts": "yesterday"}) + "\n")


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    events = os.path.join(work, "events.jsonl")
    chart = os.path.join(work, "daily_visitors.png")
    if os.path.exists(chart):
        os.remove(chart)
    generate(events)
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "top_pages.py"), events, "--chart", chart],
        capture_output=True, text=True, timeout=90)
    print(out.stdout)
    print(out.stderr, file=sys.stderr)
    assert out.returncode == 0, out.returncode
    text = out.stdout
    assert "loaded 601 events (1 dropped, 1 rejected)" in text, text
    assert "event 603: ts:" in text, text
    pages = text.split("Top pages")[1].split("Top sources")[0]
    lines = [l.split()[0] for l in pages.strip().splitlines()[1:]]
    assert lines[:4] == ["/", "/pricing", "/blog/hello", "/about"], lines
    assert "/old" not in pages, pages
    sources = text.split("Top sources")[1]
    for s in ("Direct / None", "Google", "Hacker News"):
        assert s in sources, sources
    assert f"chart: {chart}" in text, text
    with open(chart, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert os.path.getsize(chart) > 1000
    print("example_python_top_pages: OK")


if __name__ == "__main__":
    main()
