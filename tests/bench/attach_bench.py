#!/usr/bin/env python3
"""The cost per connection under `keepalive-shim attach`.

    attach_bench.py CLI ATTACH_PAIR REPS BLOCKS WARMUP

ATTACH_PAIR is tests/bench/attach_pair.c, built: two processes, each in its
own cgroup, take turns doing blocks of 100 loopback socket()+connect()+
close(); it reports the median ratio of a B block to the A blocks around
it (the listener is outside the cgroups: one configured connection per
connect). Five test cgroups exist for the whole run: two without anything
attached, and three each under its own `attach` (defaults;
`--user-timeout auto`; `--log info`, its lines to /dev/null), all running at
once. Each comparison runs REPS times in both orders (X as B, then X as A),
and the estimate of a rep is sqrt(ratio1 / ratio2), which cancels whatever
favours one side of a pair; the table gives the median over reps and the
control (no attach vs no attach) shows what is left of the method's bias.
With kernel.bpf_stats_enabled on for the run, the kernel's own accounting
gives the sock_ops program's run time per connection.

Prints a Markdown section; checks that every side did its job (the last
socket's SO_KEEPALIVE, TCP_KEEPCNT and TCP_USER_TIMEOUT).
"""

import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

# cgroup key -> attach flags (None: nothing attached)
CGROUPS = {"bare": None, "bare2": None, "a": [], "b": ["--user-timeout", "auto"], "c": ["--log", "info"]}
# side -> (cgroup key, mode, expected last options, description)
SIDES = {
    "none": ("bare", "plain", "0,9,0", "no attach, no options"),
    "none2": ("bare2", "plain", "0,9,0", "no attach, no options (another cgroup)"),
    "floor4": ("bare", "floor4", "1,6,0", "no attach; the program sets SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT itself"),
    "floor5": ("bare", "floor5", "1,6,120000", "no attach; the program sets the 5 options itself"),
    "attach": ("a", "plain", "1,6,0", "attach, defaults (4 options)"),
    "attach-auto": ("b", "plain", "1,6,120000", "attach --user-timeout auto (5 options)"),
    "attach-log": ("c", "plain", "1,6,0", "attach --log info (a ring-buffer event and a line per connection)"),
}
# (measured, against)
COMPARISONS = [
    ("none2", "none"),
    ("floor4", "none"),
    ("attach", "none"),
    ("attach", "floor4"),
    ("attach-auto", "none"),
    ("attach-auto", "floor5"),
    ("attach-log", "none"),
]


def v2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return Path(left.split()[4])
    raise SystemExit("no cgroup v2 mount")


def fields(out):
    return dict(word.split("=", 1) for word in out.split() if "=" in word)


def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def bpf_prog_stats(cgroup):
    """[(name, run_time_ns, run_cnt)] of the programs attached to cgroup."""
    out = subprocess.run(["bpftool", "-j", "cgroup", "show", str(cgroup)], capture_output=True, text=True,
                         check=True).stdout
    stats = []
    for prog in json.loads(out or "[]"):
        info = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog["id"])],
                                         capture_output=True, text=True, check=True).stdout)
        stats.append((info.get("name", prog.get("name")), info.get("run_time_ns", 0), info.get("run_cnt", 0)))
    return stats


