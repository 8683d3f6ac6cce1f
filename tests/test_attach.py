"""`keepalive-shim attach`: a sock_ops program on a cgroup sets the options
on the new TCP connections of every process in it, Go and static binaries
included, which no preload library reaches.

Every test makes its own cgroup under the cgroup v2 mount (found in
/proc/self/mountinfo) with a unique name, moves its programs in by pid and,
in `finally`, kills them, moves what is left out and removes the cgroup.
Kernel state is read with getsockopt inside the program
(tests/programs/attach_probe.py), and, in the network lab, from the wire.

Needs root, cgroup v2 and a CLI built with its BPF programs (clang and
libbpf-dev at build time); the lab test also needs gcc (static glibc), Go
(golang-go) and the lab's tools. Without them: fail when CI=true, skip
otherwise. About 30 s, most of it the lab test's 4 parallel runs.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import netlab
import scenarios as S
from conftest import CLI, KERNEL_DEFAULT, ROOT, clean_env, require, require_root

PROBE = ROOT / "tests" / "programs" / "attach_probe.py"
CLIENTS = ROOT / "tests" / "lab" / "clients"
READY_PREFIX = "keepalive-shim: attached to "
DEFAULTS = KERNEL_DEFAULT
FLAGS = ["--idle", "17", "--interval", "4", "--count", "3"]
SHIM = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 17, "TCP_KEEPINTVL": 4, "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 0}
_names = itertools.count()


def v2_mount() -> Path | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return Path(left.split()[4])
    return None


def require_attach():
    require_root()
    require(v2_mount() is not None, "attach needs a cgroup v2 hierarchy (none in /proc/self/mountinfo)")


class Cgroup:
    """A fresh cgroup v2 directory, removed on exit."""

    def __init__(self):
        self.mount = v2_mount()
        self.rel = "/ks-test-%d-%d" % (os.getpid(), next(_names))
        self.path = self.mount / self.rel.lstrip("/")

    def __enter__(self) -> Cgroup:
        self.path.mkdir()
        return self

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def __exit__(self, *exc) -> None:
        # Anything the test did not stop moves back to the root cgroup.
        for pid in self.pids():
            try:
                (self.mount / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while True:
            try:
                self.path.rmdir()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def in_cgroup(cg: Cgroup, argv: list[str]) -> list[str]:
    """argv, started as a process that first moves itself into cg."""
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cg.path / "cgroup.procs")] + argv


def read_line(stream, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError("no %s within %.0f s (so far: %r)" % (what, timeout, buf))
        chunk = os.read(fd, 1)
        if not chunk:
            raise AssertionError("no %s: stream closed (so far: %r)" % (what, buf))
        buf += chunk
    return buf.decode()


class Attach:
    """`keepalive-shim attach ARGS` in the background, until stop()."""

    def __init__(self, *args: str, prefix: tuple = (), env: dict | None = None):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([*prefix, str(CLI), "attach", *args], stdout=subprocess.PIPE,
                                     stderr=self.err, env=env or clean_env())
        try:
            self.ready = read_line(self.proc.stdout, 20, "readiness line")
        except AssertionError as e:
            self.proc.kill()
            self.proc.wait()
            self.err.seek(0)
            raise AssertionError("attach did not get ready: %s" % self.err.read()) from e
        assert self.ready.startswith(READY_PREFIX), self.ready

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal it; its exit status and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self.err.seek(0)
        return rc, self.err.read()

    def __enter__(self) -> Attach:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Probe:
    """tests/programs/attach_probe.py, started inside a cgroup."""

    def __init__(self, cg: Cgroup):
        self.proc = subprocess.Popen(in_cgroup(cg, [sys.executable, str(PROBE)]), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=clean_env())

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        out = json.loads(read_line(self.proc.stdout, 10, "probe answer to %r" % cmd))
        assert "error" not in out, out
        return out

    def connect(self, host: str, port: int, **kw) -> dict:
        return self.ask(op="connect", host=host, port=port, **kw)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def tcp_listener(host: str) -> tuple:
    """A listening socket of the test process (outside any test cgroup):
    connections complete in its backlog, nothing needs to accept them."""
    import socket
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, 0))
    s.listen(64)
    return s, s.getsockname()[1]


# --- on this host -----------------------------------------------------------

def test_options_on_new_connections_filters_and_servers():
    """Active and accepted connections get the options; EXCLUDE and INCLUDE
    decide on the destination (servers: the local address), IPv4, IPv6 and
    IPv4-mapped, prefixes and port ranges; one log line per configured
    connection."""
    require_attach()
    import socket
    a, port_a = tcp_listener("127.0.0.1")
    b, port_b = tcp_listener("127.0.0.1")
    c, port_c = tcp_listener("::1")
    with Cgroup() as cg:
        probe = Probe(cg)
        try:
            with Attach("--cgroup", cg.rel, *FLAGS, "--exclude", "127.0.0.1:%d" % port_b, "--log", "info") as att:
                assert "TCP_KEEPIDLE=17 TCP_KEEPINTVL=4 TCP_KEEPCNT=3" in att.ready
                assert probe.connect("127.0.0.1", port_a)["options"] == SHIM
                assert probe.connect("127.0.0.1", port_b)["options"] == DEFAULTS
                assert probe.connect("::1", port_c)["options"] == SHIM
                srv_port = probe.ask(op="listen", host="127.0.0.1")["port"]
                client = socket.create_connection(("127.0.0.1", srv_port))
                accepted = probe.ask(op="accept")
                client.close()
                assert accepted["options"] == SHIM
                rc, err = att.stop()
            assert rc == 0, err
            lines = [line for line in err.splitlines() if "TCP_KEEPIDLE=17" in line]
            assert len(lines) == 3, err
            assert any(line.startswith("keepalive-shim: peer=127.0.0.1:%d " % port_a) for line in lines), err
            assert any(line.startswith("keepalive-shim: peer=[::1]:%d " % port_c) for line in lines), err
            assert any(line.startswith("keepalive-shim: accepted=127.0.0.1:") for line in lines), err
            assert ":%d " % port_b not in err

            # INCLUDE: only IPv6 destinations.
            with Attach("--cgroup", cg.rel, *FLAGS, "--include", "[::1]") as att:
                assert probe.connect("127.0.0.1", port_a)["options"] == DEFAULTS
                assert probe.connect("::1", port_c)["options"] == SHIM
                assert att.stop()[0] == 0
            # A prefix and a port range, IPv4 only.
            lo, hi = sorted((port_a, port_b))
            with Attach("--cgroup", cg.rel, *FLAGS, "--include", "127.0.0.0/8:%d-%d" % (lo, hi)) as att:
                assert probe.connect("127.0.0.1", port_a)["options"] == SHIM
                assert probe.connect("127.0.0.1", port_b)["options"] == SHIM
                assert probe.connect("::1", port_c)["options"] == DEFAULTS
                # An IPv6 socket to an IPv4-mapped address is matched as IPv4.
                assert probe.connect("::ffff:127.0.0.1", port_a)["options"] == SHIM
                assert att.stop()[0] == 0
        finally:
            probe.close()
            for s in (a, b, c):
                s.close()


def test_respect_and_force():
    """A program's own TCP_KEEPIDLE, set before or after connect(), stands in
    respect mode and loses in force mode (its setsockopt still returns 0);
    its own TCP_USER_TIMEOUT stands even in force mode; `auto` is computed
    from the socket's effective values."""
    require_attach()
    srv, port = tcp_listener("127.0.0.1")
    own_idle = {"TCP_KEEPIDLE": 60}
    with Cgroup() as cg:
        probe = Probe(cg)
        try:
            with Attach("--cgroup", cg.rel, *FLAGS, "--user-timeout", "auto") as att:
                before = probe.connect("127.0.0.1", port, before=own_idle)["options"]
                # auto = (60 + 4 x 3) s from the program's own idle.
                assert before == dict(SHIM, TCP_KEEPIDLE=60, TCP_USER_TIMEOUT=72000)
                # Set after connect(): the user timeout follows, as in the library.
                after = probe.connect("127.0.0.1", port, after=own_idle)["options"]
                assert after == dict(SHIM, TCP_KEEPIDLE=60, TCP_USER_TIMEOUT=72000)
                # ... but never a user timeout the program set itself.
                own_ut = probe.connect("127.0.0.1", port, before={"TCP_USER_TIMEOUT": 1234}, after=own_idle)
                assert own_ut["options"] == dict(SHIM, TCP_KEEPIDLE=60, TCP_USER_TIMEOUT=1234)
                assert att.stop()[0] == 0
            with Attach("--cgroup", cg.rel, *FLAGS, "--mode", "force", "--log", "info") as att:
                forced = probe.connect("127.0.0.1", port, before=dict(own_idle, TCP_USER_TIMEOUT=1234))
                assert forced["options"] == dict(SHIM, TCP_USER_TIMEOUT=1234)
                late = probe.connect("127.0.0.1", port, after={"TCP_KEEPIDLE": 60, "SO_KEEPALIVE": 0})
                assert late["after_rc"] == {"TCP_KEEPIDLE": 0, "SO_KEEPALIVE": 0}
                assert late["options"] == SHIM
                rc, err = att.stop()
            assert rc == 0
            assert "force: kept TCP_KEEPIDLE=17 (the program set 60)" in err, err
            assert "force: kept SO_KEEPALIVE=1 (the program set 0)" in err, err
        finally:
            probe.close()
            srv.close()


