"""What real programs and deployments do to the library: descriptors that
change identity without close(), connections made without socket() or
connect(), connections inherited from inetd or systemd, logging under
systemd and into log files a worker cannot write, and log lines that stay
true when the program changes its options or its connects fail.

Every test reads the kernel's state back (getsockopt, `ss`), with values
that differ from the kernel's defaults, and compares each log line's values
with it. The programs are in tests/programs/: identity.c, tfo_client.c,
inetd_launch.py, inetd_service.py, log_truth.py.
"""
import contextlib
import json
import os
import pathlib
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

from conftest import CLI, LIB, ROOT, clean_env, require, require_root, run, shim_env

PROGRAMS = ROOT / "tests" / "programs"
LOG_TRUTH = str(PROGRAMS / "log_truth.py")
INETD_LAUNCH = str(PROGRAMS / "inetd_launch.py")
INETD_SERVICE = str(PROGRAMS / "inetd_service.py")

# Values chosen to differ from every kernel default; no user timeout (off
# by default).
SETTINGS = dict(idle=37, interval=11, count=5)
CONFIGURED = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 37, "TCP_KEEPINTVL": 11, "TCP_KEEPCNT": 5,
              "TCP_USER_TIMEOUT": 0}
# The line names the options the library set, with the kernel's values.
IN_LINE = {k: v for k, v in CONFIGURED.items() if k != "TCP_USER_TIMEOUT"}
RUN_FLAGS = ["--idle", "37", "--interval", "11", "--count", "5"]


def sysctl(name):
    return int(pathlib.Path("/proc/sys/net/ipv4", name).read_text())


# A socket the library left alone has what a fresh socket has.
UNTOUCHED = {"SO_KEEPALIVE": 0, "TCP_KEEPIDLE": sysctl("tcp_keepalive_time"),
             "TCP_KEEPINTVL": sysctl("tcp_keepalive_intvl"),
             "TCP_KEEPCNT": sysctl("tcp_keepalive_probes"), "TCP_USER_TIMEOUT": 0}

LOG_LINE = re.compile(r"^keepalive-shim\[(\d+)\]: (.*)$")
OPTION = re.compile(
    r"\b(SO_KEEPALIVE|TCP_KEEPIDLE|TCP_KEEPINTVL|TCP_KEEPCNT|TCP_USER_TIMEOUT)=(-?\d+)")


def log_lines(text):
    """The library's lines in `text`, without the `keepalive-shim[PID]: ` prefix."""
    return [m.group(2) for m in map(LOG_LINE.match, text.splitlines()) if m]


def claimed(line):
    """The option values a line states as the socket's (not its debug
    `program-set:` list)."""
    return {k: int(v) for k, v in OPTION.findall(line.split(" program-set:")[0])}


def printed(stdout):
    """`a=1 b=2` -> {"a": 1, "b": 2}, as the C programs print."""
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", stdout)}


def options(d):
    return {k: v for k, v in d.items() if k in CONFIGURED}


