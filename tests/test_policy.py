"""Policy and reach: destination filters, force mode, servers, program
filter, config file, compatibility variables, secure-execution mode, and
`check --to/--program`. Real programs, kernel state read back."""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import (
    CLI,
    EXPECTED,
    KERNEL_DEFAULT,
    LIB,
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

SHIM = [1, 7, 3, 4, 19000]
UNTOUCHED = [0, 7200, 75, 9, 0]
CLIENT_OWN = [0, 60, 60, 9, 0]  # what the program set, on kernel defaults


def both(env, bind="127.0.0.1", dest=None):
    r = run([sys.executable, program("server_and_client"), bind] + ([dest] if dest else []), env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


# --- who wins ----------------------------------------------------------------

def test_respect_mode_is_per_option():
    got, _ = both(shim_env(**SETTINGS))
    assert got["rcs"] == [None, None, None]  # setsockopt returned 0 every time
    # The program's three choices stand; count and user timeout are the shim's.
    # auto follows the effective values: (60 + 60 x 4) s.
    assert got["client"] == [0, 60, 60, 4, 300000]
    assert got["listener"] == SHIM and got["accepted"] == SHIM


def test_force_mode_overrides_the_program_before_and_after_connect():
    got, err = both(shim_env(mode="force", log="info", **SETTINGS))
    assert got["rcs"] == [None, None, None]  # its calls still "succeed"
    assert got["client"] == SHIM  # SO_KEEPALIVE=0 did not turn keepalive off
    overrides = [ln for ln in log_lines(err) if "force: kept" in ln]
    assert [o.split("force: kept ")[1] for o in overrides] == [
        "SO_KEEPALIVE=1 (the program set 0)", "TCP_KEEPIDLE=7 (the program set 60)",
        "TCP_KEEPINTVL=3 (the program set 60)"]


def test_force_mode_with_curl(http_server):
    """curl's own TCP_KEEPIDLE=60/TCP_KEEPINTVL=60 become the shim's values."""
    require_root()
    require(shutil.which("curl") is not None, "curl is not installed")
    import sockpeek
    port = http_server.server_address[1]
    KeepAliveHandler.arrived.clear()
    KeepAliveHandler.release.clear()
    proc = subprocess.Popen(["curl", "-sS", f"http://127.0.0.1:{port}/hold"],
                            env=shim_env(mode="force", log="info", **SETTINGS),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert KeepAliveHandler.arrived.wait(10)
        socks = [s for s in sockpeek.tcp_sockets(proc.pid) if s[1][1] == port]
    finally:
        KeepAliveHandler.release.set()
        out, err = proc.communicate(timeout=10)
    assert out == "hello\n" and len(socks) == 1
    assert socks[0][2] == dict(zip(KERNEL_DEFAULT, SHIM, strict=True))
    assert "force: kept TCP_KEEPIDLE=7 (the program set 60)" in err


# --- destination filters -------------------------------------------------------

@pytest.mark.parametrize("include,exclude,applies", [
    ("127.0.0.1", "", True),
    ("127.0.0.0/8", "", True),
    ("127.0.0.2", "", False),
    (":1-1023", "", False),
    ("", "127.0.0.1", False),
    ("127.0.0.0/8", "127.0.0.1", False),  # EXCLUDE wins
    ("junk, 127.0.0.1", "also junk", False),  # any invalid entry: no socket is touched
])
def test_filters_ipv4(listener, include, exclude, applies):
    env = shim_env(include=include, exclude=exclude, **SETTINGS)
    got = json.loads(probe(["connect", "127.0.0.1", str(listener)], env).stdout)
    assert got == (EXPECTED if applies else KERNEL_DEFAULT)


def test_filters_on_the_port(listener):
    env = shim_env(include=f":{listener}", **SETTINGS)
    assert json.loads(probe(["connect", "127.0.0.1", str(listener)], env).stdout) == EXPECTED
    env = shim_env(include=f":{listener + 1}-65535", **SETTINGS)
    assert json.loads(probe(["connect", "127.0.0.1", str(listener)], env).stdout) == KERNEL_DEFAULT


def test_filters_ipv6():
    srv = socket.socket(socket.AF_INET6)
    srv.bind(("::1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        for include, applies in (("[::1]", True), (f"[::/0]:{port}", True), ("[fd00::/8]", False),
                                 ("127.0.0.1", False)):
            got = json.loads(probe(["connect", "::1", str(port)], shim_env(include=include, **SETTINGS)).stdout)
            assert got == (EXPECTED if applies else KERNEL_DEFAULT), include
    finally:
        srv.close()


def test_filters_ipv4_mapped_destination_matches_as_ipv4():
    """A dual-stack (IPv6) socket connecting to ::ffff:127.0.0.1, as Java does:
    matched as IPv4, and IPv4-mapped entries are the IPv4 blocks they map."""
    for include, exclude, applies in (("127.0.0.1", "", True), ("[::/0]", "", False),
                                      ("", "127.0.0.0/8", False), ("[::ffff:0:0/96]", "", True),
                                      ("", "::ffff:127.0.0.1", False)):
        env = shim_env(include=include, exclude=exclude, log="info", **SETTINGS)
        got, err = both(env, bind="::", dest="::ffff:127.0.0.1")
        # Respect mode: what the program set stands; the rest is the shim's.
        assert got["client"] == ([0, 60, 60, 4, 300000] if applies else CLIENT_OWN), (include, exclude)
        if applies:
            assert f"peer=[::ffff:127.0.0.1]:{got['port']}" in err


def test_filters_with_java_dual_stack(tmp_path):
    """Java opens IPv6 sockets for IPv4 destinations: the filter still matches."""
    require(shutil.which("java") is not None, "java is not installed")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    src = tmp_path / "Probe.java"
    src.write_text("""
import java.net.*; import jdk.net.ExtendedSocketOptions;
public class Probe { public static void main(String[] a) throws Exception {
  Socket s = new Socket(); s.connect(new InetSocketAddress("127.0.0.1", Integer.parseInt(a[0])));
  System.out.println(s.getOption(StandardSocketOptions.SO_KEEPALIVE) + " "
    + s.getOption(ExtendedSocketOptions.TCP_KEEPIDLE) + " " + s.getOption(ExtendedSocketOptions.TCP_KEEPCOUNT));
}}""")
    port = str(srv.getsockname()[1])
    try:
        on = run(["java", str(src), port], shim_env(include="127.0.0.1", log="info", **SETTINGS))
        off = run(["java", str(src), port], shim_env(include="10.9.9.9", **SETTINGS))
    finally:
        srv.close()
    assert on.returncode == 0, on.stderr
    assert on.stdout.split() == ["true", "7", "4"]
    assert f"peer=[::ffff:127.0.0.1]:{port}" in on.stderr  # it really was a mapped address
    assert off.stdout.split() == ["false", "7200", "9"]


# --- servers -----------------------------------------------------------------

def test_server_sockets_get_options_and_accepted_connections_inherit():
    got, err = both(shim_env(log="info", **SETTINGS))
    assert got["listener"] == SHIM and got["accepted"] == SHIM
    lines = log_lines(err)
    assert any(f"listen=127.0.0.1:{got['port']} SO_KEEPALIVE=1" in ln for ln in lines), err
    assert any("accepted=127.0.0.1:" in ln and "TCP_KEEPCNT=4" in ln for ln in lines), err


def test_server_filters_decide_each_accepted_connection_on_its_local_address():
    """With filters, a listening socket is left alone and each accepted
    connection is matched on the local address and port the client reached
    (so a server bound to 0.0.0.0 can be matched by address)."""
    got, err = both(shim_env(include="127.0.0.1:1-1023", log="debug", **SETTINGS))
    assert got["listener"] == UNTOUCHED and got["accepted"] == UNTOUCHED
    assert "decided per accepted connection" in err and "left alone (filters)" in err
    got, _ = both(shim_env(exclude="127.0.0.2", **SETTINGS))
    assert got["listener"] == UNTOUCHED and got["accepted"] == SHIM
    # Bound to every address, reached at 127.0.0.1: an address entry matches.
    got, _ = both(shim_env(include="127.0.0.0/8", **SETTINGS), bind="0.0.0.0", dest="127.0.0.1")
    assert got["accepted"] == SHIM
    got, _ = both(shim_env(include="127.0.0.0/8:1-1023", **SETTINGS), bind="0.0.0.0", dest="127.0.0.1")
    assert got["accepted"] == UNTOUCHED
    # Dual stack, reached over IPv4: matched as IPv4.
    got, _ = both(shim_env(include="127.0.0.1", **SETTINGS), bind="::", dest="::ffff:127.0.0.1")
    assert got["accepted"] == SHIM


def test_server_filter_by_port_seen_by_the_kernel():
    """A server program under INCLUDE=:PORT of its own port, or of another:
    the kernel's keepalive timer (ss) on the server's side of the connection."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for include, applies in ((f":{port}", True), (f":{port + 1}", False), ("", True)):
        p = subprocess.Popen([sys.executable, program("plain_server"), str(port)], stdout=subprocess.PIPE,
                             text=True, env=shim_env(include=include, **SETTINGS))
        try:
            assert p.stdout.readline() == "ready\n"
            c = socket.create_connection(("127.0.0.1", port))
            assert p.stdout.readline() == "accepted\n"
            out = subprocess.run(["ss", "-tnoi", "state", "established", f"( sport = :{port} )"],
                                 capture_output=True, text=True).stdout
            c.close()
        finally:
            p.wait(timeout=10)
        assert ("timer:(keepalive" in out) == applies, (include, out)


@pytest.mark.parametrize("relisten", ["accept-only", "relisten"])
def test_inherited_listening_socket(relisten):
    """Socket activation / exec-based restarts: the listening socket was
    created (and is listening) before the program, and so the library,
    started. Its connections still get the options."""
    parent = socket.socket()
    parent.bind(("127.0.0.1", 0))
    parent.listen()
    parent.set_inheritable(True)
    p = subprocess.Popen([sys.executable, program("inherited_listener"), str(parent.fileno()), relisten],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, pass_fds=[parent.fileno()],
                         env=shim_env(log="info", **SETTINGS))
    parent.close()
    try:
        port = int(p.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        p.stdin.write("go\n")
        p.stdin.flush()
        got = json.loads(p.stdout.readline())
    finally:
        p.wait(timeout=10)
    assert got == {"first": SHIM, "second": SHIM, "listener": SHIM}
    for c in clients:
        c.close()


# --- which programs --------------------------------------------------------------

def test_programs_filter(listener):
    args = ["connect", "127.0.0.1", str(listener)]
    assert json.loads(probe(args, shim_env(programs="curl", **SETTINGS)).stdout) == KERNEL_DEFAULT
    exe = os.path.basename(os.path.realpath(sys.executable))
    for name in (exe, os.path.basename(sys.executable), f"curl, {exe}"):
        assert json.loads(probe(args, shim_env(programs=name, **SETTINGS)).stdout) == EXPECTED, name


def test_psql_respect_mode_gets_the_shims_timers():
    """libpq sets SO_KEEPALIVE=1 only; in respect mode it still gets the
    shim's idle, interval and count. Read from psql's live socket."""
    require_root()
    require(shutil.which("psql") is not None, "psql is not installed")
    import sockpeek
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    results = {}
    for mode, env in (("without", clean_env()), ("with", shim_env(**SETTINGS))):
        env = dict(env, PGCONNECT_TIMEOUT="20", PGPASSWORD="x")
        p = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "u", "-c", "select 1", "db"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            srv.settimeout(10)
            conn, _ = srv.accept()
            conn.settimeout(10)
            assert conn.recv(8)  # the startup packet: psql is connected and waiting
            socks = [s for s in sockpeek.tcp_sockets(p.pid) if s[1][1] == port]
            conn.close()
        finally:
            p.kill()
            p.wait()
        assert len(socks) == 1
        results[mode] = socks[0][2]
    srv.close()
    assert results["without"] == dict(KERNEL_DEFAULT, SO_KEEPALIVE=1)
    assert results["with"] == dict(zip(KERNEL_DEFAULT, SHIM, strict=True))


# --- configuration sources -----------------------------------------------------

def test_config_file_and_precedence(listener, tmp_path):
    conf = tmp_path / "ks.conf"
    conf.write_text("# keepalive-shim\nKEEPALIVE_SHIM_IDLE=11\nKEEPALIVE_SHIM_INTERVAL = 5\n"
                    "KEEPALIVE_SHIM_COUNT=\"2\"\n")
    args = ["connect", "127.0.0.1", str(listener)]
    env = shim_env(config=conf)
    assert json.loads(probe(args, env).stdout) == dict(EXPECTED, TCP_KEEPIDLE=11, TCP_KEEPINTVL=5,
                                                       TCP_KEEPCNT=2, TCP_USER_TIMEOUT=0)
    # The environment overrides the file.
    env = shim_env(config=conf, idle=7)
    assert json.loads(probe(args, env).stdout)["TCP_KEEPIDLE"] == 7
    r = run([str(CLI), "check"], dict(clean_env(), KEEPALIVE_SHIM_CONFIG=str(conf), KEEPALIVE_SHIM_IDLE="7"))
    assert "(KEEPALIVE_SHIM_IDLE)" in r.stdout and f"({conf} line 3)" in r.stdout, r.stdout


def test_bad_config_files_warn_and_never_crash(listener, tmp_path):
    args = ["connect", "127.0.0.1", str(listener)]
    cases = {
        "missing": (tmp_path / "nope.conf", "cannot read the config file"),
        "directory": (tmp_path, "cannot read the config file"),
        "malformed": (tmp_path / "bad.conf", "not a KEY=value line"),
        "binary": (tmp_path / "bin.conf", "not a KEY=value line"),
        "huge": (tmp_path / "huge.conf", "over 16 KiB"),
    }
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    cases["fifo"] = (fifo, "not a regular file")
    cases["stdin"] = (pathlib.Path("/dev/stdin"), "not a regular file")
    (tmp_path / "bad.conf").write_text("this is not a setting\nKEEPALIVE_SHIM_COUNT=3\n")
    (tmp_path / "bin.conf").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "huge.conf").write_text("# padding\n" * 4000)
    for name, (path, warning) in cases.items():
        r = run([sys.executable, "-c", "import socket, sys; socket.socket(); print(sys.stdin.read(), end='')"],
                shim_env(config=path), input="program input\n", timeout=20)
        assert r.returncode == 0 and r.stdout == "program input\n", (name, r.stdout)  # stdin untouched
        r = probe(args, shim_env(config=path))
        assert r.returncode == 0, name
        assert json.loads(r.stdout)["SO_KEEPALIVE"] == 1, name
        assert warning in r.stderr, (name, r.stderr)
    assert json.loads(probe(args, shim_env(config=tmp_path / "bad.conf")).stdout)["TCP_KEEPCNT"] == 3
    # Exactly 16 KiB is accepted; one byte more is not.
    exact = tmp_path / "exact.conf"
    exact.write_text("#" * (16384 - len("KEEPALIVE_SHIM_COUNT=5\n") - 1) + "\nKEEPALIVE_SHIM_COUNT=5\n")
    assert exact.stat().st_size == 16384
    r = probe(args, shim_env(config=exact))
    assert json.loads(r.stdout)["TCP_KEEPCNT"] == 5 and r.stderr == ""


# The user timeout stays off unless asked for, as with the tools replaced.
@pytest.mark.parametrize("variables,expected", [
    ({"KEEPIDLE": "21", "KEEPINTVL": "4", "KEEPCNT": "3"}, (21, 4, 3, 0)),
    ({"DD_TCP_KEEPALIVE_TIME": "22", "DD_TCP_KEEPALIVE_INTVL": "5", "DD_TCP_KEEPALIVE_PROBES": "2"},
     (22, 5, 2, 0)),
    # Precedence: ours, then libkeepalive's, then libdontdie's; unset -> our defaults.
    ({"KEEPALIVE_SHIM_IDLE": "8", "KEEPIDLE": "21", "DD_TCP_KEEPALIVE_TIME": "22",
      "DD_TCP_KEEPALIVE_INTVL": "5"}, (8, 5, 6, 0)),
    ({"KEEPIDLE": "21", "KEEPINTVL": "4", "KEEPCNT": "3", "KEEPALIVE_SHIM_USER_TIMEOUT": "auto"},
     (21, 4, 3, 33000)),
])
def test_drop_in_compatibility(listener, variables, expected):
    env = dict(shim_env(), **variables)
    got = json.loads(probe(["connect", "127.0.0.1", str(listener)], env).stdout)
    assert (got["TCP_KEEPIDLE"], got["TCP_KEEPINTVL"], got["TCP_KEEPCNT"], got["TCP_USER_TIMEOUT"]) == expected
    assert got["SO_KEEPALIVE"] == 1


@pytest.mark.parametrize("switch", [{"KEEPALIVE": "off"}, {"DD_USE_KEEPALIVE": "0"}])
def test_drop_in_switches(listener, switch):
    env = dict(shim_env(**SETTINGS), **switch)
    assert json.loads(probe(["connect", "127.0.0.1", str(listener)], env).stdout) == KERNEL_DEFAULT


def test_replacing_libkeepalive_needs_no_other_change(listener):
    """A unit written for libkeepalive: only the library path changes."""
    env = clean_env()
    env.update(LD_PRELOAD=str(LIB), KEEPIDLE="30", KEEPINTVL="6", KEEPCNT="5")
    got = json.loads(probe(["connect", "127.0.0.1", str(listener)], env).stdout)
    assert got == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 30, "TCP_KEEPINTVL": 6, "TCP_KEEPCNT": 5,
                   "TCP_USER_TIMEOUT": 0}
    r = run([str(CLI), "check"], env)
    assert "(KEEPIDLE)" in r.stdout


# --- secure-execution mode -------------------------------------------------------

def test_secure_mode_with_a_setuid_program(cc, listener, tmp_path):
    """A setuid-root program run by `nobody`: AT_SECURE is set. The keepalive
    values from the environment are honoured; the log file and the config
    path from the environment are not. (In secure mode the loader only
    preloads a setuid library from a system directory, by bare name.)"""
    require_root()
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed")
    libdir = pathlib.Path("/usr/lib/x86_64-linux-gnu")
    require(libdir.is_dir(), "a multiarch library directory is needed")
    name = f"libkeepalive_shim_securetest_{os.getpid()}.so"
    lib = libdir / name
    work = tmp_path / "world"
    work.mkdir(mode=0o777)
    work.chmod(0o777)
    prog = work / "secure_probe"
    shutil.copy(cc("secure_probe"), prog)
    os.chown(prog, 0, 0)
    prog.chmod(0o4755)
    evil_log = work / "evil.log"
    evil_conf = work / "evil.conf"
    evil_conf.write_text("KEEPALIVE_SHIM_COUNT=2\n")
    evil_conf.chmod(0o644)
    shutil.copy(LIB, lib)
    try:
        lib.chmod(0o4755)
        env = clean_env()
        env.update(LD_PRELOAD=name, KEEPALIVE_SHIM_IDLE="9", KEEPALIVE_SHIM_LOG="info",
                   KEEPALIVE_SHIM_LOG_FILE=str(evil_log), KEEPALIVE_SHIM_CONFIG=str(evil_conf))
        tmp_path.chmod(0o755)
        r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(prog), str(listener)],
                env)
    finally:
        lib.unlink()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "secure=1 SO_KEEPALIVE=1 TCP_KEEPIDLE=9 TCP_KEEPINTVL=10 TCP_KEEPCNT=6"
    assert not evil_log.exists()
    assert "KEEPALIVE_SHIM_LOG_FILE is ignored: setuid/setgid program" in r.stderr
    assert "KEEPALIVE_SHIM_CONFIG is ignored: setuid/setgid program" in r.stderr
    assert "TCP_KEEPIDLE=9" in r.stderr  # the info line went to stderr instead


# --- check --to / --program ------------------------------------------------------

def test_check_to():
    env = dict(clean_env(), KEEPALIVE_SHIM_INCLUDE="10.0.0.0/8", KEEPALIVE_SHIM_EXCLUDE=":5432")
    cases = {"10.1.2.3:80": ("yes", "INCLUDE entry 10.0.0.0/8 matches"),
             "10.1.2.3:5432": ("no", "EXCLUDE entry :5432 matches"),
             "192.168.1.1:80": ("no", "no INCLUDE entry matches"),
             "[::ffff:10.1.2.3]:80": ("yes", "INCLUDE entry 10.0.0.0/8 matches")}
    for dest, (verdict, why) in cases.items():
        r = run([str(CLI), "check", "--to", dest], env)
        assert r.returncode == 0
        lines = r.stdout.splitlines()
        assert lines[0] == f"applies: {verdict}", r.stdout
        assert why in lines[1]
    r = run([str(CLI), "check", "--to", "not-an-address"], env)
    assert r.returncode == 2


def test_check_program():
    env = dict(clean_env(), KEEPALIVE_SHIM_PROGRAMS="python3,java")
    assert run([str(CLI), "check", "--program", "java"], env).stdout.startswith("applies: yes\n")
    assert run([str(CLI), "check", "--program", "bash"], env).stdout.startswith("applies: no\n")
    off = dict(clean_env(), KEEPALIVE_SHIM="off")
    assert run([str(CLI), "check", "--to", "1.2.3.4:5"], off).stdout.startswith("applies: no\n")
