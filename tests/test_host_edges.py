"""Edges found by trying the library as a hostile user would: connects
that connect nothing or connect later, sockets whose state lives in another
descriptor or another process, log destinations that can block, and what
the wrapper must hand on. Each compares with the kernel's state or with the
same program run without the library."""
import os
import pty
import re
import socket
import subprocess
import sys
import termios
import time
import tty

import pytest

from conftest import CLI, LIB, ROOT, clean_env, run, shim_env

PROGRAMS = ROOT / "tests" / "programs"


def fields(out):
    return dict(re.findall(r"(\w+)=(-?\d+)", out))


@pytest.fixture(scope="module")
def edges(cc):
    return cc("connect_edges")


# --- connects at the edges ----------------------------------------------------

def test_a_disconnect_first_decides_nothing(edges):
    """connect(AF_UNSPEC) connects nothing: the real connect after it is the
    one the filters decide, and the only one logged."""
    r = run([edges, "unspec"], shim_env(include="127.0.0.1", idle=37, log="info"))
    got = fields(r.stdout)
    assert (got["KA"], got["IDLE"], got["connected"]) == ("1", "37", "1"), r.stdout
    lines = [ln for ln in r.stderr.splitlines() if "keepalive-shim[" in ln]
    assert len(lines) == 1 and f"peer=127.0.0.1:{got['port']} " in lines[0], r.stderr


def test_ipv6_connect_with_the_short_sockaddr_is_matched(edges):
    r = run([edges, "v6len24"], shim_env(include="::1", idle=37))
    assert fields(r.stdout)["KA"] == "1" and fields(r.stdout)["IDLE"] == "37", r.stdout + r.stderr


@pytest.mark.parametrize("include,configured", [("127.0.0.1", True), ("127.0.0.2", False)],
                         ids=["refused-excluded-then-included", "refused-included-then-excluded"])
def test_a_refused_attempt_does_not_decide_the_next_one(include, configured):
    """The same socket is refused at 127.0.0.2, then connects to 127.0.0.1.
    The filters decide on the destination it connects to: an attempt that
    failed at once decides nothing, and what it configured is undone."""
    r = run([sys.executable, str(PROGRAMS / "refused_then_connect.py")],
            shim_env(include=include, idle=37, log="info"))
    assert r.returncode == 0, r.stderr
    got = fields(r.stdout)
    assert got["first"] == "111", r.stdout
    peer_lines = [ln for ln in r.stderr.splitlines() if " peer=" in ln]
    if configured:
        assert (got["KA"], got["IDLE"]) == ("1", "37"), r.stdout
        assert len(peer_lines) == 1 and " peer=127.0.0.1:" in peer_lines[0], r.stderr
    else:
        assert (got["KA"], got["IDLE"]) == ("0", "7200"), r.stdout
        assert peer_lines == [], r.stderr


def test_sendmmsg_of_no_message_is_no_connection(edges):
    r = run([edges, "mmsg0"], shim_env(include="127.0.0.1", idle=37, log="info"))
    assert (fields(r.stdout)["KA"], fields(r.stdout)["connected"]) == ("0", "0"), r.stdout
    assert "peer=" not in r.stderr


def test_a_short_so_error_buffer_is_not_misread(edges):
    r = run([edges, "soerr1"], shim_env(idle=37, log="debug"))
    assert fields(r.stdout)["connected"] == "1"
    assert "connect failed" not in r.stderr, r.stderr


# --- state that lives in another descriptor or process -----------------------

AUTO = dict(idle=60, interval=10, count=6, user_timeout="auto")  # 120000 ms


def test_auto_follows_through_a_duplicate_after_the_original_is_closed(listener):
    r = run([sys.executable, str(PROGRAMS / "dup_then_close.py"), str(listener)], shim_env(**AUTO))
    assert r.returncode == 0, r.stderr
    # The program's idle 600 on the duplicate: auto follows, (600 + 10 x 6) s.
    assert fields(r.stdout) == {"IDLE": "600", "UT": str((600 + 10 * 6) * 1000)}, r.stdout


