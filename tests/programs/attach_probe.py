"""A plain Python program for the attach tests: it runs inside a test
cgroup, opens TCP connections when told to, and reports the kernel's
options on them. It sets an option only when a command says so.

stdin: one JSON command per line; stdout: one JSON answer per command.
  {"op": "connect", "host": H, "port": P, "before": {OPT: V}, "after": {OPT: V}}
      -> {"id": N, "local_port": L, "options": {...}, "after_rc": {OPT: 0}}
      (before: setsockopt between socket() and connect(); after: once
      connected; options are read after both)
  {"op": "listen", "host": H}               -> {"port": P}
  {"op": "accept"}                          -> {"id": N, "options": {...}}
  {"op": "options", "id": N}                -> {"options": {...}}
  {"op": "set", "id": N, "opt": OPT, "value": V} -> {"options": {...}}
"""
import json
import socket
import sys

TCP_USER_TIMEOUT = 18
OPTS = {
    "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "TCP_KEEPIDLE": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
    "TCP_KEEPINTVL": (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
    "TCP_KEEPCNT": (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    "TCP_USER_TIMEOUT": (socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
}


def options(s):
    return {name: s.getsockopt(*lv) for name, lv in OPTS.items()}


def main():
    conns = []
    listener = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "connect":
            host = cmd["host"]
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            for name, v in cmd.get("before", {}).items():
                s.setsockopt(*OPTS[name], v)
            s.connect((host, cmd["port"]))
            rcs = {}
            for name, v in cmd.get("after", {}).items():
                s.setsockopt(*OPTS[name], v)  # raises on an error: the test sees it
                rcs[name] = 0
            conns.append(s)
            out = {"id": len(conns) - 1, "local_port": s.getsockname()[1], "options": options(s),
                   "after_rc": rcs}
        elif op == "listen":
            host = cmd["host"]
            listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            listener.bind((host, 0))
            listener.listen(16)
            out = {"port": listener.getsockname()[1]}
        elif op == "accept":
            c, _ = listener.accept()
            conns.append(c)
            out = {"id": len(conns) - 1, "options": options(c)}
        elif op == "options":
            out = {"options": options(conns[cmd["id"]])}
        elif op == "set":
            conns[cmd["id"]].setsockopt(*OPTS[cmd["opt"]], cmd["value"])
            out = {"options": options(conns[cmd["id"]])}
        else:
            out = {"error": "unknown op %r" % op}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
