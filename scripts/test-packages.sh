#!/usr/bin/env bash
# Installs and uses each package that scripts/package.sh put in dist/
# (run it first; scripts/test.sh runs both). As root (chroot, mounts):
#   - every packaged library: the static ELF checks of tests/library_binary.rs;
#   - the amd64 .deb in a clean Debian root (mmdebstrap, minbase; cached):
#     dpkg -i, `man keepalive-shim`, `keepalive-shim run -- python3 client.py`
#     with the options read back, the same through /etc/ld.so.preload and
#     /etc/keepalive-shim.conf, then `dpkg -r` leaves no file behind;
#   - the x86_64 wheel in a fresh virtualenv, used the same way; both wheels'
#     tags accepted by pip for glibc (manylinux2014) and musl (musllinux);
#   - the x86_64 tarball unpacked under a prefix, used the same way;
#   - the aarch64 tarball's command and library under qemu-user (Debian's
#     arm64 glibc): `run` wrapping a C client that reads its options back;
#     the arm64 .deb's file list, architecture and ELF machine, and its
#     files unpacked and used the same way under qemu-user.
# The arm64 .deb is not installed: a Debian arm64 root needs binfmt_misc
# for its maintainer scripts, which this test does not register host-wide.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
. scripts/lib/runtimes.sh
install_apt_packages mmdebstrap qemu-user-static python3-venv binutils zstd

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DIST=$PWD/dist
CACHE=${KEEPALIVE_SHIM_CACHE:-$HOME/.cache/keepalive-shim}
ROOTFS_TAR=$CACHE/debian-bookworm-minbase.tar.zst
WORK=$(mktemp -d)
ROOT=$WORK/root
cleanup() {
  local m
  for m in proc dev; do mountpoint -q "$ROOT/$m" 2>/dev/null && umount "$ROOT/$m"; done
  # Never into a mount that is still there (the bind-mounted /dev).
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
FLAGS=(--idle 7 --interval 3 --count 4 --user-timeout auto)
started=$SECONDS

fail() { echo "FAIL: $*" >&2; exit 1; }
# The options client.py printed, against the flags above (kernel defaults
# are 0/7200/75/9/0, so a shim that did nothing cannot pass).
check_options() { # LABEL JSON
  python3 - "$1" "$2" <<'PY' || exit 1
import json, sys
label, out = sys.argv[1], json.loads(sys.argv[2].strip().splitlines()[-1])
want = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 7, "TCP_KEEPINTVL": 3, "TCP_KEEPCNT": 4, "TCP_USER_TIMEOUT": 19000}
for side in ("connect", "accept"):
    if out[side] != want:
        sys.exit(f"FAIL: {label}: {side} socket has {out[side]}, expected {want}")
print(f"ok: {label}: {want}")
PY
}
deb_arch() { case $1 in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac; }

[[ $(id -u) == 0 ]] || fail "run as root (chroot, mount)"
for arch in x86_64 aarch64; do
  for f in "keepalive-shim-$VERSION-$arch-linux.tar.gz" "keepalive-shim_${VERSION}_$(deb_arch $arch).deb"; do
    [[ -f $DIST/$f ]] || fail "$DIST/$f is missing: run scripts/package.sh"
  done
  compgen -G "$DIST/keepalive_shim-$VERSION-py3-none-*_$arch.whl" >/dev/null ||
    fail "no $arch wheel in $DIST: run scripts/package.sh"
done

echo "== static checks of each packaged library"
for arch in x86_64 aarch64; do
  mkdir -p "$WORK/tar-$arch"
  tar -C "$WORK/tar-$arch" -xzf "$DIST/keepalive-shim-$VERSION-$arch-linux.tar.gz"
  lib=$WORK/tar-$arch/keepalive-shim-$VERSION-$arch-linux/lib/libkeepalive_shim.so
  KEEPALIVE_SHIM_TEST_LIBRARY=$lib cargo test -q --locked --test library_binary -- \
    library_has_no_panic_path library_needs_only_libc library_loads_on_old_glibc \
    weak_references_load_on_old_glibc
  machine=$(readelf -h "$lib" | sed -n 's/ *Machine: *//p')
  [[ $arch == x86_64 && $machine == *X86-64* || $arch == aarch64 && $machine == *AArch64* ]] ||
    fail "$arch library is for $machine"
