"""The lab's scenarios, shared by tests/test_lab.py and the demo.

Each function builds its own lab (so any number can run at once), plays one
scenario with one client in one mode, and returns a Result: the outcome
("ok", "error" or "hang"), the time to that outcome, what the wire showed
and what the firewall counted. Nothing here asserts: the tests do.

Timers (the same as in the field notes, scaled down):
  firewall established-flow timeout   5 s
  shim keepalive                      idle 2 s, interval 1 s, count 3
  TCP_USER_TIMEOUT                    off (the default), except where a
                                      scenario asks for auto explicitly:
                                      (2 + 1 x 3) s = 5000 ms
  idle gap in scenario 1              8 s (curl: 60/7 = 8.6 s)
A run that has not ended HANG_AFTER seconds past the moment the shim would
have ended it is stopped and recorded as "hang".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

import netlab
from netlab import Lab, LabError, Line

FW_TIMEOUT = 5
IDLE, INTERVAL, COUNT = 2, 1, 3
KEEPALIVE_BOUND = IDLE + INTERVAL * COUNT  # 5 s: when the shim declares a silent peer dead
USER_TIMEOUT_MS = 1000 * KEEPALIVE_BOUND  # what "auto" gives
IDLE_GAP = 8.0  # > FW_TIMEOUT, so the firewall forgets an idle flow
MARGIN = 2.0  # allowed beyond a bound
HANG_AFTER = 4.0  # a run is a "hang" once it is this far past what the shim needs
STARTUP = 40.0  # a client's first response (Java compiles, a busy 2-core box)

SHIM_ENV = {
    "KEEPALIVE_SHIM": "on",
    "KEEPALIVE_SHIM_IDLE": str(IDLE),
    "KEEPALIVE_SHIM_INTERVAL": str(INTERVAL),
    "KEEPALIVE_SHIM_COUNT": str(COUNT),
    "KEEPALIVE_SHIM_LOG": "info",
}


@dataclass
class Result:
    scenario: str
    client: str
    mode: str  # "without shim" / "with shim" / "shim, USER_TIMEOUT=off" ...
    family: int = 4
    outcome: str = ""  # ok | error | hang
    seconds: float = 0.0  # time to outcome from the scenario's reference moment
    reference: str = ""  # what `seconds` is measured from
    bound: float = 0.0  # how long the harness waited before calling it a hang
    exc_type: str | None = None
    message: str | None = None
    client_ports: list = field(default_factory=list)  # local ports the client reported
    server_peer_ports: list = field(default_factory=list)  # peer ports the server saw
    probes: int = 0
    probe_times: list = field(default_factory=list)
    probe_answers: int = 0
    data_retransmissions: int = 0
    fin_or_rst_to_client: int = 0
    syn_ports: list = field(default_factory=list)
    drops: int = 0  # firewall's conntrack-policy drop counter
    vanish_drops: int = 0
    shim_lines: list = field(default_factory=list)
    timeout_mechanism: str = ""
    client_output: str = ""
    wall: float = 0.0

    def row(self) -> dict:
        return asdict(self)

    @property
    def same_connection(self) -> bool:
        ports = self.server_peer_ports
        return len(ports) >= 2 and len(set(ports)) == 1


def _shim(extra: dict | None = None) -> dict:
    env = dict(SHIM_ENV)
    env.update(extra or {})
    return env


def _py(script: str) -> list[str]:
    return [sys.executable, str(netlab.CLIENTS_DIR / script)]


# --- Java: compiled once per process, into a temporary directory ----------

_java_lock = threading.Lock()
_java_dir: str | None = None


def java_classpath() -> str:
    global _java_dir
    with _java_lock:
        if _java_dir is None:
            if shutil.which("javac") is None:
                raise LabError("javac not found (apt-get install -y openjdk-17-jdk-headless)")
            # Named like the lab's own temporary directories, so that
            # netlab.reap_stale_namespaces() removes it if this process dies.
            d = tempfile.mkdtemp(prefix="%s%d-java-" % (netlab.NS_PREFIX, os.getpid()))
            subprocess.run(
                ["javac", "-d", d, str(netlab.CLIENTS_DIR / "KeepAliveClient.java")],
                check=True, capture_output=True, timeout=120,
            )
            _java_dir = d
        return _java_dir


def cleanup_java() -> None:
    global _java_dir
    with _java_lock:
        if _java_dir:
            shutil.rmtree(_java_dir, ignore_errors=True)
            _java_dir = None


def client_argv(client: str, url: str, *, idle: str, paths: list[str]) -> list[str]:
    if client == "requests":
        argv = _py("requests_worker.py") + [url, "--idle", idle]
        for p in paths:
            argv += ["--path", p]
        return argv
    if client == "node":
        return ["node", str(netlab.CLIENTS_DIR / "node_client.js"), url, idle] + paths
    if client == "java":
        # -Xshare/-XX flags only shorten start-up; no socket option is set.
        return ["java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-cp", java_classpath(),
                "KeepAliveClient", url, idle] + paths
    if client in ("curl", "curl-no-keepalive"):
        extra = ["--no-keepalive"] if client == "curl-no-keepalive" else []
        return [str(netlab.CLIENTS_DIR / "curl_client.sh"), url] + extra
    raise ValueError(client)


# --- event predicates that understand every client's output ---------------

def _curl_event(line: Line) -> dict | None:
    """curl's -w line, turned into the events the other clients print."""
    j = line.json
    if not j or j.get("event") != "transfer":
        return None
    n = int(j["n"]) + 1
    if int(j.get("exitcode", 0)) == 0:
        return {"event": "response", "n": n, "local_port": j.get("local_port"), "status": j.get("status")}
    return {"event": "error", "n": n, "exc_type": "curl exit %s" % j.get("exitcode"), "message": j.get("errormsg")}