def main():
    cli, pair, reps, blocks, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    mount = v2_mount()
    cgroups = {k: mount / ("ks-bench-%d-%s" % (os.getpid(), k)) for k in CGROUPS}
    attaches = []
    stats_file = Path("/proc/sys/kernel/bpf_stats_enabled")
    stats_before = stats_file.read_text().strip()
    estimates = {c: [] for c in COMPARISONS}
    ns = {s: [] for s in SIDES}
    connects = dict.fromkeys(CGROUPS, 0)
    bad = set()

    def run(side_a, side_b):
        (ka, ma, ea, _), (kb, mb, eb, _) = SIDES[side_a], SIDES[side_b]
        out = fields(subprocess.run([pair, str(cgroups[ka] / "cgroup.procs"), ma, str(cgroups[kb] / "cgroup.procs"),
                                     mb, str(blocks), str(warm)], capture_output=True, text=True, check=True).stdout)
        connects[ka] += (blocks + warm + 1) * 100
        connects[kb] += (blocks + warm) * 100
        for side, want, got in ((side_a, ea, out["a_opts"]), (side_b, eb, out["b_opts"])):
            if got != want:
                bad.add("%s: got %s, want %s" % (side, got, want))
        ns[side_a].append(float(out["a_ns"]))
        ns[side_b].append(float(out["b_ns"]))
        return float(out["ratio"])

    try:
        for k, flags in CGROUPS.items():
            cgroups[k].mkdir()
            if flags is None:
                continue
            p = subprocess.Popen([cli, "attach", "--cgroup", str(cgroups[k])] + flags,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            attaches.append(p)
            ready = p.stdout.readline()
            if not ready.startswith("keepalive-shim: attached to "):
                raise SystemExit("attach %s did not get ready: %r" % (flags, ready))
        stats_file.write_text("1\n")
        run("none", "none2")  # warm-up, not recorded
        for rep in range(reps):
            for measured, against in (COMPARISONS[rep % len(COMPARISONS):] + COMPARISONS[:rep % len(COMPARISONS)]):
                r1 = run(against, measured)  # measured as B
                r2 = run(measured, against)  # measured as A
                estimates[(measured, against)].append(math.sqrt(r1 / r2))
        kernel = {k: bpf_prog_stats(cgroups[k]) for k in ("a", "b", "c")}
    finally:
        stats_file.write_text(stats_before + "\n")
        for p in attaches:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        for cg in cgroups.values():
            if cg.exists():
                cg.rmdir()
    if bad:
        raise SystemExit("a side did not do its job: " + "; ".join(sorted(bad)))

    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print("<!-- bench-attach: written by scripts/bench-attach.sh -->")
    print("## `attach`: cost per connection\n")
    print("- **Date:** %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print("- **Machine:** %d CPUs; Linux %s; load average %s at the end (a machine shared with other "
          "builds)" % (os.cpu_count(), platform.release(), load))
    print("- **Method:** `tests/bench/attach_pair.c`: two processes, each in its own test cgroup, take turns "
          "doing blocks of 100 loopback socket()+connect()+close() (the listener is outside the cgroups, so one "
          "configured connection per connect); the ratio of each block of one to the blocks of the other around "
          "it, median over %d blocks (after %d warm-up). Every comparison runs %d times in both orders; a rep's "
          "estimate is sqrt(ratio as B / ratio as A), which cancels a bias for either side; the table gives the "
          "median over reps and their spread (half the interquartile range). All attach instances (one per "
          "cgroup) run at once, with the defaults (idle 60 s, interval 10 s, count 6).\n" % (blocks, warm, reps))
    print("| measured | against | ratio (median) | spread | per connect (median over runs) |")
    print("|---|---|---|---|---|")
    for (measured, against), est in estimates.items():
        m = statistics.median(est)
        sp = 100 * (q(est, 0.75) - q(est, 0.25)) / 2 / m
        print("| %s | %s | %.4f | ±%.1f%% | %.2f µs vs %.2f µs |" % (
            SIDES[measured][3], SIDES[against][3], m, sp,
            statistics.median(ns[measured]) / 1000, statistics.median(ns[against]) / 1000))
    print()
    print("| in the kernel (kernel.bpf_stats_enabled) | program | run time per connection | per invocation | "
          "invocations per connection |")
    print("|---|---|---|---|---|")
    for key, side in (("a", "attach"), ("b", "attach-auto"), ("c", "attach-log")):
        for name, run_ns, cnt in kernel[key]:
            if not cnt:
                continue  # the cgroup/setsockopt program: the loop never calls setsockopt()
            n = connects[key]
            print("| %s | `%s` | %.0f ns | %.0f ns | %.1f |" % (SIDES[side][3], name, run_ns / n if n else 0,
                                                               run_ns / cnt if cnt else 0, cnt / n if n else 0))
    print()

    def est(c):
        return statistics.median(estimates[c])

    a = est(("attach", "none"))
    print("Goal: cost per connection with `attach` ≤ 1.01 x without: **%s**, %.4f x; the same "
          "options set by the program itself, without BPF, cost %.4f x, and attach against that floor is "
          "%.4f x (control, no attach against no attach: %.4f). The options are kernel work that any way of "
          "setting them pays (each `setsockopt` on a connected socket re-arms the keepalive timer); what BPF "
          "adds is the sock_ops program's own time in the second table (it runs about five times per connection, "
          "at every sock_ops event of the socket, and works at one). Every side's last socket was checked "
          "(SO_KEEPALIVE, TCP_KEEPCNT, TCP_USER_TIMEOUT)."
          % ("met" if a <= 1.01 else "missed", a, est(("floor4", "none")), est(("attach", "floor4")),
             est(("none2", "none"))))
    print()
    print("Reproduce: `scripts/bench-attach.sh` (as root), which runs `python3 tests/bench/attach_bench.py "
          "target/release/keepalive-shim $B/attach_pair %d %d %d`." % (reps, blocks, warm))
    print("<!-- /bench-attach -->")


if __name__ == "__main__":
    main()
