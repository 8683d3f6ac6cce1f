#!/usr/bin/env bash
# The "firewall" part of the demo: builds the network lab
# (client / stateful firewall / server namespaces), plays scenario 1 (the
# firewall forgets an idle pooled connection) and scenario 2 (the server
# vanishes while the client waits) without and with keepalive-shim, and
# prints a side-by-side table. About 20 s.
#
# Needs root, ip (iproute2), nft (nftables), tcpdump, python3 with requests,
# and the built library (target/release/libkeepalive_shim.so, or
# KEEPALIVE_SHIM_LAB_LIBRARY). It installs nothing.
# Without root it says why it cannot build the lab and exits 0; a missing
# tool or library is reported with what to install, exit 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
python=${PYTHON:-python3}

if [ "$(id -u)" -ne 0 ]; then
    echo "firewall demo: skipped: building the network lab needs root (network namespaces, nftables, tcpdump)."
    exit 0
fi

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
if [ ${#missing[@]} -gt 0 ]; then
    echo "firewall demo: missing tools; install them with: apt-get install -y ${missing[*]}"
    exit 1
fi
if ! "$python" -c 'import requests' >/dev/null 2>&1; then
    echo "firewall demo: $python has no 'requests' module; install it with: pip install requests"
    exit 1
fi

exec "$python" "$repo/tests/lab/demo.py" "$@"
