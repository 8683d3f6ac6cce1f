"""The preload library in real programs: Python, curl, C. Every test reads
back the kernel's state and uses values that differ from the kernel's
defaults (7200 s / 75 s / 9 probes / no user timeout), so a no-op fails."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import http.server

import pytest

from conftest import ROOT, clean_env, require, require_root, run, shim_env

PROBE = str(ROOT / "tests" / "programs" / "probe.py")
# Values chosen to differ from every kernel default.
# TCP_USER_TIMEOUT is opt-in (off by default); `auto` is asked for here so
# that all five options are exercised.
SETTINGS = dict(idle=7, interval=3, count=4, user_timeout="auto")
EXPECTED = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 7, "TCP_KEEPINTVL": 3, "TCP_KEEPCNT": 4,
            "TCP_USER_TIMEOUT": (7 + 3 * 4) * 1000}
KERNEL_DEFAULT = {"SO_KEEPALIVE": 0, "TCP_KEEPIDLE": 7200, "TCP_KEEPINTVL": 75,
                  "TCP_KEEPCNT": 9, "TCP_USER_TIMEOUT": 0}
LOG_LINE = re.compile(r"^keepalive-shim\[(\d+)\]: (.*)$")


@pytest.fixture
def listener():
    """A loopback TCP listener that accepts and closes every connection, so
    its backlog never fills however many connections a test makes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(512)

    def accept_forever():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return  # closed by the fixture
            conn.close()

    threading.Thread(target=accept_forever, daemon=True).start()
    yield s.getsockname()[1]
    s.shutdown(socket.SHUT_RDWR)
    s.close()


@pytest.fixture
def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, never listening: connect is refused
    yield s.getsockname()[1]
    s.close()


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release = None  # threading.Event the /hold endpoint waits for
    arrived = None

    def do_GET(self):
        if self.path == "/hold":
            KeepAliveHandler.arrived.set()
            KeepAliveHandler.release.wait(20)
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    KeepAliveHandler.release = threading.Event()
    KeepAliveHandler.arrived = threading.Event()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    KeepAliveHandler.release.set()
    srv.shutdown()
    srv.server_close()


def probe(args, env, check=True):
    r = run([sys.executable, PROBE, *args], env)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def log_lines(stderr):
    return [m.group(2) for m in map(LOG_LINE.match, stderr.splitlines()) if m]


# --- which sockets get the options -------------------------------------------

def test_python_create_connection_gets_every_option(listener):
    baseline = json.loads(probe(["connect", "127.0.0.1", str(listener)], clean_env()).stdout)
    assert baseline == KERNEL_DEFAULT
    r = probe(["connect", "127.0.0.1", str(listener)], shim_env(**SETTINGS))
    assert json.loads(r.stdout) == EXPECTED
    assert r.stderr == ""  # valid configuration, default level: silent


def test_socket_kinds(listener):
    """TCP over IPv4/IPv6, with SOCK_NONBLOCK|SOCK_CLOEXEC or IPPROTO_TCP, gets
    the options; UDP, AF_UNIX, raw and packet sockets are left alone."""
    require_root()  # raw and packet sockets
    r = probe(["kinds", "127.0.0.1", str(listener)], shim_env(log="info", **SETTINGS))
    got = json.loads(r.stdout)
    for name in ("tcp4", "tcp4_nonblock_cloexec", "tcp4_ipproto_tcp", "tcp6"):
        assert got[name] == EXPECTED, name
    for name in ("udp4", "udp6", "unix_stream", "unix_dgram", "raw_icmp", "raw_tcp", "packet"):
        assert got[name]["SO_KEEPALIVE"] == 0, name
    assert got["udp4"]["after_connect"] == 0
    # At info, exactly one line per connection: the three connected TCP
    # sockets; tcp6, never connected, only at debug.
    lines = log_lines(r.stderr)
    assert len(lines) == 3, r.stderr
    assert sum(" peer=127.0.0.1:" in ln for ln in lines) == 3
    r = probe(["kinds", "127.0.0.1", str(listener)], shim_env(log="debug", **SETTINGS))
    assert sum(re.fullmatch(r"fd=\d+ unconnected SO_KEEPALIVE=1 TCP_KEEPIDLE=7 TCP_KEEPINTVL=3 "
                            r"TCP_KEEPCNT=4 TCP_USER_TIMEOUT=19000", ln) is not None
               for ln in log_lines(r.stderr)) == 1, r.stderr


