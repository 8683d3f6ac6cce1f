"""Clients that do exactly what real programs do with their sockets, for the
tests of what the library's log says. Each prints one JSON line on stdout:
what the program saw (errors, and the kernel's options on its sockets).

    log_truth.py connect N PORT     N connections to 127.0.0.1:PORT, one after
                                    another (socket.create_connection)
    log_truth.py worker N PORT      what nginx does: the master (root) connects
                                    once, then forks a worker that drops to
                                    nobody and connects N times
    log_truth.py redis PORT         what redis-cli does (anetKeepAlive): connect,
                                    then SO_KEEPALIVE=1, TCP_KEEPIDLE=15,
                                    TCP_KEEPINTVL=5, TCP_KEEPCNT=3; prints, then
                                    keeps the connection open until a line (or
                                    EOF) arrives on stdin
    log_truth.py dup_set PORT       connect, then set TCP_KEEPIDLE=15 through a
                                    dup() of the socket (socket.dup(), as code
                                    that hands a socket to another owner does)
    log_truth.py refused PORT       three refused connects, as reconnect loops
                                    make them: blocking, non-blocking with a
                                    timeout (poll, then SO_ERROR), and
                                    socket.create_connection
    log_truth.py unconnected        what a JVM does at start: TCP sockets (IPv4
                                    and IPv6) opened to probe features and
                                    closed without ever connecting
    log_truth.py set_twice PORT     sets TCP_KEEPIDLE twice (60, then 61) before
                                    connecting, as undici's fetch repeats its
                                    keepalive settings
"""
import errno
import json
import os
import socket
import sys

TCP_USER_TIMEOUT = 18


# Its own copy of the option reader (not sockopts.py): test_host_safety runs
# a copy of this file alone, from a directory of its own.
def options(s):
    return {
        "SO_KEEPALIVE": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "TCP_KEEPIDLE": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "TCP_KEEPINTVL": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "TCP_KEEPCNT": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "TCP_USER_TIMEOUT": s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
        "local_port": s.getsockname()[1],
    }


def connect_n(n, port):
    out = []
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            out.append(options(s))
    return out


def worker(n, port):
    master = connect_n(1, port)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, json.dumps(connect_n(n, port)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        worker_result = json.loads(f.read() or "null")
    _, status = os.waitpid(pid, 0)
    return {"master": master, "master_pid": os.getpid(), "worker": worker_result,
            "worker_pid": pid, "worker_status": status}


def redis(port):
    s = socket.create_connection(("127.0.0.1", port))  # blocking, like hiredis
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 15)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    print(json.dumps(options(s), sort_keys=True), flush=True)
    sys.stdin.readline()
    s.close()
    return "closed"


def dup_set(port):
    s = socket.create_connection(("127.0.0.1", port))
    d = s.dup()
    d.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 15)
    result = dict(options(s), fd=s.fileno(), dup_fd=d.fileno())
    d.close()
    s.close()
    return result


def refused(port):
    def attempt(how):
        try:
            how()
        except OSError as e:
            return errno.errorcode.get(e.errno, e.errno)
        return "connected"

    def blocking():
        with socket.socket() as s:
            s.connect(("127.0.0.1", port))

    def with_timeout():
        with socket.socket() as s:
            s.settimeout(2)  # non-blocking connect, poll, getsockopt(SO_ERROR)
            s.connect(("127.0.0.1", port))

    def create_connection():
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

    return [attempt(blocking), attempt(with_timeout), attempt(create_connection)]


def unconnected():
    made = 0
    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_INET):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        s.close()
        made += 1
    return {"opened_and_closed": made}


def set_twice(port):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 61)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    result = options(s)
    s.close()
    return result


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "connect":
        result = connect_n(int(args[0]), int(args[1]))
    elif mode == "worker":
        result = worker(int(args[0]), int(args[1]))
    elif mode == "redis":
        result = redis(int(args[0]))
    elif mode == "dup_set":
        result = dup_set(int(args[0]))
    elif mode == "refused":
        result = refused(int(args[0]))
    elif mode == "unconnected":
        result = unconnected()
    elif mode == "set_twice":
        result = set_twice(int(args[0]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result, sort_keys=True), flush=True)
