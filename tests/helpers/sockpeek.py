"""Read the live TCP socket options of another process.

The socket is duplicated with pidfd_open(pid) + pidfd_getfd (Linux 5.6+;
needs root or ptrace permission) and read with getsockopt: the duplicate is
the same kernel socket, so the values are the program's own.
"""
import ctypes
import os
import socket

from sockopts import options

SYS_PIDFD_GETFD = 438  # x86_64 and aarch64 share the generic number

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _socket_inodes(pid):
    """fd number -> socket inode for every socket fd of `pid`."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out[int(fd)] = target
    return out


def tcp_sockets(pid):
    """[(fd, peer, options)] for each connected TCP socket of `pid`."""
    pidfd = os.pidfd_open(pid)
    found = []
    try:
        for fd in sorted(_socket_inodes(pid)):
            dup = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
            if dup < 0:
                err = ctypes.get_errno()
                raise OSError(err, f"pidfd_getfd({pid}, {fd}): {os.strerror(err)}")
            s = socket.socket(fileno=dup)
            try:
                if s.type != socket.SOCK_STREAM or s.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                try:
                    peer = s.getpeername()
                except OSError:
                    continue  # listening or unconnected
                found.append((fd, peer, options(s)))
            finally:
                s.close()
    finally:
        os.close(pidfd)
    return found
