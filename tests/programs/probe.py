"""A plain Python program that sets no socket options itself. It opens
sockets the way programs do and prints, as JSON, what the kernel has on each.

    probe.py kinds HOST PORT      sockets of every kind (TCP ones connected)
    probe.py connect HOST PORT    socket.create_connection
    probe.py errno CLOSED_PORT OPEN_PORT
"""
import errno
import json
import socket
import sys

from sockopts import options


def kinds(host, port):
    out = {}
    tcp = {
        "tcp4": (socket.AF_INET, socket.SOCK_STREAM, 0, (host, port)),
        "tcp4_nonblock_cloexec": (socket.AF_INET,
                                  socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                  0, (host, port)),
        "tcp4_ipproto_tcp": (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, (host, port)),
        "tcp6": (socket.AF_INET6, socket.SOCK_STREAM, 0, None),
    }
    for name, (fam, typ, proto, addr) in tcp.items():
        s = socket.socket(fam, typ, proto)
        if addr:
            s.setblocking(True)
            s.connect(addr)
        out[name] = options(s)
        s.close()
    other = {
        "udp4": (socket.AF_INET, socket.SOCK_DGRAM, 0),
        "udp6": (socket.AF_INET6, socket.SOCK_DGRAM, 0),
        "unix_stream": (socket.AF_UNIX, socket.SOCK_STREAM, 0),
        "unix_dgram": (socket.AF_UNIX, socket.SOCK_DGRAM, 0),
        "raw_icmp": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "raw_tcp": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
        "packet": (socket.AF_PACKET, socket.SOCK_DGRAM, 0),
    }
    for name, (fam, typ, proto) in other.items():
        try:
            s = socket.socket(fam, typ, proto)
        except PermissionError:
            out[name] = "EPERM"
            continue
        out[name] = {"SO_KEEPALIVE": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)}
        if name == "udp4":
            s.connect((host, port))  # a connected UDP socket is still not TCP
            out[name]["after_connect"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        s.close()
    return out


def connect(host, port):
    s = socket.create_connection((host, port))
    return options(s)


def errnos(closed_port, open_port):
    out = {}
    s = socket.socket()
    out["refused"] = errno.errorcode.get(s.connect_ex(("127.0.0.1", closed_port)))
    s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    out["nonblocking"] = errno.errorcode.get(s.connect_ex(("127.0.0.1", open_port)))
    s.close()
    return out


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "kinds":
        result = kinds(args[0], int(args[1]))
    elif mode == "connect":
        result = connect(args[0], int(args[1]))
    elif mode == "errno":
        result = errnos(int(args[0]), int(args[1]))
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result, sort_keys=True))
