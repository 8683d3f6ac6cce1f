"""A per-connection service as inetd or systemd starts it: its client
connection is already connected when it starts, as fd FD (0 for inetd, 3
for LISTEN_FDS). It sets no socket option itself; it prints, as one JSON
line on stdout (the connection itself, for inetd), the options the kernel
has on that connection and its local port.

    inetd_service.py FD [SET_FD IDLE]
    inetd_service.py FD accept

With `accept`, FD is a listening socket (systemd socket activation,
Accept=no): the service accepts one connection and reports on it.

With SET_FD and IDLE it first sets TCP_KEEPIDLE=IDLE through descriptor
SET_FD, as a service that uses fd 1 (the same connection) for that does.
"""
import json
import socket
import sys

TCP_USER_TIMEOUT = 18

fd = int(sys.argv[1])
s = socket.socket(fileno=fd)
if sys.argv[2:] == ["accept"]:
    s.settimeout(10)
    conn, _ = s.accept()
    s.detach()
    s = conn
try:
    if len(sys.argv) == 4:
        via = socket.socket(fileno=int(sys.argv[2]))
        via.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(sys.argv[3]))
        via.detach()
    report = {
        "local_port": s.getsockname()[1],
        "SO_KEEPALIVE": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "TCP_KEEPIDLE": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "TCP_KEEPINTVL": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "TCP_KEEPCNT": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "TCP_USER_TIMEOUT": s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
    }
finally:
    s.detach()  # the descriptor stays the service's stdin/stdout
print(json.dumps(report, sort_keys=True), flush=True)
