"""The five options keepalive-shim manages, read back from a socket: the one
reader for the test programs (which import it from their own directory) and
for the tests (tests/helpers/sockpeek.py)."""
import socket

TCP_USER_TIMEOUT = 18  # <linux/tcp.h>; the socket module has no name for it


def options(sock):
    """{"SO_KEEPALIVE": 0/1, "TCP_KEEPIDLE": s, "TCP_KEEPINTVL": s,
    "TCP_KEEPCNT": probes, "TCP_USER_TIMEOUT": ms}, in that order."""
    return {
        "SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "TCP_KEEPIDLE": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "TCP_KEEPINTVL": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "TCP_KEEPCNT": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "TCP_USER_TIMEOUT": sock.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
    }


def option_list(sock):
    """The same values as a list, in the order above."""
    return list(options(sock).values())
