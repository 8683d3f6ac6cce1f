#!/usr/bin/env python3
"""Holds N established loopback TCP connections for the `status`/`apply`
benchmarks: this process holds the client ends, a forked child the
accepted ends (so the host has 2 x N established sockets, as `ss` sees).

Usage: live_hold.py N
Prints `ready CLIENT_PID SERVER_PID PORT` once every connection is established,
then waits until stdin closes (or a line arrives) and exits with its child.
"""

import os
import resource
import signal
import socket
import sys


def raise_nofile(n):
    want = n + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))


def main():
    n = int(sys.argv[1])
    raise_nofile(n)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    addr = listener.getsockname()
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        held = []
        for _ in range(n):
            conn, _ = listener.accept()
            held.append(conn)
        os.write(w, b"x")
        signal.pause()  # until the parent kills it
        os._exit(0)
    os.close(w)
    listener.close()
    held = []
    try:
        for _ in range(n):
            held.append(socket.create_connection(addr))
        if os.read(r, 1) != b"x":
            raise SystemExit("server side did not accept every connection")
        print("ready %d %d %d" % (os.getpid(), child, addr[1]), flush=True)
        sys.stdin.readline()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