def _event(line: Line) -> dict | None:
    j = line.json
    if j and j.get("event") == "transfer":
        return _curl_event(line)
    return j if j and "event" in j else None


def _is(name: str, n: int | None = None):
    def pred(line: Line) -> bool:
        e = _event(line)
        return bool(e) and e["event"] == name and (n is None or e.get("n") == n)
    return pred


def _outcome_of(n: int):
    """A response to, or an error on, request n."""
    def pred(line: Line) -> bool:
        e = _event(line)
        return bool(e) and e["event"] in ("response", "error") and e.get("n") == n
    return pred


def _sending(client: str, n: int):
    if client.startswith("curl"):
        if n == 1:
            return lambda ln: ln.stream == "stderr" and "Connected to" in ln.text
        return lambda ln: ln.stream == "stderr" and "Re-using existing connection" in ln.text
    return _is("sending", n)


# --- one run -------------------------------------------------------------

class _Run:
    """Shared bookkeeping of one scenario run: lab, server, capture, client."""

    def __init__(self, res: Result):
        self.res = res
        self.t0 = time.monotonic()

    def finish(self, lab: Lab, cap, client_proc, server) -> Result:
        res = self.res
        if client_proc is not None:
            client_proc.kill()
            res.client_output = client_proc.output()[-4000:]
            res.shim_lines = [ln.text for ln in client_proc.lines if ln.text.startswith("keepalive-shim[")]
            for ln in client_proc.lines:
                e = _event(ln)
                if e and e["event"] == "response" and e.get("local_port"):
                    res.client_ports.append(e["local_port"])
        if server is not None:
            for ln in server.lines:
                if ln.event("request"):
                    res.server_peer_ports.append(int(ln.json["peer"].rsplit(":", 1)[1]))
        if cap is not None:
            w = cap.stop()
            res.probes, res.probe_times, res.probe_answers = w.probes, w.probe_times, w.probe_answers
            res.data_retransmissions, res.fin_or_rst_to_client = w.data_retransmissions, w.fin_or_rst_to_client
            res.syn_ports = w.client_ports
        res.drops = lab.drops()
        res.vanish_drops = lab.counter("vanished")
        res.timeout_mechanism = lab.timeout_mechanism
        res.wall = round(time.monotonic() - self.t0, 2)
        return res


