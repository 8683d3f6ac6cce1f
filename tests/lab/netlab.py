"""A three-namespace network lab: client -- stateful firewall -- server.

    client ns            firewall ns                       server ns
    [c0] 10.200.N.2  --- [fc] 10.200.N.1   [fs] 10.200.N.129 --- [s0] 10.200.N.130
         fd00:200:N:1::2      fd00:200:N:1::1   fd00:200:N:2::1       fd00:200:N:2::2

The firewall forwards between its two veths and runs an nftables ruleset with
conntrack: packets of known flows (ct state established,related) and new SYNs
pass; everything else is dropped and counted in the named counter "dropped".
Established TCP flows get a short idle timeout (a `ct timeout` object set on
the rule that accepts the SYN; the per-namespace sysctl if the kernel lacks
`ct timeout`), and loose pickup is off (nf_conntrack_tcp_loose=0), so a flow
the firewall has forgotten stays forgotten. A server can be made to vanish:
its addresses go into a drop set in the firewall (counted in "vanished")
*before* its processes are killed, so no FIN or RST ever reaches the client.

Addresses exist only on the veth pairs; each namespace has routes only to the
lab's own two subnets, so no traffic can leave the lab. Namespace names carry
the pid and a per-lab number N (held with a lock file while the lab lives),
so parallel labs and parallel runs do not collide.

Everything is bounded: every wait has a deadline, readiness is a line on a
child's stdout/stderr, never a sleep. Every child is killed by pid and every
namespace deleted on exit, on an exception, at interpreter exit and on
SIGTERM/SIGHUP.

Standard library only (Python 3.11). Needs root, ip (iproute2), nft
(nftables), tcpdump.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import ipaddress
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAB_DIR.parent.parent
CLIENTS_DIR = LAB_DIR / "clients"
SERVER_SCRIPT = LAB_DIR / "server.py"

NS_PREFIX = "kslab-"
PORT = 8080
TOOLS = {"ip": "iproute2", "nft": "nftables", "tcpdump": "tcpdump"}


class LabError(RuntimeError):
    """The lab could not be built or an expected event did not come in time."""


# --------------------------------------------------------------------------
# Preconditions


def cannot_build_reason() -> str | None:
    """Why this process cannot build the lab, or None if it can."""
    if os.geteuid() != 0:
        return "the network lab needs root (network namespaces, nftables, tcpdump)"
    missing = missing_tools()
    if missing:
        pkgs = sorted({TOOLS[t] for t in missing})
        return "missing %s (apt-get install -y %s)" % (", ".join(missing), " ".join(pkgs))
    if not Path("/run/netns").exists() and not os.access("/run", os.W_OK):
        return "/run is not writable: cannot create named network namespaces"
    return None


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def shim_wrapper() -> Path:
    """The wrapper command: $KEEPALIVE_SHIM_LAB_WRAPPER, else beside the library."""
    env = os.environ.get("KEEPALIVE_SHIM_LAB_WRAPPER")
    return Path(env) if env else shim_library().parent / "keepalive-shim"


# KEEPALIVE_SHIM_* variables that `keepalive-shim run` takes as flags.
WRAPPER_FLAGS = {
    "KEEPALIVE_SHIM_IDLE": "--idle",
    "KEEPALIVE_SHIM_INTERVAL": "--interval",
    "KEEPALIVE_SHIM_COUNT": "--count",
    "KEEPALIVE_SHIM_USER_TIMEOUT": "--user-timeout",
    "KEEPALIVE_SHIM_LOG": "--log",
    "KEEPALIVE_SHIM_LOG_FILE": "--log-file",
}


def shim_library() -> Path:
    """The preload library: $KEEPALIVE_SHIM_LAB_LIBRARY, else target/release."""
    env = os.environ.get("KEEPALIVE_SHIM_LAB_LIBRARY")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        p = REPO_ROOT / "target" / profile / "libkeepalive_shim.so"
        if p.exists():
            return p
    return REPO_ROOT / "target" / "release" / "libkeepalive_shim.so"


# --------------------------------------------------------------------------
# Registry of everything alive, for atexit and signal cleanup

_registry_lock = threading.Lock()
_live_labs: set[Lab] = set()
_handlers_installed = False


def _cleanup_all() -> None:
    with _registry_lock:
        labs = list(_live_labs)
    for lab in labs:
        try:
            lab.close()
        except Exception as e:  # noqa: BLE001 - cleanup goes on regardless
            print("netlab: cleanup of %s failed: %s" % (lab.name, e), file=sys.stderr)


def _on_signal(signum, frame):
    _cleanup_all()
    # Die of the same signal, as if we had not caught it.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    global _handlers_installed
    with _registry_lock:
        if _handlers_installed:
            return
        _handlers_installed = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)
    # SIGINT raises KeyboardInterrupt; the context managers clean up.


# Signal handlers can only be installed from the main thread, and labs are
# often built in worker threads: install them when the module is imported.
if threading.current_thread() is threading.main_thread():
    _install_handlers()


# --------------------------------------------------------------------------
# Running commands


def run(argv: list[str], *, timeout: float = 10, check: bool = True, input: str | None = None) -> str:
    """Run a short command to completion (bounded), return its stdout."""
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise LabError("timed out after %ss: %s" % (timeout, " ".join(argv))) from e
    if check and p.returncode != 0:
        raise LabError("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p.stdout


@dataclass
class Line:
    t: float  # time.monotonic() when the harness read it
    stream: str  # "stdout" or "stderr"
    text: str

    @property
    def json(self) -> dict | None:
        if not self.text.startswith("{"):
            return None
        try:
            v = json.loads(self.text)
        except ValueError:
            return None
        return v if isinstance(v, dict) else None

    def event(self, name: str, **match) -> bool:
        j = self.json
        return bool(j) and j.get("event") == name and all(j.get(k) == v for k, v in match.items())


class Proc:
    """A child process in a namespace, its output read line by line."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], stdin: bool):
        self.name = name
        self.argv = argv
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: killed as one
        )
        self.pid = self.popen.pid
        self.lines: list[Line] = []  # everything read so far
        self._q: queue.Queue[Line | None] = queue.Queue()
        self._open_streams = 2
        for stream_name, stream in (("stdout", self.popen.stdout), ("stderr", self.popen.stderr)):
            threading.Thread(target=self._reader, args=(stream_name, stream), daemon=True).start()

    def _reader(self, stream_name, stream):
        try:
            for text in stream:
                line = Line(time.monotonic(), stream_name, text.rstrip("\n"))
                self.lines.append(line)
                self._q.put(line)
        except (ValueError, OSError):
            pass
        finally:
            self._q.put(None)

    def expect(self, pred: Callable[[Line], bool], timeout: float, what: str = "") -> Line | None:
        """The next line (not yet consumed) for which pred is true, or None
        when `timeout` seconds pass or the process closes both streams."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self._open_streams -= 1
                if self._open_streams <= 0:
                    return None
                continue
            if pred(line):
                return line

    def must(self, pred: Callable[[Line], bool], timeout: float, what: str) -> Line:
        line = self.expect(pred, timeout)
        if line is None:
            raise LabError(
                "%s: no %s within %ss (exit=%s); output:\n%s"
                % (self.name, what, timeout, self.popen.poll(), self.output()[-3000:])
            )
        return line

    def send(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def output(self, stream: str | None = None) -> str:
        return "\n".join(ln.text for ln in self.lines if stream is None or ln.stream == stream)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, timeout: float = 3) -> None:
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print("netlab: %s (pid %d) did not die" % (self.name, self.pid), file=sys.stderr)
        for s in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            try:
                if s:
                    s.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# Packet capture and keepalive-probe counting


@dataclass
class Segment:
    t: float
    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    ack: int
    flags: int
    length: int

    FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def read_pcap(path: Path) -> list[Segment]:
    """TCP segments of a pcap file (Ethernet link type, IPv4 and IPv6)."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise LabError("%s: not a pcap file" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise LabError("%s: link type %d, expected Ethernet" % (path, linktype))
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        off += 16
        pkt = data[off : off + incl]
        off += incl
        t = sec + frac / (1e9 if nano else 1e6)
        if len(pkt) < 14:
            continue
        ethertype = struct.unpack("!H", pkt[12:14])[0]
        ip = pkt[14:]
        if ethertype == 0x0800 and len(ip) >= 20:
            ihl = (ip[0] & 0x0F) * 4
            if ip[9] != 6:
                continue
            total = struct.unpack("!H", ip[2:4])[0]
            src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
            tcp, ip_payload = ip[ihl:total], total - ihl
        elif ethertype == 0x86DD and len(ip) >= 40:
            if ip[6] != 6:  # no extension headers in this lab
                continue
            plen = struct.unpack("!H", ip[4:6])[0]
            src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
            tcp, ip_payload = ip[40 : 40 + plen], plen
        else:
            continue
        if len(tcp) < 20:
            continue
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        out.append(Segment(t, (src, sport), (dst, dport), seq, ack, flags, ip_payload - doff))
    return out


