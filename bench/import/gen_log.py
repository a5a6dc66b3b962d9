#!/usr/bin/env python3
"""Writes a synthetic Apache/nginx combined access log to stdout.

  gen_log.py LINES [--seed N] [--mixed]

Default: only page requests a web-analytics import keeps (GET, status 200,
HTML pages, browser user agents), so GoAccess's per-URL hit counts and our
pageviews per page must agree exactly. --mixed adds static assets, POSTs,
404s and crawler lines (for the import test's summary).
Timestamps increase from 2024-03-01 00:00:00 +0100 over about 30 days.
"""
import random
import sys

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.64 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.59",
]
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
REFS = ["-", "-", "-", "https://www.google.com/", "https://duckduckgo.com/",
        "https://news.ycombinator.com/", "https://example.com/"]


def civil(days):
    """(y, m, d) of days since 1970-01-01 (H. Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return y + (m <= 2), m, d


def main():
    n = int(sys.argv[1])
    seed = 1
    if "--seed" in sys.argv:
        seed = int(sys.argv[sys.argv.index("--seed") + 1])
    mixed = "--mixed" in sys.argv
    rnd = random.Random(seed)
    pages = ["/"] + ["/blog/post-%d" % i for i in range(1, 300)] + \
            ["/docs/%s" % w for w in ("install", "api", "faq", "pricing")]
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(pages))]
    cum = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    import bisect
    start = 1709247600 + 3600  # 2024-03-01T00:00:00+01:00 as local wall time
    span = 30 * 86400
    out = sys.stdout
    buf = []
    for i in range(n):
        t = start + i * span // n
        y, m, d = civil(t // 86400)
        s = t % 86400
        ts = "%02d/%s/%d:%02d:%02d:%02d +0100" % (
            d, MONTHS[m - 1], y, s // 3600, s % 3600 // 60, s % 60)
        ip = "%d.%d.%d.%d" % (rnd.choice((81, 92, 178, 203)), rnd.randrange(256),
                              rnd.randrange(256), rnd.randrange(1, 255))
        page = pages[bisect.bisect(cum, rnd.random() * acc)]
        method, status, ua = "GET", 200, rnd.choice(UAS)
        if mixed:
            r = rnd.random()
            if r < 0.2:
                page = "/static/app.%d.css" % rnd.randrange(3)
            elif r < 0.25:
                method = "POST"
            elif r < 0.3:
                status = 404
            elif r < 0.35:
                ua = BOT
        buf.append('%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"\n' % (
            ip, ts, method, page, status, 500 + rnd.randrange(20000),
            rnd.choice(REFS), ua))
        if len(buf) >= 10000:
            out.write("".join(buf))
            buf = []
    out.write("".join(buf))


if __name__ == "__main__":
    main()
