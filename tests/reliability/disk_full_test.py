#!/usr/bin/env python3
"""Disk full: analyticsd's SQLite store on a tiny tmpfs (or, where mounting
is not allowed, under an RLIMIT_FSIZE raised again later with prlimit).
While the disk is full, ingestion answers 5xx with a JSON error naming the
cause and logs it; no event answered with an error is stored; once space is
freed, ingestion recovers and every acknowledged event is there.

    python3 tests/reliability/disk_full_test.py build/bin/analyticsd
"""
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import harness  # noqa: E402

BINARY = None
SITE = "disk.reliability.test"


def try_mount(size):
    d = tempfile.mkdtemp(prefix="analyticsd-tinyfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                        "tmpfs", d], capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        return None
    return d


class DiskFullTest(unittest.TestCase):
    def post(self, srv, path):
        return srv.request("POST", "/api/event",
                           '{"n":"pageview","u":"https://%s%s","d":"%s"}'
                           % (SITE, path, SITE),
                           {"Content-Type": "text/plain"}, timeout=30)

    def test_disk_full(self):
        mnt = None
        if os.environ.get("DISK_FULL_MODE", "tmpfs") == "tmpfs":
            mnt = try_mount("3m")
        env = dict(common.NO_LIMITS)
        env["ANALYTICS_THREADS"] = "4"
        if mnt:
            env["ANALYTICS_STORE"] = f"sqlite://{mnt}/analytics.db"
            mode = "tmpfs"
        else:
            mode = "rlimit"
        srv = harness.Server(BINARY, env=env, name="disk")
        filler = None
        try:
            srv.add_site(SITE)
            if mode == "tmpfs":
                # Fill the filesystem but for ~64 KiB.
                filler = os.path.join(mnt, "filler")
                st = os.statvfs(mnt)
                free = st.f_bavail * st.f_frsize
                with open(filler, "wb") as f:
                    f.write(b"\0" * max(0, free - 64 * 1024))
            else:
                db = os.path.join(srv.dir, "analytics.db")
                limit = max(os.path.getsize(db),
                            os.path.getsize(db + "-wal")
                            if os.path.exists(db + "-wal") else 0) + 65536
                # Only the soft limit: it can be raised again unprivileged.
                hard = resource.prlimit(srv.proc.pid,
                                        resource.RLIMIT_FSIZE)[1]
                resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE,
                                 (limit, hard))
            acked, refused, errors = [], [], []
            i = 0
            # Long paths fill the disk fast.
            while len(refused) < 20 and i < 20000:
                path = f"/full/{i}/" + "x" * 900
                r = self.post(srv, path)
                i += 1
                if r.status == 202:
                    acked.append(path)
                else:
                    refused.append(path)
                    errors.append(r)
            self.assertGreater(len(refused), 0, "the disk never filled up")
            for r in errors:
                self.assertGreaterEqual(r.status, 500, r)
                body = r.json()
                self.assertIn("error", body)
                msg = body["error"].lower()
                self.assertTrue(any(w in msg for w in
                                    ("full", "space", "disk", "large",
                                     "store")), f"unclear cause: {msg}")
            print(f"{mode}: {len(acked)} accepted then {errors[0].status} "
                  f"{errors[0].body[:200]!r}", flush=True)
            time.sleep(0.5)
            logs = srv.logs().lower()
            self.assertTrue(any(w in logs for w in ("full", "space", "disk")),
                            f"no log line names the cause:\n{logs[-2000:]}")
            # Free space (or lift the limit): ingestion recovers.
            if mode == "tmpfs":
                os.remove(filler)
            else:
                resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE,
                                 (hard, hard))
            deadline = time.monotonic() + 15
            while True:
                path = f"/after/{len(acked)}"
                r = self.post(srv, path)
                if r.status == 202:
                    acked.append(path)
                    break
                refused.append(path)
                self.assertLess(time.monotonic(), deadline,
                                f"no recovery after freeing space: {r}")
                time.sleep(0.3)
            for k in range(10):
                path = f"/after/more{k}"
                r = self.post(srv, path)
                self.assertEqual(r.status, 202, r)
                acked.append(path)
            common.check_ledger(self, srv, SITE, acked, [], refused)
            # And after a restart on the same store.
            self.assertEqual(srv.stop(), 0, srv.logs()[-2000:])
            srv2 = harness.Server(BINARY, env=dict(
                env, ANALYTICS_STORE=env.get(
                    "ANALYTICS_STORE",
                    f"sqlite://{srv.dir}/analytics.db")), name="disk2")
            try:
                common.check_ledger(self, srv2, SITE, acked, [], refused)
            finally:
                srv2.cleanup()
        finally:
            srv.cleanup()
            if mnt:
                subprocess.run(["umount", "-l", mnt])
                os.rmdir(mnt)


if __name__ == "__main__":
    # A process over RLIMIT_FSIZE would get SIGXFSZ: analyticsd inherits
    # this ignore and sees EFBIG instead.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    BINARY = harness.binary_from_argv()
    unittest.main()
