#!/usr/bin/env python3
"""The "firewall" part of the demo: scenarios 1 and 2 of the network lab,
each without and with keepalive-shim, played at the same time in four
separate labs, then one side-by-side table.

Usage: demo.py [--json]

Exit status: 0 when the table was printed, or when the lab cannot be built
for lack of root (it says why); 1 when a tool or the library is missing (it
says what to install or build) or a run failed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import netlab  # from this directory: python puts a script's own directory on sys.path
import scenarios as S

# The demo asks for the user timeout explicitly (it is opt-in: it can end a
# live connection whose reader stops reading, see the README).
AUTO = {"KEEPALIVE_SHIM_USER_TIMEOUT": "auto"}
RUNS = [
    (S.firewall_forgets, dict(shim=False)),
    (S.firewall_forgets, dict(shim=True, shim_extra=AUTO)),
    (S.peer_vanishes_waiting, dict(shim=False)),
    (S.peer_vanishes_waiting, dict(shim=True, shim_extra=AUTO)),
]


def detail(r: S.Result) -> str:
    if r.outcome == "ok":
        ports = r.server_peer_ports
        if len(ports) >= 2 and len(set(ports)) == 1:
            return "same connection (port %d)" % ports[0]
        return "new connection"
    if r.outcome == "error":
        return r.exc_type or "error"
    if r.data_retransmissions:
        return "request retransmitted %d times, unanswered" % r.data_retransmissions
    return "no timer running: waits forever"


def time_cell(r: S.Result) -> str:
    if r.outcome == "hang":
        return "> %.1f s (stopped)" % r.seconds
    if r.seconds < 1:
        return "%.1f ms" % (r.seconds * 1000)
    return "%.2f s" % r.seconds


def table(results: list[S.Result]) -> str:
    head = ["scenario", "mode", "outcome", "time to outcome", "probes on wire", "firewall drops", "detail"]
    rows = [[r.scenario, r.mode, r.outcome.upper(), time_cell(r), str(r.probes), str(r.drops), detail(r)]
            for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    reason = netlab.cannot_build_reason()
    if reason:
        print("firewall demo: cannot build the network lab: %s." % reason)
        if os.geteuid() != 0:
            print("firewall demo: run it as root (sudo) to see scenarios 1 and 2; skipped.")
            return 0
        return 1
    lib = netlab.shim_library()
    if not lib.exists():
        print("firewall demo: %s not found: build it first (cargo build --release)." % lib)
        return 1
    netlab.reap_stale_namespaces()

    print("firewall demo: client -> stateful firewall -> HTTP/1.1 keep-alive server, in network namespaces")
    print("  firewall: nftables conntrack, established flows forgotten after %d s idle, loose pickup off,"
          % S.FW_TIMEOUT)
    print("            anything not established/related and not a new SYN dropped and counted")
    print("  client:   Python requests.Session, no timeout, no socket options of its own")
    print("  shim:     %s (idle %d s, interval %d s, count %d, TCP_USER_TIMEOUT auto = %d ms)"
          % (lib, S.IDLE, S.INTERVAL, S.COUNT, S.USER_TIMEOUT_MS))
    print("  scenario 1: request, idle %.0f s (> firewall timeout), request again on the pooled connection"
          % S.IDLE_GAP)
    print("  scenario 2: slow request; the server vanishes silently while the client waits")
    print("  a run still waiting a few seconds after the shim would have ended it is stopped: 'hang'")
    print("playing 4 runs at once (about 20 s)...")
    sys.stdout.flush()

    t0 = time.monotonic()
    results: list[S.Result | None] = [None] * len(RUNS)
    failed = False
    with ThreadPoolExecutor(max_workers=len(RUNS)) as pool:
        futures = {pool.submit(fn, **kw): i for i, (fn, kw) in enumerate(RUNS)}
        for f in as_completed(futures, timeout=150):
            i = futures[f]
            try:
                r = f.result()
            except Exception as e:  # noqa: BLE001 - report and go on
                print("  run %d failed: %s" % (i + 1, e))
                failed = True
                continue
            results[i] = r
            print("  %5.1f s  scenario %s, %s: %s" % (time.monotonic() - t0, r.scenario, r.mode, r.outcome))
            sys.stdout.flush()
    done = [r for r in results if r is not None]
    print()
    print(table(done))
    print()
    print("time to outcome: scenario 1 from sending the second request, scenario 2 from the server's vanishing.")
    print("probes on wire: keepalive probes from the client, captured on its veth with tcpdump.")
    print("firewall drops: packets the firewall's conntrack policy dropped (a forgotten flow's packets).")
    print("total %.1f s" % (time.monotonic() - t0))
    if "--json" in argv:
        print(json.dumps([{k: v for k, v in r.row().items() if k != "client_output"} for r in done], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
