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
  nodejs openjdk-17-jdk-headless valgrind postgresql-client util-linux shellcheck \
  "${BUILD_APT_PACKAGES[@]}" golang-go
install_pip_packages pytest requests ruff
install_rust_components rustfmt clippy
# Portability and packages: musl-gcc, qemu-user, a Debian root for the .deb.
install_apt_packages musl-tools qemu-user-static mmdebstrap python3-venv zstd
. scripts/lib/runtimes.sh

# The house rules first: they take seconds and a failure is cheap to fix.
echo "== lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
python3 -m ruff check tests scripts
shellcheck -x .ci/run scripts/*.sh scripts/lib/*.sh tests/lab/clients/*.sh

# `rust-version` is a promise: check it with that toolchain (a minimal
# install, then `cargo check` in its own target dir; about 15 s the first
# time, a few seconds after).
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
echo "== MSRV: cargo +$msrv check"
install_rust_toolchain "$msrv"
CARGO_TARGET_DIR=target/msrv cargo "+$msrv" check --workspace --all-targets --locked

echo "== build"
scripts/build.sh

echo "== cargo test"
cargo test --workspace --locked

echo "== packages (dist/, both architectures)"
scripts/package.sh
fetch_runtimes "${KEEPALIVE_SHIM_CACHE:-$HOME/.cache/keepalive-shim}/runtimes"

echo "== integration tests (pytest)"
python3 -m pytest -ra tests/ "$@"

echo "== package tests"
scripts/test-packages.sh
