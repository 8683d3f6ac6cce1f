"""A daemon that closes stderr, so that its next socket gets fd 2: the
shim's log lines must not go into that connection.

    closed_stderr.py SERVER_PORT
"""
import os
import socket
import sys

server_port = int(sys.argv[1])
os.close(2)                       # a daemon closes stderr ...
victim = socket.create_connection(("127.0.0.1", server_port))
assert victim.fileno() == 2       # ... and its next socket gets fd 2
victim.sendall(b"REQUEST\n")
# Another connection: its log line must not go into fd 2 (the victim's stream).
other = socket.create_connection(("127.0.0.1", server_port))
other.close()
victim.shutdown(socket.SHUT_WR)
print("done")
