"""Servers under the shim (the listen()/accept() hooks), in the network lab.

A real HTTP/1.1 keep-alive server (Python's ThreadingHTTPServer; it sets no
socket option at all) runs in the lab's server namespace, preloaded with the
library or not; a client in the client namespace (never preloaded) makes a
request on a keep-alive connection. Then the client's host vanishes
silently: its addresses go into the firewall's drop sets *before* the client
process is killed, so its FIN never reaches the server.

- With the shim (idle 2 s, interval 1 s, count 3; TCP_USER_TIMEOUT off, the
  default), the listening socket gets the options, the accepted connection
  inherits them, and the kernel ends the connection 5 s after the client
  went silent: the server's blocked recv() fails with ETIMEDOUT (the server
  prints that as an event line, which the test waits for), and `ss` no longer
  lists the connection.
- Without the shim, the connection is still ESTABLISHED, with no timer,
  well after that bound.
- With KEEPALIVE_SHIM_INCLUDE set, the listening socket is left alone and
  each accepted connection is matched on the local address and port the
  client reached: `:<other port>` leaves it alone (no keepalive timer, a
  `left alone (filters)` debug line), `:<its port>` configures it
  (`timer:(keepalive,...)` in `ss -tnoi`), and so does an address entry
  `10.200.0.0/16:<its port>` although the server is bound to 0.0.0.0.

The five runs use one lab each and start together (threads) when the first
test asks for them; the file takes about 10 s. Needs root, ip, nft and ss;
without root it fails when CI=true and is skipped otherwise.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from dataclasses import dataclass, field

import pytest

import netlab
from conftest import program, require, require_root, shim_env
from netlab import Lab, Line, Proc

IDLE, INTERVAL, COUNT = 2, 1, 3
BOUND = IDLE + INTERVAL * COUNT  # 5 s: when the kernel gives up on a silent peer
MARGIN = 2.0  # allowed beyond BOUND
PORT = netlab.PORT  # the server's port (8080)
OTHER_PORT = PORT + 1  # a port no server here listens on
STARTUP = 20.0  # bound on a process's first line on a busy box
RESULT_TIMEOUT = 90  # bound on a whole run; every wait inside is far shorter

# The programs (tests/programs/): the server is ThreadingHTTPServer, HTTP/1.1
# keep-alive, with no socket option set by the program, printing event lines
# ("closed" says how the connection ended: "eof" or the recv() errno); the
# client makes one keep-alive request and holds the connection until killed.
# The client is never preloaded.


# --- helpers (on top of netlab's API) -------------------------------------

def event(name: str, **match):
    return lambda line: line.event(name, **match)


def shim_line(*needles: str):
    return lambda line: line.text.startswith("keepalive-shim[") and all(n in line.text for n in needles)


def await_line(proc: Proc, pred, timeout: float, what: str) -> Line:
    """Like Proc.must, but a matching line that an earlier expect() already
    read past (it is in proc.lines) counts too: stdout and stderr are read
    by two threads, so their relative order is not fixed."""
    for line in list(proc.lines):
        if pred(line):
            return line
    return proc.must(pred, timeout, what)


def vanish_client(lab: Lab, client: Proc) -> float:
    """The client's host disappears without a trace: its addresses go into
    the firewall's drop sets first (counted in "vanished"), then its process
    is killed (its FIN is dropped). Returns the monotonic time at which its
    traffic stopped. (netlab.Lab.vanish_server, for the other end.)"""
    elems = "add element inet labfw gone4 { %s }\nadd element inet labfw gone6 { %s }\n" % (
        lab.addr("client", 4), lab.addr("client", 6))
    netlab.run(["ip", "netns", "exec", lab.ns_fw, "nft", "-f", "-"], input=elems)
    t = time.monotonic()
    client.kill()
    return t


def ss_established(lab: Lab, peer: str) -> str:
    """`ss -tnoi` in the server namespace: the ESTABLISHED entry (with its
    info line) whose peer is `peer` ("ip:port"), or "" if there is none."""
    out = netlab.run(["ip", "netns", "exec", lab.ns_server, "ss", "-tnoiH", "state", "established"], timeout=5)
    entries: list[str] = []
    for line in out.splitlines():
        if line[:1].isspace() and entries:
            entries[-1] += "\n" + line.strip()
        elif line.strip():
            entries.append(line.strip())
    for entry in entries:
        cols = entry.split("\n", 1)[0].split()
        if peer in cols:
            return entry
    return ""


TIMER = re.compile(r"timer:\(keepalive,([^,)]*),\d+\)")
# How ss prints a timer (iproute2's print_ms_timer): "119min", "1min14sec",
# "29sec", "700ms", and, under 10 s, seconds and milliseconds glued with a
# dot and the unit "ms": "1.984ms" is 1.984 s.
SS_TIME = re.compile(r"(?:(\d+)min)?(?:(\d+)sec)?(?:(\d+)\.)?(?:(\d+)ms)?")


def keepalive_timer(entry: str) -> float | None:
    """Seconds left on the keepalive timer `ss -o` shows, or None (no timer)."""
    m = TIMER.search(entry)
    if not m:
        return None
    t = SS_TIME.fullmatch(m.group(1))
    if t is None or not m.group(1):
        raise ValueError("unexpected ss timer %r" % m.group(0))
    mins, secs, whole, ms = (int(g) if g else 0 for g in t.groups())
    return mins * 60 + secs + whole + ms / 1000


# --- one run ----------------------------------------------------------------

@dataclass
class ServerRun:
    name: str
    shim: dict | None
    peer: str = ""  # the client as the server sees it, "ip:port"
    ss_before: str = ""  # ss entry of the accepted connection, before the vanish
    ss_after: str = ""  # ... after the wait
    closed: dict | None = None  # the server's "closed" event, if any
    seconds: float | None = None  # vanish -> "closed" event
    waited: float = 0.0  # how long the test waited for a "closed" event
    vanished: int = 0  # packets the firewall dropped for the vanished client
    shim_lines: list = field(default_factory=list)
    server_output: str = ""
    wall: float = 0.0

    def show(self) -> str:
        return "\n".join([
            "%s: peer=%s closed=%s after %s s (waited %.1f s), vanished-drops=%d, wall %.2f s"
            % (self.name, self.peer, self.closed, self.seconds, self.waited, self.vanished, self.wall),
            "  ss before: " + self.ss_before.replace("\n", " | "),
            "  ss after:  " + (self.ss_after.replace("\n", " | ") or "(no ESTABLISHED entry)"),
        ] + ["  " + ln for ln in self.shim_lines])


def lab_env(**settings) -> dict:
    """The preload and KEEPALIVE_SHIM_* variables of conftest.shim_env, for
    Lab.spawn (which adds them with env(1) right before the program)."""
    env = {k: v for k, v in shim_env(**settings).items() if k.startswith("KEEPALIVE_SHIM")}
    env["LD_PRELOAD"] = str(netlab.shim_library())
    return env


def start_server(lab: Lab, shim: dict | None) -> Proc:
    p = lab.spawn("server", lab.ns_server, [sys.executable, program("http_events_server"), str(lab.port)], env=shim)
    p.must(event("ready"), STARTUP, "server readiness line")
    lab.server = p
    return p


def connect_client(lab: Lab, server: Proc) -> tuple[Proc, str]:
    """A client makes one request on a keep-alive connection and holds it;
    returns the client and its address as the server sees it."""
    client = lab.run_client("client", [sys.executable, program("http_idle_client"), lab.addr("server"), str(lab.port)],
                            stdin=True)
    resp = client.must(event("response"), STARTUP, "response")
    peer = "%s:%d" % (lab.addr("client"), resp.json["local_port"])
    await_line(server, event("request", peer=peer), 5, "request from %s" % peer)
    return client, peer


def client_vanishes(name: str, shim: dict | None, wait: float) -> ServerRun:
    """Scenarios 1 and 2: the client's host vanishes; wait up to `wait` s
    for the server's connection to end."""
    res = ServerRun(name, shim)
    t0 = time.monotonic()
    with Lab(label=name) as lab:
        server = start_server(lab, shim)
        try:
            client, res.peer = connect_client(lab, server)
            res.ss_before = ss_established(lab, res.peer)
            t_vanish = vanish_client(lab, client)
            res.waited = wait
            line = server.expect(event("closed", peer=res.peer), wait)
            if line is not None:
                res.closed = line.json
                res.seconds = round(line.t - t_vanish, 3)
            res.ss_after = ss_established(lab, res.peer)
            res.vanished = lab.counter("vanished")
        finally:
            server.kill()
            res.shim_lines = [ln.text for ln in server.lines if ln.text.startswith("keepalive-shim[")]
            res.server_output = server.output()[-4000:]
    res.wall = round(time.monotonic() - t0, 2)
    return res