done

echo "== .deb (amd64) in a clean Debian root"
deb=$DIST/keepalive-shim_${VERSION}_amd64.deb
if dpkg-deb -c "$deb" | awk '{print $6}' | grep -q '^\./etc/'; then fail ".deb installs into /etc"; fi
if [[ ! -f $ROOTFS_TAR ]]; then
  mkdir -p "$CACHE"
  echo "== mmdebstrap bookworm minbase (cached in $ROOTFS_TAR)"
  mmdebstrap --quiet --variant=minbase --include=python3,man-db --skip=output/dev \
    bookworm "$ROOTFS_TAR.part" http://deb.debian.org/debian </dev/null
  mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" --zstd -xf "$ROOTFS_TAR"
mount -t proc proc "$ROOT/proc"
mkdir -p "$ROOT/dev"
mount --bind /dev "$ROOT/dev"
cp "$deb" "$ROOT/tmp/keepalive-shim.deb"
cp tests/programs/client.py "$ROOT/tmp/client.py"
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
files_in_root() {
  (cd "$ROOT" && find . -xdev \( -path ./proc -o -path ./tmp -o -path ./var/lib/dpkg \
    -o -path ./dev -o -path ./var/cache/man -o -path ./var/log \) -prune -o -print | sort)
}
files_in_root >"$WORK/before"
in_root dpkg -i /tmp/keepalive-shim.deb >/dev/null
[[ -f $ROOT/usr/lib/x86_64-linux-gnu/libkeepalive_shim.so ]] || fail "library not in the multiarch directory"
in_root man -P cat keepalive-shim 2>/dev/null | grep -q "keepalive-shim run" || fail "man keepalive-shim"
in_root man -P cat 7 keepalive-shim 2>/dev/null | grep -q "KEEPALIVE_SHIM_IDLE" || fail "man 7 keepalive-shim"
echo "ok: man keepalive-shim, man 7 keepalive-shim"
out=$(in_root keepalive-shim run "${FLAGS[@]}" -- python3 /tmp/client.py)
check_options ".deb in Debian bookworm (chroot)" "$out"
# Host-wide, as the README describes it: /etc/ld.so.preload names the
# library in the multiarch directory, /etc/keepalive-shim.conf sets it.
echo /usr/lib/x86_64-linux-gnu/libkeepalive_shim.so >"$ROOT/etc/ld.so.preload"
printf 'KEEPALIVE_SHIM_IDLE=7\nKEEPALIVE_SHIM_INTERVAL=3\nKEEPALIVE_SHIM_COUNT=4\nKEEPALIVE_SHIM_USER_TIMEOUT=auto\n' \
  >"$ROOT/etc/keepalive-shim.conf"
out=$(in_root python3 /tmp/client.py)
rm "$ROOT/etc/ld.so.preload" "$ROOT/etc/keepalive-shim.conf"
check_options ".deb via /etc/ld.so.preload and /etc/keepalive-shim.conf (chroot)" "$out"
in_root dpkg -r keepalive-shim >/dev/null
files_in_root >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "dpkg -r left files behind (above)"
echo "ok: dpkg -r leaves nothing behind"
umount "$ROOT/proc" "$ROOT/dev"

echo "== wheel in a fresh virtualenv"
whl=$(compgen -G "$DIST/keepalive_shim-$VERSION-py3-none-*_x86_64.whl")
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check --no-index "$whl"
[[ -f $WORK/venv/lib/keepalive-shim/libkeepalive_shim.so ]] || fail "wheel: library not in the venv's lib/keepalive-shim/"
out=$(env -i PATH=/usr/bin:/bin "$WORK/venv/bin/keepalive-shim" run "${FLAGS[@]}" -- python3 tests/programs/client.py)
check_options "wheel in a virtualenv" "$out"
"$WORK/venv/bin/pip" uninstall -q -y keepalive-shim
[[ ! -e $WORK/venv/lib/keepalive-shim/libkeepalive_shim.so && ! -e $WORK/venv/bin/keepalive-shim ]] ||
  fail "pip uninstall left files behind"
