"""Shared pieces of the reliability tests: a load client that records which
events were acknowledged, RSS/fd sampling, store-side counts.

Python 3 standard library only; builds on tests/http/harness.py.
"""
import collections
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "http"))
import harness  # noqa: E402,F401

# Rate limits off: these tests measure the server, not the limiter.
NO_LIMITS = {"ANALYTICS_RATE_LIMIT": "0", "ANALYTICS_SITE_RATE_LIMIT": "0"}


class Load:
    """Clients sending Plausible pageviews with unique paths until stop().

    Never retries an event: each path is sent once. A path answered 2xx is
    "acked"; one whose request failed without an answer (connection reset,
    timeout: the server may or may not have stored it) is "unknown"; one
    answered 4xx/5xx is "refused" (must not be stored).
    """

    def __init__(self, port, site, clients, prefix, keepalive=True,
                 rate_per_client=None, timeout=10, distinct_pages=None):
        self.port = port
        self.site = site
        self.prefix = prefix
        self.keepalive = keepalive
        self.rate = rate_per_client
        self.timeout = timeout
        # None: every path unique (per-event ledger); N: N pages in turn
        # (bounded state, as real traffic; check with check_totals).
        self.distinct_pages = distinct_pages
        self.lock = threading.Lock()
        self.acked = []
        self.unknown = []
        self.refused = []
        self.statuses = collections.Counter()
        self.retry_after_missing = 0
        self.errors = collections.Counter()  # (kind, message, reused, s)
        self.latencies = []  # seconds, of answered requests
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(w,),
                                          daemon=True)
                         for w in range(clients)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self, join_timeout=60):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=join_timeout)

    def _client(self, worker):
        conn = None
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self.rate:
                next_at += 1.0 / self.rate
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            path = (f"/{self.prefix}/w{worker}/e{i}"
                    if self.distinct_pages is None else
                    f"/{self.prefix}/p{i % self.distinct_pages}")
            i += 1
            body = ('{"n":"pageview","u":"https://%s%s","d":"%s"}'
                    % (self.site, path, self.site))
            t0 = time.monotonic()
            sent_on_reused = conn is not None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", self.port, timeout=self.timeout)
                headers = {"Content-Type": "text/plain",
                           "User-Agent": harness.UA}
                if not self.keepalive:
                    headers["Connection"] = "close"
                conn.request("POST", "/api/event", body, headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                retry_after = r.getheader("Retry-After")
                if not self.keepalive or (
                        r.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                with self.lock:
                    self.unknown.append(path)
                    self.statuses["error"] += 1
                    # What failed, how long after sending, and whether the
                    # connection had carried requests before (a server
                    # closing an idle keep-alive connection as the client
                    # reuses it looks different from a stall or a reset).
                    self.errors[(type(e).__name__, str(e)[:80], sent_on_reused,
                                 round(time.monotonic() - t0, 1))] += 1
                time.sleep(0.01)
                continue
            with self.lock:
                self.statuses[status] += 1
                self.latencies.append(time.monotonic() - t0)
                if 200 <= status < 300:
                    self.acked.append(path)
                else:
                    self.refused.append(path)
                    if status in (429, 503) and not retry_after:
                        self.retry_after_missing += 1
        if conn is not None:
            conn.close()


def stored_pages(srv, site):
    """page path -> pageviews stored, through the Stats API v2."""
    r = srv.admin("POST", "/api/v2/query", {
        "site_id": site, "date_range": "all", "metrics": ["pageviews"],
        "dimensions": ["event:page"], "pagination": {"limit": 100000}})
    if r.status != 200:
        raise AssertionError(f"breakdown by page: {r}")
    return {row["dimensions"][0]: row["metrics"][0]
            for row in r.json()["results"]}


def check_ledger(test, srv, site, acked, unknown, refused):
    """acked ⊆ stored ⊆ acked ∪ unknown, each exactly once; the aggregate
    pageviews and events agree with the breakdown."""
    stored = stored_pages(srv, site)
    dup = {p: n for p, n in stored.items() if n != 1}
    test.assertEqual(dup, {}, "events stored more than once")
    missing = set(acked) - set(stored)
    test.assertEqual(len(missing), 0,
                     f"{len(missing)} acknowledged events lost, e.g. "
                     f"{sorted(missing)[:5]}")
    refused_stored = set(refused) & set(stored)
    test.assertEqual(len(refused_stored), 0,
                     f"events answered with an error were stored: "
                     f"{sorted(refused_stored)[:5]}")
    extra = set(stored) - set(acked) - set(unknown)
    test.assertEqual(extra, set(), "stored events that were never sent")
    totals = srv.totals(site, ("pageviews", "events"))
    test.assertEqual(totals["pageviews"], len(stored))
    test.assertEqual(totals["events"], len(stored))
    test.assertGreaterEqual(len(stored), len(acked))
    test.assertLessEqual(len(stored), len(acked) + len(unknown))
    return stored


def check_totals(test, srv, site, acked, unknown):
    """For loads with repeated paths: acked <= stored <= acked + unknown."""
    totals = srv.totals(site, ("pageviews", "events"))
    test.assertGreaterEqual(totals["pageviews"], acked, "events lost")
    test.assertLessEqual(totals["pageviews"], acked + unknown,
                         "more events stored than sent")
    test.assertEqual(totals["events"], totals["pageviews"])
    return totals


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values, q):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]
