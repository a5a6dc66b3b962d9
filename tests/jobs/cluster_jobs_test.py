"""Exactly-once jobs across three analyticsd workers (issue #5).

    postgres.sh run -- redis.sh run -- cluster_jobs_test.py BIN_DIR

Three workers share a PostgreSQL store (ANALYTICS_TEST_POSTGRES_URL) and a
Redis coordinator (ANALYTICS_TEST_REDIS_URL, leader lease); they send to one
real SMTP server (python3-aiosmtpd) on loopback. Every worker pauses
ANALYTICS_JOBS_TEST_PAUSE_MS between claiming a ledger row and sending.
  1. the same report (site, period) triggered on all three at once: exactly
     one email, exactly one worker says it ran it.
  2. kill -9 of the leader after it claimed a report and before it sent it:
     once the claim is stale (the leader lease), the new leader takes it over
     and the email arrives exactly once; the ledger row is done, attempt 2,
     held by another worker.
Needs Engine::IsLeader()/WorkerName() backed by the coordinator and the
--coord/--worker-id flags ($ANALYTICS_COORD, $ANALYTICS_WORKER_ID); without
them it fails saying so.
"""
import datetime
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobs_support import (Analyticsd, Results, SmtpServer,  # noqa: E402
                          wait_for)

PAUSE_MS = 6000


def week_label(d):
    iso = d.isocalendar()
    return f"{iso[0]}-W{iso[1]:02d}"


def main():
    bin_dir = sys.argv[1]
    pg = os.environ.get("ANALYTICS_TEST_POSTGRES_URL")
    redis = os.environ.get("ANALYTICS_TEST_REDIS_URL")
    if not pg or not redis:
        raise SystemExit("FAIL: run under tests/services/postgres.sh and "
                         "tests/services/redis.sh (ANALYTICS_TEST_POSTGRES_URL"
                         " and ANALYTICS_TEST_REDIS_URL are not set)")
    smtp = SmtpServer()
    workers = []
    for i in (1, 2, 3):
        workers.append(Analyticsd(
            os.path.join(bin_dir, "analyticsd"), pg, name=f"w{i}",
            env={"ANALYTICS_COORD": redis, "ANALYTICS_WORKER_ID": str(i),
                 "ANALYTICS_SMTP_URL": smtp.url,
                 "ANALYTICS_JOBS_TICK": "1", "ANALYTICS_JOBS_RETRY": "1",
                 "ANALYTICS_JOBS_TEST_PAUSE_MS": str(PAUSE_MS)}))
    res = Results()
    today = datetime.datetime.now(datetime.timezone.utc).date()
    p1_monday = today - datetime.timedelta(days=today.weekday() + 7)
    p2_monday = p1_monday - datetime.timedelta(days=7)
    p1, p2 = week_label(p1_monday), week_label(p2_monday)
    state = {}

    def leaders():
        return [w for w in workers if w.proc.poll() is None and
                w.metric("analytics_jobs_leader") == 1]

    def setup():
        # One leader among three (else the session work has not landed).
        time.sleep(3)
        n = len(leaders())
        assert n == 1, (
            f"{n} workers say they are the jobs leader; this test waits for "
            "Engine::IsLeader()/WorkerName() through the coordinator and "
            "analyticsd's --coord/--worker-id (helper 'session')")
        w = workers[0]
        w.ok("POST", "/api/v1/sites", {"domain": "cluster.test"})
        for day, ip in [(p1_monday, "203.0.113.1"), (p2_monday, "203.0.113.2")]:
            ts = datetime.datetime(day.year, day.month, day.day, 12,
                                   tzinfo=datetime.timezone.utc).timestamp()
            w.ok("POST", "/api/track",
                 {"site": "cluster.test", "url": "https://cluster.test/",
                  "ts": ts, "ip": ip, "user_agent": "Mozilla/5.0 Firefox/128.0"})
        sub = w.ok("POST", "/api/v1/reports",
                   {"site": "cluster.test", "email": "team@cluster.test"})
        state["id"] = sub["id"]

    def mails(label):
        mid = f"<report-{state['id']}-{label}@analytics>"
        return smtp.received(lambda m: m["Message-ID"] == mid)

    def same_report_on_all_three():
        results = [None] * 3

        def trigger(i):
            results[i] = workers[i].ok(
                "POST", f"/api/v1/jobs/report:{state['id']}/run",
                {"period": p1}, timeout=60)
        threads = [threading.Thread(target=trigger, args=(i,))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ran = [r["runs"][0]["ran"] for r in results]
        assert ran.count(True) == 1, results
        wait_for(lambda: mails(p1), 30, f"the {p1} report")
        time.sleep(3)
        assert len(mails(p1)) == 1, len(mails(p1))
        rows = workers[1].ok("GET", f"/api/v1/jobs?job=report:{state['id']}")
        assert [(r["period"], r["state"], r["attempts"]) for r in rows] == \
            [(p1, "done", 1)], rows

    def leader_killed_between_claim_and_send():
        leader = wait_for(lambda: leaders()[:1], 30, "a leader")[0]
        other = next(w for w in workers if w is not leader)

        def trigger():
            try:
                leader.request("POST", f"/api/v1/jobs/report:{state['id']}/run",
                               {"period": p2}, timeout=60)
            except OSError:
                pass  # killed mid-request
        t = threading.Thread(target=trigger, daemon=True)
        t.start()

        def claimed():
            rows = other.ok("GET", f"/api/v1/jobs?job=report:{state['id']}")
            return [r for r in rows if r["period"] == p2 and
                    r["state"] == "claimed"]
        row = wait_for(claimed, 10, f"the leader's claim on {p2}")[0]
        dead_holder = row["holder"]
        leader.kill9()
        assert not mails(p2), "sent before the kill: pause too short"
        wait_for(lambda: mails(p2), 90, f"the {p2} report after takeover")
        time.sleep(PAUSE_MS / 1000 + 3)
        assert len(mails(p2)) == 1, len(mails(p2))
        rows = other.ok("GET", f"/api/v1/jobs?job=report:{state['id']}")
        mine = [r for r in rows if r["period"] == p2]
        assert len(mine) == 1 and mine[0]["state"] == "done" and \
            mine[0]["attempts"] == 2 and mine[0]["holder"] != dead_holder, \
            (mine, dead_holder)

    try:
        res.run("setup: one leader among three workers", setup)
        if not res.failed:
            res.run("same report on all three: one email",
                    same_report_on_all_three)
            res.run("kill -9 of the leader after claiming: one email",
                    leader_killed_between_claim_and_send)
    finally:
        for w in workers:
            w.stop()
        smtp.stop()
        if res.failed:
            for w in workers:
                print(f"--- {w.dir} stderr (tail)\n{w.stderr()[-1500:]}")
    res.exit()


if __name__ == "__main__":
    main()
