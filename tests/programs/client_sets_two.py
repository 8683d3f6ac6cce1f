"""A server and a client in one program, on 127.0.0.1: the client sets
SO_KEEPALIVE=0 and TCP_KEEPIDLE=60 itself before connecting. Prints each
socket's five options as JSON (lists in sockopts order).
"""
import json
import socket

from sockopts import option_list

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
c.connect(srv.getsockname())
a, _ = srv.accept()
print(json.dumps({"client": option_list(c), "listener": option_list(srv), "accepted": option_list(a)}))