def test_auto_follows_a_connection_inherited_across_exec(listener):
    """The parent, under the library with auto, hands a connection to an
    exec'd child at fd >= 3; the child sets its own idle."""
    r = run([sys.executable, str(PROGRAMS / "inherit_exec.py"), str(listener)], shim_env(**AUTO))
    assert r.returncode == 0, r.stderr
    assert fields(r.stdout) == {"IDLE": "600", "UT": str((600 + 10 * 6) * 1000)}, r.stdout


def test_a_program_set_user_timeout_on_an_inherited_connection_stands(listener):
    """Not derived from the timers: the program's own, never followed."""
    r = run([sys.executable, str(PROGRAMS / "inherit_exec.py"), str(listener), "own"], shim_env(**AUTO))
    assert fields(r.stdout) == {"IDLE": "600", "UT": "4321"}, r.stdout


# --- log destinations that can block -------------------------------------------

QUIET = ("import socket\nl=socket.socket();l.bind(('127.0.0.1',0));l.listen()\n"
         "for _ in range(50): socket.create_connection(l.getsockname()).close()\nprint('done')")


def started_within(argv, env, stderr, seconds=10):
    t = time.monotonic()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=stderr, timeout=seconds)
    return p.returncode, p.stdout, time.monotonic() - t


@pytest.mark.parametrize("settings", [dict(log="info"), dict(idle="0")], ids=["info", "invalid-setting"])
def test_a_terminal_with_stopped_output_never_blocks_the_program(settings):
    master, slave = pty.openpty()
    try:
        tty.setraw(slave)
        termios.tcflow(slave, termios.TCOOFF)  # output stopped (^S)
        rc, out, _ = started_within([sys.executable, "-c", QUIET], shim_env(**settings), slave)
    finally:
        os.close(slave)
        os.close(master)
    assert rc == 0 and out == b"done\n"


def test_a_full_packet_mode_pipe_never_blocks_the_program():
    r, w = os.pipe2(os.O_DIRECT)
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x")  # one byte per slot: the slots fill, not the bytes
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    try:
        rc, out, _ = started_within([sys.executable, "-c", QUIET], shim_env(log="info"), w)
    finally:
        os.close(w)
        os.close(r)
    assert rc == 0 and out == b"done\n"


# --- what the program and the wrapper hand on ----------------------------------

def test_errno_at_main_is_the_loaders(cc):
    exe = cc("errno_at_main")
    without = run([exe], clean_env()).stdout
    assert run([exe], shim_env()).stdout == without == "errno=0\n"


def test_run_keeps_an_ignored_sigpipe_ignored():
    """systemd starts services with SIGPIPE ignored; `run` must hand that on."""
    script = f"trap '' PIPE; exec {CLI} run -- grep SigIgn /proc/self/status"
    r = run(["sh", "-c", script], clean_env())
    ignored = int(r.stdout.split()[1], 16)
    assert ignored & (1 << (13 - 1)), r.stdout  # SIGPIPE is 13
    r = run([str(CLI), "run", "--", "grep", "SigIgn", "/proc/self/status"], clean_env())
    assert not int(r.stdout.split()[1], 16) & (1 << 12), r.stdout


# --- configuration -------------------------------------------------------------

