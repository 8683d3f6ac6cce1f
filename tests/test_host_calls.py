"""The library inside someone else's process: every hooked call gives the
real call's answer whatever its arguments, the library's own log writes
never change the program's fate, and by default no live connection is ever
ended (TCP_USER_TIMEOUT is opt-in, and `auto` follows each socket's own
timers)."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT, clean_env, run, shim_env

PROGRAMS = ROOT / "tests" / "programs"


# --- 1. every argument gets exactly the real call's answer -------------------

# Every mode the hooks have a different path in: filters off and on (matching
# and not), respect and force, each log level, auto user timeout, to a file.
MODES = {
    "defaults": {},
    "include-other": dict(include="10.0.0.0/8"),
    "include-match": dict(include="127.0.0.1", log="info"),
    "exclude": dict(exclude="127.0.0.0/8", log="debug"),
    "force-debug": dict(mode="force", log="debug", user_timeout="auto"),
    "force-filters": dict(mode="force", include="127.0.0.1:1-65535", log="info"),
    "log-off": dict(log="off", user_timeout="3s"),
    "log-error": dict(log="error"),
    "log-info": dict(log="info", idle=7),
    "log-file": dict(log="debug", log_file="/dev/null"),
    "invalid": dict(count="0", log="info"),
}


@pytest.fixture(scope="module")
def bad_args_baseline(cc):
    exe = cc("bad_args")
    r = run([exe, "9"], clean_env())
    assert r.returncode == 0 and r.stdout.endswith("done\n"), r.stdout + r.stderr
    return exe, r.stdout.splitlines()


@pytest.mark.parametrize("mode", MODES)
def test_invalid_pointers_and_lengths_get_the_real_answer(bad_args_baseline, mode):
    """connect, setsockopt, getsockopt, accept, accept4, sendto, sendmsg,
    sendmmsg, listen, close, socket with unmapped, null, short, misaligned
    and half-readable arguments, on libc and raw-syscall sockets: the same
    return value and errno, line for line, as without the library."""
    exe, without = bad_args_baseline
    r = run([exe, "9"], shim_env(**MODES[mode]))
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    got = r.stdout.splitlines()
    assert len(got) == len(without) > 100
    diff = [(a, b) for a, b in zip(without, got, strict=True) if a != b]
    assert diff == [], diff
    # The baseline really contains the faults (EFAULT=14) the library must not trip on.
    assert sum(ln.endswith("errno=14") for ln in without) >= 40


# --- 2. the library's output never changes the program's fate ---------------

def quiet_client(exe, port, env, stderr, *args):
    return subprocess.run([exe, str(port), *args], env=env, stdout=subprocess.PIPE, stderr=stderr,
                          text=True, timeout=30)


def broken_pipe():
    """A pipe whose reader has exited."""
    r, w = os.pipe()
    os.close(r)
    return w


@pytest.mark.parametrize("settings", [dict(log="info"), dict(count="0"), dict(log="debug", idle="junk")],
                         ids=["info", "one-invalid-setting", "debug-and-invalid"])
def test_stderr_a_broken_pipe_kills_nobody(cc, listener, settings):
    exe = cc("quiet_client")
    w = broken_pipe()
    try:
        without = quiet_client(exe, listener, clean_env(), w)
        assert without.returncode == 0, without.stdout
        r = quiet_client(exe, listener, shim_env(**settings), w)
    finally:
        os.close(w)
    # Not 141 / -SIGPIPE: the line's SIGPIPE was never delivered.
    assert r.returncode == 0, (r.returncode, r.stdout)
    assert r.stdout.split("\n")[:3] == ["mask ok", "pending ok", "errno ok"], r.stdout


def test_the_programs_own_pending_sigpipe_is_not_lost(cc, listener):
    """A SIGPIPE the program has pending (blocked) survives the library's
    writes to the same broken pipe, and its mask is untouched."""
    exe = cc("quiet_client")
    w = broken_pipe()
    try:
        r = quiet_client(exe, listener, shim_env(log="info"), w, "own-sigpipe")
    finally:
        os.close(w)
    assert r.returncode == 0, r.stdout
    assert "own-sigpipe ok" in r.stdout and "mask ok" in r.stdout


def test_full_stderr_pipe_never_blocks_the_program(cc, listener):
    """Nobody reads the program's stderr and the pipe is full: a write would
    block forever. The line is dropped; the program finishes."""
    exe = cc("quiet_client")
    r_end, w_end = os.pipe()
    os.set_blocking(w_end, False)
    try:
        while True:
            os.write(w_end, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(w_end, True)  # the program gets a blocking stderr
    try:
        r = quiet_client(exe, listener, shim_env(log="debug"), w_end)
    finally:
        os.close(w_end)
        os.close(r_end)
    assert r.returncode == 0, r.stdout
    assert "mask ok" in r.stdout


def test_log_lines_still_arrive_on_a_healthy_pipe(cc, listener):
    """The same quiet write path delivers: the control for the tests above."""
    exe = cc("quiet_client")
    r = quiet_client(exe, listener, shim_env(log="info", idle=7), subprocess.PIPE)
    assert r.returncode == 0
    lines = [ln for ln in r.stderr.splitlines() if " peer=127.0.0.1:%d " % listener in ln]
    assert len(lines) == 3 and all("TCP_KEEPIDLE=7" in ln for ln in lines), r.stderr


# --- 3. by default, never abort a connection whose peer is alive -------------

def stream(env, pause):
    """A live receiver that stops reading for `pause` s while the sender
    (under `env`) streams 32 MiB; returns (sender's report, bytes received)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    ls.settimeout(20)
    p = subprocess.Popen([sys.executable, str(PROGRAMS / "stream_sender.py"), str(ls.getsockname()[1]),
                          str(32 << 20)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        conn, _ = ls.accept()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # close the window soon
        time.sleep(pause)  # alive (the kernel ACKs every probe), not reading
        got = 0
        conn.settimeout(30)
        try:
            while data := conn.recv(1 << 20):
                got += len(data)
        except OSError:
            pass
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        ls.close()
    return json.loads(out), got


def test_zero_window_reader_is_not_disconnected_by_default():
    """idle 1, interval 1, count 2 and the user timeout left at its default:
    a receiver that keeps its window closed for 6 s, longer than
    (1 + 1 x 2) s, still gets every byte."""
    report, got = stream(shim_env(idle=1, interval=1, count=2), pause=6)
    assert report["TCP_USER_TIMEOUT"] == 0, report
    assert report["error"] is None and got == 32 << 20, (report, got)


def test_zero_window_with_auto_is_the_documented_trade_off():
    """Opting in to `auto` (3 s here) ends that same live connection: the
    reason it is opt-in."""
    report, got = stream(shim_env(idle=1, interval=1, count=2, user_timeout="auto"), pause=6)
    assert report["TCP_USER_TIMEOUT"] == 3000, report
    assert report["error"] is not None and got < 32 << 20, (report, got)


def uto(port, env, *steps):
    r = run([sys.executable, str(PROGRAMS / "uto.py"), str(port), *steps], env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


SHIM = dict(idle=7, interval=3, count=4, user_timeout="auto")  # auto = 19000 ms


@pytest.mark.parametrize("extra", [{}, dict(include="127.0.0.1")], ids=["no-filters", "filters"])
def test_auto_is_computed_from_the_sockets_effective_values(listener, extra):
    env = shim_env(**SHIM, **extra)
    assert uto(listener, env)["TCP_USER_TIMEOUT"] == (7 + 3 * 4) * 1000
    # The program's own idle and interval, set before connect (curl does).
    got = uto(listener, env, "idle=60@before", "interval=60@before")
    assert got["TCP_USER_TIMEOUT"] == (60 + 60 * 4) * 1000, got
    # Set after connect: recomputed (respect mode), so one lost probe ACK
    # cannot end a healthy connection.
    got = uto(listener, env, "idle=30@after")
    assert (got["TCP_KEEPIDLE"], got["TCP_USER_TIMEOUT"]) == (30, (30 + 3 * 4) * 1000), got
    got = uto(listener, env, "count=9@after", "interval=5@after")
    assert got["TCP_USER_TIMEOUT"] == (7 + 5 * 9) * 1000, got


@pytest.mark.parametrize("mode", ["respect", "force"])
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_programs_own_user_timeout_always_stands_against_auto(listener, mode, when):
    env = shim_env(mode=mode, **SHIM)
    got = uto(listener, env, f"user_timeout=1234@{when}")
    assert got["TCP_USER_TIMEOUT"] == 1234, got
    assert got["TCP_KEEPIDLE"] == 7  # the shim is active


def test_a_fixed_user_timeout_wins_in_force_mode(listener):
    got = uto(listener, shim_env(mode="force", idle=7, user_timeout="2500ms"), "user_timeout=1234@after")
    assert got["TCP_USER_TIMEOUT"] == 2500, got
