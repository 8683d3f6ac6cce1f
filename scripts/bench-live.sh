#!/usr/bin/env bash
# Benchmarks of `keepalive-shim status` and `apply` on running processes:
# `status --all` vs `ss -tnpo` on a host holding 10,000 established loopback
# connections, and `apply` on the one process holding them (time per socket).
#
#   scripts/bench-live.sh           full run (about a minute); replaces its own
#                                   section of BENCHMARKS.md (or appends it)
#   scripts/bench-live.sh --quick   smoke run (2,000 connections), writes nothing
#
# Runs as root (pidfd_getfd on another process). scripts/bench.sh runs it at
# the end of a full run. The CLI measured is target/release/keepalive-shim
# (built if missing). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=10000 ROUNDS=11 WRITE=1
case "${1:-}" in
  --quick) N=2000 ROUNDS=3 WRITE=0 ;;
  "") ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

. scripts/lib/deps.sh
install_apt_packages iproute2

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLI=$TARGET_DIR/release/keepalive-shim
if [[ ! -x $CLI ]]; then
  echo "== $CLI is missing: cargo build --release --locked -p keepalive-shim-cli"
  cargo build --release --locked -p keepalive-shim-cli
fi

SECTION=$(mktemp /tmp/ks-bench-live.XXXXXX)
trap 'rm -f "$SECTION"' EXIT
echo "== status/apply on $N connections, $ROUNDS rounds"
python3 tests/bench/live_bench.py "$CLI" "$N" "$ROUNDS" >"$SECTION"
cat "$SECTION"
((WRITE)) || exit 0

# Replace the marked section of BENCHMARKS.md, or append it.
python3 - "$ROOT/BENCHMARKS.md" "$SECTION" <<'PY'
import re, sys
path, section = sys.argv[1], open(sys.argv[2]).read().strip() + "\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n"
pattern = re.compile(r"<!-- bench-live:.*?<!-- /bench-live -->\n?", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
echo "== updated the status/apply section of $ROOT/BENCHMARKS.md"
