#!/usr/bin/env bash
# The test command: installs what the tests need, builds, runs everything.
#   scripts/test.sh            whole suite
#   scripts/test.sh -k curl    extra arguments go to pytest
# Run as root for the full suite (network namespaces, raw sockets,
# pidfd_getfd); with CI=true, a test that cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh

install_apt_packages curl iproute2 nftables tcpdump conntrack binutils gcc libc6-dev \
  nodejs openjdk-17-jdk-headless valgrind postgresql-client util-linux
install_pip_packages pytest requests

echo "== build"
cargo build --release --workspace --locked

echo "== cargo test"
cargo test --workspace --locked

echo "== integration tests (pytest)"
python3 -m pytest -ra tests/ "$@"
