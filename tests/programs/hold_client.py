"""A client that holds TCP connections and reads its own socket options.

    hold_client.py [--idle N] [--user-timeout MS] HOST PORT [PORT...]
    hold_client.py --loop


Connects once to each PORT, optionally setting TCP_KEEPIDLE / TCP_USER_TIMEOUT
itself first (a program's own choice, for respect/force tests), prints
{"event": "connected", "local_ports": [...]}, then for each line on stdin
prints the options the kernel has on each of its sockets, as the process
itself reads them: {"event": "options", "sockets": [{...}, ...]}. Exits when
stdin closes.

With --loop it listens on 127.0.0.1 itself, connects to its own listener
and accepts that connection (a listener, a connection and an accepted
connection in one process; "connected" also carries "listen_port"); the
options printed are those of the connection it opened.
"""
import argparse
import json
import socket
import sys
import threading

TCP_USER_TIMEOUT = 18


def options(s):
    return {
        "SO_KEEPALIVE": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "TCP_KEEPIDLE": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "TCP_KEEPINTVL": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "TCP_KEEPCNT": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "TCP_USER_TIMEOUT": s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int)
    ap.add_argument("--user-timeout", type=int)
    ap.add_argument("--loop", action="store_true")
    ap.add_argument("--thread", action="store_true", help='start a thread; "connected" carries its "thread_id"')
    ap.add_argument("host", nargs="?")
    ap.add_argument("ports", type=int, nargs="*")
    args = ap.parse_args()
    socks = []
    extra_socks = []
    extra = {}
    if args.loop:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        args.host, args.ports = "127.0.0.1", [listener.getsockname()[1]]
        extra["listen_port"] = args.ports[0]
    elif not args.ports:
        ap.error("HOST PORT... or --loop")
    for port in args.ports:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        if args.idle is not None:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, args.idle)
        if args.user_timeout is not None:
            s.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, args.user_timeout)
        s.connect((args.host, port))
        socks.append(s)
    if args.loop:
        extra_socks.append(listener.accept()[0])  # held open until exit
    if args.thread:
        started = threading.Event()
        threading.Thread(target=lambda: (started.set(), threading.Event().wait()), daemon=True).start()
        started.wait()
        extra["thread_id"] = [t.native_id for t in threading.enumerate() if t is not threading.main_thread()][0]
    event = {"event": "connected", "local_ports": [s.getsockname()[1] for s in socks]}
    print(json.dumps(dict(event, **extra)), flush=True)
    for _ in sys.stdin:
        print(json.dumps({"event": "options", "sockets": [options(s) for s in socks]}), flush=True)


if __name__ == "__main__":
    main()
