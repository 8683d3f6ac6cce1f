"""`keepalive-shim status` and `keepalive-shim apply` on running processes:
a Python client and a `gcc -static` client hold loopback connections; the
tool reads and sets their options through pidfd_getfd, and the process
itself (and sock_diag, as `ss` shows it) reads the result back.

Needs root (pidfd_getfd on another process, a network namespace); without
root it fails when CI=true and is skipped otherwise.
"""
import json
import os
import select
import shutil
import socket
import subprocess
import sys

import pytest

import sockpeek
from conftest import CLI, ROOT, clean_env, require, require_root, shim_env

HOLD = str(ROOT / "tests" / "programs" / "hold_client.py")
KERNEL = {"SO_KEEPALIVE": 0, "TCP_KEEPIDLE": 7200, "TCP_KEEPINTVL": 75, "TCP_KEEPCNT": 9, "TCP_USER_TIMEOUT": 0}
# Values that differ from every kernel default.
FLAGS = ["--idle", "17", "--interval", "4", "--count", "3"]
OURS = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 17, "TCP_KEEPINTVL": 4, "TCP_KEEPCNT": 3}
WAIT = 10  # seconds, for any line from a child


@pytest.fixture(autouse=True)
def _root():
    require_root()


class Child:
    """A process started with a stdin pipe, read line by line with a bound."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, bufsize=1, env=env if env is not None else clean_env())
        self.pid = self.p.pid

    def line(self):
        ready, _, _ = select.select([self.p.stdout], [], [], WAIT)
        assert ready, f"no output from {self.p.args} within {WAIT}s"
        text = self.p.stdout.readline()
        assert text, f"{self.p.args} exited: {self.p.stderr.read()}"
        return text.strip()

    def ask(self):
        self.p.stdin.write("opts\n")
        self.p.stdin.flush()
        return self.line()

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def servers():
    """Listening sockets on 127.0.0.1; returns a function n -> [ports]."""
    made = []

    def make(n=1):
        ports = []
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            made.append(s)
            ports.append(s.getsockname()[1])
        return ports

    yield make
    for s in made:
        s.close()


@pytest.fixture
def children():
    started = []

    def start(argv, env=None):
        c = Child(argv, env)
        started.append(c)
        return c

    yield start
    for c in started:
        c.close()


def python_client(children, ports, *extra, env=None):
    c = children([sys.executable, HOLD, *extra, "127.0.0.1", *map(str, ports)], env)
    first = json.loads(c.line())
    assert first["event"] == "connected"
    return c, first["local_ports"]


def own_options(c):
    """The options of each socket, as the client process reads them itself."""
    return json.loads(c.ask())["sockets"]


def cli(*args, env=None):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, timeout=60,
                          env=env if env is not None else clean_env())


def line_for(stdout, local_port):
    lines = [line for line in stdout.splitlines() if f"127.0.0.1:{local_port} ->" in line]
    assert len(lines) == 1, stdout
    return lines[0]


def ss_timer(local_port):
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( sport = :{local_port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    return out


# --- status -------------------------------------------------------------------

def test_status_without_library_says_no_keepalive(servers, children):
    c, (port,) = python_client(children, servers())
    r = cli("status", c.pid)
    assert r.returncode == 0, r.stderr
    assert f"pid {c.pid} (python3): libkeepalive_shim not loaded" in r.stdout
    line = line_for(r.stdout, port)
    assert "ESTABLISHED" in line
    assert "SO_KEEPALIVE=0 TCP_KEEPIDLE=7200 TCP_KEEPINTVL=75 TCP_KEEPCNT=9 TCP_USER_TIMEOUT=0" in line
    assert "timer:(none)" in line
    assert "no keepalive: if this peer vanishes, this process waits forever" in line


def test_status_under_library_shows_its_values_and_timer(servers, children):
    env = shim_env(idle=17, interval=4, count=3, user_timeout="auto")
    c, (port,) = python_client(children, servers(), env=env)
    r = cli("status", c.pid)
    assert r.returncode == 0, r.stderr
    assert "libkeepalive_shim loaded" in r.stdout
    line = line_for(r.stdout, port)
    assert "SO_KEEPALIVE=1 TCP_KEEPIDLE=17 TCP_KEEPINTVL=4 TCP_KEEPCNT=3 TCP_USER_TIMEOUT=29000" in line
    assert "timer:(keepalive," in line
    assert "keepalive: a vanished peer is found after 29 s idle" in line


def test_status_json_shape(servers, children):
    env = shim_env(idle=17, interval=4, count=3)
    c, (port,) = python_client(children, servers(), env=env)
    r = cli("status", "--json", c.pid)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"version", "ok", "processes"}
    assert doc["version"] == 1 and doc["ok"] is True
    (p,) = doc["processes"]
    assert set(p) == {"pid", "command", "library_loaded", "netns", "error", "sockets"}
    assert (p["pid"], p["command"], p["library_loaded"], p["error"]) == (c.pid, "python3", True, None)
    assert p["netns"] == os.stat(f"/proc/{c.pid}/ns/net").st_ino
    (s,) = [s for s in p["sockets"] if s["local"] == f"127.0.0.1:{port}"]
    assert set(s) == {"fd", "state", "role", "local", "peer", "options", "timer", "verdict", "detail"}
    assert isinstance(s["fd"], int) and s["state"] == "ESTABLISHED" and s["role"] == "connected"
    assert s["options"] == dict(OURS, TCP_USER_TIMEOUT=0)
    assert set(s["timer"]) == {"kind", "expires_ms", "retrans"}
    assert s["timer"]["kind"] == "keepalive" and 0 < s["timer"]["expires_ms"] <= 17000
    assert s["verdict"] == "keepalive"


def test_status_listener_and_accepted_roles(children):
    c = children([sys.executable, HOLD, "--loop"])
    port = json.loads(c.line())["listen_port"]
    doc = json.loads(cli("status", "--json", c.pid).stdout)
    roles = sorted((s["role"], s["verdict"]) for s in doc["processes"][0]["sockets"])
    assert roles == [("accepted", "no-keepalive"), ("connected", "no-keepalive"), ("listener", "listener")]
    (listener,) = [s for s in doc["processes"][0]["sockets"] if s["role"] == "listener"]
    assert listener["local"] == f"127.0.0.1:{port}" and listener["peer"] is None


def test_status_close_wait_says_the_peer_closed(children):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    try:
        c = children([sys.executable, HOLD, "127.0.0.1", str(srv.getsockname()[1])])
        (port,) = json.loads(c.line())["local_ports"]
        conn, _ = srv.accept()
        conn.close()  # our FIN; the client never reads, so it stays in CLOSE-WAIT
        line = ""
        for _ in range(50):  # the FIN crosses loopback at once; bounded anyway
            line = line_for(cli("status", c.pid).stdout, port)
            if "CLOSE-WAIT" in line:
                break
            select.select([], [], [], 0.1)
        assert "CLOSE-WAIT" in line and "the peer has closed its end" in line, line
    finally:
        srv.close()


def test_status_without_permission_says_so_and_fails(servers, children):
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed")
    c, _ = python_client(children, servers())
    # The CLI must be reachable by an unprivileged user: copy it out of the tree.
    exe = "/tmp/keepalive-shim-status-test-%d" % os.getpid()
    shutil.copy(CLI, exe)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "status"]
    try:
        r = subprocess.run(nobody + [str(c.pid)], capture_output=True, text=True, timeout=30, env=clean_env())
        j = subprocess.run(nobody + ["--json", str(c.pid)], capture_output=True, text=True, timeout=30,
                           env=clean_env())
    finally:
        os.unlink(exe)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"pid {c.pid} (python3)" in r.stdout  # what is still visible
    assert "permission denied" in r.stdout
    assert j.returncode == 1
    doc = json.loads(j.stdout)
    assert doc["ok"] is False
    (p,) = doc["processes"]
    assert (p["pid"], p["command"], p["library_loaded"], p["sockets"]) == (c.pid, "python3", None, [])
    assert p["error"].startswith("permission denied")


def test_status_unknown_pid_fails(servers, children):
    c, _ = python_client(children, servers())
    r = cli("status", c.pid, 4194303)  # above the default pid_max
    assert r.returncode == 1
    assert "pid 4194303 (?): libkeepalive_shim unknown" in r.stdout and "no such process" in r.stdout
    assert f"pid {c.pid} (python3)" in r.stdout  # the other one is still shown


def process_block(stdout, pid):
    """The lines `status` prints for one process (its header and sockets)."""
    out, inside = [], False
    for line in stdout.splitlines():
        if line.startswith("pid "):
            inside = line.startswith(f"pid {pid} ")
        if inside:
            out.append(line)
    return "\n".join(out)


def test_a_thread_id_is_refused_with_the_process_id(servers, children):
    c = children([sys.executable, HOLD, "--thread", "127.0.0.1", str(servers()[0])])
    tid = json.loads(c.line())["thread_id"]
    assert tid != c.pid
    for command in ("status", "apply"):
        r = cli(command, tid)
        assert r.returncode == 1
        assert f"{tid} is a thread of process {c.pid}: give the process's PID" in r.stdout + r.stderr
    assert own_options(c) == [KERNEL]


def test_status_all_lists_the_process(servers, children):
    c, (port,) = python_client(children, servers())
    r = cli("status", "--all")
    # Other namespaces on the host (other tests' labs) may reuse the port.
    block = process_block(r.stdout, c.pid)
    assert block.startswith(f"pid {c.pid} (python3)"), r.stdout
    assert "no keepalive" in line_for(block, port)


# --- apply --------------------------------------------------------------------

def test_apply_python_client_kernel_values_read_back(servers, children):
    c, (port,) = python_client(children, servers())
    assert own_options(c) == [KERNEL]
    r = cli("apply", c.pid, *FLAGS, "--user-timeout", "auto")
    assert r.returncode == 0, r.stderr
    line = line_for(r.stdout, port)
    assert "set SO_KEEPALIVE=1 (was 0) TCP_KEEPIDLE=17 (was 7200) TCP_KEEPINTVL=4 (was 75) " \
           "TCP_KEEPCNT=3 (was 9) TCP_USER_TIMEOUT=29000 (was 0)" in line
    assert own_options(c) == [dict(OURS, TCP_USER_TIMEOUT=29000)]
    assert [o for _, _, o in sockpeek.tcp_sockets(c.pid)] == [dict(OURS, TCP_USER_TIMEOUT=29000)]
    assert "timer:(keepalive," in ss_timer(port)
    # Run again: nothing left to change.
    r = cli("apply", c.pid, *FLAGS, "--user-timeout", "auto")
    assert r.returncode == 0 and "unchanged; kept SO_KEEPALIVE=1 (already)" in line_for(r.stdout, port)


def test_apply_default_user_timeout_is_off(servers, children):
    c, (port,) = python_client(children, servers())
    r = cli("apply", c.pid)
    assert r.returncode == 0, r.stderr
    assert "TCP_USER_TIMEOUT" not in line_for(r.stdout, port)
    assert own_options(c) == [{"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 6,
                               "TCP_USER_TIMEOUT": 0}]


def test_apply_static_client(servers, children, tmp_path):
    gcc = shutil.which("gcc")
    require(gcc is not None, "gcc is needed for the static client")
    exe = tmp_path / "static_client"
    subprocess.run([gcc, "-static", "-O2", "-Wall", "-Werror", "-o", str(exe),
                    str(ROOT / "tests" / "programs" / "static_client.c")], check=True, timeout=120)
    # No program interpreter: the dynamic loader never runs, so no preload could reach it.
    headers = subprocess.run(["readelf", "-lW", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "INTERP" not in headers and "LOAD" in headers
    (server_port,) = servers()
    c = children([str(exe), str(server_port)])
    port = int(c.line().split()[1])
    assert c.ask() == "SO_KEEPALIVE=0 TCP_KEEPIDLE=7200 TCP_KEEPINTVL=75 TCP_KEEPCNT=9 TCP_USER_TIMEOUT=0"
    r = cli("apply", c.pid, *FLAGS, "--user-timeout", "5s")
    assert r.returncode == 0, r.stderr
    assert "set SO_KEEPALIVE=1 (was 0)" in line_for(r.stdout, port)
    assert c.ask() == "SO_KEEPALIVE=1 TCP_KEEPIDLE=17 TCP_KEEPINTVL=4 TCP_KEEPCNT=3 TCP_USER_TIMEOUT=5000"
    assert "timer:(keepalive," in ss_timer(port)


def test_apply_go_client(servers, children, tmp_path):
    go = shutil.which("go")
    require(go is not None, "go (golang-go) is needed for the Go client")
    exe = tmp_path / "go_client"
    env = dict(clean_env(), CGO_ENABLED="0", GO111MODULE="off", GOCACHE=str(tmp_path / "gocache"),
               GOPATH=str(tmp_path / "gopath"), HOME=str(tmp_path))
    subprocess.run([go, "build", "-o", str(exe), str(ROOT / "tests" / "programs" / "go_client.go")],
                   check=True, timeout=300, env=env)
    headers = subprocess.run(["readelf", "-lW", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "INTERP" not in headers  # static: Go makes its own system calls
    (server_port,) = servers()
    c = children([str(exe), str(server_port)])
    port = int(c.line().split()[1])
    assert c.ask() == "SO_KEEPALIVE=0 TCP_KEEPIDLE=7200 TCP_KEEPINTVL=75 TCP_KEEPCNT=9 TCP_USER_TIMEOUT=0"
    r = cli("apply", c.pid, *FLAGS, "--user-timeout", "auto")
    assert r.returncode == 0, r.stderr
    assert "set SO_KEEPALIVE=1 (was 0)" in line_for(r.stdout, port)
    assert c.ask() == "SO_KEEPALIVE=1 TCP_KEEPIDLE=17 TCP_KEEPINTVL=4 TCP_KEEPCNT=3 TCP_USER_TIMEOUT=29000"
    assert "timer:(keepalive," in ss_timer(port)


def test_apply_respect_keeps_the_programs_own_and_force_overrides(servers, children):
    c, (port,) = python_client(children, servers(), "--idle", "33")
    r = cli("apply", c.pid, *FLAGS, "--user-timeout", "auto")
    assert r.returncode == 0, r.stderr
    assert "kept TCP_KEEPIDLE=33 (not the kernel default 7200: the program's own)" in line_for(r.stdout, port)
    # auto is computed from the effective values: the program's 33 s idle.
    assert own_options(c) == [dict(OURS, TCP_KEEPIDLE=33, TCP_USER_TIMEOUT=(33 + 4 * 3) * 1000)]

    c2, (port2,) = python_client(children, servers(), "--idle", "33")
    r = cli("apply", c2.pid, *FLAGS, "--mode", "force")
    assert r.returncode == 0, r.stderr
    assert "TCP_KEEPIDLE=17 (was 33)" in line_for(r.stdout, port2)
    assert own_options(c2) == [dict(OURS, TCP_USER_TIMEOUT=0)]


def test_apply_never_replaces_a_user_timeout(servers, children):
    c, (port,) = python_client(children, servers(), "--user-timeout", "9000")
    r = cli("apply", c.pid, *FLAGS, "--mode", "force", "--user-timeout", "5s")
    assert r.returncode == 0, r.stderr
    assert "kept TCP_USER_TIMEOUT=9000 (the socket has one already)" in line_for(r.stdout, port)
    assert own_options(c) == [dict(OURS, TCP_USER_TIMEOUT=9000)]


def test_apply_filters_on_the_peer(servers, children):
    a, b = servers(2)
    c, (pa, pb) = python_client(children, [a, b])
    r = cli("apply", c.pid, *FLAGS, "--exclude", f"127.0.0.1:{a}")
    assert r.returncode == 0, r.stderr
    assert f"left alone: peer 127.0.0.1:{a} matches EXCLUDE entry 127.0.0.1:{a}" in line_for(r.stdout, pa)
    assert own_options(c) == [KERNEL, dict(OURS, TCP_USER_TIMEOUT=0)]

    c2, (pa2, pb2) = python_client(children, [a, b])
    r = cli("apply", c2.pid, *FLAGS, "--include", f":{a}")
    assert r.returncode == 0, r.stderr
    assert f"left alone: peer 127.0.0.1:{b} matches no INCLUDE entry" in line_for(r.stdout, pb2)
    assert own_options(c2) == [dict(OURS, TCP_USER_TIMEOUT=0), KERNEL]


def test_apply_ipv6_and_its_filters(children):
    servers6 = []
    for _ in range(2):
        srv = socket.socket(socket.AF_INET6)
        srv.bind(("::1", 0))
        srv.listen()
        servers6.append(srv)
    try:
        a, b = (srv.getsockname()[1] for srv in servers6)
        c = children([sys.executable, HOLD, "::1", str(a), str(b)])
        pa, pb = json.loads(c.line())["local_ports"]
        r = cli("apply", c.pid, *FLAGS, "--exclude", f"[::1]:{b}")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        (la,) = [line for line in lines if f"[::1]:{pa} -> [::1]:{a}" in line]
        (lb,) = [line for line in lines if f"[::1]:{pb} -> [::1]:{b}" in line]
        assert "set SO_KEEPALIVE=1 (was 0)" in la
        assert f"left alone: peer [::1]:{b} matches EXCLUDE entry [::1]:{b}" in lb
        assert own_options(c) == [dict(OURS, TCP_USER_TIMEOUT=0), KERNEL]
        doc = json.loads(cli("status", "--json", c.pid).stdout)
        assert sorted(s["peer"] for s in doc["processes"][0]["sockets"]) == sorted([f"[::1]:{a}", f"[::1]:{b}"])
    finally:
        for srv in servers6:
            srv.close()


def test_apply_dry_run_changes_nothing(servers, children):
    c, (port,) = python_client(children, servers())
    r = cli("apply", c.pid, *FLAGS, "--user-timeout", "auto", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would set SO_KEEPALIVE=1 (was 0) TCP_KEEPIDLE=17 (was 7200)" in line_for(r.stdout, port)
    assert own_options(c) == [KERNEL]
    assert "timer:(keepalive" not in ss_timer(port)


def test_apply_bad_pid_fails_and_others_are_still_done(servers, children):
    c, (port,) = python_client(children, servers())
    r = cli("apply", 4194303, c.pid, *FLAGS)
    assert r.returncode == 1
    assert "keepalive-shim: pid 4194303: no such process" in r.stderr
    assert "set SO_KEEPALIVE=1" in line_for(r.stdout, port)
    assert own_options(c)[0]["TCP_KEEPIDLE"] == 17
    # Not a number: a usage error.
    assert cli("apply", "abc").returncode == 2
    assert cli("apply", c.pid, "--idle", "0").returncode == 2


def test_apply_without_permission_fails(servers, children):
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed")
    c, _ = python_client(children, servers())
    exe = "/tmp/keepalive-shim-apply-test-%d" % os.getpid()
    shutil.copy(CLI, exe)
    try:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "apply", str(c.pid)],
                           capture_output=True, text=True, timeout=30, env=clean_env())
    finally:
        os.unlink(exe)
    assert r.returncode == 1
    assert f"pid {c.pid}: permission denied" in r.stderr
    assert own_options(c) == [KERNEL]


# --- another network namespace ------------------------------------------------

@pytest.fixture
def netns():
    require(shutil.which("ip") is not None, "ip (iproute2) is needed")
    name = "ks-live-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        # A namespace whose own kernel default differs from the host's.
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.tcp_keepalive_time=300"],
                       check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], timeout=10)


def test_status_and_apply_in_another_network_namespace(netns, children):
    c = children(["ip", "netns", "exec", netns, sys.executable, HOLD, "--loop"])
    (port,) = json.loads(c.line())["local_ports"]
    # TCP_KEEPIDLE reads as the namespace's default.
    assert own_options(c) == [dict(KERNEL, TCP_KEEPIDLE=300)]
    # `ss` in our namespace does not see it; status does, inside its namespace.
    r = cli("status", c.pid)
    assert r.returncode == 0, r.stderr
    assert "TCP_KEEPIDLE=300" in line_for(r.stdout, port)
    assert f"netns net:[{os.stat(f'/proc/{c.pid}/ns/net').st_ino}]" in r.stdout
    # Respect mode: 300 is this namespace's default, not the program's own.
    r = cli("apply", c.pid, *FLAGS)
    assert r.returncode == 0, r.stderr
    assert "TCP_KEEPIDLE=17 (was 300)" in line_for(r.stdout, port)
    assert own_options(c) == [dict(OURS, TCP_USER_TIMEOUT=0)]
