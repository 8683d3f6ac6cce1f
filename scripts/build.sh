#!/usr/bin/env bash
# Builds the release library and command for this machine into
# target/release/ (or $CARGO_TARGET_DIR/release/): `cargo build --release`,
# then the library again, linked against glibc 2.17's stubs, in place of
# the one linked against this machine's glibc (which would only load on a
# glibc as new as this one; see scripts/lib/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
. scripts/lib/build.sh
install_zigbuild
install_rust_targets "$(uname -m)-unknown-linux-gnu"

cargo build --release --workspace --locked
lib=$(build_library "$(uname -m)")
cp --remove-destination "$lib" "$TARGET_DIR/release/libkeepalive_shim.so"
echo "built $TARGET_DIR/release/libkeepalive_shim.so (glibc >= 2.17, musl) and $TARGET_DIR/release/keepalive-shim"