@dataclass
class WireSummary:
    packets: int = 0
    probes: int = 0  # keepalive probes client -> server
    probe_times: list[float] = field(default_factory=list)  # seconds since capture start
    probe_answers: int = 0  # keepalive probes answered by the server (ACK right after)
    data_retransmissions: int = 0  # client data segments sent again
    fin_or_rst_to_client: int = 0  # FIN/RST from the server seen at the client
    client_ports: list[int] = field(default_factory=list)  # client ports that sent a SYN


def summarize(segments: list[Segment], server_port: int, start: float) -> WireSummary:
    """Counts keepalive probes: a segment with ACK, no SYN/FIN/RST, no
    payload, whose sequence number is one less than the next one expected
    in its direction (what Linux sends, and what tshark calls
    tcp.analysis.keep_alive)."""
    s = WireSummary(packets=len(segments))
    next_seq: dict[tuple, int] = {}
    probe_pending: dict[tuple, bool] = {}
    for seg in segments:
        flow = (seg.src, seg.dst)
        to_server = seg.dst[1] == server_port
        span = seg.length + (1 if seg.flags & Segment.SYN else 0) + (1 if seg.flags & Segment.FIN else 0)
        nxt = next_seq.get(flow)
        if to_server and seg.flags & Segment.SYN:
            s.client_ports.append(seg.src[1])
        if not to_server and seg.flags & (Segment.FIN | Segment.RST):
            s.fin_or_rst_to_client += 1
        is_probe = (
            nxt is not None
            and seg.length <= 1
            and seg.flags & Segment.ACK
            and not seg.flags & (Segment.SYN | Segment.FIN | Segment.RST)
            and seg.seq == (nxt - 1) % 2**32
        )
        if is_probe:
            if to_server:
                s.probes += 1
                s.probe_times.append(round(seg.t - start, 3))
                probe_pending[(seg.dst, seg.src)] = True
            continue
        if not to_server and probe_pending.pop(flow, False) and seg.length == 0:
            s.probe_answers += 1
        if to_server and nxt is not None and seg.length > 0:
            past = (seg.seq + seg.length - nxt) % 2**32
            if past == 0 or past > 2**31:
                s.data_retransmissions += 1  # ends at or before what was already sent
        end = (seg.seq + span) % 2**32
        if nxt is None or 0 < (end - nxt) % 2**32 < 2**31:
            next_seq[flow] = end
    return s


