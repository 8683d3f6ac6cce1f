"""One keep-alive connection, one request, then idle (holding the
connection) until a line arrives on stdin or it is killed. Sets no socket
option. Prints a JSON "response" event with its local port.

    http_idle_client.py HOST PORT
"""
import http.client
import json
import sys

c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=None)
c.request("GET", "/")
r = c.getresponse()
r.read()
print(json.dumps({"event": "response", "status": r.status,
                  "local_port": c.sock.getsockname()[1]}), flush=True)
sys.stdin.readline()
