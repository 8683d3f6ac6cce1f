"""A plain Python program that sets no socket options itself: listens on
127.0.0.1, connects to itself, accepts, and prints as JSON what the kernel
has on the connecting and the accepted socket. The package tests run it
under each installed package's `keepalive-shim run`."""
import json
import socket

TCP_USER_TIMEOUT = 18


def options(s):
    return {
        "SO_KEEPALIVE": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "TCP_KEEPIDLE": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "TCP_KEEPINTVL": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "TCP_KEEPCNT": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "TCP_USER_TIMEOUT": s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
    }


with socket.socket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=10) as client:
        accepted, _ = server.accept()
        with accepted:
            print(json.dumps({"connect": options(client), "accept": options(accepted)}))
