"""connect() to 127.0.0.1:9, whose SYNs the test's firewall drops; prints
`ETIMEDOUT SECONDS` if the kernel gave up (TCP_USER_TIMEOUT), or
`still-hanging SECONDS` if Python's own timeout ran out first.

    connect_blackhole.py hook|fallback PYTHON_TIMEOUT_S

`fallback` makes the socket with the raw syscall, so that the socket() hook
never sees it and only connect() can configure it.
"""
import ctypes
import errno
import socket
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
if sys.argv[1] == "hook":
    s = socket.socket()
else:  # a socket the socket() hook never saw
    s = socket.socket(fileno=libc.syscall(41, socket.AF_INET, socket.SOCK_STREAM, 0))
start = time.monotonic()
s.settimeout(float(sys.argv[2]))
try:
    s.connect(("127.0.0.1", 9))
    print("connected")
except OSError as e:  # Python's own timeout has no errno; the kernel's is ETIMEDOUT
    verdict = errno.errorcode[e.errno] if e.errno else "still-hanging"
    print("%s %.1f" % (verdict, time.monotonic() - start))
