"""A hooked TCP socket is closed; a socket made with the raw syscall gets
the same descriptor number and is connected through libc. Prints its
SO_KEEPALIVE after connect().
"""
import ctypes
import json
import socket

libc = ctypes.CDLL(None, use_errno=True)
SYS_socket = 41
srv = socket.socket(fileno=libc.syscall(SYS_socket, socket.AF_INET, socket.SOCK_STREAM, 0))
srv.bind(("127.0.0.1", 0))
srv.listen()
hooked = socket.socket()          # through the socket() hook: fd n
n = hooked.fileno()
hooked.close()
raw = socket.socket(fileno=libc.syscall(SYS_socket, socket.AF_INET, socket.SOCK_STREAM, 0))
assert raw.fileno() == n          # a socket the hook never saw, on the same number
raw.connect(srv.getsockname())    # the connect()-time fallback must configure it
print(json.dumps(raw.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)))