def test_user_timeout_values():
    """A fixed TCP_USER_TIMEOUT, and `auto` capped at INT_MAX ms as
    UserTimeout::auto_ms caps it: (32767 + 32767 x 127) s is more."""
    require_attach()
    srv, port = tcp_listener("127.0.0.1")
    with Cgroup() as cg:
        probe = Probe(cg)
        try:
            with Attach("--cgroup", cg.rel, *FLAGS, "--user-timeout", "7s") as att:
                assert probe.connect("127.0.0.1", port)["options"] == dict(SHIM, TCP_USER_TIMEOUT=7000)
                att.stop()
            big = ["--idle", "32767", "--interval", "32767", "--count", "127", "--user-timeout", "auto"]
            with Attach("--cgroup", cg.rel, *big) as att:
                opts = probe.connect("127.0.0.1", port)["options"]
                assert opts["TCP_USER_TIMEOUT"] == 2**31 - 1
                assert opts["TCP_KEEPCNT"] == 127
                att.stop()
        finally:
            probe.close()
            srv.close()


def test_running_process_existing_and_new_connections_and_after_exit():
    """A process already running in the cgroup: with --new-only its existing
    connection is left alone and a new one gets the options; without, the
    existing one gets them too (as `apply`). After attach exits (SIGTERM,
    status 0), new connections are untouched. --pid names the cgroup."""
    require_attach()
    srv, port = tcp_listener("127.0.0.1")
    with Cgroup() as cg:
        probe = Probe(cg)
        try:
            old = probe.connect("127.0.0.1", port)
            assert old["options"] == DEFAULTS
            with Attach("--pid", str(probe.proc.pid), *FLAGS, "--new-only", "--log", "info") as att:
                assert att.ready.startswith(READY_PREFIX + str(cg.path) + ":"), att.ready
                assert "existing connections left alone (--new-only)" in att.ready
                assert probe.ask(op="options", id=old["id"])["options"] == DEFAULTS
                new = probe.connect("127.0.0.1", port)
                assert new["options"] == SHIM
                rc, err = att.stop(signal.SIGINT)
            assert rc == 0, err
            assert "local=127.0.0.1:%d " % new["local_port"] in err, err
            assert "detached from %s" % cg.path in err, err

            with Attach("--cgroup", cg.rel, *FLAGS) as att:
                assert "existing connection(s) changed in 1 process(es)" in att.ready, att.ready
                assert probe.ask(op="options", id=old["id"])["options"] == SHIM
                rc, _ = att.stop()
            assert rc == 0
            assert probe.connect("127.0.0.1", port)["options"] == DEFAULTS
        finally:
            probe.close()
            srv.close()


