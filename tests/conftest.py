"""Shared fixtures for the integration tests: the built library and CLI,
a clean environment, helpers to run real programs under the shim, the
values the tests set and expect, and loopback servers.

Modules under tests/helpers, tests/lab and tests/programs are importable by
name (pyproject.toml sets pytest's `pythonpath`)."""
import http.server
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# KEEPALIVE_SHIM_TEST_LIB runs the tests against another build of the library
# (say, an older commit's, to see which tests fail without a fix).
LIB = pathlib.Path(os.environ.get("KEEPALIVE_SHIM_TEST_LIB")
                   or ROOT / "target" / "release" / "libkeepalive_shim.so")
CLI = ROOT / "target" / "release" / "keepalive-shim"
IN_CI = os.environ.get("CI") == "true"
PROBE = str(ROOT / "tests" / "programs" / "probe.py")
PROGRAMS = ROOT / "tests" / "programs"

# Values chosen to differ from every kernel default.
# TCP_USER_TIMEOUT is opt-in (off by default); `auto` is asked for here so
# that all five options are exercised.
SETTINGS = dict(idle=7, interval=3, count=4, user_timeout="auto")
EXPECTED = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 7, "TCP_KEEPINTVL": 3, "TCP_KEEPCNT": 4,
            "TCP_USER_TIMEOUT": (7 + 3 * 4) * 1000}
KERNEL_DEFAULT = {"SO_KEEPALIVE": 0, "TCP_KEEPIDLE": 7200, "TCP_KEEPINTVL": 75,
                  "TCP_KEEPCNT": 9, "TCP_USER_TIMEOUT": 0}
LOG_LINE = re.compile(r"^keepalive-shim\[(\d+)\]: (.*)$")


def require(condition, why):
    """Skip locally when a prerequisite is missing; fail loudly in CI."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)


def require_root():
    require(os.geteuid() == 0, "this test needs root (network namespaces, raw sockets, pidfd_getfd)")


def clean_env():
    """The test's environment without anything that could configure the shim."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEEPALIVE", "DD_", "LD_PRELOAD", "RUST_LOG"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def shim_env(preload=True, **settings):
    """A clean environment with the library preloaded and KEEPALIVE_SHIM_* set.
    `settings` keys are suffixes: idle=7 -> KEEPALIVE_SHIM_IDLE=7; shim="off" -> KEEPALIVE_SHIM=off."""
    env = clean_env()
    if preload:
        env["LD_PRELOAD"] = str(LIB)
    for key, value in settings.items():
        name = "KEEPALIVE_SHIM" if key == "shim" else f"KEEPALIVE_SHIM_{key.upper()}"
        env[name] = str(value)
    return env


def run(cmd, env, timeout=60, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def program(name):
    """The path of a Python test program, tests/programs/NAME.py."""
    return str(PROGRAMS / f"{name}.py")


def probe(args, env, check=True):
    """Runs tests/programs/probe.py ARGS... (see its docstring)."""
    r = run([sys.executable, PROBE, *args], env)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def log_lines(stderr):
    """The messages of the shim's log lines in `stderr`, without the prefix."""
    return [m.group(2) for m in map(LOG_LINE.match, stderr.splitlines()) if m]


@pytest.fixture(scope="session", autouse=True)
def built():
    assert LIB.is_file(), f"{LIB} is missing: run `cargo build --release` (scripts/test.sh does)"
    assert CLI.is_file(), f"{CLI} is missing: run `cargo build --release` (scripts/test.sh does)"


@pytest.fixture(scope="session")
def cc(tmp_path_factory):
    """Compiles tests/programs/NAME.c once; returns a function NAME -> binary path."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    require(gcc is not None, "a C compiler is needed for the C test programs")
    out = tmp_path_factory.mktemp("programs")
    built = {}

    def build(name):
        if name not in built:
            src = ROOT / "tests" / "programs" / f"{name}.c"
            exe = out / name
            subprocess.run([gcc, "-O2", "-Wall", "-Werror", "-pthread", "-o", str(exe), str(src)],
                           check=True)
            built[name] = exe
        return str(built[name])

    return build


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
    """A loopback HTTP/1.1 keep-alive server: GET / answers "hello"; GET
    /hold sets KeepAliveHandler.arrived, then waits for .release."""
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
