#!/usr/bin/env python3
"""HTTP-level tests of analyticsd's dashboard routes (standard library only).

    python3 tests/browser/dashboard_http_test.py path/to/analyticsd

Login and the session cookie (flags, signature, expiry of the credential:
revoked key, replaced admin token), the cookie on the Stats API with its CSRF
rule, two workers sharing one store (no shared memory), shared links
(create/list/revoke, read-only, scoped to one site), the security headers of
every dashboard answer, and assets that load nothing from elsewhere.
"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

BINARY = None
ADMIN = "adm_dash_http_0123456789abcdef"


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "scripts"))
from free_port import free_port  # noqa: E402,F401  (shared: scripts/free_port.py)


class Worker:
    def __init__(self, store, token=ADMIN, login_limit=1000):
        self.port = free_port()
        env = dict(os.environ, ANALYTICS_LISTEN=f"127.0.0.1:{self.port}",
                   ANALYTICS_STORE=store, ANALYTICS_ADMIN_TOKEN=token,
                   ANALYTICS_THREADS="8",
                   ANALYTICS_LOGIN_RATE_LIMIT=str(login_limit))
        self.proc = subprocess.Popen([BINARY], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("analyticsd did not start: " +
                                   self.proc.stderr.read().decode()[-2000:])
            time.sleep(0.05)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body)
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        out = (r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
        conn.close()
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def bearer(token=ADMIN):
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def form(**fields):
    return urllib.parse.urlencode(fields), {
        "Content-Type": "application/x-www-form-urlencoded"}


class DashboardHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="analyticsd-dash-http-")
        cls.store = f"sqlite://{cls.dir}/a.db"
        cls.a = Worker(cls.store)
        for domain in ("one.test", "two.test"):
            s, _, body = cls.a.request("POST", "/api/v1/sites", {"domain": domain}, bearer())
            assert s == 201, body
        s, _, body = cls.a.request(
            "POST", "/api/track",
            {"site": "one.test", "name": "pageview", "url": "https://one.test/",
             "ip": "10.1.1.1", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) "
             "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"},
            bearer())
        assert s == 202, body

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def login(self, worker, token, extra=None):
        body, headers = form(token=token, next="/dashboard?site=one.test")
        headers.update(extra or {})
        return worker.request("POST", "/dashboard/login", body, headers)

    def cookie_of(self, headers):
        cookies = header(headers, "Set-Cookie")
        self.assertEqual(len(cookies), 1, cookies)
        m = re.match(r"analytics_session=([^;]+);", cookies[0])
        self.assertTrue(m, cookies[0])
        return m.group(1), cookies[0]

    def query(self, worker, cookie, site="one.test", extra=None):
        headers = {"Cookie": f"analytics_session={cookie}"}
        headers.update(extra if extra is not None else {"X-Analytics-Dashboard": "1"})
        return worker.request("POST", "/api/v2/query", json.dumps(
            {"site_id": site, "metrics": ["visitors"], "date_range": "7d"}), headers)

    def assert_security_headers(self, headers, what):
        csp = header(headers, "Content-Security-Policy")
        self.assertEqual(len(csp), 1, what)
        for part in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                     "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                     "form-action 'self'"):
            self.assertIn(part, csp[0], what)
        self.assertNotIn("unsafe", csp[0], what)
        self.assertEqual(header(headers, "X-Frame-Options"), ["DENY"], what)
        self.assertEqual(header(headers, "X-Content-Type-Options"), ["nosniff"], what)
        self.assertEqual(header(headers, "Referrer-Policy"), ["same-origin"], what)

    # ------------------------------------------------------------ login --
    def test_login_wrong_token_fails(self):
        s, h, body = self.login(self.a, "adm_not_the_token_000000")
        self.assertEqual(s, 401)
        self.assertEqual(header(h, "Set-Cookie"), [])
        self.assertIn("Wrong token", body)
        self.assert_security_headers(h, "login error")
        s, h, _ = self.login(self.a, "")
        self.assertEqual(s, 401)

    def test_login_sets_signed_cookie(self):
        s, h, _ = self.login(self.a, ADMIN)
        self.assertEqual(s, 303)
        self.assertEqual(header(h, "Location"), ["/dashboard?site=one.test"])
        cookie, line = self.cookie_of(h)
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(flag, line)
        self.assertNotIn("Secure", line)
        self.assertTrue(cookie.startswith("v1.a.0."), cookie)
        # The dashboard page and the session API accept it.
        s, h, body = self.a.request("GET", "/dashboard", headers={"Cookie": f"analytics_session={cookie}"})
        self.assertEqual(s, 200)
        self.assertIn("/dashboard/assets/app.js", body)
        s, _, body = self.a.request("GET", "/dashboard/api/session", headers={
            "Cookie": f"analytics_session={cookie}", "X-Analytics-Dashboard": "1"})
        self.assertEqual(s, 200, body)
        self.assertEqual(json.loads(body)["kind"], "admin")
        self.assertEqual({x["domain"] for x in json.loads(body)["sites"]}, {"one.test", "two.test"})
        # Behind an HTTPS proxy the cookie is Secure.
        _, h, _ = self.login(self.a, ADMIN, {"X-Forwarded-Proto": "https"})
        self.assertIn("; Secure", self.cookie_of(h)[1])

    def test_login_refuses_other_origins_and_open_redirects(self):
        s, h, _ = self.login(self.a, ADMIN, {"Origin": "http://evil.example"})
        self.assertEqual(s, 403)
        self.assertEqual(header(h, "Set-Cookie"), [])
        for nxt in ("//evil.example/x", "https://evil.example", "/dashboard//evil", "/other"):
            body, headers = form(token=ADMIN, next=nxt)
            s, h, _ = self.a.request("POST", "/dashboard/login", body, headers)
            self.assertEqual(s, 303)
            self.assertEqual(header(h, "Location"), ["/dashboard"], nxt)
        # The login page escapes what it echoes.
        s, _, body = self.a.request("GET", "/dashboard/login?next=/dashboard%22%3E%3Cscript%3E")
        self.assertEqual(s, 200)
        self.assertNotIn("<script>", body)

    def test_login_attempts_are_limited_per_client(self):
        w = Worker(self.store, login_limit=3)
        try:
            for _ in range(3):
                self.assertEqual(self.login(w, "adm_guess_000000000000000")[0], 401)
            s, h, body = self.login(w, ADMIN)
            self.assertEqual(s, 429, body)
            self.assertEqual(header(h, "Set-Cookie"), [])
            self.assertTrue(header(h, "Retry-After"))
            self.assertIn("Too many login attempts", body)
        finally:
            w.stop()

    def test_no_session_redirects_to_login(self):
        s, h, _ = self.a.request("GET", "/dashboard?site=one.test&period=7d")
        self.assertEqual(s, 303)
        self.assertEqual(header(h, "Location"),
                         ["/dashboard/login?next=%2Fdashboard%3Fsite%3Done.test%26period%3D7d"])
        s, _, _ = self.a.request("GET", "/dashboard", headers={"Cookie": "analytics_session=v1.a.0.9999999999.AAAA"})
        self.assertEqual(s, 303)

    # ------------------------------------------------- cookie on the API --
    def test_cookie_on_stats_api_needs_csrf_header(self):
        _, h, _ = self.login(self.a, ADMIN)
        cookie, _ = self.cookie_of(h)
        s, _, body = self.query(self.a, cookie, extra={})
        self.assertEqual(s, 403, body)
        self.assertIn("csrf", body)
        s, _, body = self.query(self.a, cookie, extra={"Content-Type": "text/plain"})
        self.assertEqual(s, 403, body)
        s, _, body = self.query(self.a, cookie)
        self.assertEqual(s, 200, body)
        self.assertEqual(json.loads(body)["results"][0]["metrics"], [1])
        s, _, body = self.query(self.a, cookie, extra={"Content-Type": "application/json"})
        self.assertEqual(s, 200, body)
        s, _, body = self.a.request("GET", "/api/v1/stats/realtime/visitors?site_id=one.test", headers={
            "Cookie": f"analytics_session={cookie}", "X-Analytics-Dashboard": "1"})
        self.assertEqual((s, body), (200, "1"))

    def test_tampered_cookies_are_refused(self):
        _, h, _ = self.login(self.a, ADMIN)
        cookie, _ = self.cookie_of(h)
        v, kind, kid, exp, sig = cookie.split(".")
        forged = [
            f"{v}.{kind}.{kid}.{int(exp) + 1000}.{sig}",  # longer life
            f"{v}.k.1.{exp}.{sig}",                       # another principal
            f"{v}.{kind}.{kid}.{exp}.{sig[:-2]}AA",       # another signature
            f"{v}.{kind}.{kid}.{exp}.",                   # none
            "garbage",
        ]
        for c in forged:
            s, _, body = self.query(self.a, c)
            self.assertEqual(s, 401, f"{c}: {body}")

    def test_cookie_works_on_another_worker(self):
        # Two processes on one store share nothing but the store: the signing
        # secret comes from it.
        b = Worker(self.store)
        try:
            _, h, _ = self.login(self.a, ADMIN)
            cookie, _ = self.cookie_of(h)
            s, _, body = self.query(b, cookie)
            self.assertEqual(s, 200, body)
        finally:
            b.stop()

    def test_key_session_is_scoped_and_ends_on_revocation(self):
        s, _, body = self.a.request("POST", "/api/v1/keys", {"site": "one.test", "name": "dash"}, bearer())
        self.assertEqual(s, 201, body)
        key = json.loads(body)
        s, h, _ = self.login(self.a, key["key"])
        self.assertEqual(s, 303)
        cookie, _ = self.cookie_of(h)
        self.assertTrue(cookie.startswith(f"v1.k.{key['id']}."), cookie)
        s, _, body = self.a.request("GET", "/dashboard/api/session", headers={
            "Cookie": f"analytics_session={cookie}", "X-Analytics-Dashboard": "1"})
        self.assertEqual(json.loads(body)["kind"], "key")
        self.assertEqual([x["domain"] for x in json.loads(body)["sites"]], ["one.test"])
        self.assertEqual(self.query(self.a, cookie)[0], 200)
        self.assertEqual(self.query(self.a, cookie, site="two.test")[0], 403)
        # Management stays admin-only.
        s, _, _ = self.a.request("GET", "/api/v1/sites", headers={
            "Cookie": f"analytics_session={cookie}", "X-Analytics-Dashboard": "1"})
        self.assertEqual(s, 403)
        s, _, body = self.a.request("DELETE", f"/api/v1/keys/{key['id']}", headers=bearer())
        self.assertEqual(s, 200, body)
        s, _, body = self.query(self.a, cookie)
        self.assertEqual(s, 401, body)
        self.assertIn("revoked", body)

    def test_logout_clears_cookie(self):
        s, h, _ = self.a.request("POST", "/dashboard/logout", "", {"Origin": f"http://127.0.0.1:{self.a.port}",
                                                                  "Host": f"127.0.0.1:{self.a.port}"})
        self.assertEqual(s, 303)
        self.assertEqual(header(h, "Location"), ["/dashboard/login"])
        line = header(h, "Set-Cookie")[0]
        self.assertTrue(line.startswith("analytics_session=;"), line)
        self.assertIn("Max-Age=0", line)

    # ---------------------------------------------------- shared links --
    def test_shared_links(self):
        s, _, body = self.a.request("POST", "/api/v1/keys", {"site": "one.test"}, bearer())
        key = json.loads(body)["key"]
        s, h, body = self.a.request("POST", "/api/v1/shares", {"site": "one.test", "name": "wiki"}, bearer(key))
        self.assertEqual(s, 201, body)
        share = json.loads(body)
        self.assertTrue(share["token"].startswith("shr_"))
        self.assertEqual(share["path"], f"/share/{share['token']}")
        self.assertEqual(share["site"], "one.test")
        s, _, body = self.a.request("POST", "/api/v1/shares", {"site": "two.test"}, bearer(key))
        self.assertEqual(s, 403, body)
        s, _, body = self.a.request("POST", "/api/v1/shares", {"site": 5}, bearer())
        self.assertEqual(s, 400, body)
        self.assertIn("site", json.loads(body)["error"])
        s, _, body = self.a.request("POST", "/api/v1/shares", {"site": "one.test"})
        self.assertEqual(s, 401, body)
        # Listed without the token (only its hash is stored).
        s, _, body = self.a.request("GET", "/api/v1/shares", headers=bearer(key))
        self.assertEqual(s, 200, body)
        listed = json.loads(body)
        self.assertIn(share["id"], [x["id"] for x in listed])
        self.assertNotIn(share["token"], body)
        self.assertTrue(all(x["site"] == "one.test" for x in listed))
        # The link: page, stats of its site only, nothing else.
        s, h, page = self.a.request("GET", share["path"])
        self.assertEqual(s, 200)
        self.assert_security_headers(h, "share page")
        sh = {"X-Analytics-Share": share["token"], "Content-Type": "application/json"}
        q = {"site_id": "one.test", "metrics": ["visitors"], "date_range": "7d"}
        s, _, body = self.a.request("POST", "/api/v2/query", q, sh)
        self.assertEqual(s, 200, body)
        s, _, body = self.a.request("POST", "/api/v2/query", dict(q, site_id="two.test"), sh)
        self.assertEqual(s, 403, body)
        s, _, body = self.a.request("GET", "/dashboard/api/session", headers=sh)
        self.assertEqual(json.loads(body)["kind"], "share")
        self.assertEqual([x["domain"] for x in json.loads(body)["sites"]], ["one.test"])
        for method, path, payload in (("GET", "/api/v1/shares", None),
                                      ("POST", "/api/v1/shares", {"site": "one.test"}),
                                      ("GET", "/api/v1/sites", None),
                                      ("GET", "/api/v1/keys", None)):
            s, _, body = self.a.request(method, path, payload, sh)
            self.assertIn(s, (401, 403), f"{method} {path} with a share token: {body}")
        s, _, _ = self.a.request("GET", "/dashboard", headers=sh)
        self.assertEqual(s, 303, "a share token is no login")
        # Revoked: refused everywhere.
        s, _, body = self.a.request("DELETE", f"/api/v1/shares/{share['id']}", headers=bearer(key))
        self.assertEqual(s, 200, body)
        s, _, body = self.a.request("GET", share["path"])
        self.assertEqual(s, 404)
        self.assertIn("revoked", body)
        s, _, body = self.a.request("POST", "/api/v2/query", q, sh)
        self.assertEqual(s, 401, body)
        s, _, body = self.a.request("DELETE", f"/api/v1/shares/{share['id']}", headers=bearer(key))
        self.assertEqual(s, 404, body)
        s, _, _ = self.a.request("GET", "/share/shr_0000000000000000")
        self.assertEqual(s, 404)

    # ------------------------------------------------ headers and assets --
    def test_security_headers_and_self_contained_assets(self):
        _, h, _ = self.login(self.a, ADMIN)
        cookie, _ = self.cookie_of(h)
        c = {"Cookie": f"analytics_session={cookie}", "X-Analytics-Dashboard": "1"}
        pages = {}
        for path in ("/dashboard", "/dashboard/login", "/dashboard/assets/app.js",
                     "/dashboard/assets/app.css", "/dashboard/api/session", "/share/shr_nope"):
            s, h, body = self.a.request("GET", path, headers=c)
            self.assertIn(s, (200, 404), path)
            self.assert_security_headers(h, path)
            pages[path] = (h, body)
        self.assertTrue(header(pages["/dashboard/assets/app.js"][0], "Content-Type")[0].startswith("text/javascript"))
        self.assertTrue(header(pages["/dashboard/assets/app.css"][0], "Content-Type")[0].startswith("text/css"))
        for path in ("/dashboard", "/dashboard/login"):
            html = pages[path][1]
            # No inline script or style (the CSP would block them anyway).
            self.assertIsNone(re.search(r"<script(?![^>]*\bsrc=)", html), path)
            self.assertNotIn(" style=", html, path)
            self.assertNotIn("<style", html, path)
            self.assertEqual(re.findall(r"(?:src|href)=\"(?:https?:)?//", html), [], path)
        js = pages["/dashboard/assets/app.js"][1]
        # The only absolute URL in the script is the SVG namespace.
        self.assertEqual(set(re.findall(r"https?://[^\"'`\s)]+", js)), {"http://www.w3.org/2000/svg"})
        self.assertNotIn("innerHTML", js)
        self.assertNotIn("@import", pages["/dashboard/assets/app.css"][1])
        self.assertNotIn("url(", pages["/dashboard/assets/app.css"][1])

    def test_zz_admin_token_replaced_ends_sessions(self):
        _, h, _ = self.login(self.a, ADMIN)
        cookie, _ = self.cookie_of(h)
        self.assertEqual(self.query(self.a, cookie)[0], 200)
        # Another worker starts with a new admin token: the store's hash
        # changes, and with it every admin session.
        c = Worker(self.store, token="adm_rotated_0123456789abcdef")
        try:
            s, _, body = self.query(self.a, cookie)
            self.assertEqual(s, 401, body)
            s, _, body = self.query(c, cookie)
            self.assertEqual(s, 401, body)
        finally:
            c.stop()
            # Give the old token back to the other tests' worker.
            d = Worker(self.store)
            d.stop()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: dashboard_http_test.py path/to/analyticsd", file=sys.stderr)
        sys.exit(2)
    BINARY = os.path.abspath(sys.argv.pop(1))
    if not os.access(BINARY, os.X_OK):
        print(f"FAIL: analyticsd not found at {BINARY}", file=sys.stderr)
        sys.exit(1)
    unittest.main(verbosity=2)
