#!/usr/bin/env bash
# The quick start: builds keepalive-shim and shows it on a real program, a
# Python requests.Session worker against a local keep-alive HTTP server,
# without and then with the shim: the kernel's socket options, the shim's
# log line and the `ss -tnoi` keepalive timer. As root it then plays the
# firewall incidents in a network-namespace lab (scripts/demo-firewall.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
install_apt_packages iproute2 curl
install_pip_packages requests

echo "== building (cargo build --release)"
cargo build --release --workspace --locked --quiet
SHIM=target/release/keepalive-shim

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The server prints its port on stdout when it is ready.
mkfifo "$tmp/server.out"
python3 scripts/demo_server.py >"$tmp/server.out" &
pids+=($!)
exec 3<"$tmp/server.out"
read -r -t 10 port <&3 || { echo "server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port/"
echo "== keep-alive HTTP server on 127.0.0.1:$port"

show() { # show TITLE CMD...: run the worker, show its socket and ss's timer
  local title=$1; shift
  echo
  echo "---- $title"
  echo "\$ ${*:+$* }python3 scripts/demo_worker.py $url"
  mkfifo "$tmp/in" "$tmp/out"
  "$@" python3 scripts/demo_worker.py "$url" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
  local worker=$!
  exec 4>"$tmp/in" 5<"$tmp/out"
  local report
  read -r -t 20 report <&5 || { echo "worker did not answer" >&2; cat "$tmp/err" >&2; exit 1; }
  local lport
  lport=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["local_port"])' "$report")
  python3 -c 'import json,sys; o=json.loads(sys.argv[1])["options"]; print("socket options:  " + " ".join(f"{k}={v}" for k, v in o.items()))' "$report"
  # One line per socket the shim changed (urllib3 also opens, and never
  # connects, a socket to probe for IPv6: that one is "unconnected").
  if [[ -s $tmp/err ]]; then sed '1s/^/shim log:        /; 2,$s/^/                 /' "$tmp/err"; fi
  local ss_out timer
  ss_out=$(ss -tnoi state established "( sport = :$lport )" | tail -n +2)
  timer=$(grep -o 'timer:([^)]*)' <<<"$ss_out" | head -n 1 || true)
  echo "ss -tnoi:        $(awk 'NR==1 {print $3" -> "$4}' <<<"$ss_out")  ${timer:-no timer: if this idle connection dies, nothing will ever notice}"
  exec 4>&- 5<&-
  wait "$worker"
  rm -f "$tmp/in" "$tmp/out" "$tmp/err"
}

show "without the shim"
show "with the shim (keepalive-shim run --idle 20 --interval 5 --count 3 --user-timeout auto --log info)" \
  "$SHIM" run --idle 20 --interval 5 --count 3 --user-timeout auto --log info --

echo
echo "Read it as: with the shim, the kernel probes the idle pooled connection after 20 s,"
echo "then every 5 s, and drops it after 3 unanswered probes (35 s), or when sent data"
echo "stays unacknowledged for TCP_USER_TIMEOUT (35 s, asked for with --user-timeout auto:"
echo "it is opt-in, since it also ends a live connection whose reader stops reading that long)."
echo "Without the shim: nothing, ever."

if [[ -x scripts/demo-firewall.sh ]]; then
  echo
  if [[ $(id -u) == 0 ]]; then install_apt_packages nftables tcpdump conntrack; fi
  scripts/demo-firewall.sh
fi
