#!/usr/bin/env python3
"""Soak: a steady event rate against one analyticsd for a long time, sampling
its RSS, open file descriptors and request latency percentiles every
--interval seconds. Fails when RSS or fds grow faster than the slope bounds
(least-squares slope over the samples after the warm-up), when p99 latency
exceeds --p99-ms, or when an acknowledged event is missing at the end.

    python3 bench/soak/soak.py build/bin/analyticsd --duration 3600 --rate 400
"""
import argparse
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "reliability"))
import common  # noqa: E402
from common import harness  # noqa: E402

SITE = "soak.reliability.test"


def slope_per_min(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 60


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--duration", type=float, default=3600)
    ap.add_argument("--rate", type=float, default=400,
                    help="events per second in total (half the peak rate)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=0.2,
                    help="fraction of the samples ignored for the slopes")
    ap.add_argument("--rss-slope-kb", type=float, default=256,
                    help="max RSS growth, kB per minute")
    ap.add_argument("--fd-slope", type=float, default=1.0,
                    help="max open fd growth per minute")
    ap.add_argument("--p99-ms", type=float, default=250)
    ap.add_argument("--pages", type=int, default=200,
                    help="distinct page paths (real sites have a bounded "
                    "set; per-page state is data, not a leak)")
    ap.add_argument("--store", default=None, help="store URL (default: a "
                    "temporary SQLite file)")
    args = ap.parse_args()

    env = dict(common.NO_LIMITS)
    if args.store:
        env["ANALYTICS_STORE"] = args.store
    srv = harness.Server(os.path.abspath(args.binary), env=env, name="soak")
    failures = []
    try:
        srv.add_site(SITE)
        pid = srv.proc.pid
        load = common.Load(srv.port, SITE, clients=args.clients, prefix="s",
                           rate_per_client=args.rate / args.clients,
                           distinct_pages=args.pages).start()
        t0 = time.monotonic()
        samples = []  # (t, rss_kb, fds, p50, p99, done)
        seen = 0
        print("  t_s   rss_kB  fds  p50_ms  p95_ms  p99_ms  events/s",
              flush=True)
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(args.interval,
                           max(0.1, args.duration - (time.monotonic() - t0))))
            with load.lock:
                lat = load.latencies[seen:]
                seen = len(load.latencies)
            t = time.monotonic() - t0
            s = (t, common.rss_kb(pid), common.open_fds(pid),
                 common.percentile(lat, 0.5) * 1000,
                 common.percentile(lat, 0.95) * 1000,
                 common.percentile(lat, 0.99) * 1000, len(lat))
            samples.append(s)
            print(f"{s[0]:5.0f} {s[1]:8d} {s[2]:4d} {s[3]:7.1f} {s[4]:7.1f} "
                  f"{s[5]:7.1f} {s[6] / args.interval:9.0f}", flush=True)
        load.stop()
        if srv.proc.poll() is not None:
            failures.append("analyticsd died during the soak")
        steady = samples[int(len(samples) * args.warmup):]
        xs = [s[0] for s in steady]
        rss_slope = slope_per_min(xs, [s[1] for s in steady])
        fd_slope = slope_per_min(xs, [s[2] for s in steady])
        worst_p99 = max((s[5] for s in steady), default=0)
        print(f"RSS slope {rss_slope:.1f} kB/min (bound {args.rss_slope_kb}),"
              f" fd slope {fd_slope:.2f}/min (bound {args.fd_slope}), worst "
              f"p99 {worst_p99:.1f} ms (bound {args.p99_ms}); "
              f"{dict(load.statuses)}", flush=True)
        if len(steady) < 3:
            failures.append("too few samples: raise --duration")
        if rss_slope > args.rss_slope_kb:
            failures.append(f"RSS grows {rss_slope:.0f} kB/min")
        if fd_slope > args.fd_slope:
            failures.append(f"open fds grow {fd_slope:.2f}/min")
        if worst_p99 > args.p99_ms:
            failures.append(f"p99 latency {worst_p99:.0f} ms")
        if set(load.statuses) - {202}:
            failures.append(f"non-202 answers at half the peak rate: "
                            f"{dict(load.statuses)}; connection errors "
                            f"(kind, message, reused connection, seconds "
                            f"after sending): {dict(load.errors)}")
        sent = sum(load.statuses.values())
        if sent < 0.5 * args.rate * args.duration:
            failures.append(f"only {sent} events sent: the client could not "
                            f"hold --rate {args.rate}")
        tc = unittest.TestCase()
        try:
            common.check_totals(tc, srv, SITE, len(load.acked),
                                len(load.unknown))
        except AssertionError as e:
            failures.append(str(e))
    finally:
        srv.cleanup()
    for f in failures:
        print("FAIL:", f, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
