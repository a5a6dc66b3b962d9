"""Scheduled jobs end to end on one analyticsd (issue #5), real peers only.

    jobs_test.py BIN_DIR

analyticsd (SQLite store) sends to a real SMTP server (python3-aiosmtpd) and
a real HTTP webhook receiver on loopback. Checks:
  1. management API: validation errors are 400 naming the field; admin only.
  2. weekly report: the email arrives once; both parts (text, HTML) carry
     the figures the Stats API answers for the same period, the change the
     API's previous_period comparison answers, and the top pages, sources and
     countries; the unsubscribe link (List-Unsubscribe too) works once.
     A second run of the same period sends nothing.
  3. alerts: the webhook gets {"text","content"} with the message; the
     cool-down holds; an email alert for a custom event arrives; a webhook
     answering 500 is retried with backoff (ledger attempts 2, /metrics).
  4. retention deletes raw events older than retention_days, rollups stay.
  5. salt rotation ran once for today.
Every scenario runs even when an earlier one failed; exits 1 on any failure.
"""
import datetime
import json
import os
import re
import subprocess
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobs_support import (UA, Analyticsd, Results, SmtpServer,  # noqa: E402
                          WebhookReceiver, parts, temp_dir, wait_for)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def track(w, site, url, ts, ip, referrer="", country="", name="pageview"):
    body = {"site": site, "name": name, "url": url, "ts": ts, "ip": ip,
            "user_agent": UA}
    if referrer:
        body["referrer"] = referrer
    if country:
        body["country"] = country
    data = w.ok("POST", "/api/track", body)
    assert data.get("accepted") is True, data


def local_ts(day, hour, minute=0, second=0):
    return datetime.datetime(day.year, day.month, day.day, hour, minute,
                             second, tzinfo=BERLIN).timestamp()


def query(w, body):
    return w.ok("POST", "/api/v2/query", body)


