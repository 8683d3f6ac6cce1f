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

import pytest

from conftest import (
    EXPECTED,
    KERNEL_DEFAULT,
    LOG_LINE,
    ROOT,
    SETTINGS,
    KeepAliveHandler,
    clean_env,
    log_lines,
    probe,
    program,
    require,
    require_root,
    run,
    shim_env,
)

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
    r = run([sys.executable, program("requests_pooled"), str(port)], clean_env())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == KERNEL_DEFAULT
    r = run([sys.executable, program("requests_pooled"), str(port)], shim_env(**SETTINGS))
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
        for path in ("hook", "fallback"):
            # Python's own timeout only bounds the test; the socket is blocking
            # from the kernel's point of view while connect() waits.
            with_shim = netns(sys.executable, program("connect_blackhole"), path, "8", env=shim_env(user_timeout="1500ms"),
                              capture_output=True, text=True, timeout=30)
            verdict, secs = with_shim.stdout.split()
            assert verdict == "ETIMEDOUT", (path, with_shim.stdout, with_shim.stderr)
            assert 1.0 <= float(secs) <= 4.0, (path, secs)
        without = netns(sys.executable, program("connect_blackhole"), "hook", "5", env=clean_env(),
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
    r = run([sys.executable, program("closed_stderr"), str(port)], shim_env(log="debug", **SETTINGS))
    t.join(15)
    srv.close()
    assert r.returncode == 0 and r.stdout == "done\n", r.stdout
    assert received[0] == b"REQUEST\n"
    assert received[1] == b""


def test_fork_storm_with_logging(listener, tmp_path):
    """A 4-thread parent forks 300 times while its threads open and connect
    sockets, with logging on: no child may hang and every log line is whole."""
    log = tmp_path / "fork.log"
    r = run([sys.executable, program("fork_churn"), str(listener), "300"],
            shim_env(log="info", log_file=log, **SETTINGS), timeout=240)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hung 0\n"
    lines = log.read_text().splitlines()
    assert len(lines) >= 300  # at least every child's connection
    bad = [ln for ln in lines if not re.fullmatch(
        r"keepalive-shim\[\d+\]: fd=\d+ peer=127\.0\.0\.1:\d+ SO_KEEPALIVE=1 TCP_KEEPIDLE=7 "
        r"TCP_KEEPINTVL=3 TCP_KEEPCNT=4 TCP_USER_TIMEOUT=19000", ln)]
    assert bad == []