@contextlib.contextmanager
def listening():
    """A loopback listener that never accepts: connections complete in its
    backlog. Yields its port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def read_until_eof(s, timeout=15):
    s.settimeout(timeout)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data.decode("utf-8", "replace")


# --- descriptors that change identity without close() ---------------------------

IDENTITY_MODES = ["close_range", "closefrom", "dup2", "dup3", "fclose"]


@pytest.fixture(scope="session")
def musl_identity(tmp_path_factory):
    """identity.c linked against musl: its libc closes and its dup2 are
    musl's own code, out of the hooks' sight just the same."""
    musl_gcc = shutil.which("musl-gcc")
    require(musl_gcc is not None, "musl-gcc (Debian's musl-tools) is needed for the musl client")
    exe = tmp_path_factory.mktemp("musl") / "identity"
    subprocess.run([musl_gcc, "-O2", "-Wall", "-Werror", "-o", str(exe),
                    str(PROGRAMS / "identity.c")], check=True)
    return str(exe)


@pytest.mark.parametrize("libc", ["glibc", "musl"])
@pytest.mark.parametrize("old", ["udp", "tcp_configured", "tcp_excluded"])
@pytest.mark.parametrize("mode", IDENTITY_MODES)
def test_number_reused_without_close_gets_the_options_and_a_true_line(request, mode, old, libc):
    """The old socket on a number (a connected UDP socket, a TCP socket the
    library configured, or one it left alone by EXCLUDE) goes away through a
    call the close() hook never sees; a TCP socket made by a raw syscall
    takes the number and connects through libc. It gets the options at
    connect(), and its one line states exactly what the kernel has. The
    same with a musl-linked program."""
    exe = (request.getfixturevalue("cc")("identity") if libc == "glibc"
           else request.getfixturevalue("musl_identity"))
    with listening() as main, listening() as other:
        settings = dict(SETTINGS, log="info")
        if old == "tcp_excluded":
            settings["exclude"] = f"127.0.0.1:{other}"
        r = run([exe, mode, old[:3], str(main), str(other)], shim_env(**settings), timeout=15)
    assert r.returncode == 0, (r.stdout, r.stderr)
    got = printed(r.stdout)
    assert options(got) == CONFIGURED, r.stdout
    lines = log_lines(r.stderr)
    new = [ln for ln in lines if f"peer=127.0.0.1:{main}" in ln]
    assert len(new) == 1, lines
    assert new[0].startswith(f"fd={got['fd']} peer=127.0.0.1:{main} "), new
    assert claimed(new[0]) == IN_LINE == {k: got[k] for k in IN_LINE}, (new, got)
    if old == "tcp_excluded":
        assert not [ln for ln in lines if f":{other}" in ln], lines  # left alone: no info line


# --- TCP Fast Open: the connection is made by a send with MSG_FASTOPEN ----------

@contextlib.contextmanager
def tfo_server():
    """A loopback listener with TCP_FASTOPEN that answers each client's
    5 bytes with b"ok". Yields its port."""
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    s.bind(("127.0.0.1", 0))
    s.listen(16)

    def serve():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(10)
                try:
                    data = b""
                    while len(data) < 5 and (chunk := conn.recv(5 - len(data))):
                        data += chunk
                    if data == b"hello":
                        conn.sendall(b"ok")
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield s.getsockname()[1]
    finally:
        s.shutdown(socket.SHUT_RDWR)
        s.close()
        t.join(10)


@pytest.mark.parametrize("include", ["127.0.0.1", None, "10.0.0.0/8"])
@pytest.mark.parametrize("call", ["sendto", "sendmsg", "sendmmsg"])
def test_tcp_fast_open_client_is_decided_where_it_connects(cc, call, include):
    """A TFO client connects with sendto()/sendmsg()/sendmmsg() and
    MSG_FASTOPEN, never connect(). INCLUDE matching its destination (or no
    filter): the options and one `peer=` line with the kernel's values.
    INCLUDE not matching: left alone, nothing at info, and at debug the
    line that says it was decided so."""
    require(sysctl("tcp_fastopen") & 1, "net.ipv4.tcp_fastopen must enable clients (bit 1)")
    exe = cc("tfo_client")
    settings = dict(SETTINGS, log="info")
    if include:
        settings["include"] = include
    with tfo_server() as port:
        r = run([exe, call, str(port)], shim_env(**settings), timeout=15)
    assert r.returncode == 0, (r.stdout, r.stderr)
    got = printed(r.stdout)
    lines = log_lines(r.stderr)
    if include == "10.0.0.0/8":
        assert options(got) == UNTOUCHED, r.stdout
        assert lines == []
        with tfo_server() as port:
            r = run([exe, call, str(port)], shim_env(**dict(settings, log="debug")), timeout=15)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert options(printed(r.stdout)) == UNTOUCHED, r.stdout
        assert log_lines(r.stderr) == [f"fd=3 peer=127.0.0.1:{port} left alone (filters)"]
        return
    assert options(got) == CONFIGURED, r.stdout
    assert len(lines) == 1, lines
    assert f" peer=127.0.0.1:{port} " in lines[0], lines
    assert claimed(lines[0]) == IN_LINE == {k: got[k] for k in IN_LINE}, (lines, got)


# --- inherited connections: inetd, systemd Accept=yes, LISTEN_FDS ----------------

@contextlib.contextmanager
def accepted_connection():
    """(client, conn, listening port): one loopback connection, both ends."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn, _ = srv.accept()
    try:
        yield client, conn, port
    finally:
        client.close()
        conn.close()


