"""A server that sets no socket option: listens on 127.0.0.1:PORT, says
"ready", accepts one connection, says "accepted", reads until the peer
closes or sends something.

    plain_server.py PORT
"""
import socket
import sys

srv = socket.socket()
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen()
print("ready", flush=True)
conn, _ = srv.accept()
print("accepted", flush=True)
conn.recv(100)