for arch in x86_64 aarch64; do
  whl=$(compgen -G "$DIST/keepalive_shim-$VERSION-py3-none-*_$arch.whl")
  # pip on a newer glibc or musl also accepts these older tags.
  for platform in "manylinux2014_$arch" "manylinux_2_17_$arch" "musllinux_1_1_$arch"; do
    "$WORK/venv/bin/pip" install -q --disable-pip-version-check --no-index --dry-run \
      --only-binary=:all: --platform "$platform" --target "$WORK/dry" "$whl" ||
      fail "pip does not accept the $arch wheel for $platform"
  done
done
echo "ok: wheels accepted for manylinux2014, manylinux_2_17 and musllinux_1_1 (x86_64, aarch64)"

echo "== tarball under a prefix"
prefix=$WORK/tar-x86_64/keepalive-shim-$VERSION-x86_64-linux
out=$(env -i PATH=/usr/bin:/bin "$prefix/bin/keepalive-shim" run "${FLAGS[@]}" -- python3 tests/programs/client.py)
check_options "x86_64 tarball under a prefix" "$out"

echo "== aarch64 tarball under qemu-user"
fetch_runtimes "$CACHE/runtimes"
rt=$CACHE/runtimes/glibc-2.36-aarch64
client=$WORK/portable_client-aarch64
python3 -m ziglang cc -O2 -target aarch64-linux-gnu.2.17 -o "$client" tests/programs/portable_client.c
prefix=$WORK/tar-aarch64/keepalive-shim-$VERSION-aarch64-linux
# The static aarch64 command runs under qemu; it execs qemu again (a host
# program) for the dynamically linked aarch64 client, passing LD_PRELOAD on.
out=$(env -i PATH=/usr/bin:/bin qemu-aarch64-static "$prefix/bin/keepalive-shim" run "${FLAGS[@]}" -- \
  qemu-aarch64-static "$rt/lib/ld-linux-aarch64.so.1" --library-path "$rt/lib/aarch64-linux-gnu" "$client")
python3 - "$out" <<'PY' || exit 1
import sys
want = "SO_KEEPALIVE=1 TCP_KEEPIDLE=7 TCP_KEEPINTVL=3 TCP_KEEPCNT=4 TCP_USER_TIMEOUT=19000"
lines = sys.argv[1].splitlines()
for side in ("connect", "listen", "accept"):
    if f"{side} {want}" not in lines:
        sys.exit(f"FAIL: aarch64 tarball: {side} socket: {lines}")
print(f"ok: aarch64 tarball under qemu-user: {want}")
PY
qemu-aarch64-static "$prefix/bin/keepalive-shim" --version | grep -q "$VERSION" || fail "aarch64 --version"

echo "== arm64 .deb contents"
deb=$DIST/keepalive-shim_${VERSION}_arm64.deb
[[ $(dpkg-deb -f "$deb" Architecture) == arm64 ]] || fail "arm64 .deb architecture"
mkdir -p "$WORK/deb-arm64"
dpkg-deb -x "$deb" "$WORK/deb-arm64"
for f in usr/bin/keepalive-shim usr/lib/aarch64-linux-gnu/libkeepalive_shim.so \
  usr/share/man/man1/keepalive-shim.1.gz usr/share/man/man7/keepalive-shim.7.gz; do
  [[ -f $WORK/deb-arm64/$f ]] || fail "arm64 .deb lacks /$f"
  [[ $f == *.gz ]] || readelf -h "$WORK/deb-arm64/$f" | grep -q AArch64 || fail "/$f is not aarch64"
done
echo "ok: arm64 .deb contents"
# Its command finds its library in ../lib/aarch64-linux-gnu/ (unpacked, not
# installed: see above), and the library works, under qemu-user.
out=$(env -i PATH=/usr/bin:/bin qemu-aarch64-static "$WORK/deb-arm64/usr/bin/keepalive-shim" run "${FLAGS[@]}" -- \
  qemu-aarch64-static "$rt/lib/ld-linux-aarch64.so.1" --library-path "$rt/lib/aarch64-linux-gnu" "$client")
grep -qx "accept SO_KEEPALIVE=1 TCP_KEEPIDLE=7 TCP_KEEPINTVL=3 TCP_KEEPCNT=4 TCP_USER_TIMEOUT=19000" <<<"$out" ||
  fail "arm64 .deb's files under qemu: $out"
echo "ok: arm64 .deb's command and library under qemu-user"
echo "== package tests passed in $((SECONDS - started)) s"