def start_service(conn, launch, fd, run_flags, tmp_path, stdout=subprocess.DEVNULL, extra=()):
    """`inetd_launch.py LAUNCH... keepalive-shim run FLAGS -- inetd_service.py FD`
    with the connection as the launcher's stdin; returns (completed process,
    log file lines)."""
    log = tmp_path / "shim.log"
    env = clean_env()
    env["KEEPALIVE_SHIM_LIBRARY"] = str(LIB)
    cmd = [sys.executable, INETD_LAUNCH, *launch, str(CLI), "run", *run_flags,
           "--log-file", str(log), "--", sys.executable, INETD_SERVICE, str(fd), *extra]
    r = subprocess.run(cmd, stdin=conn.fileno(), stdout=stdout, stderr=subprocess.PIPE,
                       env=env, text=True, timeout=20)
    return r, log_lines(log.read_text()) if log.exists() else []


def inetd(conn, client, run_flags, tmp_path, extra=()):
    """The connection as the service's fds 0, 1 and 2; the service's report
    comes back over the connection. Returns (report, log lines)."""
    r, lines = start_service(conn, ["stdio"], 0, run_flags, tmp_path, extra=extra)
    assert r.returncode == 0, r.stderr
    conn.close()  # the service has exited: the client now sees EOF
    reply = read_until_eof(client)
    return json.loads(reply.splitlines()[0]), lines


def test_inetd_service_connection_configured_and_logged_once(tmp_path):
    """xinetd wait=no / systemd Accept=yes, StandardInput=socket: the
    connection is fds 0-2 of `keepalive-shim run -- service`. The service
    sees the options on fd 0, and one `inherited peer=` line says so."""
    with accepted_connection() as (client, conn, port):
        report, lines = inetd(conn, client, [*RUN_FLAGS, "--log", "info"], tmp_path)
        client_port = client.getsockname()[1]
    assert options(report) == CONFIGURED, report
    assert report["local_port"] == port
    assert len(lines) == 1, lines  # one socket, not three descriptors
    assert lines[0].startswith(f"fd=0 inherited peer=127.0.0.1:{client_port} "), lines
    assert claimed(lines[0]) == IN_LINE, lines


@pytest.mark.parametrize("listen_pid", ["self", "unset", "other"])
def test_listen_fds_connection_configured_only_when_meant_for_this_process(tmp_path, listen_pid):
    """systemd Accept=yes with the connection at fd 3 and LISTEN_FDS=1:
    configured when LISTEN_PID is the service's pid or unset; untouched
    when LISTEN_PID names another process."""
    with accepted_connection() as (client, conn, port):
        r, lines = start_service(conn, ["listen_fds", listen_pid], 3,
                                 [*RUN_FLAGS, "--log", "info"], tmp_path, stdout=subprocess.PIPE)
        client_port = client.getsockname()[1]
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["local_port"] == port
    if listen_pid == "other":
        assert options(report) == UNTOUCHED, report
        assert lines == []
        return
    assert options(report) == CONFIGURED, report
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"fd=3 inherited peer=127.0.0.1:{client_port} "), lines
    assert claimed(lines[0]) == IN_LINE, lines