def test_startup_step_is_not_the_programs_own_setting():
    """A listener that exists when attach starts is configured by attach's
    start-up step (through pidfd_getfd). That is attach's doing, not the
    program's: the connections it accepts still follow the program's later
    idle with `auto`, (300 + 4 x 3) s, instead of keeping the start-up value."""
    require_attach()
    import socket
    with Cgroup() as cg:
        probe = Probe(cg)
        try:
            port = probe.ask(op="listen", host="127.0.0.1")["port"]
            with Attach("--cgroup", cg.rel, *FLAGS, "--user-timeout", "auto") as att:
                assert "1 existing connection(s) changed" in att.ready, att.ready
                client = socket.create_connection(("127.0.0.1", port))
                accepted = probe.ask(op="accept")
                assert accepted["options"] == dict(SHIM, TCP_USER_TIMEOUT=(17 + 4 * 3) * 1000)
                got = probe.ask(op="set", id=accepted["id"], opt="TCP_KEEPIDLE", value=300)["options"]
                assert got == dict(SHIM, TCP_KEEPIDLE=300, TCP_USER_TIMEOUT=(300 + 4 * 3) * 1000), got
                client.close()
                att.stop()
        finally:
            probe.close()


def test_unit_names_its_cgroup(tmp_path):
    """--unit asks systemd for the unit's ControlGroup (here a stand-in
    systemctl on PATH: the test host may have no systemd)."""
    require_attach()
    srv, port = tcp_listener("127.0.0.1")
    with Cgroup() as cg:
        fake = tmp_path / "systemctl"
        fake.write_text('#!/bin/sh\n[ "$*" = "show --property=ControlGroup --value -- worker.service" ] || exit 1\n'
                        'echo %s\n' % cg.rel)
        fake.chmod(0o755)
        probe = Probe(cg)
        try:
            env = clean_env()
            env["PATH"] = "%s:%s" % (tmp_path, env.get("PATH", "/usr/bin:/bin"))
            with Attach("--unit", "worker.service", *FLAGS, env=env) as att:
                assert att.ready.startswith(READY_PREFIX + str(cg.path) + ":"), att.ready
                assert probe.connect("127.0.0.1", port)["options"] == SHIM
                assert att.stop()[0] == 0
            gone = subprocess.run([str(CLI), "attach", "--unit", "other.service"], capture_output=True, text=True,
                                  timeout=20, env=env)
            assert gone.returncode == 1 and "systemctl show other.service failed" in gone.stderr, gone
        finally:
            probe.close()
            srv.close()


