"""The one library build per architecture, loaded by each C runtime it must
serve: this machine's glibc, musl (a client compiled with Debian's musl-gcc),
bullseye's glibc 2.31 through its own ld.so, and on aarch64, under
qemu-user, Debian's arm64 glibc 2.36 and 2.31 and musl. In each: a plain
run, chaining to a second preload library, the config file, the program
filter, and listen/accept, with the kernel's values read back by the client
(tests/programs/portable_client.c) and the shim's log line.

Needs: scripts/build.sh (x86_64 library linked against glibc 2.17's stubs
at target/release/), scripts/package.sh or scripts/lib/build.sh for the
aarch64 library, the runtimes from scripts/lib/runtimes.sh (scripts/test.sh
fetches them), musl-gcc, qemu-user-static and zig (the ziglang package).
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import LIB, ROOT, clean_env, require, run

CACHE = pathlib.Path(os.environ.get("KEEPALIVE_SHIM_CACHE",
                                    pathlib.Path.home() / ".cache" / "keepalive-shim"))
RUNTIMES = CACHE / "runtimes"
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
AARCH64_LIB = TARGET / "aarch64-unknown-linux-gnu" / "release" / "libkeepalive_shim.so"
CLIENT = ROOT / "tests" / "programs" / "portable_client.c"
NEXT = ROOT / "tests" / "programs" / "next_socket.c"

SHIM = "SO_KEEPALIVE=1 TCP_KEEPIDLE=7 TCP_KEEPINTVL=3 TCP_KEEPCNT=4 TCP_USER_TIMEOUT=19000"
FROM_FILE = "SO_KEEPALIVE=1 TCP_KEEPIDLE=11 TCP_KEEPINTVL=5 TCP_KEEPCNT=2 TCP_USER_TIMEOUT=0"
KERNEL = "SO_KEEPALIVE=0 TCP_KEEPIDLE=7200 TCP_KEEPINTVL=75 TCP_KEEPCNT=9 TCP_USER_TIMEOUT=0"


def zig():
    try:
        import ziglang  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "ziglang", "cc"]


class Runtime:
    """A C runtime: how to compile for it and how to start a program in it."""

    def __init__(self, name, arch, compiler, loader=(), libdl=False, version=None):
        self.name, self.arch, self.compiler = name, arch, compiler
        self.loader, self.libdl, self.version = list(loader), libdl, version

    @property
    def library(self):
        return LIB if self.arch == "x86_64" else AARCH64_LIB


def runtimes():
    rt = RUNTIMES
    q = ["qemu-aarch64-static"]

    def z(target, *extra):
        return ["zig", target, *extra]

    return [
        Runtime("glibc-host-x86_64", "x86_64", ["gcc"]),
        Runtime("musl-x86_64", "x86_64", ["musl-gcc"]),
        Runtime("glibc-2.31-x86_64", "x86_64", z("x86_64-linux-gnu.2.17"),
                [rt / "glibc-2.31-x86_64/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                 "--library-path", rt / "glibc-2.31-x86_64/lib/x86_64-linux-gnu"],
                libdl=True, version="2.31"),
        Runtime("glibc-2.36-aarch64", "aarch64", z("aarch64-linux-gnu.2.17"),
                q + [rt / "glibc-2.36-aarch64/lib/ld-linux-aarch64.so.1",
                     "--library-path", rt / "glibc-2.36-aarch64/lib/aarch64-linux-gnu"],
                libdl=True, version="2.36"),
        Runtime("glibc-2.31-aarch64", "aarch64", z("aarch64-linux-gnu.2.17"),
                q + [rt / "glibc-2.31-aarch64/lib/ld-linux-aarch64.so.1",
                     "--library-path", rt / "glibc-2.31-aarch64/lib/aarch64-linux-gnu"],
                libdl=True, version="2.31"),
        Runtime("musl-aarch64", "aarch64", z("aarch64-linux-musl", "-dynamic"),
                q + [rt / "musl-aarch64/lib/ld-musl-aarch64.so.1"]),
    ]


RUNTIME_LIST = runtimes()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Per runtime: (client, next-library), compiled once."""
    out = tmp_path_factory.mktemp("portable")
    cache = {}

    def build(runtime):
        if runtime.name in cache:
            return cache[runtime.name]
        compiler = list(runtime.compiler)
        if compiler[0] == "zig":
            z = zig()
            require(z is not None, "zig is needed (pip install ziglang; scripts/test.sh does)")
            compiler = z + ["-target"] + compiler[1:]
        else:
            require(shutil.which(compiler[0]) is not None,
                    f"{compiler[0]} is needed (apt-get install {'musl-tools' if 'musl' in compiler[0] else 'gcc'})")
        if runtime.loader:
            require(all(pathlib.Path(p).exists() for p in runtime.loader if isinstance(p, pathlib.Path)),
                    f"the {runtime.name} runtime is missing from {RUNTIMES} (scripts/test.sh fetches it)")
            require(runtime.arch != "aarch64" or shutil.which("qemu-aarch64-static"),
                    "qemu-aarch64-static is needed (apt-get install qemu-user-static)")
        require(runtime.library.is_file(),
                f"{runtime.library} is missing (scripts/build.sh; scripts/package.sh for aarch64)")
        d = out / runtime.name
        d.mkdir()
        client, nxt = d / "portable_client", d / "next_socket.so"
        subprocess.run(compiler + ["-O2", "-Wall", "-o", str(client), str(CLIENT)], check=True)
        subprocess.run(compiler + ["-O2", "-shared", "-fPIC", "-o", str(nxt), str(NEXT)]
                       + (["-ldl"] if runtime.libdl else []), check=True)
        cache[runtime.name] = (client, nxt)
        return cache[runtime.name]

    return build


