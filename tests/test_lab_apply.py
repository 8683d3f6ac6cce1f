"""Field proof for `keepalive-shim apply`: scenario 1 of the firewall lab
(tests/lab/) with a requests worker that was started WITHOUT the library.
Its pooled connection is given keepalive from outside, by PID, during the
first idle period; the next request then succeeds through the firewall on
the same connection. The same run without `apply` hangs.

Both runs go at once (threads), about 15 s. Needs root, ip, nft, tcpdump and
the built CLI; fails when CI=true and is skipped otherwise.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "lab"))

import netlab
import scenarios as S
from conftest import require

RESULT_TIMEOUT = 120  # seconds; every run inside is bounded far below this


@pytest.fixture(scope="module")
def runs():
    reason = netlab.cannot_build_reason()
    if not reason and not netlab.shim_wrapper().exists():
        reason = "%s not built" % netlab.shim_wrapper()
    try:
        import requests  # noqa: F401  (the worker's library)
    except ImportError:
        reason = reason or "python module requests missing (pip install requests)"
    require(reason is None, "network lab: %s" % reason)
    netlab.reap_stale_namespaces()
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lab-apply")
    futures = {
        "with-apply": pool.submit(S.firewall_forgets_apply, apply=True),
        "without": pool.submit(S.firewall_forgets_apply, apply=False),
    }
    try:
        yield futures
    finally:
        for f in futures.values():
            f.cancel()
        pool.shutdown(wait=True)


def get(runs, name) -> S.Result:
    res = runs[name].result(timeout=RESULT_TIMEOUT)
    print("%s: %s" % (name, {k: v for k, v in res.row().items() if k != "client_output"}))
    print(res.client_output)
    return res


def test_worker_without_apply_hangs(runs):
    res = get(runs, "without")
    assert res.outcome == "hang", "expected a hang, got %s after %.2fs" % (res.outcome, res.seconds)
    assert res.probes == 0
    assert res.drops > 0, "the firewall should have dropped the request on the forgotten flow"


def test_apply_rescues_the_running_worker(runs):
    res = get(runs, "with-apply")
    # apply found the pooled connection (in the lab's client namespace) and set it.
    # status saw no keepalive on the pooled connection, apply set it, and
    # status then showed the kernel's keepalive timer running.
    before = [line for line in res.shim_lines if line.startswith("status before:") and " -> 10.200." in line]
    after = [line for line in res.shim_lines if line.startswith("status after:") and " -> 10.200." in line]
    assert len(before) == 1 and "no keepalive: if this peer vanishes" in before[0], res.shim_lines
    assert len(after) == 1 and "timer:(keepalive," in after[0], res.shim_lines
    assert "TCP_KEEPIDLE=%d TCP_KEEPINTVL=%d TCP_KEEPCNT=%d" % (S.IDLE, S.INTERVAL, S.COUNT) in after[0]
    conn = [line for line in res.shim_lines if line.startswith("pid ") and " -> 10.200." in line]
    assert len(conn) == 1, res.shim_lines
    assert "set SO_KEEPALIVE=1 (was 0) TCP_KEEPIDLE=%d (was 7200) TCP_KEEPINTVL=%d (was 75) TCP_KEEPCNT=%d (was 9)" % (
        S.IDLE, S.INTERVAL, S.COUNT) in conn[0]
    assert res.outcome == "ok", "second request: %s %s after %.2fs" % (res.outcome, res.exc_type, res.seconds)
    assert res.seconds < 1.0
    # The same connection, kept known to the firewall by probes.
    assert len(res.server_peer_ports) == 2 and res.server_peer_ports[0] == res.server_peer_ports[1]
    assert res.client_ports[0] == res.client_ports[1]
    assert len(res.syn_ports) == 1
    assert res.drops == 0
    assert res.probes >= 2 and res.probe_answers >= 2
    assert res.data_retransmissions == 0
