#!/usr/bin/env python3
"""Overload: far more concurrent clients than worker threads. The server
sheds ingestion with 503 + Retry-After (--max-queued) instead of queueing
without bound, its RSS stays bounded, every 2xx event is stored (and no
refused one), and a normal request is accepted quickly once the flood ends.

    python3 tests/reliability/overload_test.py build/bin/analyticsd
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import harness  # noqa: E402

BINARY = None
SITE = "overload.reliability.test"
CLIENTS = int(os.environ.get("OVERLOAD_CLIENTS", "160"))
SECONDS = float(os.environ.get("OVERLOAD_SECONDS", "8"))
RSS_LIMIT_MB = float(os.environ.get("OVERLOAD_RSS_LIMIT_MB", "256"))


class OverloadTest(unittest.TestCase):
    def test_sheds_and_recovers(self):
        env = dict(common.NO_LIMITS)
        env.update({"ANALYTICS_THREADS": "4",
                    "ANALYTICS_MAX_QUEUED": os.environ.get(
                        "OVERLOAD_MAX_QUEUED", "8")})
        srv = harness.Server(BINARY, env=env, name="overload")
        try:
            srv.add_site(SITE)
            pid = srv.proc.pid
            base_rss = common.rss_kb(pid)
            peak_rss = [base_rss]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak_rss[0] = max(peak_rss[0], common.rss_kb(pid))
                    time.sleep(0.1)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # Half the clients keep connections open, half reconnect each
            # time: both ways of piling up work in the server.
            loads = [common.Load(srv.port, SITE, clients=CLIENTS // 2,
                                 prefix="ka", timeout=20).start(),
                     common.Load(srv.port, SITE, clients=CLIENTS // 2,
                                 prefix="cl", keepalive=False,
                                 timeout=20).start()]
            time.sleep(SECONDS)
            for load in loads:
                load.stop()
            stop.set()
            sampler.join()

            statuses = loads[0].statuses + loads[1].statuses
            print(f"statuses {dict(statuses)}; RSS {base_rss} kB -> peak "
                  f"{peak_rss[0]} kB; metrics dropped overloaded "
                  f"{srv.metric_value('analytics_events_dropped_total')}",
                  flush=True)
            shed = statuses[503] + statuses[429]
            self.assertGreater(shed, 0, f"nothing was shed: {statuses}")
            self.assertGreater(statuses[202], 0, f"nothing accepted: {statuses}")
            for load in loads:
                self.assertEqual(load.retry_after_missing, 0,
                                 "429/503 without Retry-After")
            self.assertEqual(
                set(statuses) - {202, 503, 429, "error"}, set(),
                f"unexpected answers under overload: {statuses}")
            self.assertLess(peak_rss[0] / 1024, RSS_LIMIT_MB,
                            "RSS grew beyond the bound under overload")

            # Recovery: a normal request right after the flood.
            deadline = time.monotonic() + 5
            while True:
                t0 = time.monotonic()
                r = srv.request("POST", "/api/event",
                                '{"n":"pageview","u":"https://%s/after",'
                                '"d":"%s"}' % (SITE, SITE),
                                {"Content-Type": "text/plain"})
                if r.status == 202:
                    break
                self.assertLess(time.monotonic(), deadline,
                                f"not recovered 5 s after the flood: {r}")
                time.sleep(0.2)
            self.assertLess(time.monotonic() - t0, 1.0, "slow after the flood")

            acked = loads[0].acked + loads[1].acked + ["/after"]
            unknown = loads[0].unknown + loads[1].unknown
            refused = loads[0].refused + loads[1].refused
            common.check_ledger(self, srv, SITE, acked, unknown, refused)
            # The shed requests are counted in /metrics.
            text = srv.get("/metrics").body.decode()
            self.assertIn('reason="overloaded"', text)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    BINARY = harness.binary_from_argv()
    unittest.main()