def main():
    bin_dir = sys.argv[1]
    smtp = SmtpServer()
    hooks = WebhookReceiver()
    w = Analyticsd(os.path.join(bin_dir, "analyticsd"),
                   "sqlite://" + os.path.join(
                       temp_dir("jobs-db-"),
                       "a.db"),
                   env={"ANALYTICS_SMTP_URL": smtp.url,
                        "ANALYTICS_SMTP_FROM": "reports@analytics.test",
                        "ANALYTICS_JOBS_TICK": "1",
                        "ANALYTICS_JOBS_RETRY": "1"},
                   name="single")
    res = Results()

    def management():
        w.ok("POST", "/api/v1/sites",
             {"domain": "report.test", "timezone": "Europe/Berlin"})
        for path, body, field in [
            ("/api/v1/reports", {"site": "report.test", "email": "nope"},
             "email"),
            ("/api/v1/reports", {"site": "report.test", "email": "a@b.c",
                                 "frequency": "daily"}, "frequency"),
            ("/api/v1/reports", {"site": "missing.test", "email": "a@b.c"},
             "site"),
            ("/api/v1/alerts", {"site": "report.test", "metric": "bananas",
                                "threshold": 1, "email": "a@b.c"}, "metric"),
            ("/api/v1/alerts", {"site": "report.test", "threshold": 1},
             "webhook_url"),
            ("/api/v1/alerts", {"site": "report.test", "threshold": 1,
                                "webhook_url": "file:///etc/passwd"},
             "webhook_url"),
        ]:
            status, data = w.request("POST", path, body)
            assert status == 400, (path, body, status, data)
            assert data["error"].startswith(field + ":"), (field, data)
        status, _ = w.request("GET", "/api/v1/reports", token=None)
        assert status == 401, status
        status, _ = w.request("GET", "/api/v1/jobs", token="wrong" * 5)
        assert status == 401, status
        status, data = w.request("POST", "/api/v1/jobs/bogus/run")
        assert status == 404 and data["error"].startswith("name:"), data

    def weekly_report():
        today = datetime.datetime.now(BERLIN).date()
        monday = today - datetime.timedelta(days=today.weekday() + 7)
        sunday = monday + datetime.timedelta(days=6)
        iso = monday.isocalendar()
        label = f"{iso[0]}-W{iso[1]:02d}"
        prev_monday = monday - datetime.timedelta(days=7)
        # This period: three visitors; A reads two pages from Hacker News.
        track(w, "report.test", "https://report.test/", local_ts(monday, 10),
              "203.0.113.1", "https://news.ycombinator.com/item?id=1", "DE")
        track(w, "report.test", "https://report.test/pricing",
              local_ts(monday, 10, 1, 30), "203.0.113.1", "", "DE")
        track(w, "report.test", "https://report.test/",
              local_ts(monday + datetime.timedelta(days=2), 15),
              "203.0.113.2", "https://www.google.com/", "FR")
        track(w, "report.test", "https://report.test/blog",
              local_ts(sunday, 22), "203.0.113.3", "", "DE")
        # The period before: one visitor.
        track(w, "report.test", "https://report.test/",
              local_ts(prev_monday + datetime.timedelta(days=3), 9),
              "203.0.113.4", "", "US")
        sub = w.ok("POST", "/api/v1/reports",
                   {"site": "report.test", "email": "owner@report.test",
                    "frequency": "weekly"})
        assert "token" not in sub, sub
        assert [r["id"] for r in w.ok("GET", "/api/v1/reports")] == \
            [sub["id"]]
        run = w.ok("POST", f"/api/v1/jobs/report:{sub['id']}/run",
                   {"period": label})
        assert run["runs"][0]["state"] == "done", run
        assert run["runs"][0]["ran"] is True, run
        msgs = wait_for(lambda: smtp.received(
            lambda m: m["To"] == "owner@report.test"), 10, "the report email")
        assert len(msgs) == 1, len(msgs)
        msg = msgs[0]
        assert "report.test" in msg["Subject"], msg["Subject"]
        assert msg["From"] == "reports@analytics.test", msg["From"]
        text, html = parts(msg)

        first, last = monday.isoformat(), sunday.isoformat()
        metrics = ["visitors", "visits", "pageviews", "bounce_rate",
                   "visit_duration"]
        api = query(w, {"site_id": "report.test", "metrics": metrics,
                        "date_range": [first, last],
                        "include": {"comparisons":
                                    {"mode": "previous_period"}}})
        row = api["results"][0]
        now_vals, change = row["metrics"], row["comparison"]["change"]
        assert now_vals[0] == 3 and now_vals[2] == 4, now_vals  # sanity
        labels = ["Unique visitors", "Total visits", "Total pageviews",
                  "Bounce rate", "Visit duration"]

        def fmt_value(i, v):
            if i == 3:
                return f"{v}%"
            if i == 4:
                return (f"{v}s" if v < 60 else
                        f"{v // 60}m {v % 60:02d}s")
            return str(v)

        def fmt_change(i, c):
            sign = "+" if c > 0 else ""
            return f"{sign}{c}{' pts' if i == 3 else '%'}"

        for i, lab in enumerate(labels):
            want = f"{lab}: {fmt_value(i, now_vals[i])} " \
                   f"({fmt_change(i, change[i])})"
            assert want in text, (want, text)
            cells = re.search(
                rf"<th>{lab}</th><td class=\"value\">([^<]*)</td>"
                rf"<td class=\"change\">([^<]*)</td>", html)
            assert cells, (lab, html)
            assert cells.group(1) == fmt_value(i, now_vals[i]), cells.groups()
            assert cells.group(2) == fmt_change(i, change[i]), cells.groups()
        for dim, title in [("event:page", "Top pages"),
                           ("visit:source", "Top sources"),
                           ("visit:country", "Top countries")]:
            top = query(w, {"site_id": "report.test", "metrics": ["visitors"],
                            "date_range": [first, last], "dimensions": [dim],
                            "order_by": [["visitors", "desc"]],
                            "pagination": {"limit": 5}})["results"]
            assert top, (dim, top)
            block = text.split(f"{title} (visitors):\n")[1].split("\n\n")[0]
            lines = [ln.strip() for ln in block.strip().splitlines()]
            want = [f"{r['dimensions'][0]}: {r['metrics'][0]}" for r in top]
            assert lines == want, (title, lines, want)
            for r in top:
                assert f"<td>{r['dimensions'][0]}</td><td>" \
                       f"{r['metrics'][0]}</td>" in html, (title, r)
        assert f"({label})" in text, text

        # Exactly once per period: a second run sends nothing.
        again = w.ok("POST", f"/api/v1/jobs/report:{sub['id']}/run",
                     {"period": label})
        assert again["runs"][0]["ran"] is False, again
        assert again["runs"][0]["state"] == "done", again
        time.sleep(1.5)
        assert len(smtp.received(
            lambda m: m["To"] == "owner@report.test")) == 1
        ledger = w.ok("GET", f"/api/v1/jobs?job=report:{sub['id']}")
        assert [(r["period"], r["state"], r["attempts"]) for r in ledger] == \
            [(label, "done", 1)], ledger
        # A period that has not ended is refused.
        cur = today.isocalendar()
        status, data = w.request(
            "POST", f"/api/v1/jobs/report:{sub['id']}/run",
            {"period": f"{cur[0]}-W{cur[1]:02d}"})
        assert status == 400 and data["error"].startswith("period:"), data

        # Unsubscribe: the link in the text part and List-Unsubscribe.
        link = re.search(r"Unsubscribe: (\S+)", text).group(1)
        assert msg["List-Unsubscribe"] == f"<{link}>", msg["List-Unsubscribe"]
        assert f'href="{link}"' in html
        path = link.split(f"127.0.0.1:{w.port}", 1)[1]
        token = path.split("token=")[1]
        assert re.fullmatch(r"[0-9a-f]{64}", token), token
        status, _ = w.request("GET", path, token=None)
        assert status == 200  # a confirmation page; nothing happens yet
        assert len(w.ok("GET", "/api/v1/reports")) == 1
        status, _ = w.request("POST", path, "List-Unsubscribe=One-Click",
                              token=None)
        assert status == 200, status
        assert w.ok("GET", "/api/v1/reports") == []
        status, _ = w.request("POST", path, "", token=None)
        assert status == 404, status
        bad = path[:-4] + "0000"
        status, _ = w.request("POST", bad, "", token=None)
        assert status == 404, status

    def monthly_report():
        today = datetime.datetime.now(BERLIN).date()
        last_day = today.replace(day=1) - datetime.timedelta(days=1)
        first_day = last_day.replace(day=1)
        label = f"{first_day.year}-{first_day.month:02d}"
        track(w, "report.test", "https://report.test/monthly",
              local_ts(first_day, 0, 30), "203.0.113.9", "", "NL")
        sub = w.ok("POST", "/api/v1/reports",
                   {"site": "report.test", "email": "monthly@report.test",
                    "frequency": "monthly"})
        run = w.ok("POST", "/api/v1/jobs/reports/run", {"period": label})
        mine = [r for r in run["runs"] if r["job"] == f"report:{sub['id']}"]
        assert len(mine) == 1 and mine[0]["state"] == "done", run
        msg = wait_for(lambda: smtp.received(
            lambda m: m["To"] == "monthly@report.test"), 10,
            "the monthly report")[0]
        assert msg["Subject"] == (f"Monthly report for report.test: "
                                  f"{first_day.isoformat()} to "
                                  f"{last_day.isoformat()}"), msg["Subject"]
        text, _ = parts(msg)
        api = query(w, {"site_id": "report.test",
                        "metrics": ["visitors", "pageviews"],
                        "date_range": [first_day.isoformat(),
                                       last_day.isoformat()]})
        visitors, pageviews = api["results"][0]["metrics"]
        assert visitors >= 1, api
        assert f"Unique visitors: {visitors} (" in text, text
        assert f"Total pageviews: {pageviews} (" in text, text
        assert "/monthly: 1" in text, text

    def alerts():
        w.ok("POST", "/api/v1/sites", {"domain": "alert.test"})
        now = time.time()
        track(w, "alert.test", "https://alert.test/", now - 60, "198.51.100.1")
        rule = w.ok("POST", "/api/v1/alerts",
                    {"site": "alert.test", "name": "Busy",
                     "metric": "visitors", "condition": "above",
                     "threshold": 0, "cooldown_minutes": 60,
                     "webhook_url": hooks.url("/hook-a")})
        # The scheduler (tick 1 s) or this manual run sends it, once.
        w.ok("POST", f"/api/v1/jobs/alert:{rule['id']}/run")
        got = wait_for(lambda: hooks.got("/hook-a"), 10, "the alert webhook")
        ctype, body = got[0]
        assert ctype == "application/json", ctype
        import json
        payload = json.loads(body)
        assert set(payload) == {"text", "content"}, payload
        assert payload["text"] == payload["content"], payload
        assert payload["text"].startswith("Busy: alert.test had 1 visitors"), \
            payload
        # Cool-down: more traffic, ticks and a manual run send nothing more.
        track(w, "alert.test", "https://alert.test/x", time.time() - 5,
              "198.51.100.2")
        run = w.ok("POST", f"/api/v1/jobs/alert:{rule['id']}/run")
        assert run["runs"][0]["ran"] is False, run
        assert run["runs"][0].get("note") == "cool-down", run
        time.sleep(3)
        assert len(hooks.got("/hook-a")) == 1, hooks.got("/hook-a")

        # An email alert on a custom event count.
        for i in range(3):
            track(w, "alert.test", "https://alert.test/signup",
                  time.time() - 30, f"198.51.100.{10 + i}", name="Signup")
        mail_rule = w.ok("POST", "/api/v1/alerts",
                         {"site": "alert.test", "name": "Signups",
                          "metric": "events", "event": "Signup",
                          "condition": "above", "threshold": 2,
                          "email": "ops@alert.test"})
        w.ok("POST", f"/api/v1/jobs/alert:{mail_rule['id']}/run")
        msgs = wait_for(lambda: smtp.received(
            lambda m: m["To"] == "ops@alert.test"), 10, "the alert email")
        time.sleep(2)
        msgs = smtp.received(lambda m: m["To"] == "ops@alert.test")
        assert len(msgs) == 1, len(msgs)
        text, _ = parts(msgs[0])
        assert 'had 3 "Signup" events in the last hour (above 2)' in text, text

        # A webhook that fails once: failed, then retried after the backoff.
        errors_before = w.metric(
            'analytics_job_deliveries_total{channel="webhook",outcome="error"}')
        flaky = w.ok("POST", "/api/v1/alerts",
                     {"site": "alert.test", "metric": "visitors",
                      "condition": "above", "threshold": 0,
                      "webhook_url": hooks.url("/fail-1/hook")})
        job = f"alert:{flaky['id']}"

        def done():
            rows = w.ok("GET", f"/api/v1/jobs?job={job}")
            return rows if rows and rows[0]["state"] == "done" else None
        rows = wait_for(done, 15, "the flaky webhook's retry")
        assert len(rows) == 1 and rows[0]["attempts"] == 2, rows
        assert len(hooks.got("/fail-1/hook")) == 1, hooks.got("/fail-1/hook")
        assert w.metric('analytics_job_deliveries_total{channel="webhook",'
                        'outcome="error"}') >= errors_before + 1
        assert w.metric('analytics_job_retries_total{job="alert"}') >= 1

    def retention():
        w.ok("POST", "/api/v1/sites", {"domain": "ret.test"})
        now = time.time()
        old = now - 40 * 86400
        track(w, "ret.test", "https://ret.test/old1", old, "192.0.2.1")
        track(w, "ret.test", "https://ret.test/old2", old + 60, "192.0.2.1")
        track(w, "ret.test", "https://ret.test/new", now - 60, "192.0.2.2")
        status, data = w.request("PUT", "/api/v1/sites/ret.test",
                                 {"retention_days": -1})
        assert status == 400 and data["error"].startswith("retention_days")
        w.ok("PUT", "/api/v1/sites/ret.test", {"retention_days": 30})
        first = (datetime.date.today() - datetime.timedelta(days=45))
        rng = [first.isoformat(),
               (datetime.date.today() + datetime.timedelta(days=1)).isoformat()]

        def pageviews(raw):
            body = {"site_id": "ret.test", "metrics": ["pageviews"],
                    "date_range": rng}
            if raw:  # leaving imports out forces the raw-event path
                body["include"] = {"imports": False}
            r = query(w, body)
            n = r["results"][0]["metrics"][0] if r["results"] else 0
            return n, r["meta"]["source"]

        assert pageviews(True)[0] == 3
        run = w.ok("POST", "/api/v1/jobs/retention/run")
        mine = [r for r in run["runs"] if r.get("site") == "ret.test"]
        # The scheduler may have run today's retention first (tick 1 s).
        rows = w.ok("GET", "/api/v1/jobs?job=retention")
        row = [r for r in rows if r.get("site") == "ret.test"]
        assert row and row[0]["state"] == "done", (mine, rows)
        assert pageviews(True) == (1, "events"), pageviews(True)
        assert pageviews(False) == (3, "rollups"), pageviews(False)
        assert w.metric("analytics_retention_deleted_events_total") >= 2
        # Erase all data of the site: raw events and rollups go, site stays.
        status, _ = w.request("POST", "/api/v1/sites/ret.test/erase",
                              token=None)
        assert status == 401, status
        w.ok("POST", "/api/v1/sites/ret.test/erase")
        assert pageviews(True)[0] == 0 and pageviews(False)[0] == 0
        assert any(s["domain"] == "ret.test"
                   for s in w.ok("GET", "/api/v1/sites"))

    def salts():
        today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        rows = wait_for(lambda: w.ok("GET", "/api/v1/jobs?job=salts"), 5,
                        "the salt rotation run")
        assert rows[0]["period"] == today and rows[0]["state"] == "done", rows
        run = w.ok("POST", "/api/v1/jobs/salts/run")
        assert run["runs"][0]["ran"] is False, run
        assert w.metric("analytics_jobs_leader") == 1

    def starttls_and_auth():
        # A second SMTP server that requires STARTTLS (certificate from a
        # throwaway CA) and AUTH, and a second analyticsd using it.
        d = temp_dir("jobs-tls-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", key, "-out", cert, "-days", "1", "-subj",
             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True)
        secret = "s3cret-Smtp-Passw0rd"
        tls = SmtpServer(tls_cert=cert, tls_key=key, login=("mailer", secret))
        env = {"ANALYTICS_SMTP_URL": tls.url, "ANALYTICS_SMTP_STARTTLS": "1",
               "ANALYTICS_SMTP_USER": "mailer",
               "ANALYTICS_SMTP_PASSWORD": secret,
               "ANALYTICS_SMTP_CA_FILE": cert, "ANALYTICS_JOBS_TICK": "3600"}
        v = Analyticsd(w.binary, "memory://", env=env, name="tls")
        wrong = None
        try:
            v.ok("POST", "/api/v1/sites", {"domain": "tls.test"})
            sub = v.ok("POST", "/api/v1/reports",
                       {"site": "tls.test", "email": "tls@tls.test"})
            run = v.ok("POST", f"/api/v1/jobs/report:{sub['id']}/run")
            assert run["runs"][0]["state"] == "done", run
            msgs = wait_for(lambda: tls.received(), 10, "the STARTTLS email")
            assert msgs[0]["To"] == "tls@tls.test"
            # A wrong password: failed, the error says smtp, no secret shown.
            env["ANALYTICS_SMTP_PASSWORD"] = "wrong-password-123"
            wrong = Analyticsd(w.binary, "memory://", env=env, name="tls2")
            wrong.ok("POST", "/api/v1/sites", {"domain": "tls.test"})
            sub = wrong.ok("POST", "/api/v1/reports",
                           {"site": "tls.test", "email": "tls@tls.test"})
            run = wrong.ok("POST", f"/api/v1/jobs/report:{sub['id']}/run")
            row = run["runs"][0]
            assert row["state"] == "failed", row
            assert row["error"].startswith("smtp:"), row
            assert "wrong-password" not in json.dumps(run)
            assert "wrong-password" not in wrong.stderr()
            assert len(tls.received()) == 1
        finally:
            v.stop()
            if wrong:
                wrong.stop()
            tls.stop()

    try:
        res.run("SMTP with STARTTLS and AUTH", starttls_and_auth)
        res.run("management API validation", management)
        res.run("weekly report equals the Stats API, once", weekly_report)
        res.run("monthly report in the site's time zone", monthly_report)
        res.run("alerts: webhook, cool-down, email, retry", alerts)
        res.run("retention keeps rollups", retention)
        res.run("salt rotation once a day", salts)
    finally:
        w.stop()
        smtp.stop()
        hooks.stop()
        if res.failed:
            print(w.stderr()[-3000:])
    res.exit()


if __name__ == "__main__":
    main()
