# Installs missing dependencies; sourced by scripts/test.sh and scripts/demo.sh.

# Debian package -> a command or file it provides, to tell whether it is there.
declare -A PROVIDES=(
  [curl]=curl [iproute2]=ip [nftables]=nft [tcpdump]=tcpdump [conntrack]=conntrack
  [binutils]=nm [gcc]=gcc [libc6-dev]=/usr/include/stdio.h [nodejs]=node
  [openjdk-17-jdk-headless]=javac [postgresql-client]=psql [util-linux]=setpriv
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
