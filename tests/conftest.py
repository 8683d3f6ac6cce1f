"""Shared fixtures for the integration tests: the built library and CLI,
a clean environment, and helpers to run real programs under the shim."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# KEEPALIVE_SHIM_TEST_LIB runs the tests against another build of the library
# (say, an older commit's, to see which tests fail without a fix).
LIB = pathlib.Path(os.environ.get("KEEPALIVE_SHIM_TEST_LIB")
                   or ROOT / "target" / "release" / "libkeepalive_shim.so")
CLI = ROOT / "target" / "release" / "keepalive-shim"
IN_CI = os.environ.get("CI") == "true"

sys.path.insert(0, str(ROOT / "tests" / "helpers"))


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
def accepting_listener():
    """A loopback listener that accepts and closes every connection, so its
    backlog never fills however many connections a test makes; its port."""
    import socket
    import threading
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(512)

    def serve():
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return  # closed by the fixture
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield s.getsockname()[1]
    s.shutdown(socket.SHUT_RDWR)
    s.close()
