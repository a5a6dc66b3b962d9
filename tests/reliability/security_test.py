#!/usr/bin/env python3
"""Security tests over HTTP against a real analyticsd (docs/SECURITY.md):
authentication of stats and admin routes, site isolation, no secrets in logs
or /metrics, trusted-proxy spoofing, CORS and security headers, SQL injection
through every filter and dimension, regex filters that cannot backtrack, and
privacy: no raw IP or user agent anywhere in the store.

    python3 tests/reliability/security_test.py build/bin/analyticsd
    # privacy scan of PostgreSQL / Redis stores and coordinators:
    tests/services/postgres.sh run -- python3 tests/reliability/security_test.py \
        build/bin/analyticsd PrivacyTest.test_postgres
    tests/services/redis.sh run -- python3 tests/reliability/security_test.py \
        build/bin/analyticsd PrivacyTest.test_redis
"""
import binascii
import ipaddress
import json
import os
import sqlite3
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import harness  # noqa: E402

BINARY = None
SITE_A = "a.security.test"
SITE_B = "b.security.test"

DIMENSIONS = [
    "event:page", "event:name", "event:hostname", "event:goal",
    "event:props:plan", "visit:entry_page", "visit:exit_page",
    "visit:source", "visit:referrer", "visit:utm_source",
    "visit:utm_medium", "visit:utm_campaign", "visit:utm_term",
    "visit:utm_content", "visit:country", "visit:browser",
    "visit:browser_version", "visit:os", "visit:os_version", "visit:device",
    "visit:screen", "visit:locale"]
INJECTIONS = [
    "' OR '1'='1",
    "x'); DROP TABLE events; --",
    "\"; DELETE FROM sites; --",
    "' UNION SELECT key_hash, 1, 1 FROM api_keys --",
    "%' OR 1=1 OR page LIKE '%",
    "\\'; SELECT pg_sleep(5); --",
    "1; DROP TABLE salts",
]

# Distinctive traffic for the privacy scan (trusted proxy on loopback).
PRIVATE_IPS = ["203.0.113.77", "198.51.100.123", "192.0.2.201",
               "2001:db8::dead:beef"]
PRIVATE_UAS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
    "Firefox/128.0 ProbeZqx7311",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/126.0.0.0 Safari/537.36 ProbeWvk4488",
]


def bearer(token):
    return {"Authorization": f"Bearer {token}",
            "Content-Type": "application/json"}


def event(srv, site, path, ip=None, ua=harness.UA, extra_headers=None):
    h = {"Content-Type": "text/plain", "User-Agent": ua}
    if ip:
        h["X-Forwarded-For"] = ip
    h.update(extra_headers or {})
    r = srv.request("POST", "/api/event",
                    json.dumps({"n": "pageview", "d": site,
                                "u": f"https://{site}{path}",
                                "r": "https://news.example.org/x",
                                "p": {"plan": "pro"}}), h)
    if r.status != 202:
        raise AssertionError(f"event {path}: {r}")


def stats_requests(site):
    """(method, path, body) for every stats route, reading `site`."""
    q = urllib.parse.quote
    return [
        ("POST", "/api/v2/query",
         {"site_id": site, "date_range": "all", "metrics": ["visitors"]}),
        ("POST", "/api/v2/funnel",
         {"site_id": site, "date_range": "30d",
          "funnel": {"name": "f", "steps": [{"page": "/a"}, {"page": "/b"}]}}),
        ("GET", f"/api/v1/stats/realtime/visitors?site_id={q(site)}", None),
        ("GET", f"/api/v1/stats/aggregate?site_id={q(site)}&period=30d",
         None),
        ("GET", f"/api/v1/stats/timeseries?site_id={q(site)}&period=30d",
         None),
        ("GET", f"/api/v1/stats/breakdown?site_id={q(site)}&period=30d"
                f"&property=event:page", None),
    ]


