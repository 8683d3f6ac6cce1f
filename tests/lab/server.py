#!/usr/bin/env python3
"""HTTP/1.1 keep-alive server for the network lab (runs in the server namespace).

Usage: server.py PORT

Listens on [::]:PORT (dual stack, so IPv4 and IPv6 clients reach it) and
answers every request on a persistent connection (protocol_version HTTP/1.1,
Content-Length on every response, no timeout on idle connections).

Endpoints:
  /                 a small text body
  /slow?seconds=N   announces the request on stdout, then answers after N s

Everything the harness waits for is a JSON line on stdout, flushed at once:
  {"event": "ready", "port": P}                 listening
  {"event": "request", "path": ..., "peer": ...} a request was read
  {"event": "slow", "seconds": N, "peer": ...}  a slow request is being held
The harness never polls: it reads these lines with a deadline.
"""

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_out_lock = threading.Lock()


def emit(**event):
    line = json.dumps(event, sort_keys=True)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "netlab/1"
    # No socket timeout: an idle keep-alive connection stays open for as long
    # as the client keeps it, like the servers in the incidents.
    timeout = None

    def log_message(self, fmt, *args):  # keep stderr quiet
        pass

    def _peer(self):
        return "%s:%s" % (self.client_address[0], self.client_address[1])

    def _send(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=600")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        url = urlsplit(self.path)
        emit(event="request", path=self.path, peer=self._peer())
        if url.path == "/slow":
            try:
                seconds = float(parse_qs(url.query).get("seconds", ["30"])[0])
            except ValueError:
                seconds = 30.0
            seconds = max(0.0, min(seconds, 600.0))
            emit(event="slow", seconds=seconds, peer=self._peer())
            time.sleep(seconds)
            self._send(b"slow done\n")
            return
        self._send(b"hello from the server namespace\n")


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # Dual stack: IPv4 clients arrive as ::ffff:a.b.c.d.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    httpd = Server(("::", port), Handler)
    emit(event="ready", port=httpd.server_address[1])
    httpd.serve_forever()


if __name__ == "__main__":
    main()
