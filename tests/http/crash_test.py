#!/usr/bin/env python3
"""Crash safety through HTTP: kill -9 analyticsd while clients send events,
restart it on the same SQLite store, three times; every event acknowledged
with a 2xx must be stored exactly once.

    python3 tests/http/crash_test.py build/bin/analyticsd
"""
import http.client
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BINARY = None
SITE = "crash.test"


class CrashTest(unittest.TestCase):
    def test_kill9_loses_no_acknowledged_event(self):
        first = harness.Server(BINARY, name="crash")
        store = f"sqlite://{first.dir}/analytics.db"
        servers = [first]
        try:
            first.add_site(SITE)
            acked = []
            lock = threading.Lock()
            srv = first
            for cycle in range(3):
                stop = threading.Event()

                def client(worker, port=srv.port):
                    i = 0
                    conn = None
                    while not stop.is_set():
                        path = f"/c{cycle}/w{worker}/e{i}"
                        body = ('{"n":"pageview","u":"https://%s%s","d":"%s"}'
                                % (SITE, path, SITE))
                        try:
                            if conn is None:
                                conn = http.client.HTTPConnection(
                                    "127.0.0.1", port, timeout=10)
                            conn.request("POST", "/api/event", body,
                                         {"Content-Type": "text/plain",
                                          "User-Agent": harness.UA,
                                          "X-Forwarded-For": f"10.0.{worker}.1"})
                            r = conn.getresponse()
                            r.read()
                            if 200 <= r.status < 300:
                                with lock:
                                    acked.append(path)
                        except (OSError, http.client.HTTPException):
                            conn = None  # the server died: stop counting
                            if stop.is_set():
                                return
                            time.sleep(0.01)
                        i += 1

                threads = [threading.Thread(target=client, args=(w,))
                           for w in range(8)]
                for t in threads:
                    t.start()
                time.sleep(1.5)
                srv.proc.kill()  # SIGKILL: no flush, no cleanup
                srv.proc.wait()
                stop.set()
                for t in threads:
                    t.join(timeout=30)
                srv = harness.Server(BINARY, name=f"crash{cycle}",
                                     env={"ANALYTICS_STORE": store})
                servers.append(srv)

            self.assertGreater(len(acked), 100,
                               "too few events were acknowledged to test")
            r = srv.admin("POST", "/api/v2/query", {
                "site_id": SITE, "date_range": "all",
                "metrics": ["pageviews"], "dimensions": ["event:page"],
                "pagination": {"limit": 100000}})
            self.assertEqual(r.status, 200, r)
            stored = {row["dimensions"][0]: row["metrics"][0]
                      for row in r.json()["results"]}
            missing = [p for p in acked if p not in stored]
            self.assertEqual(missing[:10], [],
                             f"{len(missing)} acknowledged events lost")
            dups = {p: n for p, n in stored.items() if n != 1}
            self.assertEqual(dups, {}, "events stored more than once")
            # Rollups and raw events agree after the crashes.
            raw = srv.admin("POST", "/api/v2/query", {
                "site_id": SITE, "date_range": "all",
                "metrics": ["pageviews"],
                "filters": [["is_not", "event:hostname", ["-"]]]})
            self.assertEqual(raw.json()["meta"]["source"], "events")
            self.assertEqual(raw.json()["results"][0]["metrics"][0],
                             sum(stored.values()))
            print(f"acknowledged {len(acked)}, stored {sum(stored.values())} "
                  f"over 3 kill -9 cycles")
        finally:
            for s in reversed(servers):
                if s is not first:
                    s.cleanup()
            first.cleanup()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: crash_test.py path/to/analyticsd")
    BINARY = sys.argv.pop(1)
    unittest.main()
