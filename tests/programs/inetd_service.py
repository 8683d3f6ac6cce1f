"""A per-connection service as inetd or systemd starts it: its client
connection is already connected when it starts, as fd FD (0 for inetd, 3
for LISTEN_FDS). It sets no socket option itself; it prints, as one JSON
line on stdout (the connection itself, for inetd), the options the kernel
has on that connection and its local port.

    inetd_service.py FD
"""
import json
import socket
import sys

TCP_USER_TIMEOUT = 18

fd = int(sys.argv[1])
s = socket.socket(fileno=fd)
try:
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