def admin_requests():
    return [
        ("GET", "/api/v1/sites", None),
        ("POST", "/api/v1/sites", {"domain": "new.security.test"}),
        ("PUT", f"/api/v1/sites/{SITE_A}", {"timezone": "UTC"}),
        ("DELETE", f"/api/v1/sites/{SITE_B}", None),
        ("GET", "/api/v1/keys", None),
        ("POST", "/api/v1/keys", {"site": SITE_A, "name": "x"}),
        ("DELETE", "/api/v1/keys/1", None),
        ("GET", f"/api/v1/goals?site_id={SITE_A}", None),
        ("POST", "/api/v1/goals", {"site_id": SITE_A, "name": "g",
                                   "event_name": "Signup"}),
        ("GET", f"/api/v1/funnels?site_id={SITE_A}", None),
        ("POST", f"/api/v1/sites/{SITE_A}/erase", {}),
        ("GET", "/api/v1/jobs", None),
    ]


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(BINARY, env=dict(common.NO_LIMITS),
                                 name="security")
        srv = cls.srv
        srv.add_site(SITE_A)
        srv.add_site(SITE_B)
        for i in range(5):
            event(srv, SITE_A, f"/a{i}")
            event(srv, SITE_B, f"/b{i}")
        # A page that makes a backtracking regex engine explode.
        event(srv, SITE_A, "/" + "a" * 40 + "!")
        cls.keys = {}
        for site in (SITE_A, SITE_B):
            r = srv.admin("POST", "/api/v1/keys", {"site": site, "name": "t"})
            assert r.status == 201, r
            cls.keys[site] = r.json()
        r = srv.admin("POST", "/api/v1/keys", {"site": SITE_A, "name": "old"})
        assert r.status == 201, r
        cls.revoked = r.json()
        r = srv.admin("DELETE", f"/api/v1/keys/{cls.revoked['id']}")
        assert r.status == 200, r

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def send(self, method, path, body, headers):
        return self.srv.request(method, path, body, headers)

    def assert_json_error(self, r, statuses, what):
        self.assertIn(r.status, statuses, f"{what}: {r}")
        self.assertIn("application/json", r.header("Content-Type") or "",
                      what)
        self.assertIn("error", r.json(), what)

    def test_stats_and_admin_refuse_bad_credentials(self):
        bad = {
            "missing": {"Content-Type": "application/json"},
            "wrong": bearer("key_" + "x" * 40),
            "malformed": {"Authorization": "Basic Zm9vOmJhcg=="},
            "revoked": bearer(self.revoked["key"]),
            "empty": {"Authorization": "Bearer "},
        }
        for name, headers in bad.items():
            for method, path, body in (stats_requests(SITE_A) +
                                       admin_requests()):
                r = self.send(method, path, body, headers)
                self.assert_json_error(r, (401,), f"{name} {method} {path}")
        # A site key is not an admin token.
        site_key = bearer(self.keys[SITE_A]["key"])
        for method, path, body in admin_requests():
            r = self.send(method, path, body, site_key)
            self.assert_json_error(r, (403,), f"site key {method} {path}")
        # Nothing above changed anything.
        r = self.srv.admin("GET", "/api/v1/sites")
        domains = sorted(s["domain"] for s in r.json()["sites"]) \
            if isinstance(r.json(), dict) else \
            sorted(s["domain"] for s in r.json())
        self.assertIn(SITE_A, domains)
        self.assertIn(SITE_B, domains)
        self.assertNotIn("new.security.test", domains)

    def test_site_key_reads_only_its_site(self):
        key_a = bearer(self.keys[SITE_A]["key"])
        for method, path, body in stats_requests(SITE_A):
            r = self.send(method, path, body, key_a)
            self.assertEqual(r.status, 200, f"own site {method} {path}: {r}")
        site_b = self.srv.admin("GET", "/api/v1/sites").json()
        for method, path, body in (stats_requests(SITE_B) +
                                   stats_requests("unknown.security.test")):
            r = self.send(method, path, body, key_a)
            self.assert_json_error(r, (403,), f"other site {method} {path}")
            self.assertNotIn(b"/b0", r.body)
        del site_b

    def test_shared_link_reads_only_its_site(self):
        r = self.srv.admin("POST", "/api/v1/shares",
                           {"site": SITE_A, "name": "wiki"})
        self.assertEqual(r.status, 201, r)
        share = r.json()
        h = {"X-Analytics-Share": share["token"],
             "Content-Type": "application/json"}
        r = self.send(*stats_requests(SITE_A)[0], h)
        self.assertEqual(r.status, 200, r)
        for method, path, body in stats_requests(SITE_B):
            r = self.send(method, path, body, h)
            self.assert_json_error(r, (403,), f"share {method} {path}")
        for method, path, body in admin_requests():
            r = self.send(method, path, body, h)
            self.assert_json_error(r, (401, 403), f"share {method} {path}")
        r = self.srv.admin("DELETE", f"/api/v1/shares/{share['id']}")
        self.assertEqual(r.status, 200, r)
        r = self.send(*stats_requests(SITE_A)[0], h)
        self.assert_json_error(r, (401,), "revoked share")
        self.__class__.share_token = share["token"]

    def test_spoofed_forwarded_headers_are_ignored(self):
        site = "spoof.security.test"
        self.srv.add_site(site)
        for i, ip in enumerate(["1.2.3.4", "5.6.7.8", "9.9.9.9"]):
            event(self.srv, site, f"/xff{i}", ip=ip)
        event(self.srv, site, "/fwd", extra_headers={
            "Forwarded": "for=11.12.13.14;proto=https"})
        event(self.srv, site, "/real", extra_headers={
            "X-Real-IP": "15.16.17.18"})
        totals = self.srv.totals(site, ("visitors", "pageviews"))
        self.assertEqual(totals, {"visitors": 1, "pageviews": 5},
                         "a direct client chose its visitor identity")

    def test_spoofed_headers_do_not_bypass_rate_limit(self):
        srv = harness.Server(BINARY, env={"ANALYTICS_RATE_LIMIT": "5"},
                             name="security-rl")
        try:
            srv.add_site(SITE_A)
            codes = []
            for i in range(10):
                r = srv.request("POST", "/api/event", json.dumps(
                    {"n": "pageview", "d": SITE_A,
                     "u": f"https://{SITE_A}/{i}"}),
                    {"Content-Type": "text/plain",
                     "X-Forwarded-For": f"10.0.0.{i}"})
                codes.append(r.status)
            self.assertEqual(codes.count(202), 5, codes)
            self.assertEqual(codes.count(429), 5, codes)
        finally:
            srv.cleanup()

    def test_cors_and_security_headers(self):
        origin = "https://www.customer.example"
        r = self.srv.request("OPTIONS", "/api/event", None,
                             {"Origin": origin,
                              "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), origin)
        self.assertIn("POST", r.header("Access-Control-Allow-Methods") or "")
        for path in ("/api/event", "/api/send", "/log"):
            r = self.srv.request("POST", path, "{}",
                                 {"Origin": origin,
                                  "Content-Type": "text/plain"})
            self.assertEqual(r.header("Access-Control-Allow-Origin"), origin,
                             f"{path}: {r}")
        # Stats and admin answers are not opened to other origins.
        r = self.srv.request("GET", "/api/v1/sites", None,
                             {"Origin": origin})
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))
        for path in ("/dashboard", "/dashboard/login"):
            r = self.srv.get(path)
            self.assertIn(r.status, (200, 302, 303), f"{path}: {r}")
            csp = r.header("Content-Security-Policy") or ""
            self.assertIn("default-src", csp, path)
            self.assertIn("frame-ancestors 'none'", csp, path)
            self.assertEqual(r.header("X-Frame-Options"), "DENY", path)
            self.assertEqual(r.header("X-Content-Type-Options"), "nosniff",
                             path)
            self.assertTrue(r.header("Referrer-Policy"), path)

    def counts(self):
        return {s: self.srv.totals(s, ("visitors", "pageviews", "events"))
                for s in (SITE_A, SITE_B)}

    def test_sql_injection_through_every_filter_and_dimension(self):
        before = self.counts()
        key = bearer(self.keys[SITE_A]["key"])
        seen = set()
        for dim in DIMENSIONS:
            for payload in INJECTIONS:
                for op in ("is", "is_not", "contains", "matches"):
                    body = {"site_id": SITE_A, "date_range": "all",
                            "metrics": ["visitors", "pageviews"],
                            "dimensions": [dim],
                            "filters": [[op, dim, [payload]]]}
                    r = self.srv.request("POST", "/api/v2/query", body, key)
                    seen.add(r.status)
                    self.assertIn(r.status, (200, 400), f"{body}: {r}")
                    if r.status == 200 and op in ("is", "contains"):
                        self.assertEqual(r.json()["results"], [],
                                         f"{body}: {r}")
                    if r.status == 400:
                        self.assertIn("error", r.json())
                v1 = ("/api/v1/stats/breakdown?site_id=" +
                      urllib.parse.quote(SITE_A) + "&period=30d&property=" +
                      urllib.parse.quote(dim) + "&filters=" +
                      urllib.parse.quote(f"{dim}=={payload}"))
                r = self.srv.request("GET", v1, None, key)
                self.assertIn(r.status, (200, 400), f"{v1}: {r}")
                if r.status == 200:
                    self.assertEqual(r.json()["results"], [], f"{v1}: {r}")
                r = self.srv.request("GET", "/api/v1/stats/aggregate?site_id="
                                     + urllib.parse.quote(SITE_A) +
                                     "&period=30d&filters=" +
                                     urllib.parse.quote(f"{dim}=={payload}"),
                                     None, key)
                self.assertIn(r.status, (200, 400), r)
            # The injection in the dimension (and property) name itself.
            for payload in INJECTIONS:
                body = {"site_id": SITE_A, "date_range": "all",
                        "metrics": ["visitors"],
                        "dimensions": [dim + payload]}
                r = self.srv.request("POST", "/api/v2/query", body, key)
                self.assertIn(r.status, (200, 400), f"{body}: {r}")
        # site_id itself.
        for payload in INJECTIONS:
            r = self.srv.request("POST", "/api/v2/query",
                                 {"site_id": SITE_A + payload,
                                  "date_range": "all",
                                  "metrics": ["visitors"]},
                                 bearer(harness.ADMIN_TOKEN))
            self.assertIn(r.status, (400, 404), r)
        self.assertEqual(self.counts(), before, "injection changed the data")
        self.assertIn(200, seen)

    def test_regex_filters_do_not_backtrack(self):
        key = bearer(self.keys[SITE_A]["key"])
        for pattern in ("(a+)+$", "(a|aa)+$", "(a*)*b", "^(a|a?)+$",
                        "(.*a){20}"):
            for op in ("matches", "matches_not"):
                body = {"site_id": SITE_A, "date_range": "all",
                        "metrics": ["pageviews"],
                        "filters": [[op, "event:page", ["/" + pattern]]]}
                t0 = time.monotonic()
                r = self.srv.request("POST", "/api/v2/query", body, key)
                took = time.monotonic() - t0
                self.assertIn(r.status, (200, 400), f"{body}: {r}")
                self.assertLess(took, 2.0, f"{pattern} took {took:.1f} s")
            v1 = ("/api/v1/stats/aggregate?site_id=" + SITE_A +
                  "&period=30d&filters=" +
                  urllib.parse.quote(f"event:page~{pattern}"))
            t0 = time.monotonic()
            r = self.srv.request("GET", v1, None, key)
            self.assertLess(time.monotonic() - t0, 2.0, v1)

    def test_zz_no_secrets_in_logs_or_metrics(self):
        # Runs last (zz): every earlier test's traffic is in the logs.
        metrics = self.srv.get("/metrics").body.decode()
        logs = self.srv.logs()
        secrets = {"admin token": harness.ADMIN_TOKEN}
        for site, k in self.keys.items():
            secrets[f"key of {site}"] = k["key"]
        secrets["revoked key"] = self.revoked["key"]
        if getattr(self, "share_token", None):
            secrets["share token"] = self.share_token
        db = sqlite3.connect(os.path.join(self.srv.dir, "analytics.db"))
        try:
            salts = [row[0] for row in db.execute("SELECT salt FROM salts")]
            hashes = [row[0] for row in
                      db.execute("SELECT * FROM api_keys").fetchall()]
        finally:
            db.close()
        self.assertTrue(salts, "no salt stored: is the table renamed?")
        for i, s in enumerate(salts):
            raw = bytes(s) if not isinstance(s, str) else s.encode()
            secrets[f"salt {i} (hex)"] = binascii.hexlify(raw).decode()
            secrets[f"salt {i} (raw)"] = raw.decode("latin-1")
        del hashes
        for name, secret in secrets.items():
            self.assertNotIn(secret, logs, f"{name} appears in the logs")
            self.assertNotIn(secret, metrics, f"{name} appears in /metrics")
        self.assertNotIn(harness.UA, logs, "a user agent appears in the logs")
        for ip in ("1.2.3.4", "5.6.7.8", "11.12.13.14"):
            self.assertNotIn(ip, logs + metrics, f"IP {ip} in logs/metrics")


