#!/usr/bin/env python3
"""Benchmarks of `keepalive-shim status` and `apply` on running processes.

    live_bench.py CLI N ROUNDS

Starts tests/bench/live_hold.py N (one process holding N established
loopback connections, a child holding the accepted ends: 2 x N sockets on
the host), then, round by round in a rotating order:
  - `ss -tnpo` vs `keepalive-shim status --all` (and `--json`), all output
    to /dev/null: wall time of each, ratio to `ss` of the same round;
  - `keepalive-shim apply CLIENT_PID --mode force` with values that change
    every round (so every socket gets 3-4 setsockopt calls), and the same
    with `--dry-run`: time per socket.
Prints a Markdown section (medians over rounds); checks that apply did its
job (every client socket reads back the last round's values) and that
status reported every socket `ss` did.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(argv):
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t, r.returncode


def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def spread(values):
    m = statistics.median(values)
    return 100 * (q(values, 0.75) - q(values, 0.25)) / 2 / m if m else 0


def main():
    cli, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hold = subprocess.Popen([sys.executable, str(HERE / "live_hold.py"), str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = hold.stdout.readline().split()
        if not line or line[0] != "ready":
            raise SystemExit("live_hold.py did not get ready")
        client = int(line[1])
        port = int(line[3])
        variants = {
            "ss -tnpo": ["ss", "-tnpo"],
            "keepalive-shim status --all": [cli, "status", "--all"],
            "keepalive-shim status --all --json": [cli, "status", "--all", "--json"],
        }
        times = {k: [] for k in variants}
        ratios = {k: [] for k in variants}
        apply_t, dry_t = [], []
        last = None
        for r in range(rounds):
            names = list(variants)
            names = names[r % len(names):] + names[:r % len(names)]
            this = {}
            for name in names:
                this[name], _ = timed(variants[name])
                times[name].append(this[name])
            for name in variants:
                ratios[name].append(this[name] / this["ss -tnpo"])
            last = (30 + r % 2, 5 + r % 2, 4 + r % 2)
            flags = ["--mode", "force", "--idle", str(last[0]), "--interval", str(last[1]), "--count", str(last[2])]
            steps = [("apply", flags), ("dry", flags + ["--dry-run"])]
            for kind, f in steps if r % 2 == 0 else reversed(steps):
                t, rc = timed([cli, "apply", str(client)] + f)
                if rc != 0:
                    raise SystemExit("apply failed: %d" % rc)
                (apply_t if kind == "apply" else dry_t).append(t)
        doc = json.loads(subprocess.run([cli, "status", "--json", str(client)], capture_output=True,
                                        text=True).stdout)
        socks = [s for s in doc["processes"][0]["sockets"] if s["role"] == "connected"]
        want = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": last[0], "TCP_KEEPINTVL": last[1], "TCP_KEEPCNT": last[2],
                "TCP_USER_TIMEOUT": 0}
        bad = [s for s in socks if s["options"] != want]
        if len(socks) != n or bad:
            raise SystemExit("apply check failed: %d sockets, %d with other values" % (len(socks), len(bad)))
        # Both count the established sockets of the benchmark's connections
        # (other programs on the host may hold more).
        ss_lines = subprocess.run(["ss", "-tnH", "state", "established", "( sport = :%d or dport = :%d )" % (port, port)],
                                  capture_output=True, text=True).stdout.count("\n")
        all_doc = json.loads(subprocess.run([cli, "status", "--all", "--json"], capture_output=True,
                                            text=True).stdout)
        ours = sum(1 for p in all_doc["processes"] for s in p["sockets"] if s["state"] == "ESTABLISHED"
                   and (s["local"].endswith(":%d" % port) or (s["peer"] or "").endswith(":%d" % port)))
    finally:
        hold.stdin.close()
        hold.wait(timeout=30)

    print("<!-- bench-live: written by scripts/bench-live.sh -->")
    print("## Running processes: `status` and `apply`\n")
    print("- **Date:** %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print("- **Machine:** %d CPUs; Linux %s; load average %s at the end" % (
        os.cpu_count(), platform.release(), " ".join("%.2f" % x for x in os.getloadavg())))
    print("- **Setup:** one process holds %d established loopback connections, a child of it the %d "
          "accepted ends (%d established sockets; of these, `ss` listed %d, `status --all` %d); "
          "%d rounds, variants in a rotating order; medians over rounds; spread = half the "
          "interquartile range.\n" % (n, n, 2 * n, ss_lines, ours, rounds))
    print("| command | median | spread | ratio to `ss -tnpo` (median of per-round ratios) |")
    print("|---|---|---|---|")
    for name in variants:
        print("| `%s` | %.0f ms | ±%.0f%% | %.2f |" % (name, 1000 * statistics.median(times[name]),
                                                    spread(times[name]), statistics.median(ratios[name])))
    print()
    print("| `apply` on the process holding %d connections | median | per socket |" % n)
    print("|---|---|---|")
    print("| `apply PID --mode force` (values change every round: 3-4 `setsockopt` per socket) "
          "| %.0f ms | %.1f µs |" % (1000 * statistics.median(apply_t), 1e6 * statistics.median(apply_t) / n))
    print("| `apply PID --mode force --dry-run` | %.0f ms | %.1f µs |" % (
        1000 * statistics.median(dry_t), 1e6 * statistics.median(dry_t) / n))
    print()
    print("Goal: `status --all` no slower than `ss -tnpo` (ratio ≤ 1.00) while reporting more per "
          "socket (the five option values, the library, a verdict). Per socket, `status` makes one "
          "`readlinkat`, `pidfd_getfd`, `fstat` (the descriptor is still that socket), five `getsockopt` and "
          "a `close` (`ss -tnpo`: one `readlink` and one `getxattr`), spread over one thread per CPU (at most "
          "4) for processes with 1,024 sockets or more; `apply` adds the `setsockopt` calls. After the last round every one of the %d client "
          "sockets read back the last round's values (checked). The `apply` rows include the `status`-like "
          "read of each socket and the process start (~2 ms)." % n)
    print()
    print("Reproduce: `scripts/bench-live.sh` (as root), which runs "
          "`python3 tests/bench/live_bench.py target/release/keepalive-shim %d %d`." % (n, rounds))
    print("<!-- /bench-live -->")


if __name__ == "__main__":
    main()