@pytest.mark.parametrize("include", [None, "port"])
def test_socket_activation_connection_queued_before_the_service_started(tmp_path, include):
    """systemd socket activation (Accept=no): the listening socket is fd 3
    with LISTEN_FDS=1, and the connection that triggered the activation is
    already in its backlog when the service starts. The connection the
    service accepts has the options (with INCLUDE=:<its port> too), and
    its line says so."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        flags = [*RUN_FLAGS, "--log", "info"] + (["--include", f":{port}"] if include else [])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            r, lines = start_service(srv, ["listen_fds", "self"], 3, flags, tmp_path,
                                     stdout=subprocess.PIPE, extra=["accept"])
            client_port = client.getsockname()[1]
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["local_port"] == port
    assert options(report) == CONFIGURED, report
    accepted = [ln for ln in lines if " accepted=" in ln]
    assert len(accepted) == 1, lines
    assert f" accepted=127.0.0.1:{client_port} " in accepted[0], lines
    assert claimed(accepted[0]) == IN_LINE, lines


def test_inherited_option_the_parent_set_stands_in_respect_mode(tmp_path):
    """The parent set TCP_KEEPIDLE=300 on the connection before handing it
    over: in respect mode 300 stands, the other options come from the
    library, and the line claims only what the library set."""
    with accepted_connection() as (client, conn, port):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 300)
        report, lines = inetd(conn, client, [*RUN_FLAGS, "--log", "debug"], tmp_path)
    assert options(report) == dict(CONFIGURED, TCP_KEEPIDLE=300), report
    inherited = [ln for ln in lines if " inherited peer=" in ln]
    assert len(inherited) == 1, lines
    assert claimed(inherited[0]) == {k: v for k, v in IN_LINE.items() if k != "TCP_KEEPIDLE"}
    assert inherited[0].endswith(" program-set: TCP_KEEPIDLE=300"), inherited


@pytest.mark.parametrize("mode", ["force", "respect"])
def test_inetd_service_setting_an_option_through_fd_1(tmp_path, mode):
    """fds 0, 1 and 2 are one connection: the service sets TCP_KEEPIDLE=60
    through fd 1. Force mode keeps 37 and says so once; respect mode lets
    60 stand and says so, since the `inherited peer=` line claimed 37."""
    with accepted_connection() as (client, conn, port):
        report, lines = inetd(conn, client, [*RUN_FLAGS, "--log", "info", "--mode", mode],
                              tmp_path, extra=["1", "60"])
    assert len(lines) == 2 and " inherited peer=" in lines[0], lines
    assert claimed(lines[0]) == IN_LINE, lines
    if mode == "force":
        assert options(report) == CONFIGURED, report
        assert lines[1] == "fd=1 force: kept TCP_KEEPIDLE=37 (the program set 60)", lines
    else:
        assert options(report) == dict(CONFIGURED, TCP_KEEPIDLE=60), report
        assert lines[1] == "fd=1 the program set TCP_KEEPIDLE=60 itself; its value stands", lines


@pytest.mark.parametrize("matches", [True, False])
def test_inherited_connection_filtered_on_its_local_address(tmp_path, matches):
    """Filters decide an inherited connection like an accepted one, on the
    local address: INCLUDE=:<the service's port> applies, INCLUDE=:1 leaves
    it alone (nothing at info; at debug, the line saying so)."""
    with accepted_connection() as (client, conn, port):
        include = f":{port}" if matches else ":1"
        report, lines = inetd(conn, client, [*RUN_FLAGS, "--log", "info", "--include", include],
                              tmp_path)
    if not matches:
        assert options(report) == UNTOUCHED, report
        assert lines == []
        (tmp_path / "shim.log").unlink(missing_ok=True)
        with accepted_connection() as (client, conn, port):
            report, lines = inetd(conn, client, [*RUN_FLAGS, "--log", "debug", "--include", ":1"],
                                  tmp_path)
            client_port = client.getsockname()[1]
        assert options(report) == UNTOUCHED, report
        assert lines == [f"fd=0 inherited peer=127.0.0.1:{client_port} left alone (filters)"]
        return
    assert options(report) == CONFIGURED, report
    assert len(lines) == 1 and " inherited peer=127.0.0.1:" in lines[0], lines
    assert claimed(lines[0]) == IN_LINE, lines


# --- logging under systemd, never into a peer ------------------------------------

def run_with_stderr(stderr_end, reader, env, port):
    """log_truth.py connect 1 PORT with fd 2 = `stderr_end`; returns (the
    process, what arrived at `reader`, the other end, until EOF (none if
    `reader` is None), its first socket's options)."""
    p = subprocess.Popen([sys.executable, LOG_TRUTH, "connect", "1", str(port)], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=stderr_end.fileno(), text=True)
    try:
        stderr_end.close()  # the child's copy is now the only one
        received = read_until_eof(reader) if reader else ""
        out, _ = p.communicate(timeout=15)
    finally:
        p.kill()
        p.wait()
    return p, received, json.loads(out)[0]


@pytest.mark.parametrize("journal", ["matches", "unset", "wrong_inode"])
def test_journal_stream_gets_lines_other_unix_sockets_do_not(journal):
    """systemd StandardError=journal: fd 2 is an AF_UNIX stream socket and
    JOURNAL_STREAM=DEV:INODE names it. The configuration warning and the
    info line arrive at the other end. Without JOURNAL_STREAM, or with
    another inode, it is just some socket: nothing arrives."""
    reader, stderr_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    st = os.fstat(stderr_end.fileno())
    env = shim_env(idle=37, interval=11, count="lots", log="info")
    if journal == "matches":
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    elif journal == "wrong_inode":
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
    with reader, listening() as port:
        p, received, got = run_with_stderr(stderr_end, reader, env, port)
    assert p.returncode == 0, received
    # The invalid count falls back to the default (6): still not the kernel's 9.
    assert options(got) == dict(CONFIGURED, TCP_KEEPCNT=6), got
    if journal != "matches":
        assert received == ""
        return
    lines = log_lines(received)
    assert len(lines) == 2, received
    assert lines[0].startswith("warning: ") and "KEEPALIVE_SHIM_COUNT" in lines[0], lines
    assert f" peer=127.0.0.1:{port} " in lines[1], lines
    assert claimed(lines[1]) == {k: got[k] for k in IN_LINE}, (lines, got)


@pytest.mark.parametrize("kind", ["tcp", "udp"])
def test_internet_socket_as_stderr_never_gets_a_byte(kind):
    """An inetd service has its client connection as fd 2 (a UDP service
    its datagram socket). Whatever the library has to say (an invalid
    setting, debug level, the inherited connection's own line), not a byte
    of it reaches the peer."""
    env = shim_env(idle=37, interval=11, count="lots", log="debug")
    with listening() as port:
        if kind == "tcp":
            with socket.socket() as srv:
                srv.bind(("127.0.0.1", 0))
                srv.listen(1)
                peer = socket.create_connection(srv.getsockname(), timeout=10)
                ours, _ = srv.accept()
            with peer:
                p, received, got = run_with_stderr(ours, peer, env, port)
        else:
            ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            with peer:
                ours.bind(("127.0.0.1", 0))
                peer.bind(("127.0.0.1", 0))
                ours.connect(peer.getsockname())
                peer.connect(ours.getsockname())
                p, received, got = run_with_stderr(ours, None, env, port)
                # Loopback delivers at send(): all the child sent is queued now.
                peer.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    received = peer.recv(65536).decode("utf-8", "replace")
    assert p.returncode == 0
    assert options(got) == dict(CONFIGURED, TCP_KEEPCNT=6), got
    assert received == ""


# --- a log file the program's user cannot write ----------------------------------

def nobody_can_run(d, settings):
    """Copies of the library and log_truth.py in `d` (0755), and a Python
    `nobody` can execute, so that a checkout or interpreter under a private
    home (/root is 0700) cannot decide these tests. Returns (python,
    log_truth.py, environment with the copy preloaded)."""
    d.chmod(0o755)
    lib = d / LIB.name
    shutil.copy(LIB, lib)
    script = d / "log_truth.py"
    shutil.copy(LOG_TRUTH, script)
    env = shim_env(**settings)
    env["LD_PRELOAD"] = str(lib)
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    return python, str(script), env


def test_unwritable_log_file_warns_once_and_the_program_runs_on():
    """A root parent created the log file 0644; the program runs as nobody
    and cannot append. One warning on its stderr names the file; its lines
    are lost, but it exits 0 and its sockets are configured."""
    require_root()
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed")
    d = pathlib.Path(tempfile.mkdtemp(prefix="keepalive-shim-log-"))
    try:
        log = d / "shim.log"
        log.touch(mode=0o644)
        python, script, env = nobody_can_run(d, dict(SETTINGS, log="info", log_file=log))
        with listening() as port:
            r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                     python, script, "connect", "3", str(port)], env, timeout=15)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert [options(s) for s in got] == [CONFIGURED] * 3, got
        assert r.stderr.count("\n") == 1, r.stderr
        lines = log_lines(r.stderr)
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith(f"warning: cannot open the log file {log}: errno 13"), lines
        assert log.read_bytes() == b""
    finally:
        shutil.rmtree(d)


