"""An HTTP/1.1 keep-alive server (ThreadingHTTPServer) that sets no socket
option itself (not even SO_REUSEADDR). It prints JSON event lines on
stdout: "ready", "accepted", "request", and "closed", whose `errno` says how
the connection ended: "eof" (the client closed it) or the errno the
server's recv() failed with (ETIMEDOUT: the kernel gave up on the peer).

    http_events_server.py PORT    (listens on 0.0.0.0)
"""
import errno
import json
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()


def emit(**event):
    with _lock:
        sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = None  # an idle keep-alive connection stays open forever

    def log_message(self, fmt, *args):
        pass

    def log_error(self, fmt, *args):
        # handle_one_request() swallows a TimeoutError (ETIMEDOUT included)
        # and reports it here.
        for a in args:
            if isinstance(a, OSError):
                self.error = a

    def handle(self):
        self.error = None
        peer = "%s:%d" % self.client_address[:2]
        emit(event="accepted", peer=peer)
        try:
            super().handle()
        except OSError as e:
            self.error = e
        e = self.error
        emit(event="closed", peer=peer,
             errno=(errno.errorcode.get(e.errno, str(e.errno)) if e is not None else "eof"),
             message=str(e) if e is not None else "")

    def do_GET(self):
        emit(event="request", peer="%s:%d" % self.client_address[:2], path=self.path)
        body = b"hello from the server namespace\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    allow_reuse_address = False  # no setsockopt() at all
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind() would resolve the host name (getfqdn).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


httpd = Server(("0.0.0.0", int(sys.argv[1])), Handler)
emit(event="ready", port=httpd.server_address[1])
httpd.serve_forever()