# ------------------------------------------------------------- privacy --
def needles():
    """Strings whose presence in a dump means a raw IP or UA was stored."""
    out = {}
    for ip in PRIVATE_IPS:
        a = ipaddress.ip_address(ip)
        out[f"ip {ip}"] = [ip.encode(), a.packed,
                           binascii.hexlify(a.packed),
                           str(a.exploded).encode()]
    for ua in PRIVATE_UAS:
        token = ua.split()[-1]
        out[f"ua {token}"] = [ua.encode(), token.encode(),
                              binascii.hexlify(token.encode())]
    return out


def send_private_traffic(test, srv, site):
    n = 0
    for ip in PRIVATE_IPS:
        for ua in PRIVATE_UAS:
            for path in ("/", "/pricing"):
                event(srv, site, path, ip=ip, ua=ua)
                n += 1
            # Umami and Swetrix protocols too.
            r = srv.request("POST", "/api/send", json.dumps(
                {"type": "event", "payload": {
                    "website": site, "hostname": site, "url": "/umami",
                    "language": "en-US", "screen": "1920x1080"}}),
                {"Content-Type": "application/json", "User-Agent": ua,
                 "X-Forwarded-For": ip})
            test.assertLess(r.status, 300, r)
            r = srv.request("POST", "/log/hb", json.dumps({"pid": site}),
                            {"Content-Type": "application/json",
                             "User-Agent": ua, "X-Forwarded-For": ip})
    totals = srv.totals(site, ("visitors", "pageviews"))
    test.assertEqual(totals["visitors"],
                     len(PRIVATE_IPS) * len(PRIVATE_UAS), totals)


