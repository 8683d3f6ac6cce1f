"""A server whose listening socket was created (and is listening) before it
started, as with socket activation: prints the port, waits for a line on
stdin (both clients are then in the backlog), accepts two connections and
prints the options of both and of the listener (lists in sockopts order).

    inherited_listener.py FD accept-only|relisten
"""
import json
import socket
import sys

from sockopts import option_list

fd, relisten = int(sys.argv[1]), sys.argv[2] == "relisten"
srv = socket.socket(fileno=fd)
if relisten:
    srv.listen()
print(srv.getsockname()[1], flush=True)
sys.stdin.readline()  # both clients are connected (in the backlog) before the first accept
first, _ = srv.accept()
second, _ = srv.accept()
print(json.dumps({"first": option_list(first), "second": option_list(second), "listener": option_list(srv)}),
      flush=True)
