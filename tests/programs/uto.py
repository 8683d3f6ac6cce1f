"""Sets keepalive options the way real programs do, around connect(), and
prints the socket's five option values as JSON.

    uto.py PORT STEP...

Each STEP is `OPTION=VALUE@before` or `OPTION=VALUE@after` (before or after
connect), OPTION one of idle, interval, count, user_timeout.
"""
import json
import socket
import sys

TCP_USER_TIMEOUT = 18
OPTS = {"idle": socket.TCP_KEEPIDLE, "interval": socket.TCP_KEEPINTVL,
        "count": socket.TCP_KEEPCNT, "user_timeout": TCP_USER_TIMEOUT}


def values(s):
    return {"SO_KEEPALIVE": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "TCP_KEEPIDLE": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "TCP_KEEPINTVL": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "TCP_KEEPCNT": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "TCP_USER_TIMEOUT": s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT)}


def main():
    port, steps = int(sys.argv[1]), [a.replace("=", "@").split("@") for a in sys.argv[2:]]
    s = socket.socket()
    for name, value, when in steps:
        if when == "before":
            s.setsockopt(socket.IPPROTO_TCP, OPTS[name], int(value))
    s.connect(("127.0.0.1", port))
    for name, value, when in steps:
        if when == "after":
            s.setsockopt(socket.IPPROTO_TCP, OPTS[name], int(value))
    print(json.dumps(values(s)))


main()
