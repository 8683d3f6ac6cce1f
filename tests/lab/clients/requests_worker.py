#!/usr/bin/env python3
"""The incident's worker: one requests.Session, requests on a pooled connection.

Usage: requests_worker.py BASE_URL [--path P]... [--idle SECONDS|stdin]

Makes one GET per --path (default: "/" twice) on one requests.Session, with
no timeout (as the workers in the incidents did). Between two requests it
idles: --idle SECONDS sleeps that long, --idle stdin waits until the harness
writes a line on stdin (so the harness can act at an exact moment).

It sets no socket option: whatever keepalive the connection has comes from
outside (the kernel's defaults, or keepalive-shim when preloaded).

Every step is a JSON line on stdout, flushed at once, so the harness can time
it; the last line is the result:
  {"event": "response", "n": 1, "status": 200, "local_port": P, "t": ...}
  {"event": "idle", "n": 1, "seconds": S}
  {"event": "sending", "n": 2, "t": ...}
  {"event": "error", "n": 2, "exc_type": "ReadTimeout", "message": ..., "t": ...}
  {"event": "result", "outcome": "ok"|"error", "local_ports": [...],
   "elapsed": ..., "exc_type": ...}
"""

import argparse
import json
import sys
import time

import requests

T0 = time.monotonic()


def emit(**event):
    event["t"] = round(time.monotonic() - T0, 4)
    sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stdout.flush()


def local_port(response):
    """The local port of the connection that carried this response."""
    # urllib3 2.x keeps the connection on the response until it is released
    # back to the pool; read it from there (getsockname only reads).
    conn = getattr(response.raw, "connection", None) or getattr(response.raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        return None
    return sock.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url")
    ap.add_argument("--path", action="append", dest="paths")
    ap.add_argument("--idle", default="8", help="seconds, or 'stdin'")
    args = ap.parse_args()
    paths = args.paths or ["/", "/"]

    session = requests.Session()
    ports = []
    outcome, exc_type, message = "ok", None, None
    for n, path in enumerate(paths, start=1):
        if n > 1:
            if args.idle == "stdin":
                emit(event="idle", n=n - 1, seconds="stdin")
                if not sys.stdin.readline():
                    outcome, exc_type, message = "error", "StdinClosed", "harness went away"
                    break
            else:
                emit(event="idle", n=n - 1, seconds=float(args.idle))
                time.sleep(float(args.idle))
        emit(event="sending", n=n, path=path)
        try:
            # stream=True keeps the connection on the response until the body
            # is read, so its local port can be read; the body is then read
            # in full and the connection goes back to the pool.
            r = session.get(args.base_url + path, stream=True)
            port = local_port(r)
            body = r.content
        except Exception as e:  # noqa: BLE001 - report whatever ends the wait
            outcome, exc_type, message = "error", type(e).__name__, str(e)[:300]
            emit(event="error", n=n, exc_type=exc_type, message=message)
            break
        ports.append(port)
        emit(event="response", n=n, status=r.status_code, local_port=port, size=len(body))
    emit(
        event="result",
        outcome=outcome,
        local_ports=ports,
        elapsed=round(time.monotonic() - T0, 4),
        exc_type=exc_type,
        message=message,
    )
    return 0 if outcome == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
