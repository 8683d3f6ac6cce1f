"""A 4-thread parent whose threads connect in a loop while it forks FORKS
children that each connect once. Prints `hung N`: children still running
10 s after they were forked (then killed).

    fork_churn.py PORT FORKS
"""
import os
import signal
import socket
import sys
import threading
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads
port, forks = int(sys.argv[1]), int(sys.argv[2])
stop = threading.Event()


def connect_once():
    # A numeric address: no getaddrinfo, whose glibc locks are not fork-safe
    # on their own; this test is about the shim's hooks.
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    s.close()


def churn():
    while not stop.is_set():
        connect_once()


def on_alarm(signum, frame):
    raise TimeoutError


threads = [threading.Thread(target=churn) for _ in range(4)]
for t in threads:
    t.start()
hung = 0
signal.signal(signal.SIGALRM, on_alarm)
for _ in range(forks):
    pid = os.fork()
    if pid == 0:
        connect_once()
        os._exit(0)
    signal.alarm(10)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    except TimeoutError:
        hung += 1
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    finally:
        signal.alarm(0)
stop.set()
for t in threads:
    t.join()
print("hung", hung)
