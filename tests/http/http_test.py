#!/usr/bin/env python3
"""End-to-end HTTP test of analyticsd: every route, with the request bodies
the real trackers send, checked through the stats API afterwards.

    python3 tests/http/http_test.py build/bin/analyticsd
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ADMIN_TOKEN, UA, UA_BOT  # noqa: E402

BINARY = None
CLIENT_IP_A = "203.0.113.77"
CLIENT_IP_B = "198.51.100.23"


class HttpTest(unittest.TestCase):
    srv = None
    secrets = []  # API key secrets created (must never be logged)

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(BINARY, name="http")
        cls.sites = {}
        for d in ("plausible.test", "swetrix.test", "umami.test",
                  "track.test", "csv.test", "auth-a.test", "auth-b.test",
                  "proxy.test", "v1.test"):
            cls.sites[d] = cls.srv.add_site(d)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def pid(self, domain):
        return self.sites[domain]["short_id"]

    # ------------------------------------------------------------ basics --
    def test_health_ready_index(self):
        r = self.srv.get("/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        r = self.srv.get("/ready")
        self.assertEqual(r.status, 200, r)
        # One process with the local coordinator: worker 0, always leader.
        self.assertEqual(r.json(), {"status": "ready", "role": "leader",
                                    "worker": 0})
        m = self.srv.get("/metrics")
        self.assertIn("\nanalytics_leader 1\n", "\n" + m.body.decode())
        r = self.srv.get("/")
        self.assertEqual(r.status, 200)
        self.assertIn("text/html", r.header("Content-Type"))

    def test_startup_output(self):
        out = harness.read(self.srv.stdout_path)
        self.assertIn(f"Dashboard: http://{self.srv.base}/", out)
        # The admin token came from the environment: never printed.
        self.assertNotIn("Admin token", out)

    def test_script_js(self):
        r = self.srv.get("/js/script.js")
        self.assertEqual(r.status, 200)
        self.assertIn("application/javascript", r.header("Content-Type"))
        self.assertEqual(r.header("Cache-Control"), "public, max-age=3600")
        self.assertIn(b"/api/event", r.body)

    # --------------------------------------------------------- Plausible --
    def test_plausible_event(self):
        # As Plausible's tracker sends it: text/plain JSON.
        body = ('{"n":"pageview","v":22,'
                '"u":"https://plausible.test/blog/hello?utm_source=newsletter",'
                '"d":"plausible.test","r":"https://news.ycombinator.com/item?id=1",'
                '"w":1440,"h":0,"p":{"author":"jane"}}')
        r = self.srv.request("POST", "/api/event", body,
                             {"Content-Type": "text/plain",
                              "Origin": "https://plausible.test"})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.body, b"ok")
        self.assertIsNone(r.header("x-plausible-dropped"))
        self.assertEqual(r.header("Access-Control-Allow-Origin"),
                         "https://plausible.test")
        # A custom event, application/json.
        body = {"name": "Signup", "url": "https://plausible.test/blog/hello",
                "domain": "plausible.test", "props": {"plan": "pro"}}
        r = self.srv.request("POST", "/api/event", body,
                             {"Content-Type": "application/json"})
        self.assertEqual(r.status, 202, r)
        # A bot: accepted with 202, dropped, counted in the header.
        r = self.srv.request("POST", "/api/event",
                             '{"n":"pageview","u":"https://plausible.test/",'
                             '"d":"plausible.test"}',
                             {"Content-Type": "text/plain",
                              "User-Agent": UA_BOT})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.header("x-plausible-dropped"), "1")

        pages = self.srv.breakdown("plausible.test", "event:page")
        self.assertEqual(pages, {"/blog/hello": 1})
        names = self.srv.breakdown("plausible.test", "event:name", "events")
        self.assertEqual(names.get("Signup"), 1, names)
        sources = self.srv.breakdown("plausible.test", "visit:source",
                                     "visitors")
        self.assertEqual(list(sources), ["newsletter"], sources)
        totals = self.srv.totals("plausible.test")
        self.assertEqual(totals["visitors"], 1)
        self.assertEqual(totals["pageviews"], 1)

    # ----------------------------------------------------------- Swetrix --
    def test_swetrix(self):
        pid = self.pid("swetrix.test")
        origin = {"Origin": "https://swetrix.test"}
        r = self.srv.request("OPTIONS", "/log", headers={
            **origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(r.header("Access-Control-Allow-Origin"),
                         "https://swetrix.test")
        self.assertIn("POST", r.header("Access-Control-Allow-Methods"))
        self.assertIn("OPTIONS", r.header("Access-Control-Allow-Methods"))
        self.assertIn("Content-Type", r.header("Access-Control-Allow-Headers"))
        self.assertEqual(r.header("Access-Control-Max-Age"), "86400")
        r = self.srv.request("OPTIONS", "/log/custom/")
        self.assertEqual(r.header("Access-Control-Allow-Origin"), "*")

        # The body of swetrix.js's trackPageview().
        pageview = {"pid": pid, "lc": "en-US", "tz": "Europe/Berlin",
                    "ref": "https://duckduckgo.com/", "so": None, "me": None,
                    "ca": None, "te": None, "co": None, "pg": "/pricing",
                    "prev": None, "unique": False,
                    "perf": {"dns": 1, "tls": 2, "conn": 3, "response": 4,
                             "render": 5, "dom_load": 6, "page_load": 7,
                             "ttfb": 8}}
        hdr = {**origin, "Content-Type": "application/json"}
        r = self.srv.request("POST", "/log", pageview, hdr)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json(), {})
        self.assertEqual(r.header("Access-Control-Allow-Origin"),
                         "https://swetrix.test")
        self.assertEqual(
            [k for k, _ in r.headers
             if k.lower() == "access-control-allow-origin"],
            ["Access-Control-Allow-Origin"], "exactly one ACAO header")
        pageview["pg"] = "/features"
        r = self.srv.request("POST", "/log/", pageview, hdr)
        self.assertEqual(r.status, 201, r)
        custom = {"pid": pid, "ev": "download", "pg": "/features",
                  "lc": "en-US", "tz": "Europe/Berlin", "ref": None,
                  "so": None, "me": None, "ca": None, "unique": False,
                  "meta": {"file": "app.dmg"}}
        r = self.srv.request("POST", "/log/custom", custom, hdr)
        self.assertEqual(r.status, 201, r)
        r = self.srv.request("POST", "/log/hb", {"pid": pid}, hdr)
        self.assertEqual(r.status, 201, r)
        r = self.srv.request("POST", "/log/hb/", {"pid": pid}, hdr)
        self.assertEqual(r.status, 201, r)
        err = {"pid": pid, "name": "TypeError",
               "message": "x is undefined", "lineno": 10, "colno": 5,
               "filename": "https://swetrix.test/app.js",
               "stackTrace": "at f (app.js:10:5)", "pg": "/features",
               "lc": "en-US", "tz": "Europe/Berlin", "meta": None}
        r = self.srv.request("POST", "/log/error", err, hdr)
        self.assertEqual(r.status, 201, r)
        r = self.srv.get(f"/log/noscript?pid={pid}&pg=%2Fnoscript",
                         headers={"User-Agent": "Lynx/2.9"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "image/gif")
        self.assertTrue(r.body.startswith(b"GIF89a"))

        pages = self.srv.breakdown("swetrix.test", "event:page")
        self.assertEqual(pages.get("/pricing"), 1, pages)
        self.assertEqual(pages.get("/features"), 1, pages)
        self.assertEqual(pages.get("/noscript"), 1, pages)
        names = self.srv.breakdown("swetrix.test", "event:name", "events")
        self.assertEqual(names.get("download"), 1, names)
        self.assertEqual(names.get("error"), 1, names)
        sources = self.srv.breakdown("swetrix.test", "visit:source",
                                     "visitors")
        self.assertIn("DuckDuckGo", sources)
        # Realtime (v1) counts the live visitors, heartbeats included.
        r = self.srv.admin(
            "GET", f"/api/v1/stats/realtime/visitors?site_id=swetrix.test")
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(int(r.body), 1)

    # ------------------------------------------------------------- Umami --
    def test_umami(self):
        website = self.pid("umami.test")
        r = self.srv.request("OPTIONS", "/api/send",
                             headers={"Origin": "https://umami.test"})
        self.assertIn(r.status, (200, 204))
        self.assertEqual(r.header("Access-Control-Allow-Origin"),
                         "https://umami.test")
        self.assertEqual(r.header("Access-Control-Max-Age"), "86400")
        # The body of umami's tracker (script.js) for a pageview.
        send = {"type": "event", "payload": {
            "website": website, "hostname": "umami.test",
            "screen": "1920x1080", "language": "en-US", "title": "Docs",
            "url": "/docs?lang=en", "referrer": "https://www.google.com/"}}
        r = self.srv.request("POST", "/api/send", send,
                             {"Content-Type": "application/json",
                              "Origin": "https://umami.test"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["ok"])
        event = {"type": "event", "payload": {
            "website": website, "hostname": "umami.test",
            "screen": "1920x1080", "language": "en-US", "title": "Docs",
            "url": "/docs", "referrer": "", "name": "cta-click",
            "data": {"button": "hero"}}}
        batch = [event, {"type": "event", "payload": dict(
            send["payload"], url="/docs/install")}]
        r = self.srv.request("POST", "/api/batch", batch,
                             {"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r)
        pages = self.srv.breakdown("umami.test", "event:page")
        self.assertEqual(pages, {"/docs": 1, "/docs/install": 1})
        names = self.srv.breakdown("umami.test", "event:name", "events")
        self.assertEqual(names.get("cta-click"), 1, names)
        sources = self.srv.breakdown("umami.test", "visit:source", "visitors")
        self.assertIn("Google", sources)

    # ----------------------------------------------------- /api/track ---
    def test_track(self):
        r = self.srv.request("POST", "/api/track",
                             {"site": "track.test",
                              "url": "https://track.test/canonical",
                              "referrer": "https://news.ycombinator.com/"},
                             {"Content-Type": "application/json"})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json(), {"accepted": True})
        r = self.srv.request("POST", "/api/track",
                             {"site": "track.test", "url": "https://track.test/",
                              "user_agent": UA_BOT},
                             {"Authorization": f"Bearer {ADMIN_TOKEN}"})
        self.assertEqual(r.status, 202, r)
        self.assertFalse(r.json()["accepted"])
        self.assertTrue(r.json()["dropped"].startswith("bot"))
        self.assertEqual(self.srv.breakdown("track.test", "event:page"),
                         {"/canonical": 1})
        self.assertEqual(self.srv.breakdown("track.test", "visit:source",
                                            "visitors"), {"Hacker News": 1})

    def test_unknown_site(self):
        r = self.srv.request("POST", "/api/event",
                             '{"n":"pageview","u":"https://nope.test/",'
                             '"d":"nope.test"}', {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json(), {"error": "site: unknown site 'nope.test'"})
        r = self.srv.request("POST", "/log", {"pid": "AAAAAAAAAAAA",
                                              "pg": "/"})
        self.assertEqual(r.status, 404, r)
        self.assertIn("unknown site", r.json()["error"])

    def test_body_too_large(self):
        big = '{"n":"pageview","u":"https://plausible.test/%s","d":"x"}' % (
            "a" * 70000)
        r = self.srv.request("POST", "/api/event", big,
                             {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 413, r)
        self.assertIn("error", r.json())

    def test_malformed(self):
        r = self.srv.request("POST", "/api/event", '{"n":"pageview"}',
                             {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 400, r)
        self.assertRegex(r.json()["error"], r"^\w+: ")

    # ------------------------------------------------------ allowed origins --
    def test_allowed_origins_and_site_management(self):
        site = self.srv.add_site("origins.test",
                                 allowed_origins=["https://origins.test"])
        self.assertEqual(len(site["short_id"]), 12)
        self.assertEqual(site["allowed_origins"], ["https://origins.test"])
        body = '{"n":"pageview","u":"https://origins.test/","d":"origins.test"}'
        r = self.srv.request("POST", "/api/event", body,
                             {"Origin": "https://evil.test"})
        self.assertEqual(r.status, 403, r)
        self.assertIn("origin", r.json()["error"])
        r = self.srv.request("POST", "/api/event", body)  # no Origin at all
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.srv.totals("origins.test")["pageviews"], 0)
        r = self.srv.request("POST", "/api/event", body,
                             {"Origin": "https://origins.test"})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.srv.totals("origins.test")["pageviews"], 1)

        # PUT: change time zone and origins.
        r = self.srv.admin("PUT", "/api/v1/sites/origins.test",
                           {"timezone": "Europe/Berlin",
                            "allowed_origins": "https://a.test, https://b.test"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["timezone"], "Europe/Berlin")
        self.assertEqual(r.json()["allowed_origins"],
                         ["https://a.test", "https://b.test"])
        r = self.srv.request("POST", "/api/event", body,
                             {"Origin": "https://b.test"})
        self.assertEqual(r.status, 202, r)
        r = self.srv.admin("PUT", "/api/v1/sites/origins.test",
                           {"allowed_origins": []})
        self.assertEqual(r.status, 200, r)
        r = self.srv.request("POST", "/api/event", body,
                             {"Origin": "https://anything.test"})
        self.assertEqual(r.status, 202, r)

        # GET lists it; the /api/sites alias too.
        r = self.srv.admin("GET", "/api/v1/sites")
        self.assertEqual(r.status, 200)
        self.assertIn("origins.test", [s["domain"] for s in r.json()])
        r = self.srv.admin("GET", "/api/sites")
        self.assertIn("origins.test", [s["domain"] for s in r.json()])
        r = self.srv.admin("POST", "/api/v1/sites",
                           {"domain": "origins.test", "timezone": "UTC"})
        self.assertEqual(r.status, 409, r)
        r = self.srv.admin("POST", "/api/v1/sites",
                           {"domain": "tz.test", "timezone": "Mars/Base"})
        self.assertEqual(r.status, 400, r)

        # DELETE.
        r = self.srv.admin("DELETE", "/api/v1/sites/origins.test")
        self.assertEqual(r.status, 200, r)
        r = self.srv.admin("GET", "/api/v1/sites")
        self.assertNotIn("origins.test", [s["domain"] for s in r.json()])
        r = self.srv.admin("DELETE", "/api/v1/sites/origins.test")
        self.assertEqual(r.status, 404, r)

    # -------------------------------------------------------------- auth --
    def test_auth(self):
        q = {"site_id": "auth-a.test", "date_range": "all",
             "metrics": ["visitors"]}
        r = self.srv.request("POST", "/api/v2/query", q)
        self.assertEqual(r.status, 401, r)
        self.assertIn("error", r.json())
        r = self.srv.request("POST", "/api/v2/query", q,
                             {"Authorization": "Bearer wrong-token-123456"})
        self.assertEqual(r.status, 401, r)
        r = self.srv.request("POST", "/api/v2/query", q,
                             {"Authorization": f"Basic {ADMIN_TOKEN}"})
        self.assertEqual(r.status, 401, r)
        # Management needs the admin token.
        r = self.srv.request("GET", "/api/v1/sites")
        self.assertEqual(r.status, 401, r)
        r = self.srv.request("GET", "/api/v1/keys")
        self.assertEqual(r.status, 401, r)

        r = self.srv.admin("POST", "/api/v1/keys",
                           {"site": "auth-a.test", "name": "ci"})
        self.assertEqual(r.status, 201, r)
        key = r.json()
        self.assertEqual(key["site"], "auth-a.test")
        self.assertEqual(key["name"], "ci")
        self.assertTrue(key["key"].startswith(key["prefix"]))
        secret = key["key"]
        HttpTest.secrets.append(secret)
        bearer = {"Authorization": f"Bearer {secret}"}
        # The key reads its site (by domain and by short id) ...
        r = self.srv.request("POST", "/api/v2/query", q, bearer)
        self.assertEqual(r.status, 200, r)
        q_short = dict(q, site_id=self.pid("auth-a.test"))
        r = self.srv.request("POST", "/api/v2/query", q_short, bearer)
        self.assertEqual(r.status, 200, r)
        r = self.srv.request(
            "GET", "/api/v1/stats/realtime/visitors?site_id=auth-a.test",
            headers=bearer)
        self.assertEqual(r.status, 200, r)
        # ... but not another one, nor management routes.
        r = self.srv.request("POST", "/api/v2/query",
                             dict(q, site_id="auth-b.test"), bearer)
        self.assertEqual(r.status, 403, r)
        r = self.srv.request("POST", "/api/v2/query",
                             dict(q, site_id="does-not-exist.test"), bearer)
        self.assertEqual(r.status, 403, r)
        r = self.srv.request(
            "GET", "/api/v1/stats/aggregate?site_id=auth-b.test&period=day",
            headers=bearer)
        self.assertEqual(r.status, 403, r)
        r = self.srv.request("GET", "/api/v1/keys", headers=bearer)
        self.assertEqual(r.status, 403, r)
        # Admin reads every site.
        r = self.srv.admin("POST", "/api/v2/query", dict(q, site_id="auth-b.test"))
        self.assertEqual(r.status, 200, r)
        # Listing shows no secrets.
        r = self.srv.admin("GET", "/api/v1/keys")
        self.assertEqual(r.status, 200, r)
        listed = [k for k in r.json() if k["id"] == key["id"]]
        self.assertEqual(len(listed), 1)
        self.assertNotIn("key", listed[0])
        self.assertNotIn(secret.encode(), r.body)
        # Revoked: 401.
        r = self.srv.admin("DELETE", f"/api/v1/keys/{key['id']}")
        self.assertEqual(r.status, 200, r)
        r = self.srv.request("POST", "/api/v2/query", q, bearer)
        self.assertEqual(r.status, 401, r)
        r = self.srv.admin("DELETE", "/api/v1/keys/999999")
        self.assertEqual(r.status, 404, r)
        r = self.srv.admin("POST", "/api/v1/keys",
                           {"site": "nope.test", "name": "x"})
        self.assertEqual(r.status, 404, r)

    # --------------------------------------------------------------- CSV --
    def test_csv_export(self):
        for path in ("/a,b", '/quote"d', "/plain"):
            r = self.srv.request("POST", "/api/track", {
                "site": "csv.test", "url": "https://csv.test" + path})
            self.assertEqual(r.status, 202, r)
        q = {"site_id": "csv.test", "date_range": "all",
             "metrics": ["pageviews", "visitors"],
             "dimensions": ["event:page"]}
        r = self.srv.admin("POST", "/api/v2/query?format=csv", q)
        self.assertEqual(r.status, 200, r)
        self.assertIn("text/csv", r.header("Content-Type"))
        lines = r.body.decode().split("\r\n")
        self.assertEqual(lines[0], "event:page,pageviews,visitors")
        rows = set(lines[1:-1])
        self.assertEqual(lines[-1], "")
        self.assertIn('"/a,b",1,1', rows)
        self.assertIn('"/quote""d",1,1', rows)
        self.assertIn("/plain,1,1", rows)
        r2 = self.srv.admin("POST", "/api/v2/query", q,
                            {"Accept": "text/csv"})
        self.assertEqual(r2.status, 200)
        self.assertIn("text/csv", r2.header("Content-Type"))
        self.assertEqual(set(r2.body.decode().split("\r\n")),
                         set(lines))

    # ---------------------------------------------------------------- v1 --
    def test_v1(self):
        for path in ("/", "/", "/about"):
            r = self.srv.request("POST", "/api/track", {
                "site": "v1.test", "url": "https://v1.test" + path})
            self.assertEqual(r.status, 202, r)
        r = self.srv.admin(
            "GET", "/api/v1/stats/aggregate?site_id=v1.test&period=day"
                   "&metrics=visitors,pageviews")
        self.assertEqual(r.status, 200, r)
        res = r.json()["results"]
        self.assertEqual(res["pageviews"]["value"], 3)
        self.assertEqual(res["visitors"]["value"], 1)
        r = self.srv.admin(
            "GET", "/api/v1/stats/timeseries?site_id=v1.test&period=7d"
                   "&metrics=pageviews")
        self.assertEqual(r.status, 200, r)
        series = r.json()["results"]
        self.assertEqual(sum(p["pageviews"] for p in series), 3)
        r = self.srv.admin(
            "GET", "/api/v1/stats/breakdown?site_id=v1.test&period=day"
                   "&property=event:page&metrics=pageviews")
        self.assertEqual(r.status, 200, r)
        rows = {row["page"]: row["pageviews"] for row in r.json()["results"]}
        self.assertEqual(rows, {"/": 2, "/about": 1})
        r = self.srv.admin(
            "GET", "/api/v1/stats/breakdown?site_id=v1.test&period=day")
        self.assertEqual(r.status, 400, r)
        self.assertIn("property", r.json()["error"])
        r = self.srv.admin(
            "GET", "/api/v1/stats/realtime/visitors?site_id=v1.test")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(int(r.body), 1)

    # ----------------------------------------------------- client IP --
    def test_untrusted_forwarded_headers_ignored(self):
        # The server trusts no proxy: two XFF values are the same visitor.
        for ip in (CLIENT_IP_A, CLIENT_IP_B):
            r = self.srv.request("POST", "/api/event",
                                 '{"n":"pageview","u":"https://proxy.test/",'
                                 '"d":"proxy.test"}',
                                 {"X-Forwarded-For": ip,
                                  "Forwarded": f"for={ip}"})
            self.assertEqual(r.status, 202, r)
        self.assertEqual(self.srv.totals("proxy.test")["visitors"], 1)

    # ------------------------------------------------------------- metrics --
    def test_metrics(self):
        self.srv.get("/health")
        r = self.srv.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn("text/plain", r.header("Content-Type"))
        text = r.body.decode()
        for name in ("analytics_http_requests_total{",
                     "analytics_events_accepted_total ",
                     "analytics_commit_latency_seconds_bucket{le=\"+Inf\"}",
                     "analytics_commit_latency_seconds_sum",
                     "analytics_commit_latency_seconds_count",
                     "analytics_queue_depth ", "analytics_live_sessions "):
            self.assertIn(name, text)
        self.assertRegex(
            text, r'analytics_http_requests_total\{route="/health",code="200"\} \d+')
        self.assertIn("# TYPE analytics_commit_latency_seconds histogram",
                      text)
        self.assertNotIn(ADMIN_TOKEN, text)
        for s in HttpTest.secrets:
            self.assertNotIn(s, text)

    def test_wrong_method(self):
        r = self.srv.get("/api/event")
        self.assertEqual(r.status, 405, r)
        self.assertIn("error", r.json())
        r = self.srv.request("POST", "/nope", "{}")
        self.assertEqual(r.status, 404, r)
        self.assertIn("error", r.json())


class ProxyAndLimitsTest(unittest.TestCase):
    """Second and third instances: a trusted proxy, a low rate limit."""

    def test_trusted_proxy(self):
        srv = harness.Server(BINARY, {
            "ANALYTICS_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1, ::1"},
            name="proxy")
        try:
            srv.add_site("proxied.test")
            body = '{"n":"pageview","u":"https://proxied.test/","d":"proxied.test"}'
            for hdr in ({"X-Forwarded-For": CLIENT_IP_A},
                        {"X-Forwarded-For": f"{CLIENT_IP_B}, 10.1.2.3"},
                        # Same client as the first one, through two proxies.
                        {"X-Forwarded-For": f"1.2.3.4, {CLIENT_IP_A}, 10.9.9.9"},
                        {"Forwarded": f'for="{CLIENT_IP_A}:4711";proto=https'}):
                r = srv.request("POST", "/api/event", body, hdr)
                self.assertEqual(r.status, 202, r)
            self.assertEqual(srv.totals("proxied.test")["visitors"], 2)
            # Country hint from the CDN.
            r = srv.request("POST", "/api/event", body,
                            {"X-Forwarded-For": "192.0.2.99",
                             "CF-IPCountry": "DE"})
            self.assertEqual(r.status, 202, r)
            countries = srv.breakdown("proxied.test", "visit:country",
                                      "visitors")
            self.assertEqual(countries.get("DE"), 1, countries)
            self.assertEqual(srv.stop(), 0, srv.logs())
            logs = srv.logs()
            for ip in (CLIENT_IP_A, CLIENT_IP_B, "192.0.2.99"):
                self.assertNotIn(ip, logs)
        finally:
            srv.cleanup()

    def test_rate_limit(self):
        srv = harness.Server(BINARY, {"ANALYTICS_RATE_LIMIT": "5"},
                             name="ratelimit")
        try:
            srv.add_site("limited.test")
            body = '{"n":"pageview","u":"https://limited.test/","d":"limited.test"}'
            codes = [srv.request("POST", "/api/event", body).status
                     for _ in range(5)]
            self.assertEqual(codes, [202] * 5)
            r = srv.request("POST", "/api/event", body)
            self.assertEqual(r.status, 429, r)
            self.assertIn("rate limit", r.json()["error"])
            retry = int(r.header("Retry-After"))
            self.assertTrue(1 <= retry <= 60, retry)
            self.assertEqual(srv.totals("limited.test")["pageviews"], 5)
            # Other routes are unaffected.
            self.assertEqual(srv.get("/health").status, 200)
            self.assertEqual(srv.stop(), 0, srv.logs())
        finally:
            srv.cleanup()

    def test_site_rate_limit(self):
        srv = harness.Server(BINARY, {"ANALYTICS_SITE_RATE_LIMIT": "3",
                                      "ANALYTICS_RATE_LIMIT": "0"},
                             name="siterate")
        try:
            srv.add_site("busy.test")
            srv.add_site("quiet.test")
            busy = '{"n":"pageview","u":"https://busy.test/","d":"busy.test"}'
            codes = [srv.request("POST", "/api/event", busy).status
                     for _ in range(4)]
            self.assertEqual(codes, [202, 202, 202, 429])
            quiet = '{"n":"pageview","u":"https://quiet.test/","d":"quiet.test"}'
            self.assertEqual(srv.request("POST", "/api/event", quiet).status,
                             202)
            self.assertEqual(srv.stop(), 0, srv.logs())
        finally:
            srv.cleanup()

    def test_admin_token_printed_once(self):
        env = {"ANALYTICS_ADMIN_TOKEN": ""}
        srv = harness.Server(BINARY, env, name="token")
        try:
            self.assertEqual(srv.stop(), 0)
            out = harness.read(srv.stdout_path)
            m = re.search(r"Admin token \(shown once, stored hashed\): (\S+)",
                          out)
            self.assertIsNotNone(m, out)
            token = m.group(1)
            err = harness.read(srv.stderr_path)
            self.assertNotIn(token, err)
            # Same store again: not printed, and the token works.
            store = f"sqlite://{srv.dir}/analytics.db"
            srv2 = harness.Server(BINARY, dict(env, ANALYTICS_STORE=store),
                                  name="token2")
            try:
                r = srv2.request("GET", "/api/v1/sites",
                                 headers={"Authorization": f"Bearer {token}"})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(srv2.stop(), 0)
                self.assertNotIn("Admin token", harness.read(srv2.stdout_path))
            finally:
                srv2.cleanup()
        finally:
            srv.cleanup()

    def test_help_lists_variables(self):
        import subprocess
        p = subprocess.run([BINARY, "--help"], capture_output=True, text=True,
                           timeout=30)
        text = p.stdout + p.stderr
        for var in ("ANALYTICS_LISTEN", "ANALYTICS_STORE", "ANALYTICS_GEOIP",
                    "ANALYTICS_THREADS", "ANALYTICS_ADMIN_TOKEN",
                    "ANALYTICS_TRUSTED_PROXIES", "ANALYTICS_RATE_LIMIT",
                    "ANALYTICS_SITE_RATE_LIMIT", "ANALYTICS_PUBLIC_URL"):
            self.assertIn(var, text)


class ShutdownTest(unittest.TestCase):
    """Last: SIGTERM exits 0 and the logs hold no IPs, UAs or secrets."""

    def test_sigterm_and_logs(self):
        srv = harness.Server(BINARY, name="shutdown")
        try:
            srv.add_site("logs.test")
            r = srv.request("POST", "/api/event",
                            '{"n":"pageview","u":"https://logs.test/",'
                            '"d":"logs.test"}')
            self.assertEqual(r.status, 202)
            r = srv.admin("POST", "/api/v1/keys", {"site": "logs.test",
                                                   "name": "k"})
            secret = r.json()["key"]
            srv.request("POST", "/api/event", "{bad",
                        {"User-Agent": UA, "X-Forwarded-For": CLIENT_IP_A})
            srv.request("POST", "/api/v2/query", "{}",
                        {"Authorization": "Bearer " + secret})
            self.assertEqual(srv.stop(), 0, srv.logs())
            logs = srv.logs()
            self.assertIn("level=info", logs)
            self.assertRegex(logs, r"ts=\S+ level=info msg=")
            for needle in (ADMIN_TOKEN, secret, CLIENT_IP_A, "Firefox/128.0",
                           "Gecko"):
                self.assertNotIn(needle, logs)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    BINARY = harness.binary_from_argv()
    unittest.main(verbosity=2)
