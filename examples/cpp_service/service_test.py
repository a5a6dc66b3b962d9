#!/usr/bin/env python3
"""Starts example_cpp_service on a free port, makes requests, checks /stats.

usage: service_test.py PATH_TO_example_cpp_service
"""
import json
import subprocess
import sys
import time
import urllib.request


def get(base, path, ua="Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"):
    req = urllib.request.Request(base + path, headers={"User-Agent": ua})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def main():
    binary = sys.argv[1]
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--store", "memory://"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://"), line
        base = line.split()[-1]
        status, body = get(base, "/")
        assert status == 200 and "hello from /" in body, body
        for _ in range(3):
            get(base, "/pricing")
        get(base, "/docs/install")
        # A crawler is not counted (dropped as a bot by the engine).
        get(base, "/pricing", ua="Googlebot/2.1 (+http://www.google.com/bot.html)")

        status, body = get(base, "/stats")
        assert status == 200, status
        stats = json.loads(body)
        rows = {r["dimensions"][0]: r["metrics"] for r in stats["results"]}
        print(json.dumps(stats["results"]))
        assert rows["/pricing"] == [1, 3], rows  # visitors, pageviews
        assert rows["/"] == [1, 1], rows
        assert rows["/docs/install"] == [1, 1], rows
        assert stats["results"][0]["dimensions"] == ["/pricing"], stats
        assert "/stats" not in rows, rows
        print("example_cpp_service: OK")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
