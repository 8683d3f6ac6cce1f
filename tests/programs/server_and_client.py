"""One client connection, one listening socket and one accepted connection.
The program sets some options itself (SO_KEEPALIVE=0 and TCP_KEEPIDLE=60
before connect, TCP_KEEPINTVL=60 after) and prints, as JSON, the kernel's
values on all three sockets (lists in sockopts order) and its setsockopt
return values.

    server_and_client.py BIND_ADDR [CONNECT_ADDR]
"""
import json
import socket
import sys

from sockopts import option_list

family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
srv = socket.socket(family)
srv.bind((sys.argv[1], 0))
srv.listen()
port = srv.getsockname()[1]
c = socket.socket(family)
rcs = [c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0),
       c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)]
c.connect((sys.argv[2] if len(sys.argv) > 2 else sys.argv[1], port))
rcs.append(c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 60))
a, _ = srv.accept()
print(json.dumps({"client": option_list(c), "listener": option_list(srv), "accepted": option_list(a),
                  "rcs": rcs, "port": port}))
