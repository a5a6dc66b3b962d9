#!/usr/bin/env python3
"""A catalogue of malformed and hostile requests against analyticsd.

Each must get its expected 4xx (with a JSON error body where the route
answers JSON), store nothing, and leave the server up (/health after each).

    python3 tests/http/hostile_test.py build/bin/analyticsd
"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_TOKEN  # noqa: E402

BINARY = None
SITE = "hostile.test"
PV = '{"n":"pageview","u":"https://hostile.test/","d":"hostile.test"}'
TEXT = {"Content-Type": "text/plain"}
JSONH = {"Content-Type": "application/json"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}",
         "Content-Type": "application/json"}


def nested(depth):
    return "[" * depth + "]" * depth


def catalogue(pid):
    """(name, method, path, headers, body, expected codes, want JSON error)."""
    big_props = json.dumps({f"k{i}": "v" for i in range(500)})
    return [
        # ---- Plausible /api/event
        ("bad JSON", "POST", "/api/event", TEXT, '{"n":"pageview",', {400}, True),
        ("JSON array", "POST", "/api/event", TEXT, "[]", {400}, True),
        ("JSON string", "POST", "/api/event", TEXT, '"pageview"', {400}, True),
        ("url wrong type", "POST", "/api/event", TEXT,
         '{"n":"pageview","u":123,"d":"hostile.test"}', {400}, True),
        ("name wrong type", "POST", "/api/event", TEXT,
         '{"n":["x"],"u":"https://hostile.test/","d":"hostile.test"}', {400}, True),
        ("missing url", "POST", "/api/event", TEXT,
         '{"n":"pageview","d":"hostile.test"}', {400}, True),
        ("missing domain, unknown URL host", "POST", "/api/event", TEXT,
         '{"n":"pageview","u":"https://elsewhere.test/"}', {400, 404}, True),
        ("unknown domain", "POST", "/api/event", TEXT,
         '{"n":"pageview","u":"https://x.test/","d":"x.test"}', {404}, True),
        ("oversize name", "POST", "/api/event", TEXT,
         json.dumps({"n": "x" * 500, "u": "https://hostile.test/",
                     "d": SITE}), {400}, True),
        ("oversize url", "POST", "/api/event", TEXT,
         json.dumps({"n": "pageview", "u": "https://hostile.test/" + "a" * 5000,
                     "d": SITE}), {400}, True),
        ("invalid UTF-8", "POST", "/api/event", TEXT,
         b'{"n":"pageview","u":"https://hostile.test/\xff\xfe","d":"hostile.test"}',
         {400}, True),
        ("huge prop count", "POST", "/api/event", TEXT,
         '{"n":"x","u":"https://hostile.test/","d":"hostile.test","p":%s}'
         % big_props, {400}, True),
        ("oversize prop value", "POST", "/api/event", TEXT,
         json.dumps({"n": "x", "u": "https://hostile.test/", "d": SITE,
                     "p": {"k": "v" * 5000}}), {400}, True),
        ("deeply nested JSON", "POST", "/api/event", TEXT, nested(20000),
         {400}, True),
        ("deeply nested objects", "POST", "/api/event", TEXT,
         "{\"a\":" * 10000 + "1" + "}" * 10000, {400}, True),
        ("raw NUL in JSON string", "POST", "/api/event", TEXT,
         b'{"n":"pageview","u":"https://hostile.test/\x00","d":"hostile.test"}',
         {400}, True),
        ("NUL byte body", "POST", "/api/event", TEXT, b"\x00" * 64, {400}, True),
        ("trailing garbage", "POST", "/api/event", TEXT, PV + " xyz", {400}, True),
        ("empty body", "POST", "/api/event", TEXT, "", {400}, True),
        ("form body", "POST", "/api/event",
         {"Content-Type": "application/x-www-form-urlencoded"},
         "n=pageview&u=https://hostile.test/&d=hostile.test", {400}, True),
        ("body over 64 KiB", "POST", "/api/event", TEXT,
         '{"n":"pageview","u":"' + "a" * 70000 + '"}', {413}, True),
        ("wrong method GET", "GET", "/api/event", {}, None, {405}, True),
        ("wrong method DELETE", "DELETE", "/api/event", {}, None, {405}, True),
        # ---- Swetrix
        ("swetrix bad JSON", "POST", "/log", JSONH, "{pid:", {400}, True),
        ("swetrix pid too short", "POST", "/log", JSONH,
         '{"pid":"abc","pg":"/"}', {400}, True),
        ("swetrix pid bad chars", "POST", "/log", JSONH,
         '{"pid":"../../etc/pas","pg":"/"}', {400}, True),
        ("swetrix pid wrong type", "POST", "/log", JSONH,
         '{"pid":123456789012,"pg":"/"}', {400}, True),
        ("swetrix unknown pid", "POST", "/log", JSONH,
         '{"pid":"ZZZZZZZZZZZZ","pg":"/"}', {404}, True),
        ("swetrix custom without ev", "POST", "/log/custom", JSONH,
         '{"pid":"%s","pg":"/"}' % pid, {400}, True),
        ("swetrix hb unknown pid", "POST", "/log/hb", JSONH,
         '{"pid":"ZZZZZZZZZZZZ"}', {404}, True),
        ("swetrix error not an object", "POST", "/log/error", JSONH,
         '"boom"', {400}, True),
        ("swetrix GET /log", "GET", "/log", {}, None, {405}, True),
        ("noscript without pid", "GET", "/log/noscript?pg=/", {}, None,
         {400}, True),
        ("noscript bad pid", "GET", "/log/noscript?pid=%3Cscript%3E&pg=/",
         {}, None, {400}, True),
        ("noscript unknown pid", "GET", "/log/noscript?pid=ZZZZZZZZZZZZ&pg=/",
         {}, None, {404}, True),
        # ---- Umami
        ("umami payload not object", "POST", "/api/send", JSONH,
         '{"type":"event","payload":"x"}', {400}, True),
        ("umami missing website", "POST", "/api/send", JSONH,
         '{"type":"event","payload":{"url":"/","hostname":"hostile.test"}}',
         {400}, True),
        ("umami unknown website", "POST", "/api/send", JSONH,
         '{"type":"event","payload":{"website":"ZZZZZZZZZZZZ","url":"/",'
         '"hostname":"hostile.test"}}', {404}, True),
        ("umami data nested 40 deep", "POST", "/api/send", JSONH,
         '{"type":"event","payload":{"website":"%s","url":"/",'
         '"hostname":"hostile.test","name":"x","data":{"a":%s}}}'
         % (pid, nested(40)), {400}, True),
        ("umami batch not array", "POST", "/api/batch", JSONH, "{}",
         {400}, True),
        ("umami batch of junk", "POST", "/api/batch", JSONH,
         json.dumps([{}] * 2000), {400}, True),
        # ---- canonical
        ("track wrong ts type", "POST", "/api/track", JSONH,
         '{"site":"hostile.test","url":"https://hostile.test/","ts":[1]}',
         {400}, True),
        ("track bad bearer", "POST", "/api/track",
         {"Authorization": "Bearer nope-nope-nope-nope"}, PV, {401}, True),
        # ---- static routes: traversal
        ("encoded traversal", "GET", "/js/%2e%2e/%2e%2e/etc/passwd", {}, None,
         {400, 404}, True),
        ("encoded slash traversal", "GET", "/js/..%2f..%2fetc%2fpasswd", {},
         None, {400, 404}, True),
        ("script with NUL", "GET", "/js/script.js%00.png", {}, None,
         {400, 404}, True),
        # ---- stats and management
        ("query without auth", "POST", "/api/v2/query", JSONH,
         '{"site_id":"hostile.test","metrics":["visitors"]}', {401}, True),
        ("query oversize token", "POST", "/api/v2/query",
         {"Authorization": "Bearer " + "x" * 6000}, "{}", {401}, True),
        ("query bad JSON", "POST", "/api/v2/query", ADMIN, "{", {400}, True),
        ("query site_id number", "POST", "/api/v2/query", ADMIN,
         '{"site_id":1,"metrics":["visitors"]}', {400}, True),
        ("query unknown metric", "POST", "/api/v2/query", ADMIN,
         '{"site_id":"hostile.test","date_range":"all","metrics":["evil"]}',
         {400}, True),
        ("query csv non-JSON body", "POST", "/api/v2/query?format=csv",
         dict(ADMIN, **{"Content-Type": "text/csv"}), "a,b\n1,2", {400}, True),
        ("v1 without site_id", "GET", "/api/v1/stats/aggregate",
         ADMIN, None, {400}, True),
        ("v1 bad period", "GET",
         "/api/v1/stats/aggregate?site_id=hostile.test&period=forever",
         ADMIN, None, {400}, True),
        ("v1 bad filter", "GET",
         "/api/v1/stats/breakdown?site_id=hostile.test&property=event:page"
         "&filters=%3D%3D%3D", ADMIN, None, {400}, True),
        ("site domain number", "POST", "/api/v1/sites", ADMIN,
         '{"domain":1}', {400}, True),
        ("site bad origin", "POST", "/api/v1/sites", ADMIN,
         '{"domain":"o.test","allowed_origins":["javascript:alert(1)"]}',
         {400}, True),
        ("site without auth", "POST", "/api/v1/sites", JSONH,
         '{"domain":"o.test"}', {401}, True),
        ("put unknown site", "PUT", "/api/v1/sites/nope.test", ADMIN,
         '{"timezone":"UTC"}', {404}, True),
        ("key id not a number", "DELETE", "/api/v1/keys/abc", ADMIN, None,
         {400}, True),
        ("key for unknown site", "POST", "/api/v1/keys", ADMIN,
         '{"site":"nope.test","name":"x"}', {404}, True),
        ("PATCH /health", "PATCH", "/health", {}, "{}", {405}, True),
        ("unknown route", "GET", "/wp-login.php", {}, None, {404}, True),
    ]


def raw_catalogue(port):
    """(name, raw request, expected codes, want JSON, forbidden in reply)."""
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    pv = PV.encode()
    return [
        ("path traversal /js/../../etc/passwd",
         b"GET /js/../../etc/passwd HTTP/1.1\r\n" + host + b"\r\n",
         {400, 404}, None, b"root:"),
        ("absurd Content-Length",
         b"POST /api/event HTTP/1.1\r\n" + host +
         b"Content-Length: 99999999999999999999\r\n\r\n" + pv,
         {400, 413}, None, None),
        ("negative Content-Length",
         b"POST /api/event HTTP/1.1\r\n" + host +
         b"Content-Length: -5\r\n\r\n" + pv, {400, 413}, None, None),
        ("non-numeric Content-Length",
         b"POST /api/event HTTP/1.1\r\n" + host +
         b"Content-Length: abc\r\n\r\n", {400, 413}, None, None),
        ("chunked body over 64 KiB",
         b"POST /api/event HTTP/1.1\r\n" + host +
         b"Transfer-Encoding: chunked\r\n\r\n" +
         b"".join(b"4000\r\n" + b"a" * 0x4000 + b"\r\n" for _ in range(6)) +
         b"0\r\n\r\n", {413, 400}, None, None),
        ("CR in Origin (header injection)",
         b"POST /api/event HTTP/1.1\r\n" + host +
         b"Origin: https://evil.test\rSet-Cookie: pwned=1\r\n"
         b"Content-Length: 2\r\n\r\n{}", {400}, None, b"pwned"),
        ("LF in Origin (header injection)",
         b"POST /log HTTP/1.1\r\n" + host +
         b"Origin: https://evil.test\nX-Injected: 1\r\n"
         b"Content-Length: 2\r\n\r\n{}", {400}, None, b"X-Injected"),
        ("CRLF in query string",
         b"GET /log/noscript?pid=%0d%0aSet-Cookie:%20pwned=1&pg=/ HTTP/1.1\r\n"
         + host + b"\r\n", {400}, None, b"pwned"),
        ("garbage request line", b"GARBAGE\r\n\r\n", {400}, None, None),
        ("unknown method", b"FOO /health HTTP/1.1\r\n" + host + b"\r\n",
         {400, 405}, None, None),
        ("URI too long",
         b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n" + host + b"\r\n",
         {400, 414}, None, None),
        ("header too large",
         b"GET /health HTTP/1.1\r\n" + host + b"X-Big: " + b"b" * 20000 +
         b"\r\n\r\n", {400, 431}, None, None),
    ]


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(BINARY, name="hostile")
        cls.site = cls.srv.add_site(SITE)

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        logs = cls.srv.logs()
        cls.srv.cleanup()
        if code != 0:
            raise AssertionError(f"analyticsd exited {code}:\n{logs}")

    def snapshot(self):
        return (self.srv.totals(SITE),
                self.srv.metric_value("analytics_events_accepted_total"),
                len(self.srv.admin("GET", "/api/v1/sites").json()))

    def assert_up(self, name):
        r = self.srv.get("/health")
        self.assertEqual(r.status, 200, f"server down after {name!r}")

    def test_catalogue(self):
        before = self.snapshot()
        cases = catalogue(self.site["short_id"])
        raw = raw_catalogue(self.srv.port)
        self.assertGreaterEqual(len(cases) + len(raw) + 1, 40)
        for name, method, path, headers, body, codes, want_json in cases:
            with self.subTest(name):
                r = self.srv.request(method, path, body, headers)
                self.assertIn(r.status, codes, f"{name}: {r}")
                if want_json:
                    self.assertIn("application/json",
                                  r.header("Content-Type") or "", name)
                    err = r.json()
                    self.assertIsInstance(err.get("error"), str, name)
                    self.assertTrue(err["error"], name)
                self.assert_up(name)
        for name, data, codes, _, forbidden in raw:
            with self.subTest(name):
                status, head, body = self.srv.raw(data)
                # The connection may also be closed without an answer, but
                # never with a 2xx or 5xx.
                if status is not None:
                    self.assertIn(status, codes, f"{name}: {head} {body[:200]}")
                if forbidden is not None:
                    self.assertNotIn(forbidden.lower(),
                                     (head.encode() + body).lower(), name)
                self.assert_up(name)
        with self.subTest("slow partial body"):
            data = [(b"POST /api/event HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 200\r\n\r\n{\"n\":", 0)]
            status, head, body = self.srv.raw(data, timeout=20)
            self.assertIn(status, (None, 400, 408), head)
            self.assert_up("slow partial body")
        self.assertEqual(self.snapshot(), before, "something was stored")

    def test_concurrent_bad_requests_do_not_affect_good_ones(self):
        import threading
        errors = []

        def bad():
            for _ in range(20):
                self.srv.request("POST", "/api/event", "{bad", TEXT)

        threads = [threading.Thread(target=bad) for _ in range(4)]
        for t in threads:
            t.start()
        r = self.srv.request("GET", "/health")
        if r.status != 200:
            errors.append(r)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_percent_escapes_of_invalid_utf8_keep_answers_valid_json(self):
        # Found by fuzz/referrer_fuzzer: "%FF" in a path used to be decoded
        # into the stored page, and the Stats API then answered bytes that
        # are not UTF-8 (not JSON). Such escapes are now kept as sent.
        body = json.dumps({"n": "pageview", "d": SITE,
                           "u": "https://hostile.test/a%FF%00?utm_source=%C0%AF"})
        r = self.srv.request("POST", "/api/event", body, TEXT)
        self.assertEqual(r.status, 202, r)
        q = {"site_id": SITE, "date_range": "all", "metrics": ["pageviews"],
             "dimensions": ["event:page", "visit:utm_source"],
             "filters": [["contains", "event:page", ["%FF"]]]}
        r = self.srv.admin("POST", "/api/v2/query", json.dumps(q))
        self.assertEqual(r.status, 200, r)
        answer = json.loads(r.body.decode("utf-8", errors="strict"))
        self.assertEqual(answer["results"],
                         [{"metrics": [1], "dimensions": ["/a%FF%00", "%C0%AF"]}])


if __name__ == "__main__":
    BINARY = harness.binary_from_argv()
    unittest.main(verbosity=2)
