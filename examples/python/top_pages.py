#!/usr/bin/env python3
"""Top pages, top sources and daily visitors of the last 30 days.

Loads events from a JSON-lines file (one canonical event per line), e.g.

    {"site": "example.com", "url": "https://example.com/a", "ts": 1790812840,
     "ip": "203.0.113.9", "user_agent": "Mozilla/5.0 ...",
     "referrer": "https://www.google.com/"}

into a libanalytics engine (in memory by default), prints the report and,
when matplotlib is installed, writes a PNG chart of daily visitors.

    python3 top_pages.py events.jsonl [--site example.com] [--chart visitors.png]
                         [--store memory://]
"""
import argparse
import json
import sys

import libanalytics


def read_events(path):
    """Yields the event dict of each non-blank line."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                yield json.loads(line)


def top(engine, site, dimension, limit=10):
    """[(value, visitors, pageviews)] for the last 30 days, busiest first."""
    answer = engine.query({
        "site_id": site,
        "date_range": "30d",
        "metrics": ["visitors", "pageviews"],
        "dimensions": [dimension],
        "order_by": [["visitors", "desc"], ["pageviews", "desc"]],
        "pagination": {"limit": limit},
    })
    return [(r["dimensions"][0], *r["metrics"]) for r in answer["results"]]


def daily_visitors(engine, site):
    """[(YYYY-MM-DD, visitors)] for each of the last 30 days."""
    answer = engine.query({
        "site_id": site,
        "date_range": "30d",
        "metrics": ["visitors"],
        "dimensions": ["time:day"],
    })
    return [(r["dimensions"][0], r["metrics"][0]) for r in answer["results"]]


def print_table(title, rows):
    print(f"{title:<40} {'visitors':>9} {'pageviews':>10}")
    for value, visitors, pageviews in rows:
        print(f"{value[:40]:<40} {visitors:>9} {pageviews:>10}")
    print()


def write_chart(days, path, site):
    """Writes a PNG bar chart; False when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar([d[5:] for d, _ in days], [v for _, v in days], color="#4c72b0")
    ax.set_title(f"Daily visitors, {site}, last 30 days")
    ax.set_ylabel("visitors")
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("events", help="JSON-lines file of canonical events")
    p.add_argument("--site", help="site to report (default: the first event's)")
    p.add_argument("--store", default="memory://", help="engine store URL")
    p.add_argument("--chart", default="daily_visitors.png", help="PNG output path")
    args = p.parse_args(argv)

    events = list(read_events(args.events))
    if not events:
        sys.exit(f"{args.events}: no events")
    site = args.site or events[0]["site"]

    with libanalytics.Engine(args.store, auto_create_sites=True) as engine:
        result = engine.track_many(events)
        dropped = sum(result["dropped"].values())
        print(f"loaded {result['accepted']} events "
              f"({dropped} dropped, {len(result['rejected'])} rejected)")
        for index, message in result["rejected"][:5]:
            print(f"  event {index + 1}: {message}")
        print()

        print_table("Top pages", top(engine, site, "event:page"))
        print_table("Top sources", top(engine, site, "visit:source"))
        days = daily_visitors(engine, site)

    if write_chart(days, args.chart, site):
        print(f"chart: {args.chart}")
    else:
        print("chart: skipped (matplotlib is not installed)")


if __name__ == "__main__":
    main()
