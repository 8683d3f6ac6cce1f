"""A parent opens a connection and hands it to an exec'd child as fd 3
(not in LISTEN_FDS, so the child's library never configures it at load).
The child sets its own idle and prints TCP_KEEPIDLE and TCP_USER_TIMEOUT.

    inherit_exec.py PORT [own]     own: the parent sets TCP_USER_TIMEOUT=4321
"""
import socket
import subprocess
import sys

CHILD = (
    "import socket\n"
    "s = socket.socket(fileno=3)\n"
    "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 600)\n"
    "print(f'IDLE={s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)} UT={s.getsockopt(socket.IPPROTO_TCP, 18)}')\n"
)

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2:] == ["own"]:
    s.setsockopt(socket.IPPROTO_TCP, 18, 4321)
fd = s.fileno()
if fd != 3:
    import os
    os.dup2(fd, 3)
subprocess.run([sys.executable, "-c", CHILD], pass_fds=[3], check=True)