class Capture:
    """tcpdump on the client's veth, writing a pcap file."""

    def __init__(self, lab: Lab, port: int):
        self.lab = lab
        self.port = port
        self.path = Path(lab.tmpdir) / "client.pcap"
        self.proc = lab.spawn(
            "tcpdump",
            lab.ns_client,
            ["tcpdump", "-i", "c0", "-n", "-U", "-Z", "root", "-w", str(self.path), "tcp", "port", str(port)],
        )
        self.proc.must(lambda ln: "listening on" in ln.text, 10, "tcpdump 'listening on' line")
        self.started = time.time()
        self.summary: WireSummary | None = None

    def stop(self) -> WireSummary:
        if self.summary is None:
            self.proc.signal(signal.SIGINT)
            done = self.proc.expect(lambda ln: "packets captured" in ln.text, 5)
            if done is None:
                print("netlab: tcpdump did not report its end", file=sys.stderr)
            self.proc.kill()
            self.summary = summarize(read_pcap(self.path), self.port, self.started)
        return self.summary


# --------------------------------------------------------------------------
# The lab


def _lock_lab_number() -> tuple[int, int]:
    """A lab number N in 1..250 no other live lab holds, and its lock fd."""
    d = Path(tempfile.gettempdir()) / "keepalive-shim-netlab"
    d.mkdir(exist_ok=True)
    for n in range(1, 251):
        fd = os.open(d / ("%d.lock" % n), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return n, fd
        except BlockingIOError:
            os.close(fd)
    raise LabError("all 250 lab numbers are in use")


def reap_stale_namespaces() -> list[str]:
    """Delete lab namespaces left by a lab process that no longer exists
    (one killed with SIGKILL cannot clean up). Returns their names."""
    reaped = []
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return reaped
    for name in names:
        if not name.startswith(NS_PREFIX):
            continue
        try:
            owner = int(name[len(NS_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if owner == os.getpid() or Path("/proc/%d" % owner).exists():
            continue
        _delete_namespace(name)
        reaped.append(name)
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(NS_PREFIX + "*"):
        try:
            owner = int(d.name[len(NS_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if d.is_dir() and owner != os.getpid() and not Path("/proc/%d" % owner).exists():
            shutil.rmtree(d, ignore_errors=True)
    return reaped


def _delete_namespace(ns: str) -> None:
    # Processes still inside (ours: every process in a lab namespace was
    # started by a lab) are killed by pid, then the namespace is removed.
    pids = run(["ip", "netns", "pids", ns], check=False, timeout=5).split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    run(["ip", "netns", "del", ns], check=False, timeout=10)


class Lab:
    """One lab instance. Use as a context manager:

        with Lab(ct_timeout=5) as lab:
            server = lab.start_server()
            ...
    """

    def __init__(self, ct_timeout: int = 5, port: int = PORT, label: str = ""):
        self.ct_timeout = ct_timeout
        self.port = port
        self.label = label
        self.n = 0
        self._lock_fd = -1
        self.procs: list[Proc] = []
        self.namespaces: list[str] = []
        self.tmpdir = ""
        self.timeout_mechanism = ""
        self.closed = False
        self.server: Proc | None = None

    # names and addresses -------------------------------------------------
    @property
    def name(self) -> str:
        return "%s%d-%d" % (NS_PREFIX, os.getpid(), self.n)

    @property
    def ns_client(self) -> str:
        return self.name + "-c"

    @property
    def ns_fw(self) -> str:
        return self.name + "-f"

    @property
    def ns_server(self) -> str:
        return self.name + "-s"

    def addr(self, host: str, family: int = 4) -> str:
        n = self.n
        if family == 4:
            return {"client": "10.200.%d.2", "fw_c": "10.200.%d.1", "fw_s": "10.200.%d.129", "server": "10.200.%d.130"}[host] % n
        return {"client": "fd00:200:%x:1::2", "fw_c": "fd00:200:%x:1::1", "fw_s": "fd00:200:%x:2::1", "server": "fd00:200:%x:2::2"}[host] % n

    def url(self, family: int = 4) -> str:
        host = self.addr("server", family)
        return "http://%s:%d" % (host if family == 4 else "[%s]" % host, self.port)

    # life cycle ------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def build(self) -> None:
        reason = cannot_build_reason()
        if reason:
            raise LabError(reason)
        _install_handlers()
        self.n, self._lock_fd = _lock_lab_number()
        with _registry_lock:
            _live_labs.add(self)
        self.tmpdir = tempfile.mkdtemp(prefix=self.name + "-")
        c, f, s = self.ns_client, self.ns_fw, self.ns_server
        for ns in (c, f, s):
            if Path("/run/netns", ns).exists():
                _delete_namespace(ns)
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            # No duplicate address detection (not even for link-local
            # addresses, which would delay the first IPv6 packets by ~1 s).
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                 "net.ipv6.conf.default.accept_dad=0"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # veth pairs created directly inside the namespaces: nothing appears
        # in the host's namespace, not even for a moment.
        run(["ip", "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "fc", "netns", f])
        run(["ip", "link", "add", "fs", "netns", f, "type", "veth", "peer", "name", "s0", "netns", s])
        plan = [
            (c, "c0", "client", "fw_c"),
            (f, "fc", "fw_c", None),
            (f, "fs", "fw_s", None),
            (s, "s0", "server", "fw_s"),
        ]
        for ns, dev, host, _gw in plan:
            run(["ip", "-n", ns, "addr", "add", self.addr(host, 4) + "/25", "dev", dev])
            run(["ip", "-n", ns, "-6", "addr", "add", self.addr(host, 6) + "/64", "dev", dev, "nodad"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        # Routes only to the lab's own subnets: no default route anywhere.
        n = self.n
        run(["ip", "-n", c, "route", "add", "10.200.%d.128/25" % n, "via", self.addr("fw_c")])
        run(["ip", "-n", c, "-6", "route", "add", "fd00:200:%x:2::/64" % n, "via", self.addr("fw_c", 6)])
        run(["ip", "-n", s, "route", "add", "10.200.%d.0/25" % n, "via", self.addr("fw_s")])
        run(["ip", "-n", s, "-6", "route", "add", "fd00:200:%x:1::/64" % n, "via", self.addr("fw_s", 6)])
        run(["ip", "netns", "exec", f, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        self._load_firewall()

    def _ruleset(self, with_ct_timeout: bool) -> str:
        t = self.ct_timeout
        timeouts = (
            """
  ct timeout est4 {
    protocol tcp
    l3proto ip
    policy = { established: %d }
  }
  ct timeout est6 {
    protocol tcp
    l3proto ip6
    policy = { established: %d }
  }"""
            % (t, t)
            if with_ct_timeout
            else ""
        )
        set4 = 'ct timeout set "est4" ' if with_ct_timeout else ""
        set6 = 'ct timeout set "est6" ' if with_ct_timeout else ""
        return """
table inet labfw {%s
  counter dropped {}
  counter vanished {}
  set gone4 { type ipv4_addr; }
  set gone6 { type ipv6_addr; }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ip saddr @gone4 counter name "vanished" drop
    ip daddr @gone4 counter name "vanished" drop
    ip6 saddr @gone6 counter name "vanished" drop
    ip6 daddr @gone6 counter name "vanished" drop
    ct state established,related accept
    meta nfproto ipv4 tcp flags & (syn | ack | fin | rst) == syn ct state new %saccept
    meta nfproto ipv6 tcp flags & (syn | ack | fin | rst) == syn ct state new %saccept
    counter name "dropped" drop
  }
}
""" % (timeouts, set4, set6)

    def _load_firewall(self) -> None:
        f = self.ns_fw
        try:
            run(["ip", "netns", "exec", f, "nft", "-f", "-"], input=self._ruleset(True))
            self.timeout_mechanism = "ct timeout object (established %ds)" % self.ct_timeout
        except LabError:
            # Kernel without nft ct timeout: the per-namespace sysctl does it.
            run(["ip", "netns", "exec", f, "nft", "-f", "-"], input=self._ruleset(False))
            run(["ip", "netns", "exec", f, "sysctl", "-qw",
                 "net.netfilter.nf_conntrack_tcp_timeout_established=%d" % self.ct_timeout])
            self.timeout_mechanism = "sysctl nf_conntrack_tcp_timeout_established=%d" % self.ct_timeout
        # Conntrack sysctls are per namespace and start at the kernel's
        # defaults (loose=1): turn pickup of mid-stream flows off.
        run(["ip", "netns", "exec", f, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"])
        loose = run(["ip", "netns", "exec", f, "sysctl", "-n", "net.netfilter.nf_conntrack_tcp_loose"]).strip()
        if loose != "0":
            raise LabError("nf_conntrack_tcp_loose is %s in the firewall namespace" % loose)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for p in reversed(self.procs):
            p.kill()
        for ns in reversed(self.namespaces):
            _delete_namespace(ns)
        self.namespaces.clear()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        with _registry_lock:
            _live_labs.discard(self)

    # processes -------------------------------------------------------------
    def spawn(self, name: str, ns: str, argv: list[str], *, env: dict[str, str] | None = None,
              stdin: bool = False) -> Proc:
        """Start argv in namespace ns. `env` entries are set by env(1) right
        before argv runs, so LD_PRELOAD reaches argv and not ip(8)."""
        if self.closed:
            raise LabError("lab is closed")
        base = {k: v for k, v in os.environ.items() if not k.startswith("KEEPALIVE_SHIM") and k != "LD_PRELOAD"}
        base["PYTHONUNBUFFERED"] = "1"
        full = ["ip", "netns", "exec", ns, "env"] + ["%s=%s" % kv for kv in (env or {}).items()] + argv
        p = Proc("%s[%s]" % (name, self.name), full, base, stdin)
        self.procs.append(p)
        return p

    def start_server(self) -> Proc:
        p = self.spawn("server", self.ns_server, [sys.executable, str(SERVER_SCRIPT), str(self.port)])
        p.must(lambda ln: ln.event("ready"), 15, "server readiness line")
        self.server = p
        return p

    def run_client(self, name: str, argv: list[str], *, shim: dict[str, str] | None = None,
                   stdin: bool = False, wrapper: bool = False) -> Proc:
        """Start a client in the client namespace. With `shim` (a dict of
        KEEPALIVE_SHIM_* variables) the library is preloaded: through
        LD_PRELOAD, or with `wrapper`, by `keepalive-shim run FLAGS -- argv`
        (variables that have a flag become flags)."""
        env = {}
        if shim is not None:
            lib = shim_library()
            if not lib.exists():
                raise LabError("%s does not exist: build the library first" % lib)
            if wrapper:
                cmd = shim_wrapper()
                if not cmd.exists():
                    raise LabError("%s does not exist: build the wrapper first" % cmd)
                flags = []
                for var, value in shim.items():
                    if var in WRAPPER_FLAGS:
                        flags += [WRAPPER_FLAGS[var], value]
                    else:
                        env[var] = value
                argv = [str(cmd), "run"] + flags + ["--"] + argv
            else:
                env["LD_PRELOAD"] = str(lib)
                env.update(shim)
        return self.spawn(name, self.ns_client, argv, env=env, stdin=stdin)

    def capture(self) -> Capture:
        return Capture(self, self.port)

    # the firewall ------------------------------------------------------------
    def vanish_server(self) -> float:
        """Make the server disappear without a trace: drop its traffic in the
        firewall first, then kill its processes (their FIN/RST is dropped).
        Returns the monotonic time at which its traffic stopped."""
        elems = "add element inet labfw gone4 { %s }\nadd element inet labfw gone6 { %s }\n" % (
            self.addr("server", 4), self.addr("server", 6))
        run(["ip", "netns", "exec", self.ns_fw, "nft", "-f", "-"], input=elems)
        t = time.monotonic()
        if self.server is not None:
            self.server.kill()
        return t

    def counter(self, name: str) -> int:
        out = run(["ip", "netns", "exec", self.ns_fw, "nft", "-j", "list", "counter", "inet", "labfw", name])
        for item in json.loads(out).get("nftables", []):
            if "counter" in item:
                return int(item["counter"]["packets"])
        raise LabError("counter %s not found" % name)

    def drops(self) -> int:
        """Packets the firewall's conntrack policy dropped (not a vanish)."""
        return self.counter("dropped")

    def conntrack_flows(self) -> int:
        """TCP flows the firewall currently tracks (0 if conntrack(8) is absent)."""
        if shutil.which("conntrack") is None:
            return 0
        out = run(["ip", "netns", "exec", self.ns_fw, "conntrack", "-L", "-p", "tcp"], check=False)
        return sum(1 for ln in out.splitlines() if ln.startswith("tcp"))


@contextlib.contextmanager
def started_together(calls: dict[str, Callable[[], object]], thread_name_prefix: str):
    """Starts every call at once, each on its own thread (each run builds its
    own lab, so they do not interfere); yields name -> Future. On exit,
    cancels what has not started and waits for the rest, so that no lab
    outlives the caller."""
    pool = ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix=thread_name_prefix)
    futures: dict[str, Future] = {name: pool.submit(fn) for name, fn in calls.items()}
    try:
        yield futures
    finally:
        for f in futures.values():
            f.cancel()
        pool.shutdown(wait=True)


__all__ = [
    "Capture", "Lab", "LabError", "Line", "Proc", "WireSummary",
    "cannot_build_reason", "missing_tools", "reap_stale_namespaces", "read_pcap",
    "shim_library", "shim_wrapper", "started_together", "summarize",
]
