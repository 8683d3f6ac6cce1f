"""The demo's worker: a plain requests.Session, the way legacy workers pool
connections. It makes one request, reports its pooled connection, and
waits (reading stdin) so that the demo can look at the socket with `ss`."""
import json
import socket
import sys

import requests

url = sys.argv[1]
session = requests.Session()
response = session.get(url, stream=True)
sock = response.raw._connection.sock
options = {
    "SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "TCP_KEEPIDLE": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
    "TCP_KEEPINTVL": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
    "TCP_KEEPCNT": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    "TCP_USER_TIMEOUT": sock.getsockopt(socket.IPPROTO_TCP, 18),
}
_ = response.content  # read the body, so the response is complete
print(json.dumps({"local_port": sock.getsockname()[1], "options": options}), flush=True)
sys.stdin.readline()  # hold the pooled connection open until the demo is done