def start(runtime, compiled, env, extra_preload=False):
    client, nxt = compiled(runtime)
    env = dict(env)
    env["LD_PRELOAD"] = f"{runtime.library}:{nxt}" if extra_preload else str(runtime.library)
    cmd = [str(p) for p in runtime.loader] + [str(client)]
    return run(cmd, env, timeout=60)


def sockets(result):
    """{"connect": "SO_KEEPALIVE=1 ...", "listen": ..., "accept": ...}"""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert set(lines) == {"connect", "listen", "accept"}, result.stdout
    return lines


def shim_settings(**extra):
    env = clean_env()
    env.update({"KEEPALIVE_SHIM_IDLE": "7", "KEEPALIVE_SHIM_INTERVAL": "3",
                "KEEPALIVE_SHIM_COUNT": "4", "KEEPALIVE_SHIM_USER_TIMEOUT": "auto",
                "KEEPALIVE_SHIM_LOG": "info"})
    env.update(extra)
    return env


ids = [r.name for r in RUNTIME_LIST]


LOADED = [r for r in RUNTIME_LIST if r.loader]


@pytest.mark.parametrize("runtime", LOADED, ids=[r.name for r in LOADED])
def test_the_loader_is_the_runtime_named(runtime, compiled):
    """The foreign runtime's own loader runs the client, not this machine's."""
    compiled(runtime)
    loader = [str(p) for p in runtime.loader]
    if runtime.version:  # glibc's libc.so.6 run as a program: "... release version 2.31."
        out = run(loader + [f"{loader[-1]}/libc.so.6"], clean_env())
        expected = f"release version {runtime.version}"
    else:  # musl's loader run without a program names itself
        out = run(loader, clean_env())
        expected = "musl libc (aarch64)"
    assert expected in out.stdout + out.stderr, out.stdout + out.stderr


@pytest.mark.parametrize("runtime", RUNTIME_LIST, ids=ids)
def test_plain_run_with_listen_and_accept(runtime, compiled):
    result = start(runtime, compiled, shim_settings())
    assert sockets(result) == {"connect": SHIM, "listen": SHIM, "accept": SHIM}
    log = result.stderr
    assert "keepalive-shim[" in log and "peer=127.0.0.1:" in log, log
    assert "listen=127.0.0.1:" in log and "accepted=127.0.0.1:" in log, log


@pytest.mark.parametrize("runtime", RUNTIME_LIST, ids=ids)
def test_chains_to_a_second_preload_library(runtime, compiled):
    result = start(runtime, compiled, shim_settings(), extra_preload=True)
    assert sockets(result)["connect"] == SHIM
    # The shim's socket() called the next library's socket(), not the kernel.
    assert result.stderr.count("next-socket called") == 2, result.stderr


@pytest.mark.parametrize("runtime", RUNTIME_LIST, ids=ids)
def test_config_file_and_log_file(runtime, compiled, tmp_path):
    log = tmp_path / "shim.log"
    conf = tmp_path / "keepalive-shim.conf"
    conf.write_text("# from the file\nKEEPALIVE_SHIM_IDLE=11\nKEEPALIVE_SHIM_INTERVAL=5\n"
                    f"KEEPALIVE_SHIM_COUNT=2\nKEEPALIVE_SHIM_LOG=info\nKEEPALIVE_SHIM_LOG_FILE={log}\n")
    env = clean_env()
    env["KEEPALIVE_SHIM_CONFIG"] = str(conf)
    result = start(runtime, compiled, env)
    assert sockets(result) == {"connect": FROM_FILE, "listen": FROM_FILE, "accept": FROM_FILE}
    text = log.read_text()
    assert "peer=127.0.0.1:" in text and "TCP_KEEPIDLE=11" in text, text
    assert "keepalive-shim[" not in result.stderr, result.stderr


@pytest.mark.parametrize("runtime", RUNTIME_LIST, ids=ids)
def test_program_filter(runtime, compiled):
    """The name comes from program_invocation_name (argv[0]) or the
    executable; under an explicit loader the executable is ld.so or qemu."""
    chosen = start(runtime, compiled, shim_settings(KEEPALIVE_SHIM_PROGRAMS="python3,portable_client"))
    assert sockets(chosen)["connect"] == SHIM
    other = start(runtime, compiled, shim_settings(KEEPALIVE_SHIM_PROGRAMS="python3,java"))
    assert sockets(other) == {"connect": KERNEL, "listen": KERNEL, "accept": KERNEL}
    assert "keepalive-shim[" not in other.stderr, other.stderr
