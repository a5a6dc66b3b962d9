#!/usr/bin/env python3
"""Crash safety: kill -9 analyticsd five times while 6 clients send events,
restart it on the same store; every event acknowledged with a 2xx is stored
exactly once, events answered with an error are not stored, and the only
other stored events are ones whose answer the kill cut off.

    python3 tests/reliability/crash_test.py build/bin/analyticsd sqlite
    tests/services/postgres.sh run -- \
        python3 tests/reliability/crash_test.py build/bin/analyticsd postgres
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import harness  # noqa: E402

BINARY = None
BACKEND = "sqlite"
SITE = "crash.reliability.test"
CYCLES = 5


class CrashTest(unittest.TestCase):
    def test_kill9_during_load(self):
        env = dict(common.NO_LIMITS)
        if BACKEND == "postgres":
            url = os.environ.get("ANALYTICS_TEST_POSTGRES_URL")
            if not url:
                self.fail("ANALYTICS_TEST_POSTGRES_URL is not set: run under "
                          "tests/services/postgres.sh run -- …")
            env["ANALYTICS_STORE"] = url
        srv = harness.Server(BINARY, env=env, name="crash")
        servers = [srv]
        if BACKEND == "sqlite":
            env["ANALYTICS_STORE"] = f"sqlite://{srv.dir}/analytics.db"
        try:
            srv.add_site(SITE)
            acked, unknown, refused = [], [], []
            for cycle in range(CYCLES):
                load = common.Load(srv.port, SITE, clients=6,
                                   prefix=f"c{cycle}").start()
                time.sleep(1.0 + 0.3 * cycle)
                srv.proc.kill()  # SIGKILL: no flush, no cleanup
                srv.proc.wait()
                load.stop()
                acked += load.acked
                unknown += load.unknown
                refused += load.refused
                print(f"cycle {cycle}: {dict(load.statuses)}", flush=True)
                srv = harness.Server(BINARY, env=env, name=f"crash{cycle}")
                servers.append(srv)
            self.assertGreater(len(acked), 200,
                               "too few events were acknowledged to test")
            stored = common.check_ledger(self, srv, SITE, acked, unknown,
                                         refused)
            print(f"{BACKEND}: acked {len(acked)}, in flight at a kill "
                  f"{len(unknown)}, refused {len(refused)}, stored "
                  f"{len(stored)}", flush=True)
            # The restarted server keeps working.
            r = srv.request("POST", "/api/event",
                            '{"n":"pageview","u":"https://%s/after","d":"%s"}'
                            % (SITE, SITE), {"Content-Type": "text/plain"})
            self.assertEqual(r.status, 202, r)
        finally:
            for s in servers:
                s.cleanup()


if __name__ == "__main__":
    BINARY = harness.binary_from_argv()
    if len(sys.argv) > 1 and sys.argv[1] in ("sqlite", "postgres"):
        BACKEND = sys.argv.pop(1)
    unittest.main()
