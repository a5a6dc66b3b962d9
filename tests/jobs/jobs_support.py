"""Real peers on loopback for the jobs tests: an SMTP server (Debian's
python3-aiosmtpd), an HTTP webhook receiver, and analyticsd processes.

Nothing here is a mock: analyticsd talks SMTP and HTTP to these servers over
TCP exactly as it would to production ones.
"""
import email
import email.policy
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import sys
import subprocess
import tempfile
import threading
import time

ADMIN_TOKEN = "jobs_test_admin_0123456789abcdef"
TEMP_DIRS = []  # removed when every scenario passed


def temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    TEMP_DIRS.append(d)
    return d
UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
      "Firefox/128.0")


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "scripts"))
from free_port import free_port  # noqa: E402,F401  (shared: scripts/free_port.py)


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class SmtpServer:
    """aiosmtpd on a free port; keeps every message received."""

    def __init__(self, tls_cert=None, tls_key=None, login=None):
        """tls_cert/tls_key: require STARTTLS with that certificate;
        login: (user, password) required through AUTH (after STARTTLS)."""
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.smtp import AuthResult, LoginPassword
        except ImportError as e:
            raise SystemExit(
                f"FAIL: python3-aiosmtpd is required ({e}); scripts/setup.sh "
                "installs it")
        self.messages = []  # (envelope rcpts, email.message.EmailMessage)
        self.lock = threading.Lock()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.content,
                                               policy=email.policy.default)
                with outer.lock:
                    outer.messages.append((list(envelope.rcpt_tos), msg))
                return "250 OK"

        kwargs = {}
        if tls_cert:
            import ssl
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(tls_cert, tls_key)
            kwargs.update(tls_context=ctx, require_starttls=True)
        if login:
            def authenticator(server, session, envelope, mechanism, data):
                ok = (isinstance(data, LoginPassword) and
                      data.login.decode() == login[0] and
                      data.password.decode() == login[1])
                return AuthResult(success=ok)
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=True)
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1",
                                     port=self.port, **kwargs)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    def received(self, pred=lambda m: True):
        with self.lock:
            return [m for rc, m in self.messages if pred(m)]

    def stop(self):
        self.controller.stop()


class WebhookReceiver:
    """HTTP server keeping POST bodies by path; /fail-N/… answers 500 to the
    first N requests on that path."""

    def __init__(self):
        self.bodies = {}
        self.failures = {}
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    seen = outer.failures.get(self.path, 0)
                    fail_first = 0
                    if self.path.startswith("/fail-"):
                        fail_first = int(self.path.split("-")[1].split("/")[0])
                    outer.failures[self.path] = seen + 1
                    ok = seen >= fail_first
                    if ok:
                        outer.bodies.setdefault(self.path, []).append(
                            (self.headers.get("Content-Type"), body))
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def got(self, path):
        with self.lock:
            return list(self.bodies.get(path, []))

    def stop(self):
        self.httpd.shutdown()


class Analyticsd:
    def __init__(self, binary, store, env=None, name="w", args=()):
        self.binary = binary
        self.port = free_port()
        self.dir = temp_dir(f"jobs-{name}-")
        self.env = dict(os.environ)
        self.env.update({
            "ANALYTICS_ADMIN_TOKEN": ADMIN_TOKEN,
            "ANALYTICS_RATE_LIMIT": "0",
            "ANALYTICS_SITE_RATE_LIMIT": "0",
            "ANALYTICS_THREADS": "16",
        })
        self.env.update(env or {})
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--store", store,
             "--public_url", f"http://127.0.0.1:{self.port}", *args],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.log)
        wait_for(self._up, 30, f"analyticsd {name} to answer /health")

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError(
                f"analyticsd exited with {self.proc.returncode}: "
                f"{open(self.log.name).read()[-2000:]}")
        try:
            return self.request("GET", "/health")[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, token=ADMIN_TOKEN,
                headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"User-Agent": UA}
        if token:
            h["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode("utf-8", "replace")
        return r.status, parsed

    def ok(self, method, path, body=None, want=(200, 201, 202), **kw):
        status, data = self.request(method, path, body, **kw)
        if status not in want:
            raise AssertionError(f"{method} {path} -> {status} {data}")
        return data

    def metric(self, name_and_labels):
        _, text = self.request("GET", "/metrics", token=None)
        for line in str(text).splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.split()[-1])
        return 0.0

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def stderr(self):
        return open(self.log.name).read()


def parts(msg):
    """(text, html) bodies of a multipart/alternative report."""
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    return text, html


class Results:
    def __init__(self):
        self.passed = []
        self.failed = []

    def run(self, name, fn):
        print(f"--- {name}", flush=True)
        try:
            fn()
            self.passed.append(name)
            print(f"PASS {name}", flush=True)
        except Exception as e:  # noqa: BLE001 (report and go on)
            import traceback
            traceback.print_exc()
            self.failed.append(name)
            print(f"FAIL {name}: {e}", flush=True)

    def exit(self):
        print(f"{len(self.passed)} passed, {len(self.failed)} failed",
              flush=True)
        if not self.failed:  # keep the logs of a failed run
            for d in TEMP_DIRS:
                shutil.rmtree(d, ignore_errors=True)
        raise SystemExit(1 if self.failed or not self.passed else 0)