@pytest.mark.parametrize("entry", ["::ffff:127.0.0.1", "::ffff:0:0/96", "[::ffff:127.0.0.0]/104"])
def test_ipv4_mapped_entries_match_what_the_log_prints(entry):
    """A dual-stack client to ::ffff:127.0.0.1 is logged in that form; an
    EXCLUDE entry in that form leaves it alone, and check says so."""
    srv = socket.socket(socket.AF_INET6)
    srv.bind(("::", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        code = ("import socket,sys\nc=socket.socket(socket.AF_INET6)\n"
                "c.connect(('::ffff:127.0.0.1',int(sys.argv[1])))\n"
                "print('KA', c.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))")
        r = run([sys.executable, "-c", code, str(port)], shim_env(exclude=entry))
        assert r.stdout.split() == ["KA", "0"], (entry, r.stdout, r.stderr)
        env = dict(clean_env(), KEEPALIVE_SHIM_EXCLUDE=entry)
        c = run([str(CLI), "check", "--to", f"[::ffff:127.0.0.1]:{port}"], env)
        assert c.stdout.splitlines()[0] == "applies: no", c.stdout
    finally:
        srv.close()


def test_force_mode_shows_the_programs_last_value(listener):
    code = ("import socket,sys\ns=socket.socket()\n"
            "s.setsockopt(6, socket.TCP_KEEPIDLE, 15)\ns.setsockopt(6, socket.TCP_KEEPIDLE, 20)\n"
            "s.connect(('127.0.0.1', int(sys.argv[1])))")
    r = run([sys.executable, "-c", code, str(listener)], shim_env(mode="force", idle=37, log="debug"))
    [line] = [ln for ln in r.stderr.splitlines() if " peer=" in ln]
    assert "TCP_KEEPIDLE=37" in line and line.endswith("program-set: TCP_KEEPIDLE=20"), line


def test_a_setting_repeated_in_the_config_file_is_named(tmp_path, listener):
    """The first line counts, in the library and in check, and the repeat
    gets a warning instead of silently losing to it."""
    conf = tmp_path / "ks.conf"
    conf.write_text("KEEPALIVE_SHIM_IDLE=33\nKEEPALIVE_SHIM_IDLE=44\n")
    code = ("import socket,sys\ns=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\n"
            "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))")
    r = run([sys.executable, "-c", code, str(listener)], shim_env(config=conf))
    assert r.stdout.strip() == "33"
    warnings = [ln for ln in r.stderr.splitlines() if "KEEPALIVE_SHIM_IDLE" in ln]
    assert len(warnings) == 1 and "second setting" in warnings[0], r.stderr
    c = run([str(CLI), "check"], dict(clean_env(), KEEPALIVE_SHIM_CONFIG=str(conf)))
    assert "33 s" in c.stdout and "second setting" in c.stdout and c.returncode == 1, c.stdout


def test_a_relative_config_path_is_named_not_silently_ignored(tmp_path, listener):
    (tmp_path / "relative.conf").write_text("KEEPALIVE_SHIM_IDLE=5\n")
    code = ("import socket,sys\ns=socket.create_connection(('127.0.0.1',int(sys.argv[1])))\n"
            "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))")
    env = shim_env(config="relative.conf")
    r = subprocess.run([sys.executable, "-c", code, str(listener)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "60"  # the file is not read: an absolute path is required
    assert 'KEEPALIVE_SHIM_CONFIG="relative.conf" is not valid' in r.stderr, r.stderr
    c = subprocess.run([str(CLI), "check"], env=dict(clean_env(), KEEPALIVE_SHIM_CONFIG="relative.conf"),
                       cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert c.returncode == 1 and 'INVALID "relative.conf"' in c.stdout, c.stdout


def test_run_preloads_one_copy_of_the_library(tmp_path, listener):
    """An image's LD_PRELOAD names another copy of the library (say
    /usr/local/lib/); `run` from a package must not load a second one."""
    copy = tmp_path / "libkeepalive_shim.so"
    copy.write_bytes(LIB.read_bytes())
    code = "import socket,sys\nsocket.create_connection(('127.0.0.1',int(sys.argv[1])))"
    env = dict(clean_env(), LD_PRELOAD=str(copy), KEEPALIVE_SHIM_LIBRARY=str(LIB))
    r = run([str(CLI), "run", "--idle", "12", "--log", "info", "--", sys.executable, "-c", code, str(listener)],
            env)
    lines = [ln for ln in r.stderr.splitlines() if " peer=" in ln]
    assert len(lines) == 1 and "TCP_KEEPIDLE=12" in lines[0], r.stderr