@pytest.mark.parametrize("reader", ["reads", "exited"])
def test_unwritable_log_file_warning_never_kills_the_program(reader):
    """The same with bash (which, unlike Python, does not ignore SIGPIPE)
    connecting through /dev/tcp, and stderr a pipe: the warning arrives
    when someone reads the pipe; when the reader has exited, the warning
    must not kill bash with SIGPIPE (exit 141)."""
    require_root()
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is needed")
    d = pathlib.Path(tempfile.mkdtemp(prefix="keepalive-shim-log-"))
    r, w = os.pipe()
    still_open = {r, w}

    def close(fd):
        os.close(fd)
        still_open.discard(fd)

    try:
        log = d / "shim.log"
        log.touch(mode=0o644)
        _, _, env = nobody_can_run(d, dict(SETTINGS, log="info", log_file=log))
        if reader == "exited":
            close(r)
        with listening() as port:
            p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}; echo connected"],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=w,
                               text=True, timeout=15)
        close(w)
        assert (p.returncode, p.stdout) == (0, "connected\n")
        if reader == "reads":
            data = b""
            while chunk := os.read(r, 65536):  # the writer is closed: EOF comes
                data += chunk
            lines = log_lines(data.decode())
            assert len(lines) == 1 and lines[0].startswith(
                f"warning: cannot open the log file {log}: errno 13"), lines
    finally:
        for fd in list(still_open):
            close(fd)
        shutil.rmtree(d)