def filtered(name: str, shim: dict) -> ServerRun:
    """Scenario 3: a connection to a server under an INCLUDE filter; read
    the accepted connection's kernel state while it is idle."""
    res = ServerRun(name, shim)
    t0 = time.monotonic()
    with Lab(label=name) as lab:
        server = start_server(lab, shim)
        try:
            _client, res.peer = connect_client(lab, server)
            # The accepted connection's line is written before the server
            # reads the request, so it is there (or will never be).
            await_line(server, shim_line("accepted=%s" % res.peer), 5, "shim line for the accepted connection")
            res.ss_before = ss_established(lab, res.peer)
        finally:
            server.kill()
            res.shim_lines = [ln.text for ln in server.lines if ln.text.startswith("keepalive-shim[")]
            res.server_output = server.output()[-4000:]
    res.wall = round(time.monotonic() - t0, 2)
    return res


SHIM = dict(idle=IDLE, interval=INTERVAL, count=COUNT)
RUNS = {
    "vanish-with-shim": (client_vanishes, dict(shim=lab_env(**SHIM, log="info"), wait=BOUND + MARGIN)),
    "vanish-without-shim": (client_vanishes, dict(shim=None, wait=BOUND + MARGIN)),
    "include-other-port": (filtered, dict(shim=lab_env(**SHIM, log="debug", include=":%d" % OTHER_PORT))),
    "include-server-port": (filtered, dict(shim=lab_env(**SHIM, log="debug", include=":%d" % PORT))),
    "include-address": (filtered, dict(shim=lab_env(**SHIM, log="debug", include="10.200.0.0/16:%d" % PORT))),
}


