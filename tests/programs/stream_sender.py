"""Streams BYTES to 127.0.0.1:PORT as fast as the receiver lets it, then
prints the outcome and the socket's TCP_USER_TIMEOUT as JSON.

    stream_sender.py PORT BYTES
"""
import json
import socket
import sys
import time

TCP_USER_TIMEOUT = 18

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
total, sent, started, error = int(sys.argv[2]), 0, time.monotonic(), None
try:
    chunk = b"x" * 65536
    while sent < total:
        sent += s.send(chunk[: total - sent])
    s.shutdown(socket.SHUT_WR)
except OSError as e:
    error = e.strerror
print(json.dumps({"sent": sent, "error": error, "seconds": round(time.monotonic() - started, 2),
                  "TCP_USER_TIMEOUT": s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT)}))