def test_capabilities_instead_of_root():
    """Not root, but CAP_BPF and CAP_NET_ADMIN: attach works."""
    require_attach()
    caps = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all,+bpf,+net_admin",
            "--ambient-caps=-all,+bpf,+net_admin")
    srv, port = tcp_listener("127.0.0.1")
    with Cgroup() as cg:
        probe = Probe(cg)
        try:
            with Attach("--cgroup", cg.rel, *FLAGS, "--new-only", prefix=caps) as att:
                assert probe.connect("127.0.0.1", port)["options"] == SHIM
                rc, err = att.stop(signal.SIGINT)
            assert rc == 0, err
        finally:
            probe.close()
            srv.close()


def test_requirements_fail_clearly():
    """No privileges, no such cgroup, a process in the root cgroup: exit 1
    with a message saying what is missing, never a crash."""
    require_attach()
    nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                             str(CLI), "attach", "--cgroup", "/"], capture_output=True, text=True, timeout=20)
    assert nobody.returncode == 1, nobody
    assert "needs root, or the capabilities CAP_BPF and CAP_NET_ADMIN (missing: CAP_BPF, CAP_NET_ADMIN)" \
        in nobody.stderr, nobody.stderr

    missing = subprocess.run([str(CLI), "attach", "--cgroup", "/ks-test-no-such-cgroup"], capture_output=True,
                             text=True, timeout=20)
    assert missing.returncode == 1 and "no such cgroup" in missing.stderr, missing

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (v2_mount() / "cgroup.procs").write_text(str(sleeper.pid))
        root = subprocess.run([str(CLI), "attach", "--pid", str(sleeper.pid)], capture_output=True, text=True,
                              timeout=20)
        assert root.returncode == 1 and "is in the root cgroup" in root.stderr, root
    finally:
        sleeper.kill()
        sleeper.wait()

    usage = subprocess.run([str(CLI), "attach", "--idle", "20"], capture_output=True, text=True, timeout=20)
    assert usage.returncode == 2 and "--cgroup" in usage.stderr, usage


def test_kernel_without_bpf_fails_clearly(cc):
    """bpf(2) failing with ENOSYS, as on a kernel without BPF: exit 1, the
    reason and what it means, never a crash."""
    require_attach()
    without_bpf = cc("without_bpf")
    with Cgroup() as cg:
        r = subprocess.run([without_bpf, str(CLI), "attach", "--cgroup", cg.rel], capture_output=True, text=True,
                           timeout=20)
    assert r.returncode == 1, r
    assert "cannot load the BPF programs" in r.stderr and "no bpf() system call" in r.stderr, r.stderr


# --- in the network lab: static and Go clients ------------------------------

LAB_FLAGS = ["--idle", str(S.IDLE), "--interval", str(S.INTERVAL), "--count", str(S.COUNT), "--log", "info"]


