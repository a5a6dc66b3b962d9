#!/usr/bin/env python3
"""track_many() from Python beside Engine::TrackBatch from C++, same events.

Both sides ingest the same generated workload on memory:// in batches of 1000:
Python times `Engine.track_many(list_of_dicts)` (dict -> EventInput conversion
included), C++ times `Engine::TrackBatch` on EventInputs it generated itself
(`Engine._track_many_native_benchmark`, generation not timed). Each side gets
a fresh engine per round; the best of --rounds is reported.

    PYTHONPATH=build/python python3 bindings/python/bench_track_many.py [--events N]
"""
import argparse
import os
import sys
import time

# This file sits next to the package's sources (libanalytics/ without the
# built extension): import the built or installed package instead.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import libanalytics  # noqa: E402

SITE = "bench.example"
# Must match kBenchUserAgents / BenchEvent() in src/module.cc.
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/"
    "605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
]


def make_events(n, base_ts):
    events = []
    for i in range(n):
        e = {
            "site": SITE,
            "url": f"https://{SITE}/page/{i % 100}",
            "ts": base_ts + i * 0.01,
            "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            "user_agent": USER_AGENTS[i % 4],
            "screen_width": 1440,
            "locale": "en-US",
        }
        if i % 3 == 0:
            e["referrer"] = "https://www.google.com/"
        events.append(e)
    return events


def fresh_engine():
    e = libanalytics.Engine("memory://")
    e.add_site(SITE)
    return e


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=1000)
    args = p.parse_args()

    # Two hours ago, so that every event is in the past and today (UTC).
    base_ts = float(int(time.time()) - 7200)
    events = make_events(args.events, base_ts)
    py_best = cpp_best = float("inf")
    for _ in range(args.rounds):
        with fresh_engine() as e:
            r = e._track_many_native_benchmark(args.events, batch_size=args.batch,
                                               site=SITE, base_ts=base_ts)
            assert r["accepted"] == args.events, r
            cpp_best = min(cpp_best, r["seconds"])
        with fresh_engine() as e:
            start = time.perf_counter()
            r = e.track_many(events, batch_size=args.batch)
            py_best = min(py_best, time.perf_counter() - start)
            assert r["accepted"] == args.events, r
    cpp_rate = args.events / cpp_best
    py_rate = args.events / py_best
    print(f"events per run:        {args.events} (batches of {args.batch}, memory://, "
          f"best of {args.rounds})")
    print(f"C++ Engine::TrackBatch: {cpp_rate:12,.0f} events/s")
    print(f"Python track_many:      {py_rate:12,.0f} events/s")
    print(f"Python / C++:           {py_rate / cpp_rate:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
