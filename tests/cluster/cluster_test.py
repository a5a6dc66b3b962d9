"""A real cluster on loopback, through a real load balancer (issue #4).

    cluster_test.py --lb haproxy|caddy|nginx BIN_DIR

Starts `deploy/local-cluster up --lb LB` (PostgreSQL store, Redis with AOF as
the coordinator, three analyticsd workers, HAProxy, Caddy or nginx
terminating TLS with a generated certificate) in a temporary state directory,
then checks:

  1. one visitor across workers: pageviews of one client (same IP and user
     agent) land on all three workers (per-worker
     analytics_events_accepted_total); the Stats API through the balancer and
     on every worker says visitors 1, visits 1, pageviews N. The client talks
     from 127.0.0.2 and the workers trust only 127.0.0.1 (the balancer): the
     events sent through the balancer count as the same visitor only if the
     balancer passes the client address in X-Forwarded-For.
  2. a site created through the balancer takes events on every worker at
     once.
  3. kill -9 of a worker under load: every event acknowledged with a 2xx is
     stored exactly once (unique page per event), no page twice, and the
     balancer routed around the dead worker (only 2xx answers between the
     health checks' reaction time and the restart).
  4. mixed traffic (pageviews and custom events of 25 visitors, several
     sessions each, referrers, UTM tags, props) sent through the balancer
     gives the same Stats API answers, through the balancer and on every
     worker, as a single-process SQLite analyticsd fed the same events.
  5. PostgreSQL stopped, then Redis stopped: every worker's /ready answers
     503, POST /api/event answers 503 (never a 2xx) on every worker and
     through the balancer; once the service is back the workers recover by
     themselves (/ready 200, events accepted and counted).

Every scenario runs even when an earlier one failed; the last line is
"N passed, M failed". Python 3 standard library only. Bounded: about a
minute; every wait has a deadline.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "scripts"))
from free_port import free_port  # noqa: E402  (scripts/free_port.py)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOCAL_CLUSTER = os.path.join(ROOT, "deploy", "local-cluster")
UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
      "Firefox/128.0")
CLIENT_ADDR = "127.0.0.2"  # not trusted by the workers; the balancer is
# How long the balancer may take to notice a dead or not-ready worker
# (health checks every 1 s, fall 2) before every answer must be a 2xx again.
LB_REACTION_S = 4.0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Cluster:
    def __init__(self, lb, bin_dir):
        self.lb = lb
        self.dir = tempfile.mkdtemp(prefix=f"analytics-cluster-{lb}-")
        os.chmod(self.dir, 0o755)  # PostgreSQL runs as postgres when root
        self.env = dict(os.environ)
        self.env.update({
            "LOCAL_CLUSTER_DIR": self.dir,
            "LOCAL_CLUSTER_PORT": "0",
            "ANALYTICS_BIN_DIR": bin_dir,
            # One test client sends everything: no per-IP or per-site limits.
            "ANALYTICS_RATE_LIMIT": "0",
            "ANALYTICS_SITE_RATE_LIMIT": "0",
            "ANALYTICS_THREADS": "48",
        })
        self.state = {}
        self.bin_dir = bin_dir

    def run(self, *args, timeout=120):
        r = subprocess.run([LOCAL_CLUSTER, *args], env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(
                f"deploy/local-cluster {' '.join(args)} failed "
                f"(exit {r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                f"{self.logs_tail()}")
        return r.stdout

    def up(self):
        out = self.run("up", "--lb", self.lb)
        log(out.strip())
        with open(os.path.join(self.dir, "cluster.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                self.state[k] = v
        with open(self.state["ADMIN_TOKEN_FILE"]) as f:
            self.token = f.read().strip()
        self.lb_port = int(self.state["LB_PORT"])
        self.worker_ports = [int(self.state[f"WORKER{i}_PORT"])
                             for i in range(1, 4)]
        self.ssl = ssl.create_default_context(cafile=self.state["CA_CERT"])

    def started_pids(self):
        """The pids of every process local-cluster started (pid files and
        PostgreSQL's postmaster.pid)."""
        pids = {}
        run = os.path.join(self.dir, "run")
        for name in os.listdir(run) if os.path.isdir(run) else []:
            if name.endswith(".pid"):
                with open(os.path.join(run, name)) as f:
                    pids[name[:-4]] = int(f.read().split()[0])
        pm = os.path.join(self.dir, "pg", "data", "postmaster.pid")
        if os.path.exists(pm):
            with open(pm) as f:
                pids["postgres"] = int(f.readline())
        return pids

    def down(self):
        """`local-cluster down`, then checks nothing it started still runs."""
        try:
            pids = self.started_pids()
            self.run("down", timeout=90)
            alive = {n: p for n, p in pids.items() if pid_alive(p)}
            assert not alive, f"still running after down: {alive}"
            if self.state:  # `up` had succeeded: all of them were there
                assert {"lb", "redis", "postgres"} <= set(pids), (
                    f"pid files missing: {pids}")
        finally:
            if os.environ.get("KEEP_CLUSTER_DIR"):
                log(f"state kept in {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def logs_tail(self, n=15):
        out = []
        logs = os.path.join(self.dir, "logs")
        for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            with open(os.path.join(logs, name), errors="replace") as f:
                lines = f.readlines()[-n:]
            out.append(f"--- {name} (last {n} lines)\n" + "".join(lines))
        return "\n".join(out)

    def worker_pid(self, i):
        with open(os.path.join(self.dir, "run", f"worker{i}.pid")) as f:
            return int(f.read().strip())

    # ----------------------------------------------------------- requests --
    def request(self, method, path, body=None, headers=None, worker=None,
                timeout=10, source=CLIENT_ADDR):
        """Through the balancer (HTTPS), or straight to worker 1..3 (HTTP)."""
        src = (source, 0) if source else None
        if worker is None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.lb_port, context=self.ssl, timeout=timeout,
                source_address=src)
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.worker_ports[worker - 1], timeout=timeout,
                source_address=src)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            h = {"User-Agent": UA, "Content-Type": "application/json"}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def admin(self, method, path, body=None, worker=None):
        return self.request(method, path, body,
                            {"Authorization": f"Bearer {self.token}"},
                            worker=worker)

    def pageview(self, site, page, worker=None, source=CLIENT_ADDR):
        return self.request("POST", "/api/event",
                            {"n": "pageview", "d": site,
                             "u": f"https://{site}{page}"},
                            worker=worker, source=source)

    def query(self, body, worker=None):
        status, data = self.admin("POST", "/api/v2/query", body, worker=worker)
        if status != 200:
            raise AssertionError(f"query {body} -> {status} {data[:300]!r}")
        return json.loads(data)["results"]

    def totals(self, site, metrics, worker=None):
        rows = self.query({"site_id": site, "date_range": "all",
                           "metrics": metrics}, worker=worker)
        if not rows:
            return {m: 0 for m in metrics}
        return dict(zip(metrics, rows[0]["metrics"]))

    def pages(self, site, worker=None):
        rows = self.query({"site_id": site, "date_range": "all",
                           "metrics": ["pageviews"],
                           "dimensions": ["event:page"],
                           "pagination": {"limit": 100000}}, worker=worker)
        return {r["dimensions"][0]: r["metrics"][0] for r in rows}

    def accepted(self, worker):
        status, data = self.request("GET", "/metrics", worker=worker)
        assert status == 200, f"worker{worker} /metrics -> {status}"
        total = 0.0
        for line in data.decode().splitlines():
            if line.startswith("analytics_events_accepted_total"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def raw_rows(self, site):
        """Diagnostic only: the rows of the events table for `site`, to tell
        a store that lost events from rollups that miss stored ones."""
        try:
            r = subprocess.run(
                ["psql", self.state["POSTGRES_URL"], "-tAc",
                 "SELECT count(*), count(DISTINCT page) FROM events e "
                 f"JOIN sites s ON s.id = e.site_id WHERE s.domain = '{site}'"],
                capture_output=True, text=True, timeout=20)
            return (f"events table: (rows, distinct pages) = "
                    f"{r.stdout.strip() or r.stderr.strip()[:200]}")
        except (OSError, subprocess.SubprocessError) as e:
            return f"events table not readable: {e}"

    def ready(self, worker):
        try:
            return self.request("GET", "/ready", worker=worker, timeout=5)[0]
        except OSError:
            return None

    def add_site(self, domain):
        status, data = self.admin("POST", "/api/v1/sites",
                                  {"domain": domain, "timezone": "UTC"})
        assert status == 201, f"add site {domain} -> {status} {data!r}"


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"  # zombies are gone
    except (OSError, IndexError):
        return False


def eventually(what, fn, timeout=15.0, interval=0.25):
    """Polls fn() until it returns without AssertionError; re-raises the last
    one after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except AssertionError as e:
            if time.time() > deadline:
                raise AssertionError(f"{what}: still failing after "
                                     f"{timeout:.0f} s: {e}") from None
        time.sleep(interval)


# ------------------------------------------------------------ scenarios --
def scenario_one_visitor(c):
    site = "visitor.example"
    c.add_site(site)
    before = [c.accepted(w) for w in (1, 2, 3)]
    n = 0
    # Through the balancer (least connections spreads idle requests).
    for i in range(3):
        status, body = c.pageview(site, f"/lb/{i}")
        assert status == 202, f"pageview via {c.lb} -> {status} {body!r}"
        n += 1
    lb_spread = [c.accepted(w) - b for w, b in zip((1, 2, 3), before)]
    log(f"balancer spread 3 pageviews over workers as {lb_spread}")
    # And straight to each worker, from the same client address.
    for w in (1, 2, 3):
        status, body = c.pageview(site, f"/direct/{w}", worker=w)
        assert status == 202, f"pageview to worker{w} -> {status} {body!r}"
        n += 1
    delta = [c.accepted(w) - b for w, b in zip((1, 2, 3), before)]
    assert all(d >= 1 for d in delta) and sum(delta) == n, (
        f"accepted per worker {delta}, want >= 1 each and {n} in all")
    want = {"visitors": 1, "visits": 1, "pageviews": n}
    metrics = list(want)

    def check():
        got = c.totals(site, metrics)
        assert got == want, (
            f"through {c.lb}: {got}, want {want} (visitors > 1: salts or the "
            f"X-Forwarded-For hop not shared; visits > 1: sessions not shared "
            f"between workers; pageviews < {n}: a worker's events not visible)")
        for w in (1, 2, 3):
            got = c.totals(site, metrics, worker=w)
            assert got == want, f"worker{w}: {got}, want {want}"
    eventually("one visitor across three workers", check)


def known_everywhere(c, site, page):
    """Waits until every worker accepts an event for `site` (sent directly)."""
    for w in (1, 2, 3):
        def known(w=w):
            status, body = c.pageview(site, page, worker=w)
            assert status == 202, f"worker{w}: {status} {body[:200]!r}"
        eventually(f"worker{w} knows {site}", known, timeout=10)


def scenario_new_site(c):
    """A site created through the balancer takes events on every worker at
    once (two sites in a row: a worker that reloaded its sites for the first
    must not answer 404 for the second)."""
    for n in (1, 2):
        site = f"new{n}.example"
        c.add_site(site)
        for w in (1, 2, 3):
            status, body = c.pageview(site, "/", worker=w)
            assert status == 202, (
                f"{site} created through {c.lb}, then POST /api/event to "
                f"worker{w} -> {status} {body[:200]!r}")


class Load:
    """Client threads posting one pageview per unique page through the
    balancer; records what was acknowledged and when."""

    def __init__(self, c, site, threads=4):
        self.c, self.site = c, site
        self.lock = threading.Lock()
        self.acked = []    # (time, page)
        self.failed = []   # (time, page, status or error)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(t,))
                        for t in range(threads)]

    def run(self, t):
        i = 0
        while not self.stop.is_set():
            page = f"/k/{t}/{i}"
            i += 1
            try:
                status, _ = self.c.pageview(self.site, page, source=None)
                ok = 200 <= status < 300
                err = status
            except (OSError, http.client.HTTPException) as e:
                ok, err = False, type(e).__name__
            with self.lock:
                if ok:
                    self.acked.append((time.time(), page))
                else:
                    self.failed.append((time.time(), page, err))
            if not ok:
                time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def scenario_kill_worker(c):
    site = "kill.example"
    c.add_site(site)
    known_everywhere(c, site, "/warm")  # new_site_on_every_worker tests that
    with Load(c, site) as load:
        time.sleep(2)
        victim = 2
        pid = c.worker_pid(victim)
        os.kill(pid, signal.SIGKILL)
        t_kill = time.time()
        log(f"kill -9 worker{victim} (pid {pid}) under load")
        time.sleep(LB_REACTION_S + 3)
        t_restart = time.time()
        c.run("start", f"worker{victim}")
        log(f"worker{victim} restarted")
        time.sleep(2)
    acked = [p for _, p in load.acked]
    failed = load.failed
    window_ok = [p for t, p in load.acked
                 if t_kill + LB_REACTION_S <= t < t_restart]
    window_bad = [(round(t - t_kill, 2), p, e) for t, p, e in failed
                  if t_kill + LB_REACTION_S <= t < t_restart]
    log(f"{len(acked)} acknowledged, {len(failed)} not "
        f"({sorted(set(str(e) for _, _, e in failed))}); "
        f"{len(window_ok)} acknowledged while worker{victim} was dead")
    assert len(acked) >= 50, f"only {len(acked)} events acknowledged"
    # A valid event may fail while its worker dies (connection reset, 502,
    # 503), never with a 4xx: e.g. a 404 "unknown site" from a worker that
    # has not seen the site another worker created.
    client_errors = [(round(t - t_kill, 2), p, e) for t, p, e in failed
                     if isinstance(e, int) and 400 <= e < 500]
    assert not client_errors, (
        f"valid events answered with a 4xx (seconds after the kill, page, "
        f"status): {client_errors[:5]}")
    assert len(set(acked)) == len(acked), "a page was sent twice (test bug)"
    assert window_ok, "nothing acknowledged while the worker was dead"
    assert not window_bad, (
        f"{c.lb} did not route around the dead worker: failures "
        f"{LB_REACTION_S:.0f} s or more after the kill: {window_bad[:5]}")
    after = [c.accepted(w) for w in (1, 2, 3)]
    log(f"per-worker accepted counters now {after}")

    def check():
        pages = c.pages(site)
        missing = [p for p in acked if pages.get(p, 0) == 0]
        doubled = {p: v for p, v in pages.items() if v != 1}
        unknown = [p for p in pages if not p.startswith(("/k/", "/warm"))]
        assert not missing, (f"{len(missing)} of {len(acked)} acknowledged "
                             f"events not stored, e.g. {missing[:5]}")
        doubled.pop("/warm", None)  # three warm-up events, one page
        assert not doubled, f"pages stored more than once: " \
                            f"{list(doubled.items())[:5]}"
        assert not unknown, f"unexpected pages {unknown[:5]}"
        total = c.totals(site, ["pageviews"])["pageviews"] - pages["/warm"]
        # Events that were in flight on the killed worker may be stored
        # without an acknowledgement; nothing else may be.
        assert len(acked) <= total <= len(acked) + len(failed), (
            f"pageviews {total}, acknowledged {len(acked)}, "
            f"unacknowledged {len(failed)}")
        return total
    try:
        total = eventually("acknowledged events stored exactly once", check)
    except AssertionError as e:
        raise AssertionError(f"{e}; {c.raw_rows(site)}") from None
    log(f"stored {total} pageviews for {len(acked)} acknowledged events")


def leader_worker(c):
    """The worker (1..3) holding the leader lease: /ready's "role", else
    /metrics' analytics_leader, else Redis key an:c:lease:leader."""
    for w in (1, 2, 3):
        try:
            status, body = c.request("GET", "/ready", worker=w, timeout=5)
            if status == 200 and json.loads(body).get("role") == "leader":
                return w
        except (OSError, ValueError, http.client.HTTPException):
            pass
    r = subprocess.run(["redis-cli", "-u", c.state["REDIS_URL"], "GET",
                        "an:c:lease:leader"], capture_output=True, text=True,
                       timeout=10)
    holder = r.stdout.strip()
    for w in (1, 2, 3):
        if holder and (holder == str(w) or holder.startswith(f"{w}:")
                       or f"worker{w}" in holder):
            return w
    return None


def scenario_restart_services(c):
    """PostgreSQL restarted (same data dir), then Redis (AOF), then the
    leader worker kill -9'd, all under load through the balancer."""
    site = "restart.example"
    c.add_site(site)
    known_everywhere(c, site, "/warm")
    def some_leader():
        w = leader_worker(c)
        assert w is not None, "no worker reports the leader role"
        return w
    leader = eventually("a leader", some_leader, timeout=15)
    log(f"leader is worker{leader}")
    with Load(c, site) as load:
        time.sleep(2)
        for service in ("postgres", "redis"):
            c.run("stop", service)
            c.run("start", service)
            log(f"{service} restarted")
            time.sleep(3)
        pid = c.worker_pid(leader)
        os.kill(pid, signal.SIGKILL)
        t_kill = time.time()
        log(f"kill -9 leader worker{leader} (pid {pid})")

        def moved():
            w = leader_worker(c)
            assert w is not None and w != leader, f"leader is {w}"
            return w
        new_leader = eventually("leader moves to another worker", moved,
                                timeout=15)
        log(f"leader moved to worker{new_leader} after "
            f"{time.time() - t_kill:.1f} s")
        n_before = len(load.acked)

        def accepting():
            assert len(load.acked) > n_before + 10, "no new 2xx"
        eventually("events accepted again after the restarts", accepting,
                   timeout=LB_REACTION_S + 15)
        time.sleep(1)
    acked = [p for _, p in load.acked]
    failed = load.failed
    log(f"{len(acked)} acknowledged, {len(failed)} not "
        f"({sorted(set(str(e) for _, _, e in failed))})")
    assert len(acked) >= 50, f"only {len(acked)} events acknowledged"
    assert len(set(acked)) == len(acked), "a page was sent twice (test bug)"

    def check():
        pages = c.pages(site)
        missing = [p for p in acked if pages.get(p, 0) == 0]
        doubled = {p: v for p, v in pages.items() if v != 1 and p != "/warm"}
        assert not missing, (f"{len(missing)} of {len(acked)} acknowledged "
                             f"events not stored, e.g. {missing[:5]}")
        assert not doubled, f"pages stored more than once: " \
                            f"{list(doubled.items())[:5]}"
        total = c.totals(site, ["pageviews"])["pageviews"] - pages["/warm"]
        assert len(acked) <= total <= len(acked) + len(failed), (
            f"pageviews {total}, acknowledged {len(acked)}, "
            f"unacknowledged {len(failed)}")
        return total
    try:
        total = eventually("acknowledged events stored exactly once", check)
    except AssertionError as e:
        raise AssertionError(f"{e}; {c.raw_rows(site)}") from None
    log(f"stored {total} pageviews for {len(acked)} acknowledged events")
    c.run("start", f"worker{leader}")  # later scenarios expect 3 workers


BROWSERS = [
    UA,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/126.0.0.0 Safari/537.36",
]
REFERRERS = [None, "https://www.google.com/", "https://news.ycombinator.com/",
             "https://duckduckgo.com/"]


def mixed_events(site, now):
    """Deterministic canonical events (POST /api/track with the admin token:
    body ip/user_agent believed), in time order."""
    import random
    rnd = random.Random(4)
    events = []
    for v in range(25):
        ip = f"198.51.100.{v + 1}"
        ua = BROWSERS[v % len(BROWSERS)]
        t = now - 6 * 3600 + rnd.randint(0, 600)
        for _ in range(rnd.randint(1, 3)):  # sessions, > 30 min apart
            ref = rnd.choice(REFERRERS)
            utm = "?utm_source=newsletter" if rnd.random() < 0.2 else ""
            for k in range(rnd.randint(1, 6)):
                e = {"site": site, "name": "pageview", "ip": ip,
                     "user_agent": ua, "ts": t,
                     "url": f"https://{site}/p/{rnd.randint(0, 7)}"
                            + (utm if k == 0 else "")}
                if k == 0 and ref:
                    e["referrer"] = ref
                events.append(e)
                t += rnd.randint(5, 240)
                if rnd.random() < 0.15:
                    events.append({"site": site, "name": "Signup", "ip": ip,
                                   "user_agent": ua, "ts": t,
                                   "url": f"https://{site}/signup",
                                   "props": {"plan": rnd.choice(
                                       ["free", "pro"])}})
                    t += rnd.randint(1, 30)
            t += rnd.randint(2400, 7200)
    events.sort(key=lambda e: e["ts"])
    return [e for e in events if e["ts"] < now]


MIXED_QUERIES = [
    {"metrics": ["visitors", "visits", "pageviews", "events", "bounce_rate",
                 "visit_duration", "views_per_visit"]},
    {"metrics": ["pageviews", "visitors"], "dimensions": ["event:page"]},
    {"metrics": ["visitors", "visits", "bounce_rate"],
     "dimensions": ["visit:source"]},
    {"metrics": ["visitors", "visits"], "dimensions": ["visit:browser"]},
    {"metrics": ["events", "visitors"], "dimensions": ["event:name"]},
    {"metrics": ["visitors"], "dimensions": ["visit:utm_source"]},
    {"metrics": ["visits", "pageviews"], "dimensions": ["visit:entry_page"]},
]


def wait_balancer_spreads(c, timeout=30.0):
    """Waits until GET /ready through the balancer reaches every worker.

    A previous scenario may have killed or restarted a worker; balancers
    keep such a worker out of rotation for a while (Caddy's fail_duration,
    HAProxy's and nginx's health checks), and a scenario that checks how
    traffic spreads must not start before it is back.
    """
    seen = set()
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, body = c.request("GET", "/ready")
        if status == 200:
            seen.add(json.loads(body).get("worker"))
            if len(seen) == 3:
                return
        time.sleep(0.05)
    raise AssertionError(
        f"the balancer reached only workers {sorted(seen)} in {timeout} s")


def scenario_matches_sqlite(c):
    site = "mixed.example"
    c.add_site(site)
    wait_balancer_spreads(c)
    ref = ReferenceServer(c.bin_dir, c.token)
    try:
        status, body = ref.request("POST", "/api/v1/sites",
                                   {"domain": site, "timezone": "UTC"})
        assert status == 201, f"reference: add site -> {status} {body!r}"
        events = mixed_events(site, time.time())
        before = [c.accepted(w) for w in (1, 2, 3)]
        auth = {"Authorization": f"Bearer {c.token}"}
        for e in events:
            status, body = c.request("POST", "/api/track", e, auth)
            assert status == 202, f"cluster: track {e} -> {status} {body!r}"
            status, body = ref.request("POST", "/api/track", e)
            assert status == 202, f"reference: track {e} -> {status} {body!r}"
        spread = [c.accepted(w) - b for w, b in zip((1, 2, 3), before)]
        log(f"{len(events)} events; the balancer spread them as {spread}")
        assert sum(1 for d in spread if d > 0) >= 2, (
            f"all events went to one worker {spread}: not a cluster test")

        def rows(query_fn, q):
            body = {"site_id": site, "date_range": "all", **q}
            return sorted(json.dumps(r, sort_keys=True) for r in query_fn(body))

        def ref_query(body):
            status, data = ref.request("POST", "/api/v2/query", body)
            assert status == 200, f"reference query -> {status} {data!r}"
            return json.loads(data)["results"]

        def check():
            for q in MIXED_QUERIES:
                want = rows(ref_query, q)
                for w in (None, 1, 2, 3):
                    got = rows(lambda b: c.query(b, worker=w), q)
                    where = c.lb if w is None else f"worker{w}"
                    assert got == want, (
                        f"{q}: {where} says {got[:4]}, single-process SQLite "
                        f"says {want[:4]}")
        eventually("cluster agrees with single-process SQLite", check)
    finally:
        ref.stop()


class ReferenceServer:
    """One analyticsd on SQLite, no balancer: the reference answers."""

    def __init__(self, bin_dir, token):
        self.dir = tempfile.mkdtemp(prefix="analytics-reference-")
        self.port = free_port()
        env = dict(os.environ)
        env.update({"ANALYTICS_LISTEN": f"127.0.0.1:{self.port}",
                    "ANALYTICS_STORE": f"sqlite://{self.dir}/a.db",
                    "ANALYTICS_ADMIN_TOKEN": token,
                    "ANALYTICS_RATE_LIMIT": "0",
                    "ANALYTICS_SITE_RATE_LIMIT": "0"})
        self.token = token
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen([os.path.join(bin_dir, "analyticsd")],
                                     env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert self.proc.poll() is None, "reference analyticsd exited"
            assert time.time() < deadline, "reference analyticsd: no /health"
            time.sleep(0.05)

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path,
                         body=json.dumps(body) if body is not None else None,
                         headers={"Authorization": f"Bearer {self.token}",
                                  "Content-Type": "application/json",
                                  "User-Agent": UA})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def scenario_outage(c, service):
    site = f"outage-{service}.example"
    c.add_site(site)
    status, body = c.pageview(site, "/before")
    assert status == 202, f"pageview before the outage -> {status} {body!r}"
    # Every worker knows the site before the outage (new_site_on_every_worker
    # checks how soon), so that an answer below is about the outage.
    known_everywhere(c, site, "/before")
    c.run("stop", service)
    t0 = time.time()
    log(f"{service} stopped")
    try:
        def not_ready():
            codes = [c.ready(w) for w in (1, 2, 3)]
            assert codes == [503] * 3, f"/ready per worker {codes}, want 503"
        eventually(f"/ready 503 with {service} down", not_ready, timeout=15)
        log(f"/ready 503 on every worker after {time.time() - t0:.1f} s")
        for w in (1, 2, 3):
            status, body = c.pageview(site, f"/down/{w}", worker=w)
            assert status == 503, (
                f"worker{w}: POST /api/event with {service} down -> "
                f"{status} {body[:200]!r}, want 503")
        time.sleep(LB_REACTION_S)
        for i in range(3):
            status, body = c.pageview(site, f"/down/lb{i}")
            assert not 200 <= status < 300, (
                f"through {c.lb}: POST /api/event with {service} down -> "
                f"{status}, want no 2xx")
            assert status == 503, (
                f"through {c.lb}: {status} {body[:200]!r}, want 503")
    finally:
        c.run("start", service)
        log(f"{service} started again")
    t1 = time.time()

    def ready():
        codes = [c.ready(w) for w in (1, 2, 3)]
        assert codes == [200] * 3, f"/ready per worker {codes}, want 200"
    eventually(f"workers recover after {service} returns", ready, timeout=30)
    log(f"every worker ready {time.time() - t1:.1f} s after {service} "
        f"returned")

    def accepted():
        status, body = c.pageview(site, "/after")
        assert status == 202, f"pageview via {c.lb} after recovery -> " \
                              f"{status} {body[:200]!r}"
    eventually(f"events accepted through {c.lb} again", accepted,
               timeout=LB_REACTION_S + 10)

    def counted():
        pages = c.pages(site)
        assert pages.get("/before", 0) >= 1 and pages.get("/after", 0) >= 1, (
            f"pages {pages}")
    eventually("events before and after the outage counted", counted)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lb", choices=["haproxy", "caddy", "nginx"],
                    required=True)
    ap.add_argument("bin_dir")
    ap.add_argument("-k", default="", help="run only scenarios matching")
    ap.add_argument("--keep", action="store_true",
                    help="leave the cluster running (debugging)")
    args = ap.parse_args()
    bin_dir = os.path.abspath(args.bin_dir)
    if not os.access(os.path.join(bin_dir, "analyticsd"), os.X_OK):
        sys.exit(f"no analyticsd in {bin_dir}")
    try:  # 127.0.0.2 must be usable as a source address (Linux loopback /8)
        with socket.create_connection(("127.0.0.1", 9), timeout=1,
                                      source_address=(CLIENT_ADDR, 0)):
            pass
    except ConnectionRefusedError:
        pass
    except OSError as e:
        sys.exit(f"cannot send from {CLIENT_ADDR}: {e}")

    c = Cluster(args.lb, bin_dir)
    scenarios = [
        ("one_visitor_across_workers", scenario_one_visitor),
        ("new_site_on_every_worker", scenario_new_site),
        ("kill_worker_under_load", scenario_kill_worker),
        ("mixed_traffic_matches_sqlite", scenario_matches_sqlite),
        ("postgres_outage", lambda c: scenario_outage(c, "postgres")),
        ("redis_outage", lambda c: scenario_outage(c, "redis")),
        ("restart_postgres_redis_leader_under_load",
         scenario_restart_services),
    ]
    passed, failed = [], []
    start = time.time()
    try:
        c.up()
        for name, fn in scenarios:
            if args.k not in name:
                continue
            log(f"=== {args.lb}: {name}")
            t = time.time()
            try:
                fn(c)
                passed.append(name)
                log(f"PASS {name} ({time.time() - t:.1f} s)")
            except Exception as e:  # noqa: BLE001 - report and go on
                failed.append(name)
                log(f"FAIL {name} ({time.time() - t:.1f} s): {e}")
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
    except Exception as e:  # noqa: BLE001
        failed.append("cluster_up")
        log(f"FAIL cluster up: {e}")
    finally:
        if failed:
            print(c.logs_tail(), flush=True)
        try:
            if args.keep:
                log(f"cluster left running: LOCAL_CLUSTER_DIR={c.dir}")
            else:
                c.down()
        except Exception as e:  # noqa: BLE001
            failed.append("cluster_down")
            log(f"FAIL cluster down: {e}")
    log(f"{args.lb}: {time.time() - start:.0f} s")
    print(f"{len(passed)} passed, {len(failed)} failed", flush=True)
    for name in failed:
        print(f"  failed: {name}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