def test_worker_that_dropped_privileges_warns_once():
    """nginx: the root master creates the log file and logs to it; its
    worker drops to nobody and can no longer append. The worker says so once
    on stderr; the master's line is in the file; every socket is configured."""
    require_root()
    d = pathlib.Path(tempfile.mkdtemp(prefix="keepalive-shim-log-"))
    try:
        d.chmod(0o755)
        log = d / "shim.log"
        env = shim_env(log="info", log_file=log, **SETTINGS)
        with listening() as port:
            r = run([sys.executable, LOG_TRUTH, "worker", "3", str(port)], env, timeout=15)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert got["worker_status"] == 0, got
        assert [options(s) for s in got["master"] + got["worker"]] == [CONFIGURED] * 4, got
        assert (log.stat().st_uid, log.stat().st_mode & 0o777) == (0, 0o644)
        in_file = log_lines(log.read_text())
        assert len(in_file) == 1 and f" peer=127.0.0.1:{port} " in in_file[0], in_file
        assert claimed(in_file[0]) == IN_LINE
        assert r.stderr == (f"keepalive-shim[{got['worker_pid']}]: warning: cannot open the log "
                            f"file {log}: errno 13; this process's lines are lost (the file must "
                            "be writable by every user the program runs as)\n")
    finally:
        shutil.rmtree(d)


# --- log lines that stay true ------------------------------------------------------

def read_line(p, timeout=10):
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    assert ready, "no output within the timeout"
    return p.stdout.readline()


@pytest.mark.parametrize("user_timeout", [None, "auto"])
def test_options_the_program_sets_after_connect_get_a_follow_up_line(user_timeout):
    """redis-cli sets 15/5/3 after connect(); the `peer=` line written at
    connect() said the library's values. In respect mode the program's
    values stand (getsockopt and `ss` show the 15 s timer), and each option
    it set to another value than the line claimed gets one line saying so
    (its SO_KEEPALIVE=1 contradicts nothing). An `auto` user timeout follows
    the program's values: (15 + 5 x 3) s."""
    require(shutil.which("ss") is not None, "ss (iproute2) is needed")
    settings = dict(SETTINGS, log="info")
    if user_timeout:
        settings["user_timeout"] = user_timeout
    with listening() as port:
        p = subprocess.Popen([sys.executable, LOG_TRUTH, "redis", str(port)],
                             env=shim_env(**settings), text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            got = json.loads(read_line(p))
            ss = subprocess.run(["ss", "-tnoiH", "state", "established",
                                 "src", f"127.0.0.1:{got['local_port']}"],
                                capture_output=True, text=True, timeout=10).stdout
            out, err = p.communicate("\n", timeout=10)
        finally:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert options(got) == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 15, "TCP_KEEPINTVL": 5,
                            "TCP_KEEPCNT": 3,
                            "TCP_USER_TIMEOUT": 30_000 if user_timeout else 0}, got
    # The kernel's keepalive timer runs from the program's 15 s, not the library's 37 s.
    timer = re.search(r"timer:\(keepalive,(\d+)sec,", ss)
    assert timer and 10 <= int(timer.group(1)) <= 15, ss
    lines = log_lines(err)
    assert len(lines) == 4, err
    fd = lines[0].split()[0]
    # At connect the socket had the library's values, the user timeout
    # computed from them: (37 + 11 x 5) s.
    at_connect = dict(IN_LINE, TCP_USER_TIMEOUT=92_000) if user_timeout else IN_LINE
    assert lines[0].startswith(f"{fd} peer=127.0.0.1:{port} ") and claimed(lines[0]) == at_connect
    assert lines[1:] == [f"{fd} the program set {name}={value} itself; its value stands"
                         for name, value in [("TCP_KEEPIDLE", 15), ("TCP_KEEPINTVL", 5),
                                             ("TCP_KEEPCNT", 3)]], lines