def go_env(tmp: Path) -> dict:
    env = clean_env()
    env["CGO_ENABLED"] = "0"
    if not env.get("HOME"):
        env["GOCACHE"] = str(tmp / "gocache")
    return env


@pytest.fixture(scope="module")
def lab_clients(tmp_path_factory):
    """The static C client (gcc -static) and the Go client (CGO_ENABLED=0)."""
    require_attach()
    require(netlab.cannot_build_reason() is None, "lab: %s" % netlab.cannot_build_reason())
    require(shutil.which("gcc") is not None, "gcc is needed (apt-get install gcc libc6-dev)")
    require(shutil.which("go") is not None, "Go is needed (apt-get install golang-go)")
    out = tmp_path_factory.mktemp("attach-clients")
    static = out / "static_client"
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", str(static),
                    str(CLIENTS / "static_client.c")], check=True, timeout=120)
    go = out / "go_client"
    subprocess.run(["go", "build", "-o", str(go), "main.go"], cwd=CLIENTS / "go_client", env=go_env(out),
                   check=True, timeout=300)
    for exe in (static, go):
        headers = subprocess.run(["readelf", "-lW", str(exe)], capture_output=True, text=True, check=True).stdout
        assert "INTERP" not in headers, "%s is not static" % exe
    return {"static": str(static), "go": str(go)}


def firewall_forgets_under_attach(client: str, exe: str, attach: bool, family: int = 4) -> S.Result:
    """Scenario 1 (request, 8 s idle > the firewall's 5 s, request again on the
    same connection) with the client in a cgroup, with or without attach."""
    res = S.Result("1 firewall forgets idle flow", client, "with attach" if attach else "without attach", family,
                   reference="second request sent")
    run = S._Run(res)
    with Cgroup() as cg, S.Lab(ct_timeout=S.FW_TIMEOUT, label="attach-%s-%s" % (client, attach)) as lab:
        att = Attach("--cgroup", cg.rel, *LAB_FLAGS) if attach else None
        proc = server = cap = None
        try:
            server = lab.start_server()
            cap = lab.capture()
            gap = str(int(S.IDLE_GAP))
            if client == "static":
                argv = [exe, lab.addr("server", family), str(lab.port), gap, "/", "/"]
            else:
                argv = [exe, lab.url(family), gap, "/", "/"]
            # `ip netns exec` mounts its own /sys, so the test moves the
            # client in (ip, env and sh exec in turn: one pid), then lets it go.
            proc = lab.spawn(client, lab.ns_client, ["sh", "-c", 'read _ && exec "$@"', "sh"] + argv, stdin=True)
            cg.add(proc.popen.pid)
            proc.send("go\n")
            proc.must(S._outcome_of(1), S.STARTUP, "first response")
            sent = proc.must(S._is("sending", 2), S.IDLE_GAP + 10, "second request")
            S._wait_outcome(res, proc, 2, sent.t, S.scenario1_bound(client))
        finally:
            run.finish(lab, cap, proc, server)
            if att is not None:
                rc, err = att.stop()
                res.shim_lines = [line for line in err.splitlines() if "peer=" in line] + ["exit status %d" % rc]
    return res


def test_static_and_go_clients_survive_the_firewall_under_attach(lab_clients):
    """Both clients, with and without attach, and the static one over IPv6
    with attach (without, IPv6 hangs the same way: test_lab.py)."""
    runs = [(c, a, 4) for c in ("static", "go") for a in (True, False)] + [("static", True, 6)]
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {r: pool.submit(firewall_forgets_under_attach, r[0], lab_clients[r[0]], r[1], r[2])
                   for r in runs}
        results = {r: f.result(timeout=150) for r, f in futures.items()}
    for (_client, attach, _family), res in results.items():
        detail = json.dumps(res.row(), indent=1)
        if attach:
            assert res.outcome == "ok", detail
            assert res.same_connection, detail
            assert res.probes >= 1 and res.drops == 0, detail
            assert res.shim_lines[-1] == "exit status 0", detail
            assert any(":%d " % netlab.PORT in line and "SO_KEEPALIVE=1 TCP_KEEPIDLE=2 TCP_KEEPINTVL=1 TCP_KEEPCNT=3"
                       in line for line in res.shim_lines), detail
        else:
            assert res.outcome == "hang", detail
            assert res.probes == 0 and res.drops >= 1, detail
