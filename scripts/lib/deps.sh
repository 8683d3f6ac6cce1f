# shellcheck shell=bash
# Installs missing dependencies; sourced by scripts/test.sh and scripts/demo.sh.

# Debian package -> a command or file it provides, to tell whether it is there.
declare -A PROVIDES=(
  [curl]=curl [iproute2]=ip [nftables]=nft [tcpdump]=tcpdump [conntrack]=conntrack
  [binutils]=nm [gcc]=gcc [libc6-dev]=/usr/include/stdio.h [nodejs]=node
  [openjdk-17-jdk-headless]=javac [postgresql-client]=psql [util-linux]=setpriv
  [musl-tools]=musl-gcc [qemu-user-static]=qemu-aarch64-static [python3-venv]=/usr/share/doc/python3-venv
  [libbpf-dev]=/usr/include/bpf/bpf_helpers.h [golang-go]=go
)
# What the full build needs: clang and the libbpf headers compile the BPF
# programs of `keepalive-shim attach` (without them the CLI builds, and
# attach says how to get them).
# shellcheck disable=SC2034 # used by the scripts that source this file
BUILD_APT_PACKAGES=(clang libbpf-dev)

install_apt_packages() {
  local missing=() pkg probe
  for pkg in "$@"; do
    probe=${PROVIDES[$pkg]:-$pkg}
    if [[ $probe == /* ]]; then [[ -e $probe ]] && continue
    else command -v "$probe" >/dev/null 2>&1 && continue; fi
    missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) != 0 ]]; then
    echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "== apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

install_pip_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    python3 -c "import $pkg" 2>/dev/null || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "== pip install ${missing[*]}"
  python3 -m pip install -q --disable-pip-version-check "${missing[@]}" </dev/null
}

# rustup components of the default toolchain (rustfmt, clippy).
install_rust_components() {
  local missing=() c
  for c in "$@"; do
    case $c in
      rustfmt) cargo fmt --version >/dev/null 2>&1 && continue ;;
      clippy) cargo clippy --version >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$c")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "== rustup component add ${missing[*]}"
  rustup component add "${missing[@]}" </dev/null
}

# A Rust toolchain by version (for the MSRV check): minimal profile, no
# components beyond the compiler, cargo and std.
install_rust_toolchain() {
  rustup run "$1" cargo --version >/dev/null 2>&1 && return 0
  echo "== rustup toolchain install $1"
  rustup toolchain install "$1" --profile minimal --no-self-update </dev/null
}

# cargo-zigbuild and zig (the `ziglang` PyPI package): link the library
# against glibc 2.17's stubs, and build for aarch64 and musl.
install_zigbuild() {
  command -v cargo-zigbuild >/dev/null 2>&1 && python3 -c "import ziglang" 2>/dev/null && return 0
  echo "== pip install ziglang cargo-zigbuild"
  python3 -m pip install -q --disable-pip-version-check ziglang cargo-zigbuild </dev/null
}

# Rust standard libraries for the given targets (rustup).
install_rust_targets() {
  local missing=() t installed
  installed=$(rustup target list --installed 2>/dev/null || true)
  for t in "$@"; do grep -qx "$t" <<<"$installed" || missing+=("$t"); done
  ((${#missing[@]} == 0)) && return 0
  echo "== rustup target add ${missing[*]}"
  rustup target add "${missing[@]}" </dev/null
}