@pytest.mark.parametrize("mode", ["force", "respect"])
def test_option_set_through_a_duplicate_descriptor(mode):
    """The program sets TCP_KEEPIDLE=15 through a dup() of its connected
    socket. It is the same socket: force mode keeps 37 and says so; respect
    mode lets 15 stand and says so, since the `peer=` line claimed 37."""
    with listening() as port:
        r = run([sys.executable, LOG_TRUTH, "dup_set", str(port)],
                shim_env(log="info", mode=mode, **SETTINGS), timeout=15)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    lines = log_lines(r.stderr)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"fd={got['fd']} peer=127.0.0.1:{port} "), lines
    assert claimed(lines[0]) == IN_LINE, lines
    dup = f"fd={got['dup_fd']}"
    if mode == "force":
        assert options(got) == CONFIGURED, got
        assert lines[1] == f"{dup} force: kept TCP_KEEPIDLE=37 (the program set 15)", lines
    else:
        assert options(got) == dict(CONFIGURED, TCP_KEEPIDLE=15), got
        assert lines[1] == f"{dup} the program set TCP_KEEPIDLE=15 itself; its value stands", lines


def test_refused_connects_are_not_logged_as_peers(closed_port):
    """A reconnect loop against a server that is down: blocking, with a
    timeout (non-blocking, then SO_ERROR) and create_connection. No `peer=`
    line at info; at debug each failure is named."""
    r = run([sys.executable, LOG_TRUTH, "refused", str(closed_port)],
            shim_env(log="info", **SETTINGS), timeout=15)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ["ECONNREFUSED"] * 3
    assert log_lines(r.stderr) == []
    r = run([sys.executable, LOG_TRUTH, "refused", str(closed_port)],
            shim_env(log="debug", **SETTINGS), timeout=15)
    assert r.returncode == 0, r.stderr
    lines = log_lines(r.stderr)
    assert not [ln for ln in lines if "peer=" in ln], lines
    assert len([ln for ln in lines if "connect failed: errno 111" in ln]) == 3, lines


def test_sockets_that_never_connect_are_debug_only():
    """A JVM opens TCP sockets at start only to probe features, and closes
    them unconnected: nothing at info, one `unconnected` line each at debug."""
    r = run([sys.executable, LOG_TRUTH, "unconnected"], shim_env(log="info", **SETTINGS))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"opened_and_closed": 3}
    assert log_lines(r.stderr) == []
    r = run([sys.executable, LOG_TRUTH, "unconnected"], shim_env(log="debug", **SETTINGS))
    assert r.returncode == 0, r.stderr
    lines = log_lines(r.stderr)
    assert len(lines) == 3 and all(" unconnected" in ln for ln in lines), lines


def test_force_mode_option_set_twice_one_line_and_the_programs_value_shown():
    """Force mode, a program that sets TCP_KEEPIDLE to 60 and then 61 before
    connecting: the library's 37 stands, one `force: kept` line names the
    program's first value, and the debug `program-set:` list shows the
    program's value (its last, 61), not the library's."""
    with listening() as port:
        r = run([sys.executable, LOG_TRUTH, "set_twice", str(port)],
                shim_env(log="info", mode="force", **SETTINGS), timeout=15)
        assert r.returncode == 0, r.stderr
        assert options(json.loads(r.stdout)) == CONFIGURED, r.stdout
        lines = log_lines(r.stderr)
        assert len(lines) == 2, r.stderr
        fd = lines[0].split()[0]
        assert lines == [f"{fd} force: kept TCP_KEEPIDLE=37 (the program set 60)",
                         lines[1]], lines
        assert lines[1].startswith(f"{fd} peer=127.0.0.1:{port} ") and claimed(lines[1]) == IN_LINE

        r = run([sys.executable, LOG_TRUTH, "set_twice", str(port)],
                shim_env(log="debug", mode="force", **SETTINGS), timeout=15)
    assert r.returncode == 0, r.stderr
    assert options(json.loads(r.stdout)) == CONFIGURED, r.stdout
    peer = [ln for ln in log_lines(r.stderr) if " peer=" in ln]
    assert len(peer) == 1, r.stderr
    assert claimed(peer[0]) == IN_LINE, peer
    assert peer[0].endswith(" program-set: TCP_KEEPIDLE=61"), peer
