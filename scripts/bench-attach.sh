#!/usr/bin/env bash
# Benchmark of `keepalive-shim attach`: the cost per connection of a
# loopback connect+close loop in a cgroup under attach vs the same cgroup
# without, side by side in one run (tests/bench/attach_bench.py).
#
#   scripts/bench-attach.sh           full run (about two minutes); replaces its own
#                                     section of BENCHMARKS.md (or appends it)
#   scripts/bench-attach.sh --quick   smoke run, writes nothing
#
# Runs as root (BPF, cgroups). scripts/bench.sh runs it at the end. The CLI
# measured is target/release/keepalive-shim (built if missing). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=9 BLOCKS=100 WARM=5 WRITE=1
case "${1:-}" in
  --quick) REPS=1 BLOCKS=10 WARM=2 WRITE=0 ;;
  "") ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

. scripts/lib/deps.sh
install_apt_packages gcc libc6-dev bpftool "${BUILD_APT_PACKAGES[@]}"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLI=$TARGET_DIR/release/keepalive-shim
if [[ ! -x $CLI ]]; then
  echo "== $CLI is missing: cargo build --release --locked -p keepalive-shim-cli"
  cargo build --release --locked -p keepalive-shim-cli
fi

B=$(mktemp -d /tmp/ks-bench-attach.XXXXXX)
trap 'rm -rf "$B"' EXIT
gcc -O2 -Wall -Wextra -Werror -o "$B/attach_pair" tests/bench/attach_pair.c
echo "== attach: connect+close per connection, $REPS reps of each comparison in both orders"
python3 tests/bench/attach_bench.py "$CLI" "$B/attach_pair" "$REPS" "$BLOCKS" "$WARM" >"$B/section.md"
cat "$B/section.md"
((WRITE)) || exit 0

# Replace the marked section of BENCHMARKS.md, or append it.
python3 - "$ROOT/BENCHMARKS.md" "$B/section.md" <<'PY'
import re, sys
path, section = sys.argv[1], open(sys.argv[2]).read().strip() + "\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n"
pattern = re.compile(r"<!-- bench-attach:.*?<!-- /bench-attach -->\n?", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
echo "== updated the attach section of $ROOT/BENCHMARKS.md"