def test_ipv6_loopback():
    srv = socket.socket(socket.AF_INET6)
    srv.bind(("::1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    r = probe(["connect", "::1", str(port)], shim_env(log="info", **SETTINGS))
    srv.close()
    assert json.loads(r.stdout) == EXPECTED
    [line] = log_lines(r.stderr)
    assert f"peer=[::1]:{port} " in line


def test_requests_session_pooled_connection(http_server):
    port = http_server.server_address[1]
    code = f"""
import json, socket, requests
s = requests.Session()
url = "http://127.0.0.1:{port}/"
r1 = s.get(url, stream=True)
first_port = r1.raw._connection.sock.getsockname()
assert r1.text == "hello\\n"
r2 = s.get(url, stream=True)
sk = r2.raw._connection.sock
assert sk.getsockname() == first_port  # the same pooled connection
print(json.dumps({{
    "SO_KEEPALIVE": sk.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "TCP_KEEPIDLE": sk.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
    "TCP_KEEPINTVL": sk.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
    "TCP_KEEPCNT": sk.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    "TCP_USER_TIMEOUT": sk.getsockopt(socket.IPPROTO_TCP, 18),
}}))
"""
    r = run([sys.executable, "-c", code], clean_env())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == KERNEL_DEFAULT
    r = run([sys.executable, "-c", code], shim_env(**SETTINGS))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == EXPECTED


def test_curl_own_settings_stand(http_server):
    """curl sets SO_KEEPALIVE, TCP_KEEPIDLE=60 and TCP_KEEPINTVL=60 itself:
    those stand; TCP_KEEPCNT and TCP_USER_TIMEOUT come from the shim.
    The values are read from curl's live socket with pidfd_getfd."""
    require_root()
    require(shutil.which("curl") is not None, "curl is not installed")
    import sockpeek
    port = http_server.server_address[1]
    results = {}
    for mode, env in (("without", clean_env()), ("with", shim_env(log="debug", **SETTINGS))):
        KeepAliveHandler.arrived.clear()
        KeepAliveHandler.release.clear()
        proc = subprocess.Popen(["curl", "-sS", f"http://127.0.0.1:{port}/hold"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert KeepAliveHandler.arrived.wait(10), "curl's request never arrived"
            socks = [s for s in sockpeek.tcp_sockets(proc.pid) if s[1][1] == port]
        finally:
            KeepAliveHandler.release.set()
            out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out == "hello\n"
        assert len(socks) == 1, socks
        results[mode] = (socks[0][2], err)
    without, _ = results["without"]
    assert without == dict(KERNEL_DEFAULT, SO_KEEPALIVE=1, TCP_KEEPIDLE=60, TCP_KEEPINTVL=60)
    with_shim, log = results["with"]
    # auto is computed from the socket's effective values: curl's 60/60 and
    # the shim's count, so one lost probe ACK cannot end the connection.
    auto = (60 + 60 * 4) * 1000
    assert with_shim == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 60,
                         "TCP_KEEPCNT": 4, "TCP_USER_TIMEOUT": auto}
    [line] = [ln for ln in log_lines(log) if "peer=" in ln]
    # info part: only what the shim still owns; debug part: what curl set.
    assert line.endswith(f"peer=127.0.0.1:{port} TCP_KEEPCNT=4 TCP_USER_TIMEOUT={auto} "
                         "program-set: SO_KEEPALIVE=1 TCP_KEEPIDLE=60 TCP_KEEPINTVL=60"), line


def test_options_are_in_place_before_the_syn(tmp_path):
    """TCP_USER_TIMEOUT bounds SYN retransmissions only if it is set before
    connect() sends the SYN. In a private network namespace whose firewall
    drops the SYN, a connect under the shim fails with ETIMEDOUT within the
    user timeout; without the shim it is still hanging at the same point.
    Both the socket() path and the connect()-time fallback are checked."""
    require_root()
    require(shutil.which("nft") is not None, "nftables is not installed")
    ns = f"ks-syn-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        def netns(*cmd, **kw):
            return subprocess.run(["ip", "netns", "exec", ns, *cmd], **kw)
        netns("ip", "link", "set", "lo", "up", check=True)
        netns("nft", "add table inet t; add chain inet t out { type filter hook output priority 0; };"
              " add rule inet t out tcp dport 9 tcp flags syn drop", check=True)
        code = """
import ctypes, errno, socket, sys, time
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
"""
        for path in ("hook", "fallback"):
            # Python's own timeout only bounds the test; the socket is blocking
            # from the kernel's point of view while connect() waits.
            with_shim = netns(sys.executable, "-c", code, path, "8", env=shim_env(user_timeout="1500ms"),
                              capture_output=True, text=True, timeout=30)
            verdict, secs = with_shim.stdout.split()
            assert verdict == "ETIMEDOUT", (path, with_shim.stdout, with_shim.stderr)
            assert 1.0 <= float(secs) <= 4.0, (path, secs)
        without = netns(sys.executable, "-c", code, "hook", "5", env=clean_env(),
                        capture_output=True, text=True, timeout=30)
        assert without.stdout.split()[0] == "still-hanging", without.stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_chains_to_the_next_preloaded_library(listener, tmp_path):
    """The real functions are found with dlsym(RTLD_NEXT): a library preloaded
    after the shim still sees the calls, and the shim still applies."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    require(gcc is not None, "a C compiler is needed")
    nextlib = tmp_path / "libnext.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(nextlib),
                    str(ROOT / "tests" / "programs" / "next_socket.c"), "-ldl"], check=True)
    env = shim_env(**SETTINGS)
    env["LD_PRELOAD"] = f"{env['LD_PRELOAD']}:{nextlib}"
    r = probe(["connect", "127.0.0.1", str(listener)], env)
    assert json.loads(r.stdout) == EXPECTED
    assert "next-socket called" in r.stderr


# --- never harm the host program ---------------------------------------------

def test_errno_preserved_in_python(listener, closed_port):
    args = ["errno", str(closed_port), str(listener)]
    without = json.loads(probe(args, clean_env()).stdout)
    assert without == {"refused": "ECONNREFUSED", "nonblocking": "EINPROGRESS"}
    assert json.loads(probe(args, shim_env(log="debug", **SETTINGS)).stdout) == without


def test_errno_preserved_when_every_option_fails(cc, listener, closed_port):
    """A seccomp filter makes every setsockopt fail inside the hooks; the
    program's errno and return values must still be its own."""
    exe = cc("errno_guard")
    r = run([exe, str(listener), str(closed_port)], shim_env(log="debug"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    assert r.stdout.count(" ok") == 10
    # The shim really tried (and logged the failures at debug).
    assert "could not set TCP_KEEPCNT=6: errno 13" in r.stderr


def test_switch_off_is_pure_pass_through(listener):
    args = ["kinds", "127.0.0.1", str(listener)] if os.geteuid() == 0 else ["connect", "127.0.0.1", str(listener)]
    without = probe(args, clean_env())
    for off in ("off", "0", "false", "OFF"):
        r = probe(args, shim_env(shim=off, log="debug", **SETTINGS))
        assert r.stdout == without.stdout, off
        assert r.stderr == "", off
    on = probe(args, shim_env(**SETTINGS))
    assert on.stdout != without.stdout  # the comparison above can fail


@pytest.mark.parametrize("var,value,accepted", [
    ("IDLE", "0", "1 to 32767 s"),
    ("INTERVAL", "junk", "1 to 32767 s"),
    ("COUNT", "128", "1 to 127"),
    ("COUNT", "-1", "1 to 127"),
    ("USER_TIMEOUT", "", "off; auto"),
    ("IDLE", "99999999999999999999999", "1 to 32767 s"),
    ("LOG", "verbose", "off, error, warn, info, debug"),
])
def test_invalid_value_warns_once_and_program_runs_on(listener, var, value, accepted):
    args = ["connect", "127.0.0.1", str(listener)]
    env = shim_env(**{var.lower(): value})
    r = probe(args, env)
    assert json.loads(r.stdout) == dict(EXPECTED, TCP_KEEPIDLE=60, TCP_KEEPINTVL=10, TCP_KEEPCNT=6,
                                        TCP_USER_TIMEOUT=0)
    warnings = [ln for ln in log_lines(r.stderr) if ln.startswith("warning:")]
    assert len(warnings) == 1, r.stderr
    assert f'KEEPALIVE_SHIM_{var}="' in warnings[0]
    assert accepted in warnings[0]
    assert "using the default" in warnings[0]


def test_unknown_variable_warns():
    code = "import socket; socket.socket(); print('done')"
    env = shim_env()
    env["KEEPALIVE_SHIM_IDEL"] = "5"
    r = run([sys.executable, "-c", code], env)
    assert r.stdout == "done\n"
    [w] = log_lines(r.stderr)
    assert w.startswith("warning: KEEPALIVE_SHIM_IDEL is not a keepalive-shim setting")


def test_warnings_stay_out_of_processes_without_tcp():
    """A shell pipeline of helper processes that never open a TCP socket
    prints no warning; the one process that does prints it once."""
    env = shim_env(idle="bogus")
    r = run(["sh", "-c", f"true | cat >/dev/null; ls / >/dev/null; "
             f"{sys.executable} -c 'import socket; socket.socket()'"], env)
    assert r.returncode == 0
    assert len(log_lines(r.stderr)) == 1, r.stderr


def test_rust_log_of_the_host_is_ignored(listener):
    env = shim_env(**SETTINGS)
    env["RUST_LOG"] = "trace"
    r = probe(["connect", "127.0.0.1", str(listener)], env)
    assert r.stderr == ""


def test_log_line_format(listener):
    r = probe(["connect", "127.0.0.1", str(listener)], shim_env(log="info", **SETTINGS))
    [line] = r.stderr.splitlines()
    m = LOG_LINE.match(line)
    assert m, line
    assert re.fullmatch(rf"fd=\d+ peer=127\.0\.0\.1:{listener} SO_KEEPALIVE=1 TCP_KEEPIDLE=7 "
                        r"TCP_KEEPINTVL=3 TCP_KEEPCNT=4 TCP_USER_TIMEOUT=19000", m.group(2)), line


def test_log_file_appends(listener, tmp_path):
    log = tmp_path / "shim.log"
    log.write_text("existing line\n")
    r = probe(["connect", "127.0.0.1", str(listener)], shim_env(log="info", log_file=log, **SETTINGS))
    assert r.stderr == ""
    lines = log.read_text().splitlines()
    assert lines[0] == "existing line"
    assert len(lines) == 2 and "TCP_KEEPCNT=4" in lines[1]


def test_user_timeout_settings(listener):
    # Unset: off. TCP_USER_TIMEOUT can end a live connection whose reader
    # keeps its window closed, so it is opt-in.
    r = probe(["connect", "127.0.0.1", str(listener)], shim_env(idle=7, interval=3, count=4))
    assert json.loads(r.stdout)["TCP_USER_TIMEOUT"] == 0
    for value, expected in (("off", 0), ("2500ms", 2500), ("3s", 3000), ("auto", 19000)):
        r = probe(["connect", "127.0.0.1", str(listener)], shim_env(**dict(SETTINGS, user_timeout=value)))
        assert json.loads(r.stdout)["TCP_USER_TIMEOUT"] == expected, value


CLOSED_STDERR_PROGRAM = r"""
import os, socket, sys
server_port = int(sys.argv[1])
os.close(2)                       # a daemon closes stderr ...
victim = socket.create_connection(("127.0.0.1", server_port))
assert victim.fileno() == 2       # ... and its next socket gets fd 2
victim.sendall(b"REQUEST\n")
# Another connection: its log line must not go into fd 2 (the victim's stream).
other = socket.create_connection(("127.0.0.1", server_port))
other.close()
victim.shutdown(socket.SHUT_WR)
print("done")
"""


def test_closed_and_reused_stderr_gets_no_log_bytes():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    received = {}

    def serve():
        for i in range(2):
            conn, _ = srv.accept()
            data = b""
            conn.settimeout(10)
            while chunk := conn.recv(4096):
                data += chunk
            received[i] = data
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = run([sys.executable, "-c", CLOSED_STDERR_PROGRAM, str(port)], shim_env(log="debug", **SETTINGS))
    t.join(15)
    srv.close()
    assert r.returncode == 0 and r.stdout == "done\n", r.stdout
    assert received[0] == b"REQUEST\n"
    assert received[1] == b""


def test_fork_storm_with_logging(listener, tmp_path):
    """A 4-thread parent forks 300 times while its threads open and connect
    sockets, with logging on: no child may hang and every log line is whole."""
    code = r"""
import os, signal, socket, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)
port, forks = int(sys.argv[1]), int(sys.argv[2])
stop = threading.Event()
def connect_once():
    # A numeric address: no getaddrinfo, whose glibc locks are not fork-safe
    # on their own; this test is about the shim's hooks.
    s = socket.socket(); s.connect(("127.0.0.1", port)); s.close()
def churn():
    while not stop.is_set():
        connect_once()
threads = [threading.Thread(target=churn) for _ in range(4)]
for t in threads: t.start()
hung = 0
def on_alarm(signum, frame): raise TimeoutError
signal.signal(signal.SIGALRM, on_alarm)
for i in range(forks):
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
        os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
    finally:
        signal.alarm(0)
stop.set()
for t in threads: t.join()
print("hung", hung)
"""
    log = tmp_path / "fork.log"
    r = run([sys.executable, "-c", code, str(listener), "300"],
            shim_env(log="info", log_file=log, **SETTINGS), timeout=240)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hung 0\n"
    lines = log.read_text().splitlines()
    assert len(lines) >= 300  # at least every child's connection
    bad = [ln for ln in lines if not re.fullmatch(
        r"keepalive-shim\[\d+\]: fd=\d+ peer=127\.0\.0\.1:\d+ SO_KEEPALIVE=1 TCP_KEEPIDLE=7 "
        r"TCP_KEEPINTVL=3 TCP_KEEPCNT=4 TCP_USER_TIMEOUT=19000", ln)]
    assert bad == []
