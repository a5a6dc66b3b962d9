#!/usr/bin/env python3
"""A free loopback TCP port for a test server, below the kernel's ephemeral
port range.

A port the kernel hands out for bind(("127.0.0.1", 0)) is in the ephemeral
range. It can be taken again, as the local port of any outgoing connection,
between the moment it is found free and the moment the server binds it;
with many tests in parallel that happened ("address already in use"). Ports
below the range are never used for outgoing connections.

    from free_port import free_port         # Python (scripts/ on sys.path)
    port="$(python3 scripts/free_port.py)"   # shell
"""
import random
import socket


def free_port():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(20000, max(20001, low))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


if __name__ == "__main__":
    print(free_port())
