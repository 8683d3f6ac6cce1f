# shellcheck shell=bash
# Release builds for an architecture (x86_64 or aarch64); sourced by
# scripts/build.sh and scripts/package.sh. Each function prints the path
# of what it built.
#
# The library is linked by zig against glibc 2.17's stubs: a weak `dlsym`
# then stays unversioned and every other import is GLIBC_2.17 or older,
# so the one file loads on every glibc >= 2.17 and on musl
# (tests/library_binary.rs checks the file). The symbol table is kept
# (strip=none: zig's linker would drop it with "debuginfo"), for the
# panic-freedom check.
#
# The command is a static musl executable: it runs on any distribution.

TARGET_DIR=${CARGO_TARGET_DIR:-target}

build_library() {
  local arch=$1
  CARGO_PROFILE_RELEASE_STRIP=none cargo zigbuild --release --locked -q \
    -p keepalive-shim --target "$arch-unknown-linux-gnu.2.17" >&2
  echo "$TARGET_DIR/$arch-unknown-linux-gnu/release/libkeepalive_shim.so"
}

build_static_cli() {
  local arch=$1
  cargo zigbuild --release --locked -q -p keepalive-shim-cli --target "$arch-unknown-linux-musl" >&2
  echo "$TARGET_DIR/$arch-unknown-linux-musl/release/keepalive-shim"
}