def scan(test, blob, where):
    low = blob.lower()
    for name, forms in needles().items():
        for form in forms:
            test.assertNotIn(form.lower() if form.isascii() else form,
                             low if form.isascii() else blob,
                             f"{name} found in {where}")


def redis_dump(url):
    p = urllib.parse.urlparse(url)
    base = ["redis-cli", "-h", p.hostname or "127.0.0.1", "-p",
            str(p.port or 6379), "-n", (p.path or "/0").lstrip("/") or "0"]
    keys = subprocess.run(base + ["--scan"], capture_output=True,
                          check=True).stdout.split()
    out = [b"\n".join(keys)]
    for k in keys:
        t = subprocess.run(base + ["TYPE", k], capture_output=True,
                           check=True).stdout.strip()
        cmd = {b"string": ["GET"], b"hash": ["HGETALL"],
               b"list": ["LRANGE", k, "0", "-1"],
               b"set": ["SMEMBERS"], b"zset": ["ZRANGE", k, "0", "-1",
                                               "WITHSCORES"],
               b"stream": ["XRANGE", k, "-", "+"]}.get(t, [])
        if cmd:
            args = cmd if len(cmd) > 1 else cmd + [k]
            out.append(subprocess.run(base + args, capture_output=True,
                                      check=True).stdout)
        # DUMP shows the serialized value (binary-safe) as well.
        out.append(subprocess.run(base + ["--no-raw", "DUMP", k],
                                  capture_output=True).stdout)
    return b"\n".join(out), len(keys)