def _wait_outcome(res: Result, proc, n: int, t_ref: float, bound: float) -> None:
    res.bound = bound
    line = proc.expect(_outcome_of(n), max(0.0, t_ref + bound - time.monotonic()))
    if line is None:
        res.outcome = "hang"
        res.seconds = round(time.monotonic() - t_ref, 2)
        return
    e = _event(line)
    res.outcome = "ok" if e["event"] == "response" else "error"
    res.exc_type = e.get("exc_type")
    res.message = e.get("message")
    res.seconds = round(line.t - t_ref, 4)


def scenario1_bound(client: str) -> float:
    """How long scenario 1 waits for the second response before calling it a
    hang: a few seconds past what the shim needs. When the shim's keepalive
    runs, it needs nothing (the flow never expires). curl sets its own
    keepalive (60 s idle), which the shim leaves alone, so there the shim's
    TCP_USER_TIMEOUT is what ends the wait: 5 s."""
    if client == "curl":
        return USER_TIMEOUT_MS / 1000 + MARGIN + HANG_AFTER
    return MARGIN + HANG_AFTER


def firewall_forgets(client: str = "requests", shim: bool = True, family: int = 4,
                     shim_extra: dict | None = None, wrapper: bool = False) -> Result:
    """Scenario 1: request, idle longer than the firewall's timeout, request
    again on the same pooled connection."""
    res = Result("1 firewall forgets idle flow" + (" (IPv6)" if family == 6 else ""), client,
                 ("with shim (wrapper)" if wrapper else "with shim") if shim else "without shim", family,
                 reference="second request sent")
    run = _Run(res)
    with Lab(ct_timeout=FW_TIMEOUT, label="s1-%s-%s" % (client, shim)) as lab:
        server = lab.start_server()
        cap = lab.capture()
        proc = lab.run_client(client, client_argv(client, lab.url(family), idle=str(IDLE_GAP), paths=["/", "/"]),
                              shim=_shim(shim_extra) if shim else None, wrapper=wrapper)
        try:
            proc.must(_outcome_of(1), STARTUP, "first response")
            sent = proc.must(_sending(client, 2), IDLE_GAP + 10, "second request")
            _wait_outcome(res, proc, 2, sent.t, scenario1_bound(client))
        finally:
            run.finish(lab, cap, proc, server)
    return res


def peer_vanishes_waiting(client: str = "requests", shim: bool = True, family: int = 4,
                          shim_extra: dict | None = None) -> Result:
    """Scenario 2: the worker waits for a slow response; the server host
    vanishes silently meanwhile."""
    res = Result("2 peer vanishes, awaiting response", client, "with shim" if shim else "without shim", family,
                 reference="server vanished")
    run = _Run(res)
    with Lab(ct_timeout=FW_TIMEOUT) as lab:
        server = lab.start_server()
        cap = lab.capture()
        proc = lab.run_client(client, client_argv(client, lab.url(family), idle="0", paths=["/slow?seconds=300"]),
                              shim=_shim(shim_extra) if shim else None)
        try:
            server.must(lambda ln: ln.event("slow"), STARTUP, "slow request at the server")
            t_vanish = lab.vanish_server()
            _wait_outcome(res, proc, 1, t_vanish, KEEPALIVE_BOUND + MARGIN + HANG_AFTER)
        finally:
            run.finish(lab, cap, proc, None)
            res.server_peer_ports = [int(ln.json["peer"].rsplit(":", 1)[1]) for ln in server.lines if ln.event("request")]
    return res


