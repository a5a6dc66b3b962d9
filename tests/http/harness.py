"""Starts and talks to an analyticsd process for the HTTP tests.

Python 3 standard library only.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

ADMIN_TOKEN = "adm_test_0123456789abcdef_SECRET"
UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
      "Firefox/128.0")
UA_BOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "scripts"))
from free_port import free_port  # noqa: E402,F401  (shared: scripts/free_port.py)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError(
                f"not JSON ({e}): status {self.status} body {self.body[:300]!r}")

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


class Server:
    """One analyticsd on a free loopback port with a temporary SQLite store."""

    def __init__(self, binary, env=None, name="server"):
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"analyticsd binary not found or not "
                               f"executable: {binary}")
        self.dir = tempfile.mkdtemp(prefix=f"analyticsd-{name}-")
        self.port = free_port()
        self.base = f"127.0.0.1:{self.port}"
        full_env = dict(os.environ)
        full_env.update({
            "ANALYTICS_LISTEN": self.base,
            "ANALYTICS_STORE": f"sqlite://{self.dir}/analytics.db",
            "ANALYTICS_ADMIN_TOKEN": ADMIN_TOKEN,
            "ANALYTICS_THREADS": "16",
        })
        full_env.update(env or {})
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([binary], stdout=self._out,
                                     stderr=self._err, env=full_env)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"analyticsd exited with {self.proc.returncode} before "
                    f"answering /health:\n{self.logs()}")
            try:
                if self.get("/health").status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.proc.kill()
                raise RuntimeError(
                    f"analyticsd did not answer /health within 30 s:\n"
                    f"{self.logs()}")
            time.sleep(0.05)

    def logs(self):
        out = []
        for p in (self.stdout_path, self.stderr_path):
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "timeout"
        return self.proc.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ requests --
    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode("utf-8")
            h = {"User-Agent": UA}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def admin(self, method, path, body=None, headers=None):
        h = {"Authorization": f"Bearer {ADMIN_TOKEN}",
             "Content-Type": "application/json"}
        h.update(headers or {})
        return self.request(method, path, body=body, headers=h)

    def raw(self, data, timeout=10, read_delay=None):
        """Sends raw bytes; returns (status or None, headers text, body)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            if isinstance(data, (list, tuple)):
                for part, pause in data:
                    s.sendall(part)
                    if pause:
                        time.sleep(pause)
            else:
                s.sendall(data)
            chunks = []
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
                    buf = b"".join(chunks)
                    if b"\r\n\r\n" in buf:
                        head, _, rest = buf.partition(b"\r\n\r\n")
                        cl = None
                        for line in head.split(b"\r\n")[1:]:
                            k, _, v = line.partition(b":")
                            if k.strip().lower() == b"content-length":
                                cl = int(v.strip())
                        if cl is not None and len(rest) >= cl:
                            break
            except (socket.timeout, ConnectionResetError):
                pass
            buf = b"".join(chunks)
            if not buf.startswith(b"HTTP/1."):
                return None, "", buf
            head, _, rest = buf.partition(b"\r\n\r\n")
            status = int(head.split(b" ")[1])
            return status, head.decode("latin-1"), rest
        finally:
            s.close()

    # --------------------------------------------------------------- stats --
    def add_site(self, domain, **extra):
        body = {"domain": domain, "timezone": "UTC"}
        body.update(extra)
        r = self.admin("POST", "/api/v1/sites", body)
        if r.status != 201:
            raise AssertionError(f"add site {domain}: {r}")
        return r.json()

    def query(self, site, metrics, dimensions=None, token=ADMIN_TOKEN,
              filters=None):
        body = {"site_id": site, "date_range": "all", "metrics": metrics}
        if dimensions:
            body["dimensions"] = dimensions
        if filters:
            body["filters"] = filters
        r = self.request("POST", "/api/v2/query", body,
                         {"Authorization": f"Bearer {token}",
                          "Content-Type": "application/json"})
        if r.status != 200:
            raise AssertionError(f"query {body}: {r}")
        return r.json()["results"]

    def totals(self, site, metrics=("visitors", "pageviews", "events")):
        rows = self.query(site, list(metrics))
        if not rows:
            return {m: 0 for m in metrics}
        return dict(zip(metrics, rows[0]["metrics"]))

    def breakdown(self, site, dimension, metric="pageviews"):
        rows = self.query(site, [metric], [dimension])
        return {r["dimensions"][0]: r["metrics"][0] for r in rows}

    def metric_value(self, name):
        text = self.get("/metrics").body.decode()
        total = 0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def binary_from_argv():
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} path/to/analyticsd")
    binary = os.path.abspath(sys.argv.pop(1))
    return binary


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def quote(s):
    return urllib.parse.quote(s, safe="")