class PrivacyTest(unittest.TestCase):
    def run_store(self, store, coord=None):
        env = dict(common.NO_LIMITS)
        env["ANALYTICS_TRUSTED_PROXIES"] = "127.0.0.1,::1"
        if store:
            env["ANALYTICS_STORE"] = store
        if coord:
            env["ANALYTICS_COORD"] = coord
        srv = harness.Server(BINARY, env=env, name="privacy")
        try:
            site = "privacy.security.test"
            srv.add_site(site)
            send_private_traffic(self, srv, site)
            srv.admin("POST", "/api/v1/keys", {"site": site, "name": "p"})
            self.assertEqual(srv.stop(), 0)  # flush everything
            logs = srv.logs().encode()
            scan(self, logs, "the logs")
            return srv
        except BaseException:
            srv.cleanup()
            raise

    def test_sqlite(self):
        srv = self.run_store(None)
        try:
            path = os.path.join(srv.dir, "analytics.db")
            db = sqlite3.connect(path)
            dump = "\n".join(db.iterdump()).encode()
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")]
            db.close()
            self.assertIn(b"privacy.security.test", dump)
            self.assertGreater(len(tables), 3)
            scan(self, dump, "the SQLite dump")
            for name in os.listdir(srv.dir):  # db, -wal, -shm, logs
                with open(os.path.join(srv.dir, name), "rb") as f:
                    scan(self, f.read(), name)
        finally:
            srv.cleanup()

    def test_postgres(self):
        url = os.environ.get("ANALYTICS_TEST_POSTGRES_URL")
        if not url:
            self.fail("ANALYTICS_TEST_POSTGRES_URL is not set: run under "
                      "tests/services/postgres.sh run -- …")
        srv = self.run_store(url, coord=url)
        try:
            dump = subprocess.run(["pg_dump", "--data-only", "--inserts",
                                   url], capture_output=True, check=True,
                                  timeout=60).stdout
            self.assertIn(b"privacy.security.test", dump)
            scan(self, dump, "pg_dump")
        finally:
            srv.cleanup()

    def test_redis(self):
        url = os.environ.get("ANALYTICS_TEST_REDIS_URL")
        if not url:
            self.fail("ANALYTICS_TEST_REDIS_URL is not set: run under "
                      "tests/services/redis.sh run -- …")
        srv = self.run_store(url, coord=url)
        try:
            dump, n = redis_dump(url)
            self.assertGreater(n, 3, "suspiciously few Redis keys")
            self.assertIn(b"privacy.security.test", dump)
            scan(self, dump, "Redis")
        finally:
            srv.cleanup()


if __name__ == "__main__":
    BINARY = harness.binary_from_argv()
    unittest.main()