@pytest.fixture(scope="module")
def runs():
    require_root()
    reason = netlab.cannot_build_reason()
    require(reason is None, "network lab: %s" % reason)
    require(netlab.shim_library().exists(), "%s not built" % netlab.shim_library())
    netlab.reap_stale_namespaces()
    calls = {name: functools.partial(fn, name, **kw) for name, (fn, kw) in RUNS.items()}
    with netlab.started_together(calls, "lab-server") as futures:
        yield futures


def get(runs, name) -> ServerRun:
    res = runs[name].result(timeout=RESULT_TIMEOUT)
    print(res.show())  # shown by pytest on failure (and with -rP)
    print(res.server_output)
    return res


# --- 1. the client vanishes: with the shim, the kernel ends the connection --

def test_server_under_shim_drops_vanished_client_within_bound(runs):
    res = get(runs, "vanish-with-shim")
    # The listening socket got the options, and the accepted connection has them.
    expected = ("SO_KEEPALIVE=1", "TCP_KEEPIDLE=%d" % IDLE, "TCP_KEEPINTVL=%d" % INTERVAL,
                "TCP_KEEPCNT=%d" % COUNT)
    listen = [ln for ln in res.shim_lines if " listen=0.0.0.0:%d " % PORT in ln]
    accepted = [ln for ln in res.shim_lines if " accepted=%s " % res.peer in ln]
    assert len(listen) == 1 and all(e in listen[0] for e in expected), res.shim_lines
    assert len(accepted) == 1 and all(e in accepted[0] for e in expected), res.shim_lines
    # The kernel agrees: a keepalive timer of at most `idle` seconds.
    timer = keepalive_timer(res.ss_before)
    assert timer is not None and 0 < timer <= IDLE, res.ss_before
    # The server's recv() failed with ETIMEDOUT within idle + interval x count.
    assert res.closed is not None, "the server's connection was not closed within %.1f s" % res.waited
    assert res.closed["errno"] == "ETIMEDOUT", res.closed  # not "eof": no FIN reached the server
    # Lower bound: nothing but keepalive ended it (the last packet from the
    # client came just before the vanish, so the kernel's clock starts a
    # little earlier than ours).
    assert BOUND - 0.5 <= res.seconds <= BOUND + MARGIN, res.seconds
    assert res.ss_after == "", "still listed by ss: " + res.ss_after
    assert res.vanished > 0  # the server's probes (and the client's FIN) were dropped


# --- 2. the same without the shim: the connection stays ESTABLISHED ---------

def test_server_without_shim_keeps_vanished_client_established(runs):
    res = get(runs, "vanish-without-shim")
    assert not res.shim_lines
    assert res.closed is None, "closed without the shim: %s" % res.closed
    assert res.ss_after, "the connection left ss's ESTABLISHED list"
    assert keepalive_timer(res.ss_before) is None and keepalive_timer(res.ss_after) is None, res.ss_after
    assert res.vanished > 0  # the client's FIN was dropped


# --- 3. INCLUDE filters match a listening socket on its local port -----------

def test_include_other_port_leaves_server_alone(runs):
    res = get(runs, "include-other-port")
    listen = [ln for ln in res.shim_lines if " listen=0.0.0.0:%d " % PORT in ln]
    accepted = [ln for ln in res.shim_lines if " accepted=%s " % res.peer in ln]
    assert len(listen) == 1 and "decided per accepted connection" in listen[0], res.shim_lines
    assert len(accepted) == 1 and "left alone (filters)" in accepted[0], res.shim_lines
    assert not any("SO_KEEPALIVE" in ln for ln in res.shim_lines), res.shim_lines
    assert res.ss_before, "no ESTABLISHED entry for %s" % res.peer
    assert keepalive_timer(res.ss_before) is None, res.ss_before


@pytest.mark.parametrize("run", ["include-server-port", "include-address"])
def test_include_matching_the_connection_configures_it(runs, run):
    res = get(runs, run)
    listen = [ln for ln in res.shim_lines if " listen=0.0.0.0:%d " % PORT in ln]
    accepted = [ln for ln in res.shim_lines if " accepted=%s " % res.peer in ln]
    # The listening socket itself is left alone; the connection is decided
    # on the address the client reached (10.200.N.130:PORT).
    assert len(listen) == 1 and "decided per accepted connection" in listen[0], res.shim_lines
    assert len(accepted) == 1 and "left alone" not in accepted[0], res.shim_lines
    assert "SO_KEEPALIVE=1" in accepted[0] and "TCP_KEEPIDLE=%d" % IDLE in accepted[0], res.shim_lines
    timer = keepalive_timer(res.ss_before)
    assert timer is not None and 0 < timer <= IDLE, res.ss_before
