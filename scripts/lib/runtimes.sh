# shellcheck shell=bash
# C runtimes from the Debian registry that the portability tests load the
# library with: an older glibc (bullseye's 2.31, the oldest deb.debian.org
# still serves) and the aarch64 glibc and musl run under qemu-user. Sourced
# by scripts/test.sh; `fetch_runtimes DIR` unpacks each into DIR/<name>/
# (kept: a second run downloads nothing). apt runs with a private state
# directory, so the machine's own apt configuration is never changed.

# name -> package:arch/suite
declare -A RUNTIMES=(
  [glibc-2.31-x86_64]=libc6:amd64/bullseye
  [glibc-2.36-aarch64]=libc6:arm64/bookworm
  [glibc-2.31-aarch64]=libc6:arm64/bullseye
  [musl-aarch64]=musl:arm64/bookworm
)

fetch_runtimes() {
  local dir=$1 name missing=()
  mkdir -p "$dir"
  for name in "${!RUNTIMES[@]}"; do
    [[ -e $dir/$name/.done ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) && return 0
  local apt=$dir/.apt
  mkdir -p "$apt"/state/lists/partial "$apt"/cache/archives/partial "$apt"/debs
  cat >"$apt"/sources.list <<SOURCES
deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main
SOURCES
  local opts=(-o "Dir::State=$apt/state" -o "Dir::Cache=$apt/cache"
    -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o APT::Architectures::=amd64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Languages=none)
  echo "== fetching C runtimes: ${missing[*]}"
  apt-get "${opts[@]}" update -qq </dev/null
  for name in "${missing[@]}"; do
    rm -rf "${apt:?}"/debs/* "${dir:?}/$name"
    (cd "$apt"/debs && apt-get "${opts[@]}" download -qq "${RUNTIMES[$name]}" </dev/null)
    mkdir -p "$dir/$name"
    dpkg-deb -x "$apt"/debs/*.deb "$dir/$name"
    touch "$dir/$name/.done"
  done
}