def peer_vanishes_unacked(user_timeout: str = "auto", family: int = 4) -> Result:
    """Scenario 3: the server vanishes, then the worker sends a request that
    is never acknowledged. Keepalive is paused while data is in flight; only
    TCP_USER_TIMEOUT ends the wait."""
    extra = {"KEEPALIVE_SHIM_USER_TIMEOUT": user_timeout}
    res = Result("3 peer vanishes, request unacked", "requests",
                 "with shim, USER_TIMEOUT=%s" % user_timeout, family, reference="second request sent")
    run = _Run(res)
    with Lab(ct_timeout=FW_TIMEOUT) as lab:
        server = lab.start_server()
        cap = lab.capture()
        proc = lab.run_client("requests", client_argv("requests", lab.url(family), idle="stdin", paths=["/", "/"]),
                              shim=_shim(extra), stdin=True)
        try:
            proc.must(_outcome_of(1), STARTUP, "first response")
            proc.must(_is("idle", 1), 5, "idle announcement")
            lab.vanish_server()
            proc.send("go\n")
            sent = proc.must(_is("sending", 2), 5, "second request")
            _wait_outcome(res, proc, 2, sent.t, USER_TIMEOUT_MS / 1000 + MARGIN + HANG_AFTER)
        finally:
            run.finish(lab, cap, proc, None)
            res.server_peer_ports = [int(ln.json["peer"].rsplit(":", 1)[1]) for ln in server.lines if ln.event("request")]
    return res


def firewall_forgets_apply(apply: bool = True, flags: list[str] | None = None) -> Result:
    """Scenario 1 for a worker that is already running WITHOUT the library:
    the connection is pooled after the first request; during the first idle
    period `keepalive-shim apply PID` (if `apply`) sets keepalive on it from
    outside; after an idle gap longer than the firewall's timeout the worker
    sends its second request on the same connection. The apply output lines
    lines, and `status` before and after it ("status before: ..."), are kept
    in `shim_lines`."""
    flags = flags if flags is not None else ["--idle", str(IDLE), "--interval", str(INTERVAL),
                                             "--count", str(COUNT)]
    res = Result("1 firewall forgets idle flow", "requests",
                 "apply on the running worker" if apply else "without shim", reference="second request sent")
    run = _Run(res)
    with Lab(ct_timeout=FW_TIMEOUT, label="s1-apply-%s" % apply) as lab:
        server = lab.start_server()
        cap = lab.capture()
        proc = lab.run_client("requests", client_argv("requests", lab.url(), idle="stdin", paths=["/", "/"]),
                              stdin=True)
        try:
            proc.must(_outcome_of(1), STARTUP, "first response")
            idle = proc.must(_is("idle", 1), 5, "idle announcement")
            if apply:
                cli = str(netlab.shim_wrapper())
                before = subprocess.run([cli, "status", str(proc.pid)], capture_output=True, text=True, timeout=20)
                out = subprocess.run([cli, "apply", str(proc.pid)] + flags,
                                     capture_output=True, text=True, timeout=20)
                after = subprocess.run([cli, "status", str(proc.pid)], capture_output=True, text=True, timeout=20)
                res.shim_lines = (["status before: " + ln for ln in before.stdout.splitlines()]
                                  + out.stdout.splitlines()
                                  + ["status after: " + ln for ln in after.stdout.splitlines()])
                if out.returncode != 0:
                    raise LabError("apply failed (%d): %s %s" % (out.returncode, out.stdout, out.stderr))
            # The idle period itself: longer than the firewall's timeout.
            time.sleep(max(0.0, idle.t + IDLE_GAP - time.monotonic()))
            proc.send("go\n")
            sent = proc.must(_is("sending", 2), 5, "second request")
            _wait_outcome(res, proc, 2, sent.t, scenario1_bound("requests"))
        finally:
            lines = res.shim_lines
            run.finish(lab, cap, proc, server)
            res.shim_lines = lines
    return res
