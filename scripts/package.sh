#!/usr/bin/env bash
# Builds everything a user installs, for x86_64 and aarch64, into dist/:
#   keepalive-shim-VERSION-ARCH-linux.tar.gz   bin/, lib/, share/man/, README, licenses, examples/
#   keepalive-shim_VERSION_DEB-ARCH.deb        /usr/bin, /usr/lib/<multiarch>/, man pages, /usr/share/doc
#   keepalive_shim-VERSION-py3-none-...whl     pip: the command as script, the library as data
# The library is linked against glibc 2.17's stubs and the command is a
# static musl executable (scripts/lib/build.sh): one build per architecture
# serves glibc >= 2.17 and musl systems. scripts/test-packages.sh installs
# and uses each package.
#   scripts/package.sh [ARCH...]   (default: x86_64 aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
. scripts/lib/build.sh
ARCHES=("$@")
((${#ARCHES[@]})) || ARCHES=(x86_64 aarch64)

install_zigbuild
targets=()
for arch in "${ARCHES[@]}" "$(uname -m)"; do
  targets+=("$arch-unknown-linux-gnu" "$arch-unknown-linux-musl")
done
install_rust_targets "${targets[@]}"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DIST=dist
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DIST"

echo "== man pages"
host_cli=$(build_static_cli "$(uname -m)")
"$host_cli" manpages "$WORK/man" >/dev/null

# examples/ with this package's paths filled in.
examples() { # DEST LIBDIR ARCH
  mkdir -p "$1"
  for f in examples/*; do
    sed -e "s|@LIBDIR@|$2|g" -e "s|@VERSION@|$VERSION|g" -e "s|@ARCH@|$3|g" "$f" >"$1/$(basename "$f")"
  done
}

for arch in "${ARCHES[@]}"; do
  case $arch in
    x86_64) deb_arch=amd64 ;;
    aarch64) deb_arch=arm64 ;;
    *) echo "unknown architecture $arch" >&2; exit 2 ;;
  esac
  multiarch=$arch-linux-gnu
  echo "== $arch: build"
  lib=$(build_library "$arch")
  cli=$(build_static_cli "$arch")

  echo "== $arch: tarball"
  name=keepalive-shim-$VERSION-$arch-linux
  t=$WORK/$name
  install -D -m 755 "$cli" "$t/bin/keepalive-shim"
  install -D -m 644 "$lib" "$t/lib/libkeepalive_shim.so"
  for page in "$WORK"/man/*; do
    install -D -m 644 "$page" "$t/share/man/man${page##*.}/$(basename "$page")"
  done
  install -m 644 README.md LICENSE-MIT LICENSE-APACHE "$t/"
  examples "$t/examples" /usr/local/lib "$arch"
  tar -C "$WORK" --owner=0 --group=0 --numeric-owner --sort=name -czf "$DIST/$name.tar.gz" "$name"

  echo "== $arch: .deb"
  d=$WORK/deb-$arch
  doc=$d/usr/share/doc/keepalive-shim
  install -D -m 755 "$cli" "$d/usr/bin/keepalive-shim"
  install -D -m 644 "$lib" "$d/usr/lib/$multiarch/libkeepalive_shim.so"
  for page in "$WORK"/man/*; do
    install -D -m 644 "$page" "$d/usr/share/man/man${page##*.}/$(basename "$page")"
    gzip -9n "$d/usr/share/man/man${page##*.}/$(basename "$page")"
  done
  install -D -m 644 README.md "$doc/README.md" && gzip -9n "$doc/README.md"
  # Examples only: nothing in /etc, so installing changes no program's behaviour.
  examples "$doc/examples" "/usr/lib/$multiarch" "$arch"
  {
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: keepalive-shim"
    echo
    echo "Files: *"
    echo "Copyright: The keepalive-shim authors"
    echo "License: MIT or Apache-2.0"
    echo
    echo "License: MIT"
    sed 's/^$/./; s/^/ /' LICENSE-MIT
    echo
    echo "License: Apache-2.0"
    echo " On Debian systems, the full text is in /usr/share/common-licenses/Apache-2.0."
  } >"$doc/copyright"
  mkdir -p "$d/DEBIAN"
  cat >"$d/DEBIAN/control" <<CONTROL
Package: keepalive-shim
Version: $VERSION
Architecture: $deb_arch
Maintainer: keepalive-shim authors <keepalive-shim@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$d" | cut -f1)
Depends: libc6 (>= 2.17)
Section: net
Priority: optional
Description: TCP keepalive for unmodified programs (LD_PRELOAD)
 An LD_PRELOAD library that sets SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL,
 TCP_KEEPCNT and (opt-in) TCP_USER_TIMEOUT on a program's TCP sockets, from
 KEEPALIVE_SHIM_* variables or /etc/keepalive-shim.conf, and the
 keepalive-shim command: run a program under it, check a configuration.
 Nothing is enabled on install; see keepalive-shim(1) and keepalive-shim(7).
CONTROL
  dpkg-deb --root-owner-group -Zxz --build "$d" "$DIST/keepalive-shim_${VERSION}_$deb_arch.deb" >/dev/null

  echo "== $arch: wheel"
  python3 scripts/lib/wheel.py --version "$VERSION" --arch "$arch" --cli "$cli" --lib "$lib" \
    --man "$WORK/man" --readme README.md --license LICENSE-MIT LICENSE-APACHE --out "$DIST" >/dev/null
done
echo "== dist/"
ls -l "$DIST"
