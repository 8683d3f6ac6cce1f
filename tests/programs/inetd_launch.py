"""What inetd or systemd does before it starts a per-connection service:
the connection arrives as this program's stdin, is put where the service
expects it, and the service is exec'd in this same process (so LISTEN_PID,
when set to our pid, names the service).

    inetd_launch.py stdio CMD...
        the connection as fds 0, 1 and 2 (xinetd wait=no, systemd
        Accept=yes with StandardInput=socket)
    inetd_launch.py listen_fds self|unset|other CMD...
        the connection as fd 3 with LISTEN_FDS=1 (systemd Accept=yes);
        LISTEN_PID is this process's pid, unset, or another process's (1);
        stdin becomes /dev/null, stdout and stderr stay as they are
"""
import os
import sys

mode = sys.argv[1]
if mode == "stdio":
    cmd = sys.argv[2:]
    os.dup2(0, 1)
    os.dup2(0, 2)
elif mode == "listen_fds":
    pid_mode, cmd = sys.argv[2], sys.argv[3:]
    os.dup2(0, 3)  # inheritable: it survives exec
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.environ["LISTEN_FDS"] = "1"
    os.environ.pop("LISTEN_PID", None)
    if pid_mode == "self":
        os.environ["LISTEN_PID"] = str(os.getpid())
    elif pid_mode == "other":
        os.environ["LISTEN_PID"] = "1"
else:
    sys.exit(f"unknown mode {mode}")
os.execvp(cmd[0], cmd)
